# The wire codec: the one definition of the link protocol's messages, used
# unchanged by the firmware (MicroPython) and by the host tool (CPython), so the
# two sides cannot drift apart. docs/protocol.md describes every message.
#
# Here: the codes (message types, errors, modes, alarms, faults, ...) and
# MESSAGES, each message's fields and the role it needs. How a message's fields
# are packed into a payload and the payload into a frame on the line: framing.py.
#
# Numbers only: the names of commands, errors, modes, alarms, events, ... are
# the host's (host/pumpctl/words.py), as bytes here would be heap on the pump.
# A pump text names a code by a token, "{a7}" for alarm 7, which the host
# renders (words.render).

from firmware import auth, const

# Re-exported for the host: steps travel as (hi, lo) words of STEP_RADIX and
# pump time as (mday, us) with US_PER_MDAY microseconds to a milliday; a rate's
# range (pumpctl refuses a rate outside it before sending).
from firmware.scheduler import MAX_RATE_NL_PER_DAY as MAX_RATE_NL_PER_DAY
from firmware.scheduler import MIN_RATE_NL_PER_DAY as MIN_RATE_NL_PER_DAY
from firmware.scheduler import STEP_RADIX as STEP_RADIX
from firmware.scheduler import US_PER_MDAY as US_PER_MDAY

# 6 since a library travels as numbers (LIB_DRUG), 7 since a rate does (SET_RATE), 9 since a
# program does (STAGE_ITEM, REVIEW's numbers). Never 4: every frame carries this byte, and 0x04
# (Ctrl-D) soft-resets a board at its REPL when pumpctl probes it for the pump before flashing
# (the unix port's REPL exits).
PROTOCOL_VERSION = const(9)

# Message types. A reply to command C has type C | REPLY.
HELLO = const(0x01)  # who are you: versions, board, device id, step volume
STATUS = const(0x02)  # pump time, program, steps delivered
THERAPY = const(0x03)  # the therapy in force: boluses, reservoir, guard, alarm
AUTH_BEGIN = const(0x08)  # start a session for a role: the pump answers a fresh nonce
AUTH_PROVE = const(0x09)  # answer the nonce with a proof of the role's key (auth.py)
AUTH_END = const(0x0A)  # end the session (authenticated)
KEY_CHANGE = const(0x0B)  # replace the clinician or patient key (masked; keyring.wrap_pad)
SET_RATE = const(0x10)  # program a continuous rate (no drug in the pump), with its unit
STOP = const(0x11)  # stopped mode: no delivery; cancels any bolus
CLOCK_SET = const(0x12)  # set the device clock (local wall time)
ACK_ALARM = const(0x13)  # acknowledge one latched alarm, or all of them
SERVICE = const(0x14)  # a stopped pump leaves its program for the board's REPL (to be flashed)
SILENCE = const(0x15)  # silence the alarm tones for at most 2 min (the alarms stay latched)
CALIBRATE = const(0x16)  # a stopped pump computes a new volume per step from the staged weighings (pumpctl calibrate)
CAL_WEIGHING = const(0x17)  # stage one weighing for CALIBRATE: the pump's step counts at tare and weighing, the mass
TONE_TEST = const(0x18)  # sound each alarm priority's tone once, low first: the person at the pump hears the speaker
STAGE_ITEM = const(0x20)  # add one item (a line's numbers) to the staged program (index 0 starts afresh)
STAGE = const(0x21)  # check the staged items as a program; nothing changes yet
REVIEW = const(0x22)  # one row of the running or the staged program, as the pump understood it
COMMIT = const(0x23)  # put the staged program in force (the second step)
DISCARD = const(0x24)  # drop the staged program
PATIENT_BOLUS = const(0x25)  # the patient asks for the bolus the program allows
LIB_DRUG = const(0x28)  # stage one drug of a new library: its name and limits, as numbers
LIB_COMMIT = const(0x29)  # replace the library with the staged one
LIB_GET = const(0x2A)  # read one drug of the library in force, or of the staged one
LIB_STAGE = const(0x2B)  # check the staged library fields as a library; nothing changes yet
EVENT = const(0x30)  # read one entry of the event log
TELEMETRY = const(0x31)  # stream TELEMETRY_DATA every interval_ms (0 stops)
ALARMS = const(0x32)  # read one of the latched alarms: priority, cause, time, state
SIM_ADVANCE = const(0x60)  # simulator only: run pump time forward
SIM_STATE = const(0x61)  # simulator only: the physical model's view
SIM_FAULT = const(0x62)  # simulator only: inject a fault (or a physical act) at a chosen pump time
SIM_FAULTS = const(0x63)  # simulator only: read (or cancel) one of the faults still to come
TELEMETRY_DATA = const(0x70)  # pump to host, unasked: one telemetry sample; seq counts the samples
ERROR = const(0x7F)  # a refusal; echoes the request's sequence number
REPLY = const(0x80)

# Error codes carried by ERROR.
ERR_BAD_FRAME = const(1)  # checksum, length or encoding wrong: not acted on
ERR_TOO_LONG = const(2)  # frame longer than framing.MAX_ENCODED bytes
ERR_BAD_VERSION = const(3)  # protocol version this pump does not speak
ERR_UNKNOWN_COMMAND = const(4)
ERR_MALFORMED = const(5)  # payload does not hold the command's fields
ERR_BAD_VALUE = const(6)  # a field's value refused: range, unit, syntax
ERR_NOT_SUPPORTED = const(7)  # known command this board does not offer
ERR_INTERNAL = const(8)  # the pump failed to carry it out; nothing changed
ERR_NEED_KEY = const(9)  # the command needs a session with a role this frame does not have
ERR_AUTH = auth.ERR_AUTH  # 10: wrong proof, wrong MAC, or a replayed sequence number
ERR_NO_SESSION = auth.ERR_NO_SESSION  # 11: an authenticated frame but no live session (ended or never begun)
ERR_LOCKED = const(12)  # protocol 7 and before only (a lockout after failed proofs): never sent now
ERR_NO_KEYS = auth.ERR_NO_KEYS  # 13: the pump was never provisioned with keys
ERR_NOT_STARTED = const(14)  # the firmware failed to start (the message says why); only SERVICE is obeyed

# The role each command needs (auth.ROLE_*) is the second byte of its record in
# MESSAGES (role_needed); 0: none (it reads, and changes nothing). The clinician's
# role covers the patient's.

# Mode codes in STATUS.
MODE_STOPPED = const(0)
MODE_CONTINUOUS = const(1)
MODE_FLEX = const(2)

# Alarm codes (THERAPY, ALARMS, ACK_ALARM; bit 1 << code in the alarms masks).
# Several may be latched at once; each stays latched until its condition has
# cleared and a clinician has acknowledged it (alarms.py).
ALARM_NONE = const(0)
ALARM_DOSE_LIMIT = const(1)  # the dose guard refused steps
ALARM_MOTOR_FAULT = const(2)  # the motor failed: stopped at once
ALARM_RESTART = const(3)  # the pump restarted (a power cut or reset) and resumed from its saved state
ALARM_RESERVOIR_LOW = const(4)  # the reservoir is down to the low-reservoir volume: refill soon
ALARM_RESERVOIR_EMPTY = const(5)  # down to the empty volume: delivery stopped
ALARM_SENSOR_DISAGREE = const(6)  # the reservoir sensor and the counted volume part by more than allowed
ALARM_SENSOR_FAULT = const(7)  # a monitor's sensor does not answer (reservoir or battery)
ALARM_BATTERY_ERI = const(8)  # elective replacement indicator: the battery's remaining life is below the margin
ALARM_BATTERY_LOW = const(9)  # critical low battery: end of service is near
ALARM_BATTERY_EOS = const(10)  # end of service: the battery is gone, delivery stopped
ALARM_STALL = const(11)  # the motor stalled (its driver's stall line): delivery held until it turns again
ALARM_OCCLUSION = const(12)  # the catheter or pump head is blocked: delivery held until it clears
ALARM_STEP_UNCONFIRMED = const(13)  # steps were commanded but the encoder did not see them move
ALARM_CLOCK_JUMP = const(14)  # the tick clock jumped: the jump was not counted as pump time
ALARM_WATCHDOG = const(15)  # a task stopped reporting in: delivery stopped, the watchdog resets the board
ALARM_SELF_TEST = const(16)  # the power-on self-test failed: no dosing
ALARM_PROGRAM_UNREAD = const(17)  # a restart could not read the saved program: stopped until it is sent again
# Priorities after IEC 60601-1-8: high needs an immediate response, medium a
# prompt one, low awareness. Each has its own tone pattern (hal/buzzer.py).
PRIORITY_LOW = const(1)
PRIORITY_MEDIUM = const(2)
PRIORITY_HIGH = const(3)
# Each alarm's priority (PRIORITY_*), by its code: alarm_priority().
_ALARM_PRIORITY = const(
    b"\x00"  # ALARM_NONE: none
    b"\x03"  # ALARM_DOSE_LIMIT: high
    b"\x03"  # ALARM_MOTOR_FAULT: high
    b"\x01"  # ALARM_RESTART: low
    b"\x02"  # ALARM_RESERVOIR_LOW: medium
    b"\x03"  # ALARM_RESERVOIR_EMPTY: high
    b"\x02"  # ALARM_SENSOR_DISAGREE: medium
    b"\x01"  # ALARM_SENSOR_FAULT: low
    b"\x02"  # ALARM_BATTERY_ERI: medium
    b"\x03"  # ALARM_BATTERY_LOW: high
    b"\x03"  # ALARM_BATTERY_EOS: high
    b"\x03"  # ALARM_STALL: high
    b"\x03"  # ALARM_OCCLUSION: high
    b"\x03"  # ALARM_STEP_UNCONFIRMED: high
    b"\x02"  # ALARM_CLOCK_JUMP: medium
    b"\x03"  # ALARM_WATCHDOG: high
    b"\x03"  # ALARM_SELF_TEST: high
    b"\x03"  # ALARM_PROGRAM_UNREAD: high
)


def alarm_priority(code):
    """An alarm's priority (PRIORITY_*); 0 for ALARM_NONE and for a code this firmware does not know."""
    return _ALARM_PRIORITY[code] if 0 <= code < len(_ALARM_PRIORITY) else 0


# ALARMS state bits.
ALARM_STATE_ACTIVE = const(1)  # its condition is present now
ALARM_STATE_ACKED = const(2)  # a clinician acknowledged it (it goes when its condition clears)

# SIM_FAULT kinds: what the simulated board's physical models do from the
# chosen pump time on (hal/sim/faults.py). value: 1 starts the condition, 0 ends it,
# unless said otherwise.
FAULT_MOTOR = const(0)  # the motor fails outright: stopped at once, for good (value unused)
FAULT_STALL = const(1)  # the rotor stops turning (an MRI field, a jammed gear): its stall line goes active
FAULT_OCCLUSION = const(2)  # the outlet is blocked: pressure builds over the next steps, the occlusion input trips
FAULT_ENCODER = const(3)  # the head stops turning without a stall signal: the encoder sees no pulses
FAULT_CLOCK_JUMP = const(4)  # the tick counter jumps forward value seconds at once
FAULT_SENSOR_STUCK = const(5)  # the reservoir sensor's reading freezes where it is
FAULT_BATTERY = const(6)  # the battery's charge drops to value permille at once (an early ERI)
FAULT_TASK = const(7)  # the battery read raises a RuntimeError: the monitoring task fails
FAULT_FILL = const(8)  # a person fills the reservoir: it now holds value nL (not a fault: a refill)
NO_FAULT = const(0xFF)  # SIM_FAULTS: no fault at that index
FAULT_LEAK = const(9)  # the reservoir loses value nL at once, none of it through the pump

# A drug library entry's fields as LIB_DRUG and LIB_GET carry them: its name, then
# LIBRARY_LIMITS numbers. Bit f of LIB_GET's `changed` and `raised` is field f here.
# The names are the keys of a site library's JSON file too (the host reads its text).
LIBRARY_FIELDS = (
    "name",
    "max_concentration",  # ng/mL
    "daily_soft",  # ng/day
    "daily_hard",  # ng/day
    "rate_soft",  # ng/day (a pharmacist writes it per hour)
    "rate_hard",  # ng/day
    "bolus_soft",  # ng
    "bolus_hard",  # ng
    "patient_dose_hard",  # ng
    "patient_lockout_min",  # s
    "patient_max_per_day",  # count
)
LIBRARY_LIMITS = const(10)  # the numbers after the name

# LIB_GET: which library.
LIB_IN_FORCE = const(0)
LIB_STAGED = const(1)


# CALIBRATE's confirm: store unless the change needs confirming; store, confirming a change
# the pump has shown for these same weighings; or only compute and show (store nothing).
CAL_STORE = const(0)
CAL_CONFIRM = const(1)
CAL_CHECK = const(2)
# CALIBRATE's density_ug_per_ml: bench water, 0 to 45 degC (0.9902..0.99997 g/mL).
CAL_MIN_DENSITY_UG_PER_ML = const(990_000)
CAL_MAX_DENSITY_UG_PER_ML = const(1_000_000)


# STAGE_ITEM's and REVIEW's dose_kind (program.DOSE_MASS, DOSE_VOLUME: a test keeps them equal).
DOSE_MASS = const(1)
DOSE_VOLUME = const(2)

# A program item: one line of a program as numbers (STAGE_ITEM, REVIEW), its fields
# (item, drug, dose_kind, amount, start_min, duration_s, duration_us, then_s, then_us, count)
# as each item uses them; the others are 0 (drug ""). A duration travels as whole seconds and
# the microseconds after them (below 1,000,000). dose_kind: DOSE_MASS (amount in ng, or ng/day
# for a rate) or DOSE_VOLUME (nL, or nL/day).
ITEM_DRUG = const(1)  # drug: its name as typed (the library's spelling in REVIEW), amount: ng/mL
ITEM_DRUG_NONE = const(2)  # the reservoir holds no drug
ITEM_FILL = const(3)  # amount: nL the reservoir now holds
ITEM_REMOVED = const(4)  # amount: nL drawn out before the fill
ITEM_LOW = const(5)  # amount: nL, the low-reservoir alarm's volume
ITEM_EMPTY = const(6)  # amount: nL, delivery stops there
ITEM_STOP = const(7)  # stopped mode
ITEM_BASAL = const(8)  # dose_kind, amount: per day
ITEM_FLEX = const(9)  # start_min (0..1439), dose_kind, amount: per day
ITEM_BOLUS = const(10)  # dose_kind, amount, duration, then: the delay before it starts
ITEM_PRIME = const(11)  # amount: nL, duration
ITEM_BRIDGE = const(12)  # amount: nL of the old blend
ITEM_PATIENT = const(13)  # dose_kind, amount, duration, then: the lockout, count: at most per day
ITEM_TRIAL = const(14)  # duration
# REVIEW's rows that are no line: a flex day's total (volume_nl), what committing does to a running
# delivery (note), a soft-limit warning (note: a token pumpctl words), no program running.
ITEM_FLEX_TOTAL = const(20)
ITEM_NOTE = const(21)
ITEM_WARNING = const(22)
ITEM_NO_PROGRAM = const(23)

# REVIEW: which program.
REVIEW_RUNNING = const(0)
REVIEW_STAGED = const(1)
REVIEW_LAST = const(2)  # the last program that dosed, kept since a stop replaced it (resume)
NO_TIME = const(0xFFFFFFFF)  # a u32 time field with no value (unknown, never)
NO_PERMILLE = const(0xFFFF)  # a battery_permille with no reading


def u32(value):
    """A u32 time or volume field: NO_TIME for None (unknown, never), and never more than it."""
    return NO_TIME if value is None or value >= NO_TIME else max(value, 0)


# The fields of each message, all in one bytes constant (one object on the pump, which a board with
# ROMFS keeps in flash, where a tuple per field was heap): one record per message: its type byte, the
# role it needs (a byte, auth.ROLE_*), its request's fields, "|", its reply's fields, and "\n". A field
# is its kind, one byte: B u8, H u16, I u32, s text, y bytes (framing.py).
# The fields' names are words, the host's (host/pumpctl/schema.py FIELD_NAMES, in the same order, with
# what each means; each handler's comment in firmware/commands/ says them too, docs/protocol.md): the
# names were 2.6 KB of this constant, on the heap of a board that loads its modules into RAM, and the
# pump never reads a field by its name. A refusal of a field that does not fit names it by a token,
# "{f%d}" (framing.py), which pumpctl words.
# Units are in the names: numbers travel, in the pump's units (nL/day, ng, us...); pumpctl reads
# what a person typed ("0.5 mL/day") and the pump checks every number it is sent against its
# ranges and limits; a program travels as its items' numbers (STAGE_ITEM). STATUS and TELEMETRY_DATA
# begin alike: what the pump is doing now (time, mode, rate, steps delivered).
MESSAGES = (
    b"\x01\x00|BssssIII\n"  # HELLO
    b"\x02\x00|IIBIIII\n"  # STATUS
    b"\x03\x00|BIIBIIBIIIIIBIIsIBIBIIIIHIIII\n"  # THERAPY
    b"\x08\x00B|y\n"  # AUTH_BEGIN
    b"\x09\x00Byyy|yI\n"  # AUTH_PROVE
    b"\x0a\x01|\n"  # AUTH_END, patient
    b"\x0b\x02By|B\n"  # KEY_CHANGE, clinician
    b"\x31\x00I|I\n"  # TELEMETRY
    b"\x70\x00|IIBIIIIIIBBIIIH\n"  # TELEMETRY_DATA
    b"\x12\x02I|I\n"  # CLOCK_SET, clinician
    b"\x13\x02B|BI\n"  # ACK_ALARM, clinician
    b"\x15\x01|I\n"  # SILENCE, patient
    b"\x17\x02BIIIII|BI\n"  # CAL_WEIGHING, clinician
    b"\x16\x02BIB|IIIIB\n"  # CALIBRATE, clinician
    b"\x32\x00B|BBBBIIs\n"  # ALARMS
    b"\x20\x02BBsBIHIIIIB|B\n"  # STAGE_ITEM, clinician
    b"\x21\x02|BBII\n"  # STAGE, clinician
    b"\x22\x00BB|BBsBIHIIIIBIs\n"  # REVIEW
    b"\x23\x02IB|III\n"  # COMMIT, clinician
    b"\x24\x02|\n"  # DISCARD, clinician
    b"\x25\x01|II\n"  # PATIENT_BOLUS, patient
    b"\x28\x02BsIIIIIIIIIB|B\n"  # LIB_DRUG, clinician
    b"\x2b\x02sB|IBHBI\n"  # LIB_STAGE, clinician
    b"\x29\x02IB|sBI\n"  # LIB_COMMIT, clinician
    b"\x2a\x00BB|sBsIIIIIIIIIBHHB\n"  # LIB_GET
    b"\x30\x00I|IIIIBsI\n"  # EVENT
    b"\x10\x02I|III\n"  # SET_RATE, clinician
    b"\x11\x02|II\n"  # STOP, clinician
    b"\x14\x02|\n"  # SERVICE, clinician
    b"\x60\x00II|II\n"  # SIM_ADVANCE
    b"\x62\x00BII|BII\n"  # SIM_FAULT
    b"\x63\x00BB|BBIII\n"  # SIM_FAULTS
    b"\x61\x00|IIIIIIIIHIBI\n"  # SIM_STATE
    b"\x18\x01|\n"  # TONE_TEST, patient: the reply goes out first, then the low, medium and high tones
    b"\x7f\x00|Bsss\n"  # ERROR
)


def _record(msg_type):
    """Where msg_type's record starts in MESSAGES (at its type byte), or -1."""
    p = 0
    n = len(MESSAGES)
    while p < n:
        if MESSAGES[p] == msg_type:
            return p
        p = MESSAGES.find(b"\n", p + 2) + 1  # past the type byte, which may be a "\n" (AUTH_END)
    return -1


def span(msg_type, reply):
    """The request's or the reply's fields of msg_type in MESSAGES, as start << 16 | end."""
    p = _record(msg_type)
    if p < 0:
        raise KeyError(msg_type)
    bar = MESSAGES.find(b"|", p + 2)
    if reply:
        return (bar + 1) << 16 | MESSAGES.find(b"\n", bar)
    return (p + 2) << 16 | bar


def role_needed(msg_type):
    """The role (auth.ROLE_*) a command needs; ROLE_NONE (0) for one it does not know."""
    p = _record(msg_type)
    return MESSAGES[p + 1] if p >= 0 else 0


def is_message(msg_type):
    """True if msg_type is a message of the protocol (a command, ERROR or TELEMETRY_DATA)."""
    return _record(msg_type) >= 0
