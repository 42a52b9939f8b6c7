# pumpctl's side of the link for bench/mp/heap32.py, run in the same VM (host/pumpctl/client.py's
# requests, as frames): it speaks the wire protocol byte by byte into the pump's
# app.link.receive() and checks each reply. Loaded beside heap32.py (tests/vms.py
# HEAP32_PARTS), before its baseline is measured: its code and objects are the harness's.
#
# A request is a generator (yield from it): the bench's collections run between steps
# (bench/mp/heap32.py says why).

import gc

from heap32_pump import CLINICIAN_KEY, PATIENT_KEY
from program_items import ITEMS  # the items of the programs' lines, as pumpctl reads them: the harness's

# Each command's name, by its code: the host's names (pumpctl.words.COMMAND_NAMES), kept here
# because the codec holds none (they would be the pump's heap); codes as literals, so that the
# codec is not imported before the baseline is measured.
COMMAND_NAMES = {
    0x01: "hello",
    0x02: "status",
    0x03: "therapy",
    0x08: "auth-begin",
    0x09: "auth-prove",
    0x0A: "auth-end",
    0x0B: "key-change",
    0x10: "set-rate",
    0x11: "stop",
    0x12: "clock-set",
    0x13: "ack-alarm",
    0x14: "service",
    0x15: "silence",
    0x16: "calibrate",
    0x17: "cal-weighing",
    0x20: "stage-line",
    0x21: "stage",
    0x22: "review",
    0x23: "commit",
    0x24: "discard",
    0x25: "patient-bolus",
    0x28: "lib-drug",
    0x29: "lib-commit",
    0x2A: "lib-get",
    0x2B: "lib-stage",
    0x30: "event",
    0x31: "telemetry",
    0x32: "alarms",
    0x60: "sim-advance",
    0x61: "sim-state",
    0x62: "sim-fault",
}
# The site library the clinician stages and commits: the one in force, read
# field by field, with a new version and this source text for its first drug.
SITE_LIBRARY_VERSION = "heap-bench-site-2"
NEW_PATIENT_KEY = b"new-patient-key-for-heap-bench!!"  # 32 bytes: KEY_CHANGE at the end


class Unmeasured:
    """What Host needs of heap32.py's Stats, measuring nothing: for the scripts that drive the pump
    through Host without the bench's figures (tests/mp/host_texts32.py, routes32.py)."""

    op = ""

    def collect(self):
        gc.collect()
        yield

    def after_op(self):
        yield


class Host:
    """pumpctl's side of the link (host/pumpctl/client.py), in the VM: frames
    are encoded with the shared codec and auth, fed to the pump byte by byte,
    and each reply is checked (one reply, its type, sequence number and MAC).

    Each method imports the firmware's modules it reads (the pump has loaded them by then): not at
    the top, so that nothing is imported before the baseline is measured, and never held in an
    attribute, so that the harness reads the constants as the firmware's code does, which lets
    tests/vms.py's harness_for_compiled write them as their values where the firmware runs
    compiled (pumpctl.inline_consts: the modules then hold no such names)."""

    def __init__(self, stats, random):
        self.stats = stats
        self.random = random
        self.app = None
        self.serial = None
        self.seq = 0
        self.session = None  # auth.Hmac of the open session, None outside one
        self.frame = None  # the request being fed
        self.frames = 0
        self.errors = 0
        self.refusals = 0  # refusals the host asked for (refused())
        self.served_before = 0  # frames served and refused by the pump before a restart
        self.refused_before = 0

    def request(self, msg_type, values=()):
        """Send one command (yield from it); returns the reply's values."""
        self._build(msg_type, values)
        self.stats.op = COMMAND_NAMES[msg_type]
        yield from self.stats.collect()  # the frame is built: what is allocated from here on is the pump's
        served = self._feed()
        yield from self.stats.after_op()
        return self._reply(msg_type, served)

    def refused(self, msg_type, values, op, code):
        """Send one command the pump must refuse with error `code` (yield from it);
        op: its kind in OP_NAMES."""
        self._build(msg_type, values)
        self.stats.op = op
        yield from self.stats.collect()
        served = self._feed()
        yield from self.stats.after_op()
        self.refusals += 1
        self._refusal(msg_type, served, code)

    def request_or_refused(self, msg_type, values, code, because):
        """Send one command the pump may carry out or refuse for one reason only (yield from it): its
        reply's values, or None if it refused it with error `code` and a message starting with one of
        `because` (its sentences' tokens, pumpctl.sentences; any other refusal fails). For a refusal the
        host cannot foresee: the dose guard's."""
        self._build(msg_type, values)
        self.stats.op = COMMAND_NAMES[msg_type]
        yield from self.stats.collect()
        served = self._feed()
        yield from self.stats.after_op()
        from firmware import codec, framing

        wire = b"".join(self.serial.out)
        kind, seq, body = framing.decode_frame(framing.cobs_decode(wire, len(wire) - 1))[:3]
        if kind != codec.ERROR or seq != self.seq:
            return self._reply(msg_type, served)  # checks the frame again, and its signature
        self.frames += 1
        self.serial.out = []
        got, _field, message, _more = _decode_reply(codec.ERROR, body)
        if got != code or not message.startswith(because):
            raise AssertionError("the pump refused %s: error %d %s" % (COMMAND_NAMES[msg_type], got, message))
        self.refusals += 1
        return None

    def _build(self, msg_type, values):
        self.seq += 1
        from firmware import framing

        payload = _encode_request(msg_type, values)
        self.frame = framing.encode_frame(msg_type, self.seq, payload, self.session)
        self.serial.out = []

    def _feed(self):
        receive = self.app.link.receive
        served = 0
        for b in self.frame:
            if receive(b):
                served += 1
        self.frame = None
        return served

    def _one_frame(self, served):
        """The one frame the pump answered with: (kind, seq, body, mac, signed)."""
        self.frames += 1
        wire = b"".join(self.serial.out)
        self.serial.out = []
        if served != 1 or wire.count(b"\x00") != 1 or wire[-1] != 0:
            raise AssertionError("one frame must get exactly one reply, got %r" % wire)
        from firmware import framing

        return framing.decode_frame(framing.cobs_decode(wire, len(wire) - 1))

    def _reply(self, msg_type, served):
        from firmware import auth, codec

        kind, seq, body, mac, signed = self._one_frame(served)
        if seq != self.seq:
            raise AssertionError("the reply to seq %d came with seq %d" % (self.seq, seq))
        if self.session is not None:  # a signed request gets a reply the pump signed
            if mac is None or not auth.same_bytes(mac, self.session.digest(signed)[: auth.MAC_BYTES]):
                raise AssertionError("the reply to %s is not signed by the session" % COMMAND_NAMES[msg_type])
        if kind == codec.ERROR:
            self.errors += 1
            code, field, message, _more = _decode_reply(codec.ERROR, body)
            raise AssertionError(
                "the pump refused %s: error %d (%s) %s" % (COMMAND_NAMES[msg_type], code, field, message)
            )
        if kind != msg_type | codec.REPLY:
            raise AssertionError("reply of type 0x%02x to 0x%02x" % (kind, msg_type))
        return _decode_reply(msg_type, body)

    def _refusal(self, msg_type, served, code):
        from firmware import codec

        kind, seq, body, _mac, _signed = self._one_frame(served)
        if kind != codec.ERROR or seq != self.seq:
            raise AssertionError("%s was not refused" % COMMAND_NAMES[msg_type])
        got = _decode_reply(codec.ERROR, body)[0]
        if got != code:
            raise AssertionError("%s refused with error %d, not %d" % (COMMAND_NAMES[msg_type], got, code))

    def authenticate(self, role):
        """Open a session as pumpctl's Pump.authenticate() does (yield from it)."""
        from firmware import auth, codec

        key = CLINICIAN_KEY if role == auth.ROLE_CLINICIAN else PATIENT_KEY
        self.session = None
        (pump_nonce,) = yield from self.request(codec.AUTH_BEGIN, (role,))
        host_nonce = self.random.random_bytes(auth.NONCE_BYTES)
        proof = auth.proof(key, role, pump_nonce, host_nonce)
        pump_proof, _timeout_s = yield from self.request(codec.AUTH_PROVE, (role, pump_nonce, host_nonce, proof))
        if not auth.same_bytes(pump_proof, auth.pump_proof(key, role, pump_nonce, host_nonce)):
            raise AssertionError("the pump did not prove it holds the key")
        self.session = auth.Hmac(auth.session_key(key, role, pump_nonce, host_nonce))

    def end_session(self):
        from firmware import codec

        yield from self.request(codec.AUTH_END)
        self.session = None

    def attach(self, app):
        self.app = app
        self.serial = app.hw.serial

    def detach(self, app):
        """The pump is about to go (a power cut): keep its link's counts."""
        self.served_before += app.link.frames_handled
        self.refused_before += app.link.frames_refused
        self.app = None
        self.serial = None
        self.session = None

    def wrong_proof(self):
        """A session the pump refuses: the proof of a key it does not hold."""
        from firmware import auth, codec

        self.session = None
        (pump_nonce,) = yield from self.request(codec.AUTH_BEGIN, (auth.ROLE_CLINICIAN,))
        host_nonce = self.random.random_bytes(auth.NONCE_BYTES)
        proof = auth.proof(NEW_PATIENT_KEY, auth.ROLE_CLINICIAN, pump_nonce, host_nonce)
        yield from self.refused(
            codec.AUTH_PROVE,
            (auth.ROLE_CLINICIAN, pump_nonce, host_nonce, proof),
            "auth-prove refused",
            auth.ERR_AUTH,
        )

    def change_key(self, role, new_key):
        """KEY_CHANGE as pumpctl's change_key() sends it: the key masked with the session's pad."""
        from firmware import codec
        from firmware.lazy import values  # keyring.py as pumpctl uses it, forgotten after: the pump does not keep it

        wrap_pad, xor_bytes = values("firmware.keyring", "wrap_pad", "xor_bytes")
        masked = xor_bytes(new_key, wrap_pad(self.session, role, self.seq + 1))
        if (yield from self.request(codec.KEY_CHANGE, (role, masked)))[0] != role:
            raise AssertionError("the key was not changed")

    def read_all(self):
        """What a reader can see without a key: the alarms, the whole event log, the
        whole library, the simulator's state (and a fault scheduled for later)."""
        from firmware import codec

        yield from self.request(codec.ALARMS, (0,))
        count = (yield from self.request(codec.EVENT, (0,)))[0]
        for i in range(1, count):
            yield from self.request(codec.EVENT, (i,))
        drugs = (yield from self.request(codec.LIB_GET, (0, codec.LIB_IN_FORCE)))[1]
        for d in range(1, drugs):
            yield from self.request(codec.LIB_GET, (d, codec.LIB_IN_FORCE))
        yield from self.request(codec.SIM_STATE)
        yield from self.request(codec.SIM_ADVANCE, (0, 0))
        yield from self.request(codec.SIM_FAULT, (codec.FAULT_LEAK, 1_000_000, 0))

    def site_library(self):
        """Stage the library in force, drug by drug, as a new version with its first drug's
        daily soft limit 1 ng lower; check it, read it back and commit it."""
        from firmware import codec

        drugs = (yield from self.request(codec.LIB_GET, (0, codec.LIB_IN_FORCE)))[1]
        for d in range(drugs):
            drug = (yield from self.request(codec.LIB_GET, (d, codec.LIB_IN_FORCE)))[2:13]
            if d == 0:
                drug[2] -= 1  # daily_soft_ng_per_day: a soft limit, lowered
            yield from self.request(codec.LIB_DRUG, [d] + drug)
            drug = None
        lib_hash, _drugs, changed, raised, _expires = yield from self.request(
            codec.LIB_STAGE, (SITE_LIBRARY_VERSION, drugs)
        )
        if changed != 1 or raised != 0:
            raise AssertionError("the site library changes %d fields and raises %d" % (changed, raised))
        yield from self.request(codec.LIB_GET, (0, codec.LIB_STAGED))
        yield from self.request(codec.LIB_COMMIT, (lib_hash, 0))
        lib_hash = None  # past 2**30: a long int, the host's

    def stage(self, lines):
        """Send program lines as pumpctl does: each line's item (STAGE_ITEM), read on CPython by
        pumpctl's parser beforehand (program_items.py beside this: generated, tests/programs.py)."""
        from firmware import codec

        for i in range(len(lines)):
            yield from self.request(codec.STAGE_ITEM, (i,) + ITEMS[lines[i]])

    def review(self, which):
        """All rows of the running or staged program, as pumpctl reads them."""
        from firmware import codec

        rows = (yield from self.request(codec.REVIEW, (which, 0)))[0]
        for i in range(1, rows):
            yield from self.request(codec.REVIEW, (which, i))

    def look(self, facts):
        """What `pumpctl status` and `pumpctl therapy` read, and the newest log
        entry; keeps a few numbers in facts (small ints, no lists held)."""
        from firmware import codec

        status = yield from self.request(codec.STATUS)
        facts.mode = status[2]
        facts.rate_nl_per_day = status[3]
        therapy = yield from self.request(codec.THERAPY)
        facts.reservoir_nl = therapy[7]
        facts.day_nl = therapy[9]
        facts.hour_nl = therapy[10]
        facts.alarm = therapy[12]
        count = (yield from self.request(codec.EVENT, (0,)))[0]
        yield from self.request(codec.EVENT, (count - 1,))


class Facts:
    """What the host learnt, as small ints."""

    def __init__(self):
        self.mode = 0
        self.rate_nl_per_day = 0
        self.reservoir_nl = 0
        self.day_nl = 0
        self.hour_nl = 0
        self.alarm = 0
        self.bolus_nl = 0
        self.ticks = 0
        self.pump_time_s = 0
        self.steps = 0
        self.motor_steps = 0
        self.step_pl = 0
        self.log_entries = 0


# -- plain functions: their frames are gone before any collection -------------


def _encode_request(msg_type, values):
    """A request's payload, packed by its fields where they lie in codec.MESSAGES: the host's
    lists of fields (host/pumpctl/schema.py) would be heap counted as the pump's."""
    from firmware import codec, framing

    at = codec.span(msg_type, False)
    return framing.encode_spec(codec.MESSAGES, at >> 16, at & 0xFFFF, values)


def _decode_reply(msg_type, body):
    """A reply's values (or an ERROR's), unpacked as _encode_request packs."""
    from firmware import codec, framing

    at = codec.span(msg_type, True)
    return framing.decode_spec(codec.MESSAGES, at >> 16, at & 0xFFFF, body)
