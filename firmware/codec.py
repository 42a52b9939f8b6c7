# The wire codec: the one definition of the link protocol, used unchanged by
# the firmware (MicroPython) and by the host tool (CPython), so the two sides
# cannot drift apart. docs/protocol.md describes every message.
#
# A frame, before encoding:
#
#   offset  size  field
#   0       1     protocol version (PROTOCOL_VERSION)
#   1       1     message type (a command, command | REPLY, ERROR or TELEMETRY_DATA)
#   2       1     flags: FLAG_MAC if the frame carries a session MAC
#   3       4     sequence number, u32 little-endian; a reply echoes its request's
#   7       1     payload length L, 0..MAX_PAYLOAD
#   8       L     payload: the message's fields, in the order of its record in MESSAGES
#   8+L     M     with FLAG_MAC: the first M = MAC_BYTES (16) bytes of
#                 HMAC-SHA256(session key, bytes 0..8+L-1) (auth.py); else M = 0
#   8+L+M   4     CRC-32 (IEEE, as zlib.crc32) of bytes 0..8+L+M-1, little-endian
#
# On the wire each frame is COBS-encoded and ends with one 0x00 byte, so a
# receiver finds the next frame after any garbage and never waits on a length
# that was corrupted. Field types: B u8, H u16, I u32, s a string of at most
# MAX_STRING UTF-8 bytes after a u8 length, y raw bytes (at most MAX_STRING)
# after a u8 length.
#
# The CRC finds line noise; the MAC, which only a holder of the session key
# can make, finds forgery. Inside a session the sequence number must rise
# with every frame, which refuses a replayed one.
#
# The link path may allocate (it is not the dosing hot path), but every buffer
# has a fixed bound: a frame longer than MAX_ENCODED is discarded unread.
#
# Numbers only: the names of commands, errors, modes, alarms, events, ... are
# the host's (host/pumpctl/words.py), as bytes here would be heap on the pump.
# A pump text names a code by a token, "{a7}" for alarm 7, which the host
# renders (words.render).

import binascii

from firmware import auth, const

# Re-exported for the host: steps travel as (hi, lo) words of STEP_RADIX and
# pump time as (mday, us) with US_PER_MDAY microseconds to a milliday.
from firmware.scheduler import STEP_RADIX as STEP_RADIX
from firmware.scheduler import US_PER_MDAY as US_PER_MDAY

# 6 since a library travels as numbers (LIB_DRUG), 7 since a rate does (SET_RATE). Never 4:
# every frame carries this byte, and 0x04 (Ctrl-D) soft-resets a board at its REPL when pumpctl
# probes it for the pump before flashing (the unix port's REPL exits).
PROTOCOL_VERSION = const(8)
MAX_PAYLOAD = const(240)
MAX_STRING = const(100)
_HEADER = const(8)
_CRC = const(4)
MAC_BYTES = auth.MAC_BYTES  # 16
FLAG_MAC = const(0x01)
MAX_FRAME = const(268)  # _HEADER + MAX_PAYLOAD + MAC_BYTES + _CRC
MAX_ENCODED = const(270)  # COBS adds one byte per 254, plus one
MAX_SEQ = const(0xFFFFFFFF)

# Message types. A reply to command C has type C | REPLY.
HELLO = const(0x01)  # who are you: versions, board, device id, step volume
STATUS = const(0x02)  # pump time, program, steps delivered
THERAPY = const(0x03)  # the therapy in force: boluses, reservoir, guard, alarm
AUTH_BEGIN = const(0x08)  # start a session for a role: the pump answers a fresh nonce
AUTH_PROVE = const(0x09)  # answer the nonce with a proof of the role's key (auth.py)
AUTH_END = const(0x0A)  # end the session (authenticated)
KEY_CHANGE = const(0x0B)  # replace the clinician or patient key (masked; auth.wrap_pad)
SET_RATE = const(0x10)  # program a continuous rate (no drug in the pump), with its unit
STOP = const(0x11)  # stopped mode: no delivery; cancels any bolus
CLOCK_SET = const(0x12)  # set the device clock (local wall time)
ACK_ALARM = const(0x13)  # acknowledge one latched alarm, or all of them
SERVICE = const(0x14)  # a stopped pump leaves its program for the board's REPL (to be flashed)
SILENCE = const(0x15)  # silence the alarm tones for at most 2 min (the alarms stay latched)
CALIBRATE = const(0x16)  # a stopped pump computes a new volume per step from the staged weighings (pumpctl calibrate)
CAL_WEIGHING = const(0x17)  # stage one weighing for CALIBRATE: the pump's step counts at tare and weighing, the mass
STAGE_LINE = const(0x20)  # add one line to the staged program (index 0 starts afresh)
STAGE = const(0x21)  # check the staged lines as a program; nothing changes yet
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
ERR_TOO_LONG = const(2)  # frame longer than MAX_ENCODED bytes
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
ROLE_PATIENT = auth.ROLE_PATIENT
ROLE_CLINICIAN = auth.ROLE_CLINICIAN

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


def library_hash(drugs):
    """The content hash of a library: CRC-32 over each drug, in order, as its name's UTF-8
    bytes after a u8 length, then its LIBRARY_LIMITS numbers as u32 little-endian (the
    version is not in it). drugs: (name, numbers) pairs, numbers as LIB_DRUG carries them."""
    crc = 0
    raw = bytearray(4 * LIBRARY_LIMITS)  # one for all the drugs
    for name, numbers in drugs:
        b = name.encode()
        crc = binascii.crc32(bytes((len(b),)), crc)
        crc = binascii.crc32(b, crc)
        for i in range(LIBRARY_LIMITS):
            v = numbers[i]
            for k in range(4):
                raw[4 * i + k] = (v >> (8 * k)) & 0xFF
        crc = binascii.crc32(raw, crc)
    return crc & 0xFFFFFFFF


# CALIBRATE's confirm: store unless the change needs confirming; store, confirming a change
# the pump has shown for these same weighings; or only compute and show (store nothing).
CAL_STORE = const(0)
CAL_CONFIRM = const(1)
CAL_CHECK = const(2)
# CALIBRATE's density_ug_per_ml: bench water, 0 to 45 degC (0.9902..0.99997 g/mL).
CAL_MIN_DENSITY_UG_PER_ML = const(990_000)
CAL_MAX_DENSITY_UG_PER_ML = const(1_000_000)


# REVIEW: which program.
REVIEW_RUNNING = const(0)
REVIEW_STAGED = const(1)
REVIEW_LAST = const(2)  # the last program that dosed, kept since a stop replaced it (resume)
NO_TIME = const(0xFFFFFFFF)  # a u32 time field with no value (unknown, never)
NO_PERMILLE = const(0xFFFF)  # a battery_permille with no reading


# Fields of each message, all in one bytes constant (one object on the pump, which a
# board with ROMFS keeps in flash, where a tuple per field was heap): one record per
# message: its type byte, the role it needs (a byte, auth.ROLE_*), its request's
# fields, "|", its reply's fields, and "\n".
# A field is "name:kind" (kind: B, H, I, s or y as above), fields are parted by one space.
# Units are in the names: numbers travel, in the pump's units (nL/day, ng, us...); pumpctl reads
# what a person typed ("0.5 mL/day") and the pump checks every number it is sent against its
# ranges and limits. Only a program's lines travel as text (STAGE_LINE). STATUS and TELEMETRY_DATA
# begin alike: what the pump is doing now (time, mode, rate, steps delivered).
# request_fields() and reply_fields() give the host [(name, kind), ...].
MESSAGES = (
    b"\x01\x00"  # HELLO
    b"|protocol:B firmware:s board:s platform:s"
    b" device_id:s"  # empty until the pump is provisioned with keys
    b" step_volume_pl:I min_rate_nl_per_day:I max_rate_nl_per_day:I"
    b"\n"
    b"\x02\x00"  # STATUS
    b"|time_mday:I time_us:I mode:B rate_nl_per_day:I steps_hi:I steps_lo:I step_volume_pl:I"
    b"\n"
    b"\x03\x00"  # THERAPY
    b"|mode:B basal_nl_per_day:I rate_nl_per_day:I bolus_kind:B bolus_rate_nl_per_day:I"
    b" bolus_left_s:I bridge:B reservoir_nl:I empty_in_s:I day_nl:I hour_nl:I refused_steps:I"
    b" alarm:B"  # the latched alarm of highest priority (the latest of those), 0 if none
    b" clock_s:I program_crc:I library:s"
    b" alarms:I"  # every latched alarm, bit 1 << code
    b" sounding:B"  # the priority the tones sound at now, 0 if none or silenced
    b" silenced_s:I"  # seconds of silence left, 0 if not silenced
    b" hold:B"  # delivery held by a motor fault (stall, occlusion, step not confirmed) until it clears
    b" sensor_nl:I"  # the reservoir sensor's last reading, NO_TIME if none
    b" low_in_s:I"  # pump time until the low-reservoir volume at the running program, NO_TIME if unknown
    b" low_nl:I"  # the low-reservoir volume
    b" empty_nl:I"  # the empty volume: delivery stops there
    b" battery_permille:H"  # state of charge, 0xFFFF if unknown
    b" battery_days:I"  # remaining battery life estimated from the drain so far, NO_TIME if unknown
    b" library_hash:I"  # content hash of the library in force (library_hash)
    b" bolus_nl:I"  # the running or waiting bolus, prime or bridge: its volume (0 without one)
    b" bolus_left_nl:I"  # and what of it is still to go
    b"\n"
    b"\x08\x00"  # AUTH_BEGIN
    b"role:B"
    b"|pump_nonce:y"
    b"\n"
    b"\x09\x00"  # AUTH_PROVE
    b"role:B"
    b" pump_nonce:y"  # the challenge answered, as AUTH_BEGIN gave it
    b" host_nonce:y proof:y"
    b"|pump_proof:y timeout_s:I"
    b"\n"
    b"\x0a\x01"  # AUTH_END, patient
    b"|"
    b"\n"
    b"\x0b\x02"  # KEY_CHANGE, clinician
    b"role:B masked_key:y"
    b"|role:B"
    b"\n"
    b"\x31\x00"  # TELEMETRY
    b"interval_ms:I"
    b"|interval_ms:I"
    b"\n"
    b"\x70\x00"  # TELEMETRY_DATA
    b"|time_mday:I time_us:I mode:B rate_nl_per_day:I steps_hi:I steps_lo:I"
    b" reservoir_nl:I"  # NO_TIME if unknown
    b" day_nl:I hour_nl:I alarm:B session_role:B"
    b" dropped:I"  # samples not sent since the stream began: the link was not ready
    b" alarms:I"  # every latched alarm, bit 1 << code
    b" sensor_nl:I"  # the reservoir sensor's last reading, NO_TIME if none
    b" battery_permille:H"  # 0xFFFF if unknown
    b"\n"
    b"\x12\x02"  # CLOCK_SET, clinician
    b"clock_s:I"
    b"|clock_s:I"
    b"\n"
    b"\x13\x02"  # ACK_ALARM, clinician
    b"alarm:B"  # 0: every one
    b"|acknowledged:B alarms:I"
    b"\n"
    b"\x15\x01"  # SILENCE, patient
    b"|silenced_s:I"
    b"\n"
    b"\x17\x02"  # CAL_WEIGHING, clinician
    b"index:B"  # 0 starts afresh, then 1, 2, ... in order
    b" from_steps_hi:I"  # the pump's delivered-step count when the vessel was tared
    b" from_steps_lo:I"
    b" to_steps_hi:I"  # and when it was weighed (the pump stopped)
    b" to_steps_lo:I"
    b" mass_ug:I"  # what the vessel gained, micrograms
    b"|weighings:B steps:I"
    b"\n"
    b"\x16\x02"  # CALIBRATE, clinician
    b"weighings:B density_ug_per_ml:I"
    b" confirm:B"  # CAL_STORE, CAL_CONFIRM, CAL_CHECK
    b"|"
    b"step_volume_pl:I"  # the mean of the weighings' volumes per step, as the pump computed it
    b" previous_pl:I"  # the one in force before
    b" spread_ppm:I"  # (largest - smallest) / mean
    b" change_ppm:I"  # |new - previous| / previous
    b" stored:B"
    b"\n"
    b"\x32\x00"  # ALARMS
    b"index:B"
    b"|"
    b"count:B"  # alarms latched; code is 0 when index >= count
    b" code:B priority:B"
    b" state:B"  # ALARM_STATE_* bits
    b" raised_mday:I raised_us:I text:s"
    b"\n"
    b"\x20\x02"  # STAGE_LINE, clinician
    b"index:B line:s"
    b"|lines:B"
    b"\n"
    b"\x21\x02"  # STAGE, clinician
    b"|rows:B warnings:B program_crc:I expires_in_s:I"
    b"\n"
    b"\x22\x00"  # REVIEW
    b"which:B index:B"
    b"|rows:B line:s detail:s"
    b"\n"
    b"\x23\x02"  # COMMIT, clinician
    b"program_crc:I confirm_soft:B"
    b"|program_crc:I effective_mday:I effective_us:I"
    b"\n"
    b"\x24\x02"  # DISCARD, clinician
    b"|"
    b"\n"
    b"\x25\x01"  # PATIENT_BOLUS, patient
    b"|volume_nl:I duration_s:I"
    b"\n"
    b"\x28\x02"  # LIB_DRUG, clinician
    b"drug:B name:s max_concentration_ng_per_ml:I daily_soft_ng_per_day:I daily_hard_ng_per_day:I"
    b" rate_soft_ng_per_day:I rate_hard_ng_per_day:I bolus_soft_ng:I bolus_hard_ng:I patient_dose_hard_ng:I"
    b" patient_lockout_s:I patient_max_per_day:B"
    b"|drugs:B"
    b"\n"
    b"\x2b\x02"  # LIB_STAGE, clinician
    b"version:s drugs:B"
    b"|library_hash:I drugs:B changed:H raised:B expires_in_s:I"
    b"\n"
    b"\x29\x02"  # LIB_COMMIT, clinician
    b"library_hash:I confirm_raise:B"
    b"|version:s drugs:B library_hash:I"
    b"\n"
    b"\x2a\x00"  # LIB_GET
    b"drug:B which:B"
    b"|version:s drugs:B name:s max_concentration_ng_per_ml:I daily_soft_ng_per_day:I daily_hard_ng_per_day:I"
    b" rate_soft_ng_per_day:I rate_hard_ng_per_day:I bolus_soft_ng:I bolus_hard_ng:I patient_dose_hard_ng:I"
    b" patient_lockout_s:I patient_max_per_day:B"
    b" changed:H raised:H in_use:B"
    b"\n"
    b"\x30\x00"  # EVENT
    b"index:I"
    b"|count:I index:I time_mday:I time_us:I code:B text:s"
    b" clock_s:I"  # the device clock when it was logged (local s since 1970, modulo 2**32), NO_TIME if not set
    b"\n"
    b"\x10\x02"  # SET_RATE, clinician
    b"rate_nl_per_day:I"
    b"|rate_nl_per_day:I effective_mday:I effective_us:I"
    b"\n"
    b"\x11\x02"  # STOP, clinician
    b"|effective_mday:I effective_us:I"
    b"\n"
    b"\x14\x02"  # SERVICE, clinician
    b"|"
    b"\n"
    b"\x60\x00"  # SIM_ADVANCE
    b"seconds:I microseconds:I"
    b"|target_mday:I target_us:I"
    b"\n"
    b"\x62\x00"  # SIM_FAULT
    b"kind:B"
    b" at_s:I"  # pump time since boot (past: now)
    b" value:I"
    b"|kind:B at_mday:I at_us:I"
    b"\n"
    b"\x63\x00"  # SIM_FAULTS
    b"index:B"  # 0 = the soonest
    b" cancel:B"  # 1: drop it (the reply says which was dropped)
    b"|pending:B"  # faults still to come (before a cancel); kind is NO_FAULT when index >= pending
    b" kind:B value:I at_mday:I at_us:I"
    b"\n"
    b"\x61\x00"  # SIM_STATE
    b"|"
    b"motor_steps_hi:I"  # issued and not dropped: finished or in motion
    b" motor_steps_lo:I"
    b" motor_in_motion:I"  # of those, not finished yet
    b" motor_dropped:I"  # dropped by halts before they finished
    b" motor_halts:I true_step_volume_pl:I speed:I"
    b" true_reservoir_nl:I"  # what the reservoir really holds
    b" battery_permille:H"  # the cell's true charge
    b" buzzer_plays:I"  # alarm patterns sounded since boot
    b" buzzer_priority:B"  # priority of the last one
    b" watchdog_feeds:I"
    b"\n"
    b"\x7f\x00"  # ERROR
    b"|code:B field:s message:s"
    b" more:s"  # the message's next 100 bytes, if it is longer: a reason of up to 200 bytes is never cut
    b"\n"
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


class FrameError(Exception):
    """A frame or payload the codec refuses; `code` is an ERR_* value."""

    def __init__(self, code, message, seq=0):
        super().__init__(message)
        self.code = code
        self.message = message
        self.seq = seq


# -- fields ------------------------------------------------------------------
# A list of fields is walked where it lies: in MESSAGES for the pump (no object per
# field); the host makes such a spec from its [(name, kind), ...] (host/pumpctl/schema.py).

_B = const(0x42)  # b"B"
_H = const(0x48)  # b"H"
_I = const(0x49)  # b"I"
_S = const(0x73)  # b"s"
_Y = const(0x79)  # b"y"


def _size(kind):
    """Bytes of an integer kind."""
    if kind == _B:
        return 1
    if kind == _H:
        return 2
    if kind == _I:
        return 4
    raise ValueError("no field kind %d" % kind)


def encode_reply(msg_type, values):
    """Pack the values of msg_type's reply (or of ERROR, TELEMETRY_DATA) into a payload."""
    at = span(msg_type, True)
    return encode_spec(MESSAGES, at >> 16, at & 0xFFFF, values)


def decode_request(msg_type, payload):
    """Unpack the payload of a msg_type request into a list of values; FrameError if it does not fit."""
    at = span(msg_type, False)
    return decode_spec(MESSAGES, at >> 16, at & 0xFFFF, payload)


def encode_spec(spec, i, end, values):
    """Pack values by the fields in spec[i:end]."""
    out = bytearray()
    k = 0
    while i < end:
        colon = spec.find(b":", i)
        kind = spec[colon + 1]
        v = values[k]
        if kind == _S or kind == _Y:
            raw = v.encode() if kind == _S else bytes(v)
            if len(raw) > MAX_STRING:
                raise FrameError(ERR_MALFORMED, spec[i:colon].decode() + " is longer than %d bytes" % MAX_STRING)
            out.append(len(raw))
            out.extend(raw)
        else:
            size = _size(kind)
            if not 0 <= v < 1 << (8 * size):
                raise FrameError(ERR_MALFORMED, "%s=%d does not fit %c" % (spec[i:colon].decode(), v, kind))
            for _ in range(size):
                out.append(v & 0xFF)
                v >>= 8
        k += 1
        i = colon + 3  # past the kind and the space
    if len(out) > MAX_PAYLOAD:
        raise FrameError(ERR_MALFORMED, "payload longer than %d bytes" % MAX_PAYLOAD)
    return bytes(out)


def decode_spec(spec, i, end, payload):
    """Unpack a payload by the fields in spec[i:end]."""
    values = []
    pos = 0
    n_payload = len(payload)
    while i < end:
        colon = spec.find(b":", i)
        kind = spec[colon + 1]
        if kind == _S or kind == _Y:
            if pos >= n_payload:
                raise FrameError(ERR_MALFORMED, "missing field " + spec[i:colon].decode())
            n = payload[pos]
            pos += 1
            if n > MAX_STRING:
                raise FrameError(
                    ERR_MALFORMED, "field %s is longer than %d bytes" % (spec[i:colon].decode(), MAX_STRING)
                )
            if pos + n > n_payload:
                raise FrameError(ERR_MALFORMED, "field %s is cut short" % spec[i:colon].decode())
            raw = bytes(payload[pos : pos + n])
            if kind == _Y:
                values.append(raw)
            else:
                if not _is_utf8(raw):
                    raise FrameError(ERR_MALFORMED, "field %s is not UTF-8 text" % spec[i:colon].decode())
                values.append(raw.decode())
            pos += n
        else:
            size = _size(kind)
            if pos + size > n_payload:
                raise FrameError(ERR_MALFORMED, "missing field " + spec[i:colon].decode())
            v = 0
            for k in range(size - 1, -1, -1):
                v = (v << 8) | payload[pos + k]
            values.append(v)
            pos += size
        i = colon + 3
    if pos != n_payload:
        raise FrameError(ERR_MALFORMED, "%d unexpected bytes after the fields" % (n_payload - pos))
    return values


def _is_utf8(raw):
    """True if raw is well-formed UTF-8 (RFC 3629), as CPython decodes it.

    MicroPython's decode() also takes overlong forms ("\\xc0\\xae" for "."),
    surrogates and code points past U+10FFFF: text the host refuses, which
    parts of the firmware would read as other characters, and which the pump
    would echo in refusals the host cannot read."""
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        if b < 0x80:
            i += 1
            continue
        lo = 0x80
        hi = 0xBF
        if 0xC2 <= b <= 0xDF:
            k = 1
        elif 0xE0 <= b <= 0xEF:
            k = 2
            if b == 0xE0:
                lo = 0xA0  # shorter forms are overlong
            elif b == 0xED:
                hi = 0x9F  # beyond: the surrogates U+D800..U+DFFF
        elif 0xF0 <= b <= 0xF4:
            k = 3
            if b == 0xF0:
                lo = 0x90
            elif b == 0xF4:
                hi = 0x8F  # beyond: past U+10FFFF
        else:
            return False  # a continuation byte, an overlong lead (C0, C1) or F5..FF
        if i + k >= n or not lo <= raw[i + 1] <= hi:
            return False
        for j in range(i + 2, i + k + 1):
            if not 0x80 <= raw[j] <= 0xBF:
                return False
        i += k + 1
    return True


def u32(value):
    """A u32 time or volume field: NO_TIME for None (unknown, never), and never more than it."""
    return NO_TIME if value is None or value >= NO_TIME else max(value, 0)


def clip(text, max_bytes=MAX_STRING):
    """Shorten text to at most max_bytes of UTF-8, never splitting a character."""
    while len(text.encode()) > max_bytes:
        text = text[:-1]
    return text


# ERROR's field name is short (a request field, a program line's keyword): at most this many bytes, so
# that the code, it and the two parts of the message fit a frame's payload.
_ERROR_FIELD = const(32)


def error_values(code, field, message):
    """ERROR's values for a refusal: the message in its two parts, 100 bytes each (message, more)."""
    first = clip(message)
    return (code, clip(field, _ERROR_FIELD), first, clip(message[len(first) :]))


# -- frames --------------------------------------------------------------------


def _crc32(data):
    return binascii.crc32(data) & 0xFFFFFFFF


def program_crc(lines, version):
    """The CRC-32 that names a program (STAGE, COMMIT, THERAPY): its canonical lines, each followed
    by a newline, then the version of the library it was checked with. The host computes it too, from
    the lines it reviewed (a program staged by another session)."""
    return _crc32(("\n".join(lines) + "\n" + version).encode())


def encode_frame(msg_type, seq, payload=b"", session_mac=None):
    """Build one wire frame: COBS(header + payload [+ MAC] + CRC) + 0x00.

    session_mac: an auth.Hmac holding the session key, to authenticate the
    frame (FLAG_MAC), or None for a frame without a MAC."""
    n_payload = len(payload)
    if n_payload > MAX_PAYLOAD:
        raise FrameError(ERR_MALFORMED, "payload longer than %d bytes" % MAX_PAYLOAD)
    if not 0 <= seq <= MAX_SEQ:
        raise FrameError(ERR_MALFORMED, "sequence number %d does not fit 32 bits" % seq)
    body = _HEADER + n_payload
    mac_len = 0 if session_mac is None else MAC_BYTES
    raw = bytearray(body + mac_len + _CRC)
    raw[0] = PROTOCOL_VERSION
    raw[1] = msg_type
    raw[2] = 0 if session_mac is None else FLAG_MAC
    for k in range(4):
        raw[3 + k] = (seq >> (8 * k)) & 0xFF
    raw[7] = n_payload
    raw[_HEADER:body] = payload
    if session_mac is not None:
        raw[body : body + MAC_BYTES] = session_mac.digest(memoryview(raw)[:body])[:MAC_BYTES]
    n = body + mac_len
    crc = _crc32(memoryview(raw)[:n])
    for k in range(_CRC):
        raw[n + k] = (crc >> (8 * k)) & 0xFF
    return cobs_encode(raw) + b"\x00"


def decode_frame(raw):
    """Check a COBS-decoded frame; return (msg_type, seq, payload, mac, signed).

    mac is the frame's MAC (bytes) and signed the bytes it covers, or both
    None for a frame without one: checking a MAC is the receiver's part
    (auth.py), as only it knows the session key.

    Raises FrameError: ERR_BAD_FRAME for a wrong length or checksum (nothing
    in it can be trusted, so seq is 0), ERR_BAD_VERSION for a protocol this
    pump does not speak, ERR_MALFORMED for unknown flags (seq is kept for
    both so the sender can match the refusal).
    """
    n = len(raw)
    if n < _HEADER + _CRC:
        raise FrameError(ERR_BAD_FRAME, "frame of %d bytes is shorter than a header" % n)
    length = raw[7]
    flags = raw[2]
    mac_len = MAC_BYTES if flags & FLAG_MAC else 0
    if length > MAX_PAYLOAD or n != _HEADER + length + mac_len + _CRC:
        raise FrameError(ERR_BAD_FRAME, "frame length %d does not match its header" % n)
    body = _HEADER + length
    end = body + mac_len
    crc = raw[end] | raw[end + 1] << 8 | raw[end + 2] << 16 | raw[end + 3] << 24
    if crc != _crc32(memoryview(raw)[:end]):
        raise FrameError(ERR_BAD_FRAME, "checksum mismatch")
    seq = raw[3] | raw[4] << 8 | raw[5] << 16 | raw[6] << 24
    if raw[0] != PROTOCOL_VERSION:
        raise FrameError(
            ERR_BAD_VERSION,
            "protocol version %d is not supported; this side speaks %d" % (raw[0], PROTOCOL_VERSION),
            seq,
        )
    if flags & ~FLAG_MAC:
        raise FrameError(ERR_MALFORMED, "unknown flags 0x%02x" % flags, seq)
    if not mac_len:
        return raw[1], seq, bytes(raw[_HEADER:body]), None, None
    return raw[1], seq, bytes(raw[_HEADER:body]), bytes(raw[body:end]), bytes(raw[:body])


def cobs_encode(data):
    """Consistent Overhead Byte Stuffing: the result holds no 0x00 byte."""
    out = bytearray(len(data) + len(data) // 254 + 1)
    code_pos = 0
    code = 1
    o = 1
    for b in data:
        if b:
            out[o] = b
            o += 1
            code += 1
        if not b or code == 0xFF:
            out[code_pos] = code
            code_pos = o
            o += 1
            code = 1
    out[code_pos] = code
    return bytes(out[:o])


def cobs_decode(data, n):
    """Decode the first n bytes of data; return a bytearray, or None if invalid."""
    out = bytearray(n)
    i = 0
    o = 0
    while i < n:
        code = data[i]  # 1 + the number of data bytes before the next zero
        if code == 0:
            return None
        i += 1
        end = i + code - 1
        if end > n:
            return None
        while i < end:
            b = data[i]
            if b == 0:
                return None
            out[o] = b
            o += 1
            i += 1
        if code < 0xFF and i < n:
            out[o] = 0
            o += 1
    return out[:o]


class FrameDecoder:
    """Collects bytes into frames, with a fixed buffer; shared by both sides.

    feed(byte) returns True when a delimiter ends a frame; then frame()
    returns (msg_type, seq, payload, mac, signed) as decode_frame does, or
    raises FrameError. Runs of
    delimiters are ignored, so a sender may start with 0x00 to flush
    whatever garbage the receiver holds.
    """

    def __init__(self):
        self._buf = bytearray(MAX_ENCODED)
        self._n = 0
        self._overflow = False
        self._ready = 0  # length of the completed frame, or -1 if too long

    def feed(self, byte):
        if byte:
            if self._n < MAX_ENCODED:
                self._buf[self._n] = byte
                self._n += 1
            else:
                self._overflow = True
            return False
        if self._overflow:
            self._ready = -1
        elif self._n:
            self._ready = self._n
        else:
            return False  # an empty frame: just a delimiter
        self._n = 0
        self._overflow = False
        return True

    def frame(self):
        n = self._ready
        self._ready = 0
        if n < 0:
            raise FrameError(ERR_TOO_LONG, "frame longer than %d bytes was discarded" % MAX_ENCODED)
        raw = cobs_decode(self._buf, n)
        if raw is None:
            raise FrameError(ERR_BAD_FRAME, "invalid COBS encoding")
        return decode_frame(raw)
