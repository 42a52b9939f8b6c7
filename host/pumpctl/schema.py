"""The host's view of the wire's messages. firmware/codec.py keeps every message's fields as one
bytes table (codec.MESSAGES: their kinds, a byte each) that the pump walks where it lies; their names
are words, the host's: FIELD_NAMES below, in the same order. The lists and dicts here are built from
the two for the host, so none of them is on the pump's heap:

    request_fields(t), reply_fields(t)  a message's fields as ((name, kind), ...)
    FIELDS        {type: (request fields, reply fields)} of every message
    ROLE_NEEDED   {command: the role it needs} of each command that needs one
    ALARM_PRIORITY {alarm: its priority}
    SIZES         {kind: bytes} of the integer field kinds
    encode_fields, decode_fields  a payload packed or unpacked by such a list
    field_name(n) the name of the field a pump text's token "{fN}" means (framing.py)

Written for MicroPython too (no f-strings, no typing): the tests that run on the MicroPython VMs
import it beside the firmware (tests/vms.py)."""

from firmware import codec, framing

SIZES = {"B": 1, "H": 2, "I": 4}

# Each message's field names, (request, reply), in the order of its kinds in codec.MESSAGES; units
# are in the names, and what a field means is said beside it or in its handler's comment
# (firmware/commands/, docs/protocol.md).
FIELD_NAMES = {
    codec.HELLO: (
        "",
        "protocol firmware board platform"
        " device_id"  # empty until the pump is provisioned with keys
        " step_volume_pl min_rate_nl_per_day max_rate_nl_per_day",
    ),
    codec.STATUS: (
        "",
        "time_mday time_us mode rate_nl_per_day steps_hi steps_lo step_volume_pl",
    ),
    codec.THERAPY: (
        "",
        "mode basal_nl_per_day rate_nl_per_day bolus_kind bolus_rate_nl_per_day"
        " bolus_left_s bridge reservoir_nl empty_in_s day_nl hour_nl refused_steps"
        " alarm"  # the latched alarm of highest priority (the latest of those), 0 if none
        " clock_s program_crc library"
        " alarms"  # every latched alarm, bit 1 << code
        " sounding"  # the priority the tones sound at now, 0 if none or silenced
        " silenced_s"  # seconds of silence left, 0 if not silenced
        " hold"  # delivery held by a motor fault (stall, occlusion, step not confirmed) until it clears
        " sensor_nl"  # the reservoir sensor's last reading, NO_TIME if none
        " low_in_s"  # pump time until the low-reservoir volume at the running program, NO_TIME if unknown
        " low_nl"  # the low-reservoir volume
        " empty_nl"  # the empty volume: delivery stops there
        " battery_permille"  # state of charge, 0xFFFF if unknown
        " battery_days"  # remaining battery life estimated from the drain so far, NO_TIME if unknown
        " library_hash"  # content hash of the library in force (library_hash)
        " bolus_nl"  # the running or waiting bolus, prime or bridge: its volume (0 without one)
        " bolus_left_nl",  # and what of it is still to go
    ),
    codec.AUTH_BEGIN: (
        "role",
        "pump_nonce",
    ),
    codec.AUTH_PROVE: (
        "role"
        " pump_nonce"  # the challenge answered, as AUTH_BEGIN gave it
        " host_nonce proof",
        "pump_proof timeout_s",
    ),
    codec.AUTH_END: (
        "",
        "",
    ),
    codec.KEY_CHANGE: (
        "role masked_key",
        "role",
    ),
    codec.TELEMETRY: (
        "interval_ms",
        "interval_ms",
    ),
    codec.TELEMETRY_DATA: (
        "",
        "time_mday time_us mode rate_nl_per_day steps_hi steps_lo"
        " reservoir_nl"  # NO_TIME if unknown
        " day_nl hour_nl alarm session_role"
        " dropped"  # samples not sent since the stream began: the link was not ready
        " alarms"  # every latched alarm, bit 1 << code
        " sensor_nl"  # the reservoir sensor's last reading, NO_TIME if none
        " battery_permille",  # 0xFFFF if unknown
    ),
    codec.CLOCK_SET: (
        "clock_s",
        "clock_s",
    ),
    codec.ACK_ALARM: (
        "alarm",  # 0: every one
        "acknowledged alarms",
    ),
    codec.SILENCE: (
        "",
        "silenced_s",
    ),
    codec.CAL_WEIGHING: (
        "index"  # 0 starts afresh, then 1, 2, ... in order
        " from_steps_hi"  # the pump's delivered-step count when the vessel was tared
        " from_steps_lo"
        " to_steps_hi"  # and when it was weighed (the pump stopped)
        " to_steps_lo"
        " mass_ug",  # what the vessel gained, micrograms
        "weighings steps",
    ),
    codec.CALIBRATE: (
        "weighings density_ug_per_ml confirm",  # CAL_STORE, CAL_CONFIRM, CAL_CHECK
        "step_volume_pl"  # the mean of the weighings' volumes per step, as the pump computed it
        " previous_pl"  # the one in force before
        " spread_ppm"  # (largest - smallest) / mean
        " change_ppm"  # |new - previous| / previous
        " stored",
    ),
    codec.ALARMS: (
        "index",
        "count"  # alarms latched; code is 0 when index >= count
        " code priority"
        " state"  # ALARM_STATE_* bits
        " raised_mday raised_us text",
    ),
    codec.STAGE_ITEM: (
        "index item drug dose_kind amount start_min duration_s duration_us then_s then_us count",
        "items",
    ),
    codec.STAGE: (
        "",
        "rows warnings program_crc expires_in_s",
    ),
    codec.REVIEW: (
        "which index",
        "rows item drug dose_kind amount start_min duration_s duration_us then_s then_us count"
        " volume_nl"  # the item in the fluid, nL (per day for a rate), as the pump converted it; 0 if it doses nothing
        " note",  # a warning's or a delivery's note: a token pumpctl words
    ),
    codec.COMMIT: (
        "program_crc confirm_soft",
        "program_crc effective_mday effective_us",
    ),
    codec.DISCARD: (
        "",
        "",
    ),
    codec.PATIENT_BOLUS: (
        "",
        "volume_nl duration_s",
    ),
    codec.LIB_DRUG: (
        "drug name max_concentration_ng_per_ml daily_soft_ng_per_day daily_hard_ng_per_day"
        " rate_soft_ng_per_day rate_hard_ng_per_day bolus_soft_ng bolus_hard_ng patient_dose_hard_ng"
        " patient_lockout_s patient_max_per_day",
        "drugs",
    ),
    codec.LIB_STAGE: (
        "version drugs",
        "library_hash drugs changed raised expires_in_s",
    ),
    codec.LIB_COMMIT: (
        "library_hash confirm_raise",
        "version drugs library_hash",
    ),
    codec.LIB_GET: (
        "drug which",
        "version drugs name max_concentration_ng_per_ml daily_soft_ng_per_day daily_hard_ng_per_day"
        " rate_soft_ng_per_day rate_hard_ng_per_day bolus_soft_ng bolus_hard_ng patient_dose_hard_ng"
        " patient_lockout_s patient_max_per_day"
        " changed raised in_use",
    ),
    codec.EVENT: (
        "index",
        "count index time_mday time_us code text"
        " clock_s",  # the device clock when it was logged (local s since 1970, modulo 2**32), NO_TIME if not set
    ),
    codec.SET_RATE: (
        "rate_nl_per_day",
        "rate_nl_per_day effective_mday effective_us",
    ),
    codec.STOP: (
        "",
        "effective_mday effective_us",
    ),
    codec.SERVICE: (
        "",
        "",
    ),
    codec.SIM_ADVANCE: (
        "seconds microseconds",
        "target_mday target_us",
    ),
    codec.SIM_FAULT: (
        "kind"
        " at_s"  # pump time since boot (past: now)
        " value",
        "kind at_mday at_us",
    ),
    codec.SIM_FAULTS: (
        "index"  # 0 = the soonest
        " cancel",  # 1: drop it (the reply says which was dropped)
        "pending"  # faults still to come (before a cancel); kind is NO_FAULT when index >= pending
        " kind value at_mday at_us",
    ),
    codec.SIM_STATE: (
        "",
        "motor_steps_hi"  # issued and not dropped: finished or in motion
        " motor_steps_lo"
        " motor_in_motion"  # of those, not finished yet
        " motor_dropped"  # dropped by halts before they finished
        " motor_halts true_step_volume_pl speed"
        " true_reservoir_nl"  # what the reservoir really holds
        " battery_permille"  # the cell's true charge
        " buzzer_plays"  # alarm patterns sounded since boot
        " buzzer_priority"  # priority of the last one
        " watchdog_feeds",
    ),
    codec.TONE_TEST: (
        "",
        "",
    ),
    codec.ERROR: (
        "",
        "code field message"
        " more",  # the message's next 100 bytes, if it is longer: a reason of up to 200 bytes is never cut
    ),
}


def _fields(msg_type, reply):
    span = codec.span(msg_type, reply)
    kinds = codec.MESSAGES[span >> 16 : span & 0xFFFF].decode()
    names = FIELD_NAMES[msg_type][1 if reply else 0].split()
    if len(names) != len(kinds):
        raise ValueError("message 0x%02x: %d field names for %d fields" % (msg_type, len(names), len(kinds)))
    return tuple((names[i], kinds[i]) for i in range(len(kinds)))


def request_fields(msg_type):
    """Fields of msg_type's request, ((name, kind), ...); KeyError if it is no message."""
    return _fields(msg_type, False)


def reply_fields(msg_type):
    """Fields of the reply to msg_type (or of ERROR, TELEMETRY_DATA themselves)."""
    return _fields(msg_type, True)


def message_types():
    """Every message type, in the order of codec.MESSAGES."""
    out = []
    table = codec.MESSAGES
    p = 0
    while p < len(table):
        out.append(table[p])
        p = table.find(b"\n", p + 2) + 1  # past the type byte, which may be a "\n" (AUTH_END)
    return out


def _spec(fields):
    """[(name, kind), ...] as the fields of a record: their kinds, b"BsI..."."""
    return "".join(kind for _name, kind in fields).encode()


def encode_fields(fields, values):
    """Pack values (in the order of fields, [(name, kind), ...]) into a payload; framing.FrameError
    (naming the field) if one does not fit its field."""
    spec = _spec(fields)
    try:
        return framing.encode_spec(spec, 0, len(spec), values)
    except framing.FrameError as e:
        raise _named(e, fields) from None


def decode_fields(fields, payload):
    """Unpack a payload into a list of values; framing.FrameError (naming the field) if it does not fit."""
    spec = _spec(fields)
    try:
        return framing.decode_spec(spec, 0, len(spec), payload)
    except framing.FrameError as e:
        raise _named(e, fields) from None


# framing's refusals of a frame or a payload, which it writes as sentence tokens ("{t131}": pumpctl.sentences
# has them too). Here, so that schema says a refusal of its own reading in words on a VM as on the host.
FRAME_SENTENCES = {
    120: "{f%s} is longer than %s bytes",
    121: "{f%s}=%s does not fit %s",
    122: "payload longer than %s bytes",
    123: "missing field {f%s}",
    124: "field {f%s} is longer than %s bytes",
    125: "field {f%s} is cut short",
    126: "field {f%s} is not UTF-8 text",
    127: "%s unexpected bytes after the fields",
    128: "sequence number %s does not fit 32 bits",
    129: "frame of %s bytes is shorter than a header",
    130: "frame length %s does not match its header",
    131: "checksum mismatch",
    132: "unknown flags 0x%s",
    133: "frame longer than %s bytes was discarded",
    134: "invalid COBS encoding",
    135: "no field kind %s",
}


def frame_words(message):
    """A framing refusal's token ("{t123|2}", the whole message) as its sentence ("missing field {f2}");
    any other message as it is."""
    if message[:2] == "{t" and message[-1:] == "}":
        parts = message[2:-1].split("|")
        text = FRAME_SENTENCES.get(int(parts[0])) if parts[0].isdigit() else None
        if text is not None and text.count("%s") == len(parts) - 1:
            return text % tuple(parts[1:])
    return message


def _named(error, fields):
    """framing's error in words (frame_words), its field token "{fK}" (K: the field's place, no message
    type) as the field's name."""
    message = frame_words(error.message)
    at = message.find("{f")
    if at >= 0:
        close = message.find("}", at)
        k = int(message[at + 2 : close])
        if k < len(fields):
            message = message[:at] + fields[k][0] + message[close + 1 :]
    return framing.FrameError(error.code, message, error.seq, error.version)


def field_name(n):
    """The name of the field a pump text's token "{fN}" means: field N & 0xFF of message N >> 8's request,
    or of its reply if that has REPLY set (ERROR's and TELEMETRY_DATA's own fields too); None if none."""
    msg_type = n >> 8
    both = FIELDS.get(msg_type & ~codec.REPLY)
    if both is None:
        return None
    fields = both[1 if msg_type & codec.REPLY else 0]
    k = n & 0xFF
    return fields[k][0] if k < len(fields) else None


FIELDS = {t: (request_fields(t), reply_fields(t)) for t in message_types()}
ROLE_NEEDED = {t: codec.role_needed(t) for t in message_types() if codec.role_needed(t)}
ALARM_PRIORITY = {c: codec.alarm_priority(c) for c in range(1, 256) if codec.alarm_priority(c)}
