# Generated from tests/programs.py (mp_items_text): the item pumpctl sends (STAGE_ITEM, after its
# index) for each program line the 32-bit MicroPython's host scripts send; the VM has no parser.
ITEMS = {
    "basal 1 mL/day": (8, "", 2, 1000000, 0, 0, 0, 0, 0, 0),
    "basal 1 mg/day": (8, "", 1, 1000000, 0, 0, 0, 0, 0, 0),
    "basal 1 mg/h": (8, "", 1, 24000000, 0, 0, 0, 0, 0, 0),
    "basal 2 mg/day": (8, "", 1, 2000000, 0, 0, 0, 0, 0, 0),
    "basal 3 mg/day": (8, "", 1, 3000000, 0, 0, 0, 0, 0, 0),
    "basal 900 mg/day": (8, "", 1, 900000000, 0, 0, 0, 0, 0, 0),
    "bolus 0.1 mg over 30 min": (10, "", 1, 100000, 0, 1800, 0, 0, 0, 0),
    "drug bupivacaine 7.5 mg/mL": (1, "bupivacaine", 0, 7500000, 0, 0, 0, 0, 0, 0),
    "drug clonidine 500 mcg/mL": (1, "clonidine", 0, 500000, 0, 0, 0, 0, 0, 0),
    "drug hydromorphone 10 mg/mL": (1, "hydromorphone", 0, 10000000, 0, 0, 0, 0, 0, 0),
    "drug morphine 20 mg/mL": (1, "morphine", 0, 20000000, 0, 0, 0, 0, 0, 0),
    "drug morphine 90 mg/mL": (1, "morphine", 0, 90000000, 0, 0, 0, 0, 0, 0),
    "fill 20 mL": (3, "", 0, 20000000, 0, 0, 0, 0, 0, 0),
    "flex 00:00 2 mg/day": (9, "", 1, 2000000, 0, 0, 0, 0, 0, 0),
    "flex 07:00 4 mg/day": (9, "", 1, 4000000, 420, 0, 0, 0, 0, 0),
    "flex 22:00 1 mg/day": (9, "", 1, 1000000, 1320, 0, 0, 0, 0, 0),
    "patient-bolus 0.1 mg over 10 min lockout 2 h max 3 per day": (13, "", 1, 100000, 0, 600, 0, 7200, 0, 3),
    "patient-bolus 0.2 mg over 10 min lockout 1 h max 4 per day": (13, "", 1, 200000, 0, 600, 0, 3600, 0, 4),
    "patient-bolus 0.5 mg over 10 min lockout 1 h max 4 per day": (13, "", 1, 500000, 0, 600, 0, 3600, 0, 4),
    "stop": (7, "", 0, 0, 0, 0, 0, 0, 0, 0),
}
