"""docs/protocol.md stays true to the code.

Every message type and error code of the codec is documented, with its code,
its role and its fields, and the names pumpctl gives the codes (pumpctl.words);
the constants quoted are the code's, and so is the protocol version wherever
the page states it; every hex frame
of the example decodes with the codec to what the page says beside it, its
MACs verify under the example session key, and the handshake values are
recomputed independently (Python's hmac, hashlib and zlib, a COBS encoder of
its own here); and tests/protocol_examples.py regenerates the example exactly.

Each check reads the page's text and returns the problems it finds, so the
last tests can break a copy of the page (a hex digit, a command, an error
code...) and see that the checks notice.
"""

import hashlib
import hmac
import json
import re
import zlib
from pathlib import Path

import protocol_examples
import pytest
from pumpctl import schema, words
from pumpctl.cli import EVENT_NAMES

from firmware import (
    alarms,
    app,
    archive,
    auth,
    battery,
    codec,
    commands,
    eventlog,
    framing,
    keyring,
    library,
    monitors,
    motor_watch,
    program,
    program_items,
    scheduler,
    telemetry,
)
from firmware.commands import service as commands_service
from firmware.commands import status as commands_status

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "protocol.md"
MODULES = {
    "archive": archive,
    "codec": codec,
    "framing": framing,
    "auth": auth,
    "keyring": keyring,
    "app": app,
    "scheduler": scheduler,
    "library": library,
    "program": program,
    "program_items": program_items,
    "eventlog": eventlog,
    "alarms": alarms,
    "monitors": monitors,
    "motor_watch": motor_watch,
    "battery": battery,
    "telemetry": telemetry,
    "commands": commands,
    "commands.status": commands_status,
    "commands.service": commands_service,
}


def doc_text():
    return DOC.read_text(encoding="utf-8")


# -- reading the page -------------------------------------------------------------


def table_rows(lines):
    """Cells of the Markdown table rows among lines (header and rule rows left out)."""
    rows = []
    for line in lines:
        line = line.strip()
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if all(re.fullmatch(r":?-+:?", c) for c in cells):
            rows.pop()  # the header row above the rule
            continue
        rows.append(cells)
    return rows


def unquote(cell):
    return cell.strip().strip("`")


def message_sections(text):
    """{code: (constant, name or None, body)} of the '### 0xNN CONSTANT (name)' sections."""
    out = {}
    heads = list(re.finditer(r"^### 0x([0-9A-Fa-f]{2}) ([A-Z_]+)(?: \(([a-z-]+)\))?[ \t]*$", text, re.M))
    for m in heads:
        end = re.compile(r"^#{2,3} ", re.M).search(text, m.end())
        body = text[m.end() : end.start() if end else len(text)]
        code = int(m.group(1), 16)
        if code in out:
            out[code] = ("duplicate", None, "")
        else:
            out[code] = (m.group(2), m.group(3), body)
    return out


def labelled_table(body, label):
    """Rows (name, type) of the table after '**label:**', [] for '**label:** none.', None if absent."""
    m = re.search(r"^\*\*%s:\*\*(.*)$" % label, body, re.M)
    if m is None:
        return None
    if m.group(1).strip().startswith("none"):
        return []
    lines = body[m.end() :].lstrip("\n").split("\n")
    block = []
    for line in lines:
        if not line.strip().startswith("|"):
            break
        block.append(line)
    return [(unquote(r[0]), r[1]) for r in table_rows(block)]


def section_text(text, heading):
    """The text of the '## heading' section."""
    m = re.search(r"^## %s[ \t]*$" % re.escape(heading), text, re.M)
    assert m, "no section '## %s'" % heading
    end = re.compile(r"^## ", re.M).search(text, m.end())
    return text[m.end() : end.start() if end else len(text)]


def message_constants():
    """{code: constant name} of every message type: pumpctl.words.MESSAGE_NAMES, which it reads from
    the codec's "Message types" block (REPLY, a bit, aside)."""
    return dict(words.MESSAGE_NAMES)


def error_constants():
    return {getattr(codec, n): n for n in dir(codec) if n.startswith("ERR_")}


# -- checks: messages, roles, error codes, constants --------------------------------


def check_messages(text):
    problems = []
    documented = message_sections(text)
    expected = message_constants()
    for code in schema.FIELDS:
        if code not in expected:
            problems.append("0x%02X is a message of the codec with no constant" % code)
    for code, name in sorted(expected.items()):
        if code not in documented:
            problems.append("0x%02X %s has no section" % (code, name))
            continue
        constant, cmd_name, body = documented[code]
        if constant != name:
            problems.append("0x%02X is %s in the codec, %s on the page" % (code, name, constant))
        if cmd_name != words.COMMAND_NAMES.get(code):
            problems.append("0x%02X %s: name (%s) is not %s" % (code, name, cmd_name, words.COMMAND_NAMES.get(code)))
        role = re.search(r"^\*\*Role:\*\* (\w+)", body, re.M)
        want_role = words.ROLE_NAMES[schema.ROLE_NEEDED.get(code, auth.ROLE_NONE)]
        if role is None or role.group(1) != want_role:
            problems.append("%s: role %s, the codec says %s" % (name, role and role.group(1), want_role))
        request, reply = (list(f) for f in schema.FIELDS.get(code, ((), ())))
        if code in (codec.ERROR, codec.TELEMETRY_DATA):
            tables = {"Fields": reply}
            if request:
                problems.append("%s has request fields in the codec" % name)
        else:
            tables = {"Request": request, "Reply": reply}
        for label, want in tables.items():
            got = labelled_table(body, label)
            if got != want:
                problems.append("%s %s fields: page %s, codec %s" % (name, label.lower(), got, want))
    for code, (constant, _n, _b) in documented.items():
        if code not in expected:
            problems.append("0x%02X %s is on the page but not in the codec" % (code, constant))
    return problems


def check_roles_table(text):
    """The clinician and patient rows of the roles table list exactly the commands of that role."""
    problems = []
    rows = {r[0]: r for r in table_rows(section_text(text, "Security").split("\n")) if len(r) == 3}
    for role in (auth.ROLE_PATIENT, auth.ROLE_CLINICIAN):
        row = rows.get(words.ROLE_NAMES[role])
        want = {message_constants()[c] for c, r in schema.ROLE_NEEDED.items() if r == role}
        if row is None or row[1] != str(role):
            problems.append("roles table: no row for %s (%d)" % (words.ROLE_NAMES[role], role))
            continue
        got = set(re.findall(r"\b[A-Z][A-Z_]{2,}\b", row[2]))
        if got != want:
            problems.append("roles table, %s: page %s, codec %s" % (row[0], sorted(got), sorted(want)))
    return problems


def check_errors(text):
    problems = []
    rows = table_rows(section_text(text, "Error codes").split("\n"))
    got = {}
    for r in rows:
        if r[0].isdigit():
            got[int(r[0])] = (unquote(r[1]), r[2])
    want = {code: (name, words.ERROR_NAMES.get(code)) for code, name in error_constants().items()}
    for code in sorted(set(got) | set(want)):
        if got.get(code) != want.get(code):
            problems.append("error %d: page %s, codec %s" % (code, got.get(code), want.get(code)))
    return problems


def check_field_codes(text):
    """The table of mode, bolus kind and alarm codes."""
    problems = []
    rows = table_rows(section_text(text, "Messages").split("### 0x")[0].split("\n"))
    tables = (words.MODE_NAMES, words.BOLUS_KIND_NAMES, words.ALARM_NAMES)
    got = {int(r[0]): r[1:] for r in rows if len(r) == 4 and r[0].isdigit()}
    codes = set().union(*tables)
    if set(got) != codes:
        problems.append("field codes: page has %s, codec %s" % (sorted(got), sorted(codes)))
    for code, cells in got.items():
        for names, cell in zip(tables, cells, strict=True):
            name = names.get(code)
            if (name is None and cell) or (name is not None and not cell.startswith(name)):
                problems.append("field code %d: %r is not %r" % (code, cell, name))
    return problems


def _numbered_rows(section, width):
    """{code: cells} of the table rows of a section text with `width` cells, the first a number."""
    return {int(r[0]): r for r in table_rows(section.split("\n")) if len(r) == width and r[0].isdigit()}


def check_alarms(text):
    """The alarms table: every alarm code with its name and priority, and nothing else."""
    problems = []
    got = _numbered_rows(section_text(text, "Alarms"), 5)
    want = {code: name for code, name in words.ALARM_NAMES.items() if code != codec.ALARM_NONE}
    if set(got) != set(want):
        problems.append("alarms table: page has %s, codec %s" % (sorted(got), sorted(want)))
    for code, row in got.items():
        if code not in want:
            continue
        priority = words.PRIORITY_NAMES[schema.ALARM_PRIORITY[code]]
        if (row[1], row[2]) != (want[code], priority):
            problems.append("alarm %d: page %s, %s; codec %s, %s" % (code, row[1], row[2], want[code], priority))
    return problems


def check_events(text):
    """The event table: every eventlog.EV_* with its code and the name pumpctl shows."""
    problems = []
    got = _numbered_rows(section_text(text, "The event log"), 4)
    want = {getattr(eventlog, n): n for n in dir(eventlog) if n.startswith("EV_")}
    if set(got) != set(want):
        problems.append("event table: page has %s, eventlog %s" % (sorted(got), sorted(want)))
    for code, row in got.items():
        if code not in want:
            continue
        if unquote(row[1]) != want[code] or row[2] != EVENT_NAMES.get(code):
            problems.append(
                "event %d: page %s %s; eventlog %s, pumpctl %s"
                % (code, row[1], row[2], want[code], EVENT_NAMES.get(code))
            )
    return problems


def check_faults(text):
    """The SIM_FAULT table: every codec.FAULT_* with its constant and name."""
    problems = []
    body = message_sections(text).get(codec.SIM_FAULT, (None, None, ""))[2]
    got = _numbered_rows(body, 4)
    want = {getattr(codec, n): n for n in dir(codec) if n.startswith("FAULT_")}
    if set(got) != set(want):
        problems.append("fault table: page has %s, codec %s" % (sorted(got), sorted(want)))
    for code, row in got.items():
        if code not in want:
            continue
        if (unquote(row[1]), row[2]) != (want[code], words.FAULT_NAMES[code]):
            problems.append(
                "fault %d: page %s %s; codec %s %s" % (code, row[1], row[2], want[code], words.FAULT_NAMES[code])
            )
    return problems


def check_constants(text):
    problems = []
    rows = table_rows(section_text(text, "Constants").split("\n"))
    if len(rows) < 20:
        problems.append("the constants table has only %d rows" % len(rows))
    for r in rows:
        module, _dot, name = unquote(r[0]).rpartition(".")
        if module not in MODULES or not hasattr(MODULES[module], name):
            problems.append("constant %s does not exist" % r[0])
            continue
        want = getattr(MODULES[module], name)
        if int(r[1].replace("_", ""), 0) != want:
            problems.append("constant %s.%s: page %s, code %d" % (module, name, r[1], want))
    return problems


# Where the page states the protocol version: (what, pattern with the version as group 1).
VERSION_PLACES = (
    ("the title", r"^# The link protocol \(version (\d+)\)[ \t]*$"),
    ("the paragraph on this version", r"^\*\*Version (\d+)\*\* \(this page\)"),
    ("the frame table", r"^\| 0 \| 1 \| protocol version: (\d+) \(`PROTOCOL_VERSION`\) \|"),
    ("the receiving checks", r"^\| 5 \| version is (\d+) \| 3 ERR_BAD_VERSION \|"),
    ("HELLO's reply", r"^\| `protocol` \| B \| the protocol version the pump speaks: (\d+) \|"),
    ("the error codes", r"^\| 3 \| `ERR_BAD_VERSION` \|[^|]*\| a protocol version other than (\d+) \|"),
)


def check_version(text):
    """Each place that states the protocol version states it once, and it is codec.PROTOCOL_VERSION."""
    problems = []
    for what, pattern in VERSION_PLACES:
        found = [int(v) for v in re.findall(pattern, text, re.M)]
        if found != [codec.PROTOCOL_VERSION]:
            problems.append("protocol version in %s: page %s, codec %d" % (what, found, codec.PROTOCOL_VERSION))
    return problems


# -- checks: the example exchange ------------------------------------------------------


def cobs_encode(data):
    """COBS, written again here from the definition rather than taken from the codec."""
    out = bytearray()
    block = bytearray()
    for b in data:
        if b == 0:
            out += bytes((len(block) + 1,)) + block
            block = bytearray()
            continue
        block.append(b)
        if len(block) == 254:
            out += b"\xff" + block
            block = bytearray()
    out += bytes((len(block) + 1,)) + block
    return bytes(out)


def parse_value(text):
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("hex "):
        return bytes.fromhex(text[4:])
    return int(text)


def labelled_lines(lines):
    """{label: [content lines]} of lines '  label  content' and their '     content' continuations."""
    out = {}
    label = None
    for line in lines:
        if re.match(r"^  \S", line):
            label, _sp, content = line.strip().partition(" ")
            out[label] = [content.strip()]
        elif re.match(r"^   +\S", line) and label is not None:
            out[label].append(line.strip())
        elif line.strip():
            raise ValueError("cannot read line %r" % line)
    return out


def hex_of(lines):
    return bytes.fromhex(" ".join(lines))


TITLE = re.compile(
    r"^#(\d+) (host -> pump|pump -> host): (.+) \(0x([0-9a-f]{2})\), seq (\d+), (MAC|no MAC)(?:, (.*))?$"
)


def example_blocks(text):
    """(frames, values) of the example section: frames as dicts, values as {label: bytes}."""
    section = protocol_examples.doc_section(text)
    assert section is not None, "the page has no example markers"
    frames = []
    values = {}
    for block in re.findall(r"```text\n(.*?)```", section, re.S):
        lines = block.rstrip("\n").split("\n")
        if not lines[0].startswith("#"):
            for label, content in labelled_lines(lines).items():
                values[label] = hex_of(content)
            continue
        starts = [i for i, line in enumerate(lines) if line.startswith("#")] + [len(lines)]
        for a, b in zip(starts, starts[1:], strict=False):
            m = TITLE.match(lines[a])
            assert m, "cannot read the title %r" % lines[a]
            parts = labelled_lines(lines[a + 1 : b])
            fields = [] if parts["fields"] == ["(none)"] else parts["fields"]
            frames.append(
                {
                    "n": int(m.group(1)),
                    "from_host": m.group(2) == "host -> pump",
                    "name": m.group(3),
                    "type": int(m.group(4), 16),
                    "seq": int(m.group(5)),
                    "mac": m.group(6) == "MAC",
                    "note": m.group(7) or "",
                    "fields": [tuple(f.split(" = ", 1)) for f in fields],
                    "parts": {k: hex_of(v) for k, v in parts.items() if k != "fields"},
                }
            )
    return frames, values


def decode_wire(wire):
    """(type, seq, payload, mac, signed) or the FrameError, of wire bytes holding exactly one frame."""
    dec = framing.FrameDecoder()
    ends = [i for i, b in enumerate(wire) if dec.feed(b)]
    if ends != [len(wire) - 1]:
        raise ValueError("the wire bytes do not hold exactly one frame")
    try:
        return dec.frame()
    except framing.FrameError as e:
        return e


def field_values(frame):
    return {name: parse_value(value) for name, value in frame["fields"]}


def check_frame(f, session_key, problems):
    where = "frame #%d" % f["n"]
    parts = f["parts"]
    wire = parts.get("wire", b"")
    got = decode_wire(wire)
    if isinstance(got, framing.FrameError):
        problems.append("%s: the codec refuses its wire bytes: %s" % (where, got.message))
        return
    msg_type, seq, payload, mac, signed = got
    if (msg_type, seq, mac is not None) != (f["type"], f["seq"], f["mac"]):
        problems.append("%s: decodes to type 0x%02x seq %d mac %s" % (where, msg_type, seq, mac is not None))
    if f["from_host"]:
        want_name = protocol_examples.constant_name(msg_type) if msg_type in words.COMMAND_NAMES else None
    elif msg_type & codec.REPLY:
        want_name = "reply to " + protocol_examples.constant_name(msg_type & ~codec.REPLY)
    else:
        want_name = {codec.ERROR: "ERROR", codec.TELEMETRY_DATA: "TELEMETRY_DATA"}.get(msg_type)
    if f["name"] != want_name:
        problems.append("%s: named %s, its type is %s" % (where, f["name"], want_name))
    fields = protocol_examples.fields_of(msg_type, f["from_host"])
    try:
        values = schema.decode_fields(fields, payload)
    except framing.FrameError as e:
        problems.append("%s: payload does not decode: %s" % (where, e.message))
        return
    want = [(name, protocol_examples.format_value(v)) for (name, _k), v in zip(fields, values, strict=True)]
    if f["fields"] != want:
        problems.append("%s: fields on the page %s, decoded %s" % (where, f["fields"], want))
    header, body, mac_part, crc = (parts.get(k, b"") for k in ("header", "payload", "mac", "crc"))
    raw = header + body + mac_part + crc
    if cobs_encode(raw) + b"\x00" != wire:
        problems.append("%s: header, payload, mac and crc are not the wire bytes decoded" % where)
    if crc != zlib.crc32(header + body + mac_part).to_bytes(4, "little"):
        problems.append("%s: the CRC-32 does not check" % where)
    if f["mac"]:
        want_mac = hmac.new(session_key, header + body, hashlib.sha256).digest()[:16]
        if mac_part != want_mac or mac != want_mac:
            problems.append("%s: the MAC does not verify under the example session key" % where)
    if "received" in parts:
        received = parts["received"]
        differ = len(received) == len(wire) and sum(a != b for a, b in zip(received, wire, strict=True)) == 1
        damaged = decode_wire(received)
        if not differ or not isinstance(damaged, framing.FrameError) or damaged.code != codec.ERR_BAD_FRAME:
            problems.append("%s: `received` is not the wire bytes with one byte damaged (a bad frame)" % where)


def hm(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def check_examples(text):
    problems = []
    try:
        frames, values = example_blocks(text)
    except (AssertionError, KeyError, ValueError) as e:
        return ["the example cannot be read: %s" % e]
    need = (
        "provision_file clinician_key patient_key boot_secret pump_nonce_tag_input pump_nonce host_nonce proof_input "
        "proof pump_proof_input "
        "pump_proof session_key_input session_key new_patient_key pad_input pad masked_key"
    ).split()
    missing = [k for k in need if k not in values]
    if missing:
        return ["the example lacks the values %s" % missing]
    session_key = values["session_key"]
    if [f["n"] for f in frames] != list(range(1, len(frames) + 1)):
        problems.append("frames are not numbered 1, 2, 3, ...")
    for f in frames:
        check_frame(f, session_key, problems)
    if problems:
        return problems

    # Each answer follows its request: a reply echoes its request's type and seq, an ERROR its seq
    # (0 for a frame damaged on the way); a replay is byte for byte an earlier frame and is refused.
    last = None
    for f in frames:
        if f["from_host"]:
            last = f
            note = re.fullmatch(r"replay of #(\d+)", f["note"])
            if note:
                earlier = frames[int(note.group(1)) - 1]
                if earlier["parts"]["wire"] != f["parts"]["wire"]:
                    problems.append("frame #%d is not the same bytes as #%s" % (f["n"], note.group(1)))
            elif f["note"]:
                problems.append("frame #%d: unknown note %r" % (f["n"], f["note"]))
            continue
        if f["type"] == codec.TELEMETRY_DATA:
            continue
        damaged = "received" in last["parts"]
        if f["type"] == codec.ERROR:
            if f["seq"] != (0 if damaged else last["seq"]):
                problems.append("frame #%d: the ERROR's seq %d is not the request's" % (f["n"], f["seq"]))
            code = field_values(f)["code"]
            if damaged and code != codec.ERR_BAD_FRAME or last["note"] and code != codec.ERR_AUTH:
                problems.append("frame #%d: ERROR %d for frame #%d" % (f["n"], code, last["n"]))
        elif (f["type"], f["seq"]) != (last["type"] | codec.REPLY, last["seq"]) or damaged or last["note"]:
            problems.append("frame #%d does not answer frame #%d" % (f["n"], last["n"]))

    def first(msg_type, from_host):
        found = [f for f in frames if f["type"] == msg_type and f["from_host"] == from_host]
        return field_values(found[0]) if found else None

    hello = first(codec.HELLO | codec.REPLY, False)
    begin = first(codec.AUTH_BEGIN | codec.REPLY, False)
    prove = first(codec.AUTH_PROVE, True)
    proven = first(codec.AUTH_PROVE | codec.REPLY, False)
    change = [f for f in frames if f["type"] == codec.KEY_CHANGE and f["from_host"]]
    if None in (hello, begin, prove, proven) or not change:
        return problems + ["the example lacks HELLO, the handshake or KEY_CHANGE"]

    # The handshake, recomputed with Python's hmac from the labels the page gives.
    role = prove["role"]
    key = values["clinician_key"] if role == auth.ROLE_CLINICIAN else values["patient_key"]
    context = bytes((role,)) + values["pump_nonce"] + values["host_nonce"]
    for label, name in (("pump-auth-1", "proof"), ("pump-ok-1", "pump_proof"), ("pump-session-1", "session_key")):
        if values[name + "_input"] != label.encode() + context:
            problems.append("%s_input is not %r, the role and the nonces" % (name, label))
        if values[name] != hm(key, values[name + "_input"]):
            problems.append("%s is not HMAC-SHA256 of its input under the key" % name)
    if values["session_key"] != auth.session_key(key, role, values["pump_nonce"], values["host_nonce"]):
        problems.append("auth.session_key disagrees with the page")
    tag_input = b"pump-nonce-1" + bytes((role,)) + values["pump_nonce"][:8]
    if values["pump_nonce_tag_input"] != tag_input:
        problems.append("pump_nonce_tag_input is not the label, the role and the nonce's first 8 bytes")
    if values["pump_nonce"][8:] != hm(values["boot_secret"], tag_input)[:8]:
        problems.append("the pump nonce's tag is not HMAC-SHA256 of its input under the boot secret")
    if (
        begin["pump_nonce"] != values["pump_nonce"]
        or prove["pump_nonce"] != values["pump_nonce"]
        or prove["host_nonce"] != values["host_nonce"]
    ):
        problems.append("the nonces in the frames are not the ones given")
    if prove["proof"] != values["proof"] or proven["pump_proof"] != values["pump_proof"]:
        problems.append("the proofs in the frames are not the ones computed")
    if proven["timeout_s"] * 1_000_000 != auth.SESSION_TIMEOUT_US:
        problems.append("timeout_s is not auth.SESSION_TIMEOUT_US")

    # The key change: pad and mask, recomputed.
    kc = change[0]
    kc_values = field_values(kc)
    pad_input = b"pump-wrap-1" + bytes((kc_values["role"],)) + kc["seq"].to_bytes(4, "little")
    if values["pad_input"] != pad_input or values["pad"] != hm(session_key, pad_input):
        problems.append("the key-change pad is not HMAC-SHA256(session key, 'pump-wrap-1' | role | seq)")
    if values["pad"] != keyring.wrap_pad(auth.Hmac(session_key), kc_values["role"], kc["seq"]):
        problems.append("keyring.wrap_pad disagrees with the page")
    masked = bytes(a ^ b for a, b in zip(values["new_patient_key"], values["pad"], strict=True))
    if values["masked_key"] != masked or kc_values["masked_key"] != masked:
        problems.append("masked_key is not the new key XOR the pad")

    # The provisioning file, read by its layout.
    pf = values["provision_file"]
    n = pf[4]
    layout = (pf[:4], pf[5 : 5 + n].decode(), pf[5 + n : 37 + n], pf[37 + n : 69 + n], pf[69 + n :])
    want = (b"PKY\x01", hello["device_id"], values["clinician_key"], values["patient_key"], zlib.crc32(pf[: 69 + n]))
    if layout[:4] != want[:4] or int.from_bytes(layout[4], "little") != want[4] or len(pf) != 73 + n:
        problems.append("the provisioning file does not hold the device id and the keys")
    if keyring.decode_keys(pf) != want[1:4]:
        problems.append("keyring.decode_keys does not read the provisioning file")

    # What the example must show.
    macd = {(f["type"], f["mac"]) for f in frames}
    if not {(codec.SET_RATE, True), (codec.SET_RATE | codec.REPLY, True)} <= macd:
        problems.append("the example lacks a MAC'd SET_RATE and its MAC'd reply")
    errors = [(field_values(f)["code"], f["seq"]) for f in frames if f["type"] == codec.ERROR]
    if not any(code == codec.ERR_AUTH for code, _s in errors) or not any(f["note"] for f in frames):
        problems.append("the example lacks a refused replay")
    if (codec.ERR_BAD_FRAME, 0) not in errors:
        problems.append("the example lacks an ERROR for a corrupt frame")
    return problems


def check_regenerated(text):
    """The generated parts (the roles table, the commands' sections, the example) are what
    tests/protocol_examples.py makes from the codec, the handlers' docstrings and the firmware."""
    problems = []
    for begin, end, generated in protocol_examples.generated_blocks():
        if protocol_examples.doc_section(text, begin, end) != generated:
            problems.append("%s... is not what `%s` makes" % (begin[:30], protocol_examples.REGENERATE))
    return problems


CHECKS = (
    check_messages,
    check_roles_table,
    check_errors,
    check_field_codes,
    check_alarms,
    check_events,
    check_faults,
    check_constants,
    check_version,
    check_examples,
    check_regenerated,
)


# -- the tests ----------------------------------------------------------------------------


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_page_is_true(check):
    assert check(doc_text()) == []


def test_every_message_type_and_error_code_is_on_the_page_by_name_and_code():
    text = doc_text()
    for code, name in message_constants().items():
        assert re.search(r"^### 0x%02X %s\b" % (code, name), text, re.M), name
    for code, name in error_constants().items():
        assert re.search(r"^\| %d \| `%s` \|" % (code, name), text, re.M), name


def test_every_message_of_the_codec_has_its_constant_name_and_every_name_a_message():
    """The derived names (pumpctl.words.MESSAGE_NAMES) cover every record of codec.MESSAGES, once each,
    and name nothing else; the example generator names each frame by them."""
    assert set(words.MESSAGE_NAMES) == set(schema.FIELDS)
    assert len(set(words.MESSAGE_NAMES.values())) == len(words.MESSAGE_NAMES)
    assert {"TELEMETRY_DATA", "ERROR"} <= set(words.MESSAGE_NAMES.values())
    for code, name in words.MESSAGE_NAMES.items():
        assert getattr(codec, name) == code
        assert protocol_examples.constant_name(code) == name


def test_a_command_section_comes_from_its_handler_comment_and_the_codec():
    """The generator takes the text from the comment above the handler, and refuses one that does
    not give every field of the codec's record its meaning, in order."""
    import protocol_messages

    from firmware.commands import alarms as commands_alarms

    text = protocol_messages.section(codec.SILENCE, commands_alarms.silence)
    assert text.startswith("### 0x15 SILENCE (silence)\n\n**Role:** patient. Silences the alarm tones")
    assert "| `silenced_s` | I | seconds of silence: 120 |" in text

    # Silences the tones.
    #
    # **Refusals:** none.
    def no_meaning(pump, values):
        pass

    with pytest.raises(
        ValueError, match=r"reply fields of its handler's comment are \[\], the codec's \['silenced_s'\]"
    ):
        protocol_messages.section(codec.SILENCE, no_meaning)

    # Reads the pump.
    #
    # Reply:
    # time_us: microseconds
    # time_mday: millidays
    # mode: x
    # rate_nl_per_day: x
    # steps_hi: x
    # steps_lo: x
    # step_volume_pl: x
    def wrong_order(pump, values):
        pass

    with pytest.raises(ValueError, match="STATUS: the reply fields"):
        protocol_messages.section(codec.STATUS, wrong_order)

    def no_comment(pump, values):
        pass

    with pytest.raises(ValueError, match="has no comment above it"):
        protocol_messages.section(codec.STATUS, no_comment)


def test_the_readme_links_the_page():
    assert "docs/protocol.md" in (ROOT / "README.md").read_text(encoding="utf-8")


# -- the checks can fail: break a copy of the page, one thing at a time ------------------------


def _in_examples(text, old, new):
    """text with the first occurrence of old after the examples marker replaced by new."""
    start = text.index(protocol_examples.BEGIN)
    at = text.index(old, start)
    return text[:at] + new + text[at + len(old) :]


def flip_hex_digit(text, label):
    """Change one hex digit on the first line labelled `label` in the example after the SET_RATE frame."""
    start = text.index("SET_RATE (0x10)", text.index(protocol_examples.BEGIN))
    line_start = text.index("\n  %s " % label, start) + 1
    line_end = text.index("\n", line_start)
    line = text[line_start:line_end]
    at = len(line) - 1  # the last hex digit on the line
    digit = "1" if line[at] != "1" else "2"
    return text[:line_start] + line[:at] + digit + line[at + 1 :] + text[line_end:]


def drop_section(text, heading):
    start = text.index(heading)
    end = text.index("\n### ", start + 1)
    return text[:start] + text[end + 1 :]


def drop_line(text, prefix):
    start = text.index("\n" + prefix) + 1
    return text[:start] + text[text.index("\n", start) + 1 :]


BREAKS = {
    "a hex digit of a wire line": (lambda t: flip_hex_digit(t, "wire"), (check_examples, check_regenerated)),
    "a hex digit of a MAC": (lambda t: flip_hex_digit(t, "mac"), (check_examples, check_regenerated)),
    "a hex digit of a CRC": (lambda t: flip_hex_digit(t, "crc"), (check_examples, check_regenerated)),
    "a field value": (
        lambda t: _in_examples(t, "rate_nl_per_day = 500000", "rate_nl_per_day = 600000"),
        (check_examples, check_regenerated),
    ),
    "a sequence number in a title": (
        lambda t: _in_examples(t, "(0x90), seq 4,", "(0x90), seq 5,"),
        (check_examples, check_regenerated),
    ),
    "the session key": (
        lambda t: _in_examples(t, "  session_key           86", "  session_key           87"),
        (check_examples, check_regenerated),
    ),
    "a command dropped": (lambda t: drop_section(t, "### 0x10 SET_RATE"), (check_messages,)),
    "a command renamed": (
        lambda t: t.replace("### 0x24 DISCARD (discard)", "### 0x24 DISCARD (drop)"),
        (check_messages,),
    ),
    "a role changed": (
        lambda t: t.replace("**Role:** patient. The patient asks", "**Role:** none. The patient asks"),
        (check_messages,),
    ),
    "a reply field dropped": (lambda t: drop_line(t, "| `effective_us` | I | and microseconds |"), (check_messages,)),
    "a field type changed": (
        lambda t: t.replace("| `drugs` | B | drugs staged so far |", "| `drugs` | H | drugs staged so far |"),
        (check_messages,),
    ),
    "a command missing from the roles table": (
        lambda t: t.replace("| patient | 1 | also AUTH_END, SILENCE, ", "| patient | 1 | also AUTH_END, "),
        (check_roles_table, check_regenerated),
    ),
    "a command's text edited by hand": (
        lambda t: t.replace("**Role:** none. Who the pump is.", "**Role:** none. Who the pump was."),
        (check_regenerated,),
    ),
    "an error code dropped": (lambda t: drop_line(t, "| 12 | `ERR_LOCKED`"), (check_errors,)),
    "an error code renumbered": (lambda t: t.replace("| 13 | `ERR_NO_KEYS`", "| 14 | `ERR_NO_KEYS`"), (check_errors,)),
    "an alarm code changed": (
        lambda t: t.replace("| motor fault: the motor", "| motor trouble: the motor"),
        (check_field_codes,),
    ),
    "an alarm's priority changed": (
        lambda t: t.replace("| 11 | motor stall | high |", "| 11 | motor stall | medium |"),
        (check_alarms,),
    ),
    "an alarm dropped from the alarms table": (lambda t: drop_line(t, "| 12 | occlusion | high |"), (check_alarms,)),
    "an event renamed": (
        lambda t: t.replace("| 19 | `EV_REFILL` | refill |", "| 19 | `EV_REFILL` | refilled |"),
        (check_events,),
    ),
    "an event dropped": (lambda t: drop_line(t, "| 22 | `EV_BATTERY`"), (check_events,)),
    "a fault kind renumbered": (
        lambda t: t.replace("| 4 | `FAULT_CLOCK_JUMP` |", "| 5 | `FAULT_CLOCK_JUMP` |"),
        (check_faults,),
    ),
    "a new message dropped": (lambda t: drop_section(t, "### 0x32 ALARMS"), (check_messages,)),
    "a new reply field dropped": (
        lambda t: drop_line(t, "| `battery_days` | I |"),
        (check_messages,),
    ),
    "a library limit's type changed": (
        lambda t: t.replace("| `bolus_hard_ng` | I | as LIB_DRUG |", "| `bolus_hard_ng` | H | as LIB_DRUG |"),
        (check_messages,),
    ),
    "the version in the title": (
        lambda t: t.replace("# The link protocol (version 9)", "# The link protocol (version 7)"),
        (check_version,),
    ),
    "the version HELLO answers": (
        lambda t: t.replace("the protocol version the pump speaks: 9 |", "the protocol version the pump speaks: 7 |"),
        (check_version,),
    ),
    "the version a frame carries": (
        lambda t: t.replace("| 5 | version is 9 |", "| 5 | version is 7 |"),
        (check_version,),
    ),
    "a constant changed": (
        lambda t: t.replace("| `auth.SESSION_TIMEOUT_US` | 60_000_000 |", "| `auth.SESSION_TIMEOUT_US` | 30_000_000 |"),
        (check_constants,),
    ),
}


@pytest.mark.parametrize("what", BREAKS)
def test_the_checks_notice_a_broken_page(what):
    text = doc_text()
    break_it, checks = BREAKS[what]
    broken = break_it(text)
    assert broken != text, "the break did not apply: the page changed; update BREAKS"
    for check in checks:
        assert check(broken), "%s did not notice %s" % (check.__name__, what)


def test_the_page_says_which_commands_are_saved_as_their_family_rows_do():
    """A command whose row saves (commands.SAVES) says **Saved** in its section, and only those: the
    page's list cannot drift from the code (a hand-kept list had left CALIBRATE out)."""
    import protocol_messages

    rows = protocol_messages.rows()
    text = doc_text()
    saved_on_page = {
        int(m.group(1), 16)
        for m in re.finditer(r"^### 0x([0-9A-F]{2}) .*?\n(?:(?!### ).*\n)*?\*\*Saved\*\* before the reply", text, re.M)
    }
    assert saved_on_page == {code for code, (_handler, saves) in rows.items() if saves}
    assert {codec.COMMIT, codec.STOP, codec.CALIBRATE} <= saved_on_page
    assert codec.SILENCE not in saved_on_page
