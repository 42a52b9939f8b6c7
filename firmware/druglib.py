# The default drug library: plain data, no code.
#
# THIS IS A DEVELOPMENT PROJECT, NOT A MEDICAL DEVICE. These defaults exist so
# the firmware and its tests have realistic numbers to enforce. They are not
# a prescription and not a recommendation: every limit used on a patient must
# be set by the treating clinician and the site's pharmacy (a site replaces
# this table with its own library, see docs/drug-library.md).
#
# What the library is for (Generic Infusion Pump safety requirements, FDA /
# UPenn v1.0, 2009): 6.1.2-6.1.4 a library per drug with concentration and
# hard and soft limits for infusion and bolus; a hard limit refuses, a soft
# limit needs an explicit confirmation; 6.1.5 the patient cannot edit it;
# 6.1.6 the library version is logged with each program.
#
# Each entry is a tuple of 12 strings, in the order of FIELDS below. Every
# quantity is written as a clinician types it, with its unit, as a site's
# library file has it (pumpctl reads such text with exact integer arithmetic,
# firmware/units.py); the pump takes DEFAULT_NUMBERS at the end. Units used:
# mass mg / mcg, concentration mg/mL / mcg/mL, dose rate mg/day, mcg/day,
# mg/h, mcg/h, duration min / h, counts as plain digits. At most 3 decimals.
#
# How the numbers were chosen (the same rules for every drug):
#   daily_hard  the PACC 2017 maximum daily dose or the product label's
#               maximum, whichever is lower where both exist.
#   daily_soft  a lower, clinically usual ceiling (top of the labelled usual
#               maintenance range where one exists; each entry says which).
#   bolus_*     from the labelled or published single intrathecal dose;
#               bolus_soft <= bolus_hard <= daily_hard.
#   rate_hard   daily_hard / 24 + bolus_hard, rounded UP to 3 decimals: the
#               most one hour may carry is one hour of the largest allowed
#               basal plus one largest allowed clinician bolus. The dose
#               guard (firmware/guard.py) uses it as the cap on any rolling
#               1 h delivery. Rounding up keeps rate_hard >= daily_hard / 24,
#               so a continuous program at exactly the daily hard limit is
#               always accepted. If it is also applied to the instantaneous
#               rate of a short bolus, a bolus near bolus_hard on top of a
#               basal near daily_hard must be programmed over about 1 h.
#   rate_soft   daily_soft / 24 + bolus_soft, rounded DOWN to 3 decimals
#               (toward caution; it stays above daily_soft / 24).
#   patient_*   a patient-activated bolus only for the hydrophilic opioids
#               (morphine, hydromorphone); none for the others by default.
#               The dose is at most bolus_soft, the lockout at least 1 h, at
#               most 4 a day. These are engineering choices (no source was
#               found for patient-bolus limits): UNVERIFIED.
#
# Sources and what could be checked with the project's search tool (stored
# copies of public pages, November 2026; see docs/drug-library.md):
#   PACC 2017: Deer TR, Pope JE, Hayek SM, et al. The Polyanalgesic Consensus
#     Conference (PACC): Recommendations on Intrathecal Drug Infusion Systems
#     Best Practices and Guidelines. Neuromodulation 2017;20(2):96-132.
#     The citation was confirmed (bibliographic record, ouci.dntb.gov.ua; and
#     quoted by the Prialt site, prialt.com). Its full text and its table of
#     maximum concentrations and daily doses were NOT reachable, so every
#     number below attributed only to PACC 2017 is UNVERIFIED: it comes from
#     the project's research notes on the PACC tables, themselves marked
#     unverified (docs/drug-library.md says which value rests on what).
#   Labels were read through secondary copies of the label text (drugs.com,
#   MPR/empr.com, renalandurologynews.com, prialt.com, EU SmPC on
#   ec.europa.eu) and the openFDA NDC directory (product strengths).

DEFAULT_LIBRARY_VERSION = "default-2026.11"

# The meaning of each position in an entry: the key names of a site library file (JSON) loaded
# with `pumpctl library load FILE`, in the order LIB_DRUG carries the values, then its source.
FIELDS = (
    "name",
    "max_concentration",
    "daily_soft",
    "daily_hard",
    "rate_soft",
    "rate_hard",
    "bolus_soft",
    "bolus_hard",
    "patient_dose_hard",
    "patient_lockout_min",
    "patient_max_per_day",
    "source",
)

DEFAULT_LIBRARY = (
    # ---------------------------------------------------------------- morphine
    # Sources:
    #   PACC 2017 (Deer et al., Neuromodulation 2017;20:96-132), maximum
    #     concentration 20 mg/mL and maximum dose 15 mg/day.
    #     UNVERIFIED: full text not reachable; searched pages, docs and code
    #     corpora for the PACC table and for reviews quoting it, found none.
    #   INFUMORPH (preservative-free morphine sulfate 10 and 25 mg/mL for
    #     continuous intrathecal/epidural microinfusion) label, as summarised
    #     by MPR (empr.com/infumorph): "Intrathecal: limit to the lumbar
    #     region. Opioid-naive: 0.2-1mg/day; opioid-tolerant: 1-10mg/day.
    #     Caution with doses >20mg/day." Confirmed (secondary copy of label).
    #     Strengths 10 and 25 mg/mL confirmed in the openFDA NDC directory
    #     (INFUMORPH 500, 25 mg/mL).
    #   DURAMORPH (0.5 and 1 mg/mL) label: "intrathecal dosage is usually 1/10
    #     that of epidural dosage", epidural initial injection 5 mg (DailyMed
    #     text, via linkedlifedata.com). The intrathecal single dose "0.2 to
    #     1 mg" was seen only in a secondary drug summary (mussenhealth.us):
    #     UNVERIFIED against the label itself.
    # Numbers:
    #   max_concentration 20 mg/mL: PACC 2017 (UNVERIFIED); kept because it
    #     is lower than the 25 mg/mL Infumorph product, so the conservative
    #     choice. Undiluted Infumorph 500 (25 mg/mL) is refused by default.
    #   daily_soft 10 mg/day: top of the label's opioid-tolerant intrathecal
    #     range (1-10 mg/day). Confirmed.
    #   daily_hard 15 mg/day: PACC 2017 (UNVERIFIED); lower than the label's
    #     caution threshold of 20 mg/day, so the conservative choice.
    #   bolus_soft 0.5 mg: one tenth of Duramorph's 5 mg epidural dose.
    #   bolus_hard 1 mg: top of the intrathecal single dose 0.2-1 mg
    #     (UNVERIFIED, secondary summary only).
    #   rate_soft 10/24 + 0.5 = 0.91666.. -> 0.916 mg/h.
    #   rate_hard 15/24 + 1 = 1.625 mg/h (exact).
    #   patient bolus allowed: morphine is the one drug both patient-bolus
    #     systems support (Prometra PTC is morphine only; SynchroMed myPTM).
    #     0.2 mg = bottom of the label's single intrathecal dose and of the
    #     opioid-naive daily range; lockout 1 h; at most 4 a day (0.8 mg).
    #     UNVERIFIED: engineering choice, no published PTM limits found.
    (
        "morphine",
        "20 mg/mL",
        "10 mg/day",
        "15 mg/day",
        "0.916 mg/h",
        "1.625 mg/h",
        "0.5 mg",
        "1 mg",
        "0.2 mg",
        "1 h",
        "4",
        "PACC 2017 Deer et al (20 mg/mL, 15 mg/day UNVERIFIED); Infumorph, Duramorph labels",
    ),
    # ----------------------------------------------------------- hydromorphone
    # Sources:
    #   PACC 2017 (Deer et al.), maximum concentration 15 mg/mL and maximum
    #     dose 10 mg/day. UNVERIFIED (full text not reachable).
    #   No label: Dilaudid / hydromorphone injection is labelled for IV, IM
    #     and SC use only (drugs.com monograph; label highlights on
    #     drugs-library.com); intrathecal use is off-label. The UK Specialist
    #     Pharmacy Service notes no hydromorphone product is licensed for
    #     intrathecal use.
    #   Potency: about 5 times morphine intrathecally is the figure commonly
    #     used; a textbook chapter (aneskey.com, intrathecal therapy for
    #     abdominal pain) uses 6 mg morphine = 1 mg hydromorphone.
    #     The 5:1 ratio is UNVERIFIED against PACC.
    # Numbers:
    #   max_concentration 15 mg/mL, daily_hard 10 mg/day: PACC (UNVERIFIED).
    #   daily_soft 2 mg/day: morphine's 10 mg/day soft limit / 5.
    #   bolus_soft 0.1 mg, bolus_hard 0.2 mg: morphine's 0.5 / 1 mg over 5.
    #   rate_soft 2/24 + 0.1 = 0.18333.. -> 0.183 mg/h.
    #   rate_hard 10/24 + 0.2 = 0.61666.. -> 0.617 mg/h (rounded up).
    #   patient bolus allowed (myPTM can bolus any drug in the pump;
    #     hydromorphone is the usual alternative to morphine): 0.04 mg =
    #     morphine's 0.2 mg / 5; lockout 1 h; at most 4 a day.
    #     UNVERIFIED: engineering choice.
    (
        "hydromorphone",
        "15 mg/mL",
        "2 mg/day",
        "10 mg/day",
        "0.183 mg/h",
        "0.617 mg/h",
        "0.1 mg",
        "0.2 mg",
        "0.04 mg",
        "1 h",
        "4",
        "PACC 2017 Deer et al (15 mg/mL, 10 mg/day UNVERIFIED); off-label IT, no label",
    ),
    # ---------------------------------------------------------------- fentanyl
    # Sources:
    #   PACC 2017 (Deer et al.), maximum dose 1000 mcg/day; maximum
    #     concentration 10 mg/mL. UNVERIFIED: the dose is from the research
    #     notes, the concentration from memory of the PACC tables (PACC 2012
    #     gave 10 mg/mL with no stated dose ceiling). Commercial fentanyl
    #     citrate injection is 50 mcg/mL; higher strengths are compounded.
    #   No label for intrathecal infusion (off-label).
    #   Single intrathecal dose in anaesthesia: fentanyl 10-25 mcg (McGraw
    #     Hill AccessAnesthesiology table of neuraxial adjuncts). Confirmed
    #     (secondary). PACC trial bolus range not reachable.
    # Numbers:
    #   max_concentration 10 mg/mL, daily_hard 1000 mcg/day: PACC
    #     (UNVERIFIED); no lower confirmed value exists to fall back to.
    #   daily_soft 500 mcg/day: half the hard limit; no usual maintenance
    #     range could be confirmed.
    #   bolus_soft 25 mcg: top of the spinal adjunct dose (confirmed).
    #   bolus_hard 50 mcg: twice that; chosen below the 75 mcg upper trial
    #     bolus remembered from PACC (UNVERIFIED), the conservative choice.
    #   rate_soft 500/24 + 25 = 45.8333.. -> 45.833 mcg/h.
    #   rate_hard 1000/24 + 50 = 91.6666.. -> 91.667 mcg/h (rounded up).
    #   no patient bolus: lipophilic, fast systemic uptake and early
    #     respiratory depression after a bolus, off-label; a site may enable.
    (
        "fentanyl",
        "10 mg/mL",
        "500 mcg/day",
        "1000 mcg/day",
        "45.833 mcg/h",
        "91.667 mcg/h",
        "25 mcg",
        "50 mcg",
        "0 mcg",
        "0 min",
        "0",
        "PACC 2017 Deer et al (10 mg/mL, 1000 mcg/day UNVERIFIED); off-label IT, no label",
    ),
    # -------------------------------------------------------------- sufentanil
    # Sources:
    #   PACC 2017 (Deer et al.), maximum dose 500 mcg/day; maximum
    #     concentration 5 mg/mL. UNVERIFIED (dose from the research notes,
    #     concentration from memory of the PACC tables).
    #   No label for intrathecal infusion (off-label).
    #   A textbook chapter on intrathecal therapy (aneskey.com) gives a
    #     sufentanil range of 10-100 mcg/day in its practice. Confirmed
    #     (secondary).
    #   Single intrathecal dose: 10 mcg is the usual clinical dose; in
    #     volunteers, doses above 12.5 mcg gave no more analgesia and all
    #     doses (12.5-50 mcg) caused respiratory depression (abstract of an
    #     Anesth Analg volunteer study, via acnpsearch.unibo.it). Confirmed
    #     (abstract only).
    # Numbers:
    #   max_concentration 5 mg/mL, daily_hard 500 mcg/day: PACC (UNVERIFIED).
    #   daily_soft 100 mcg/day: top of the textbook range above.
    #   bolus_soft 5 mcg, bolus_hard 10 mcg: the usual clinical single dose
    #     as the ceiling, below the 12.5 mcg where more dose only added risk.
    #   rate_soft 100/24 + 5 = 9.1666.. -> 9.166 mcg/h.
    #   rate_hard 500/24 + 10 = 30.8333.. -> 30.834 mcg/h (rounded up).
    #   no patient bolus: as fentanyl.
    (
        "sufentanil",
        "5 mg/mL",
        "100 mcg/day",
        "500 mcg/day",
        "9.166 mcg/h",
        "30.834 mcg/h",
        "5 mcg",
        "10 mcg",
        "0 mcg",
        "0 min",
        "0",
        "PACC 2017 Deer et al (5 mg/mL, 500 mcg/day UNVERIFIED); off-label IT, no label",
    ),
    # ------------------------------------------------------------- bupivacaine
    # Sources:
    #   PACC 2017 (Deer et al.), maximum concentration 30 mg/mL and maximum
    #     dose 15-20 mg/day. UNVERIFIED (full text not reachable).
    #   No label for chronic intrathecal infusion: bupivacaine labels cover
    #     spinal anaesthesia (hyperbaric 0.75%) and epidural/nerve block.
    #     Concentrations above 7.5 mg/mL are compounded.
    #   Intrathecal labour-analgesia initial bolus 1.0-2.5 mg (obstetric
    #     anaesthesia guideline as summarised on droracle.ai). Confirmed
    #     (secondary). A surgical spinal dose (10-15 mg) is not a pump bolus.
    #   A textbook chapter (aneskey.com) uses 6-20 mg/day in its practice.
    # Numbers:
    #   max_concentration 30 mg/mL: PACC (UNVERIFIED).
    #   daily_hard 15 mg/day: the low end of PACC's 15-20 (UNVERIFIED), the
    #     conservative choice.
    #   daily_soft 10 mg/day: the PACC 2012 maximum as remembered
    #     (UNVERIFIED); inside the textbook's 6-20 mg/day.
    #   bolus_soft 1.25 mg, bolus_hard 2.5 mg: the labour-analgesia
    #     intrathecal bolus range (confirmed, secondary).
    #   rate_soft 10/24 + 1.25 = 1.6666.. -> 1.666 mg/h.
    #   rate_hard 15/24 + 2.5 = 3.125 mg/h (exact).
    #   no patient bolus: repeated local-anaesthetic boluses risk motor
    #     block and hypotension; a site may enable.
    (
        "bupivacaine",
        "30 mg/mL",
        "10 mg/day",
        "15 mg/day",
        "1.666 mg/h",
        "3.125 mg/h",
        "1.25 mg",
        "2.5 mg",
        "0 mg",
        "0 min",
        "0",
        "PACC 2017 Deer et al (30 mg/mL, 15-20 mg/day UNVERIFIED); off-label IT infusion",
    ),
    # --------------------------------------------------------------- clonidine
    # Sources:
    #   PACC 2017 (Deer et al.), maximum concentration 1000 mcg/mL and
    #     maximum dose 600 mcg/day. UNVERIFIED (full text not reachable).
    #   Clonidine hydrochloride injection (Duraclon) label, EPIDURAL use only,
    #     in combination with opiates for severe cancer pain: 100 and 500
    #     mcg/mL; "the 500 mcg/mL strength must be diluted ... to a final
    #     concentration of 100 mcg/mL"; starting dose 30 mcg/hr, "experience
    #     with dosage rates above 40 mcg/hr is limited" (label text on
    #     recallguide.org and prescriptiondrugs.com; strengths in the openFDA
    #     NDC directory). Confirmed (secondary copies of label). Intrathecal
    #     use is off-label and needs far less than the epidural doses.
    #   Spinal clonidine in anaesthesia: 15 mcg for low-dose spinal; up to
    #     150 mcg used, with more sedation and cardiovascular depression
    #     (AccessAnesthesiology table). Confirmed (secondary).
    # Numbers:
    #   max_concentration 500 mcg/mL: the highest labelled strength, lower
    #     than PACC's 1000 mcg/mL (UNVERIFIED), so the conservative choice.
    #   daily_hard 600 mcg/day: PACC (UNVERIFIED). Lower than the epidural
    #     label's 30 mcg/h (720 mcg/day) start, as intrathecal should be.
    #   daily_soft 300 mcg/day: half the hard limit; no intrathecal
    #     maintenance range could be confirmed.
    #   bolus_soft 15 mcg: the low-dose spinal dose (confirmed).
    #   bolus_hard 30 mcg: twice that, far below the 150 mcg at which
    #     haemodynamic depression is reported.
    #   rate_soft 300/24 + 15 = 27.5 mcg/h (exact).
    #   rate_hard 600/24 + 30 = 55 mcg/h (exact).
    #   no patient bolus: boluses risk hypotension and bradycardia.
    (
        "clonidine",
        "500 mcg/mL",
        "300 mcg/day",
        "600 mcg/day",
        "27.5 mcg/h",
        "55 mcg/h",
        "15 mcg",
        "30 mcg",
        "0 mcg",
        "0 min",
        "0",
        "Duraclon epidural label (500 mcg/mL); PACC 2017 Deer et al (600 mcg/day UNVERIFIED)",
    ),
    # -------------------------------------------------------------- ziconotide
    # Sources:
    #   PRIALT (ziconotide) US label: "Initial: up to 2.4mcg/day (0.1
    #     microgram/hr); titrate in increments of up to 2.4mcg/day (0.1mcg/hr)
    #     at intervals of up to 2-3 times per week; max 19.2mcg/day
    #     (0.8mcg/hr) by day 21"; supplied 25 mcg/mL and 100 mcg/mL
    #     (renalandurologynews.com; drugs.com dosage; prialt.com "daily dose
    #     should not exceed 19.2 mcg/day (0.8 mcg/hour)"; openFDA NDC 100
    #     ug/mL). Confirmed. Average dose at the end of the 21-day study 6.9
    #     mcg/day (drugs.com, from the label).
    #   EU SmPC (ec.europa.eu): start 2.4 mcg/day, steps <= 2.4 mcg/day, at
    #     least 24 h apart (48 h recommended), maximum 21.6 mcg/day. Confirmed.
    #     The lower, US, maximum is used.
    #   PACC 2017 starting dose 0.5-1.2 mcg/day (quoted by prialt.com, and
    #     in UpToDate as copied on medilib.ir). Confirmed (secondary).
    # Numbers:
    #   max_concentration 100 mcg/mL, daily_hard 19.2 mcg/day: label.
    #   daily_soft 9.6 mcg/day: half the label maximum (4 titration steps of
    #     2.4 mcg/day); the confirmed study average 6.9 mcg/day is below it.
    #   rate_soft 9.6/24 = 0.4 mcg/h; rate_hard 19.2/24 = 0.8 mcg/h, the
    #     label's own hourly figure (no bolus to add).
    #   no bolus at all (clinician 0, patient 0): ziconotide is given only as
    #     a slow continuous infusion; its narrow window and slow onset and
    #     offset make a bolus through the pump unsafe. A trial bolus (off
    #     label, 1-2 mcg) is given by lumbar puncture, not by this pump.
    (
        "ziconotide",
        "100 mcg/mL",
        "9.6 mcg/day",
        "19.2 mcg/day",
        "0.4 mcg/h",
        "0.8 mcg/h",
        "0 mcg",
        "0 mcg",
        "0 mcg",
        "0 min",
        "0",
        "Prialt US label (100 mcg/mL, 19.2 mcg/day, 0.8 mcg/h); PACC 2017 Deer et al",
    ),
    # ---------------------------------------------------------------- baclofen
    # Sources:
    #   LIORESAL INTRATHECAL / GABLOFEN (baclofen injection) labels:
    #     screening boluses 50 mcg, then 75 mcg and 100 mcg at 24 h
    #     intervals; patients not responding to 100 mcg are not candidates;
    #     initial pump dose twice the effective screening dose (drugs.com
    #     dosage; criticalcarenorthampton.com). Confirmed (secondary).
    #     Strengths 50, 500, 2000 mcg/mL; Gablofen 2000 mcg/mL confirmed in
    #     the openFDA NDC directory.
    #     Maintenance, cerebral origin: 90-703 mcg/day (Skyscape drug
    #     reference, from the label). Confirmed (secondary).
    #     Maintenance, spinal cord origin: 12-2003 mcg/day, most 300-800
    #     (research notes, from a Medscape summary). UNVERIFIED: searched,
    #     not found in any stored copy.
    #   PACC covers pain; it sets no baclofen maximum.
    #   Withdrawal (boxed warning) can be fatal: a hard limit must not stop a
    #     patient's established dose, so the hard limit sits at the top of
    #     the labelled range, not at the usual dose.
    # Numbers:
    #   max_concentration 2000 mcg/mL: the highest labelled strength.
    #   daily_hard 2000 mcg/day: the top of the spinal-origin range (2003)
    #     rounded down (UNVERIFIED, see above).
    #   daily_soft 700 mcg/day: just under the confirmed cerebral-origin top
    #     of 703 mcg/day, and under the unconfirmed spinal "most patients"
    #     top of 800, so the conservative choice.
    #   bolus_soft 50 mcg, bolus_hard 100 mcg: the labelled screening doses.
    #   rate_soft 700/24 + 50 = 79.1666.. -> 79.166 mcg/h.
    #   rate_hard 2000/24 + 100 = 183.333.. -> 183.334 mcg/h (rounded up).
    #   no patient bolus: spasticity treatment is a clinician-set daily
    #     pattern; an overdose causes respiratory depression and coma.
    (
        "baclofen",
        "2000 mcg/mL",
        "700 mcg/day",
        "2000 mcg/day",
        "79.166 mcg/h",
        "183.334 mcg/h",
        "50 mcg",
        "100 mcg",
        "0 mcg",
        "0 min",
        "0",
        "Lioresal, Gablofen IT labels; 2000 mcg/day from label dose range (UNVERIFIED)",
    ),
)

# The factory library as the pump holds it: each entry's name, and the numbers its text above
# means in the units LIB_DRUG carries (codec.LIBRARY_FIELDS: ng, ng/mL, ng/day, the lockout in s),
# and the library's content hash (framing.library_hash). tests/firmware/test_library.py reads the text above
# with pumpctl's reader and requires exactly these, so an edit of an entry must change its line here.
DEFAULT_NAMES = tuple(entry[0] for entry in DEFAULT_LIBRARY)
DEFAULT_NUMBERS = (
    (20000000, 10000000, 15000000, 21984000, 39000000, 500000, 1000000, 200000, 3600, 4),
    (15000000, 2000000, 10000000, 4392000, 14808000, 100000, 200000, 40000, 3600, 4),
    (10000000, 500000, 1000000, 1099992, 2200008, 25000, 50000, 0, 0, 0),
    (5000000, 100000, 500000, 219984, 740016, 5000, 10000, 0, 0, 0),
    (30000000, 10000000, 15000000, 39984000, 75000000, 1250000, 2500000, 0, 0, 0),
    (500000, 300000, 600000, 660000, 1320000, 15000, 30000, 0, 0, 0),
    (100000, 9600, 19200, 9600, 19200, 0, 0, 0, 0, 0),
    (2000000, 700000, 2000000, 1899984, 4400016, 50000, 100000, 0, 0, 0),
)
DEFAULT_LIBRARY_HASH = 940983359
