# The boot: resume from the last saved state, or start afresh, then take the
# keys. Its code is needed once: PumpApp runs it through lazy.call(), which
# forgets this module after.
#
# What a restart restores and why it can be trusted is in app.py's header and
# persist.py (restore.py puts it back). Loading the record tells "this record is damaged" (a verified
# bad record: the pump starts stopped without it) from "the board could not do
# the work now" (a MemoryError, anything else): then it is tried once more
# after a collection, and if that fails too the pump starts stopped with the
# record kept (no save until a restart) and the self-test failed, so the next
# boot restores it.

import gc

from firmware import codec, eventlog, keyring
from firmware.app import FIRMWARE_VERSION
from firmware.battery import BATTERY_EOS_PERMILLE
from firmware.errors import Refusal

# What restoring a record raises when the record itself is bad (a verified fact, the same at
# every boot); anything else (a MemoryError) is the board failing now, and the record is kept.


def boot(pump):
    """Resume or start, then take the keys (a provisioning file, or the key store)."""
    _resume_or_start(pump)
    _load_keys(pump)


def _resume_or_start(pump):
    """Resume from the last saved state if there is one, else start afresh.
    The power-on self-test runs before the boot's one save, which keeps its result."""
    record = None
    for attempt in (1, 2):  # what fails for want of memory now is tried once more after a collection
        try:
            record = persist_load(pump) if pump.store is not None else None
            break
        except Exception as e:  # load skips a bad record: this is the board failing now, not the record
            if attempt == 2:
                _start_kept(pump, "storage not read", e)
                return
            gc.collect()
    cause = getattr(pump.hw, "reset_cause", None)
    cause = cause() if cause is not None else "power"
    if record is None:
        _log_boot(pump)
        if cause != "power":
            pump.log_event(eventlog.EV_RESTART, "started after a %s reset, with no saved state" % cause)
        self_test(pump, None)
        pump.save()
        return
    restored = (0, 0, 0)
    for attempt in (1, 2):
        try:
            # lazy.TRANSIENT, forgotten with this module after the boot; imported here, where a
            # MemoryError of its loading is the board's failing now, as one of restoring
            from firmware.restore import restore

            restored = restore(pump, record[1])
            break
        except (
            ValueError,
            KeyError,
            IndexError,
            Refusal,
        ) as e:  # a record this firmware cannot use: a newer format, a program its library refuses
            _start_stopped(pump, "stopped: saved state %d not restored (%s: %s)" % (record[0], type(e).__name__, e))
            return
        except Exception as e:  # not the record's fault (a MemoryError): it is kept for the next boot
            pump.reset_state()  # restore() may have put back part of it
            if attempt == 2:
                _start_kept(pump, "saved state %d not loaded" % record[0], e)
                return
            gc.collect()
    mday, us, reserved = restored
    tb = pump.timebase
    tb.mday = mday
    tb.us = us
    now = tb.total_us()
    pump.credit = reserved
    if cause != "power":
        pump.log_event(eventlog.EV_RESTART, "the board started after a %s reset" % cause)
    pump.log_event(
        eventlog.EV_RESTART,
        "firmware %s resumed at its last save; up to %d reserved steps (%d nL) may not have moved"
        % (FIRMWARE_VERSION, reserved, reserved * pump.sched.step_pl // 1000)
        if reserved
        else "firmware %s resumed at its last save; no step was reserved" % FIRMWARE_VERSION,
    )
    unread = pump.program_unread
    if unread is not None:  # a record of an older firmware whose program it cannot read: stopped
        pump.raise_alarm(codec.ALARM_PROGRAM_UNREAD, unread, now)
    pump.apply(now)
    pump.monitors.set_marks()
    self_test(pump, None)
    if not pump.raise_alarm(codec.ALARM_RESTART, "restart: resumed from the saved state", now):
        pump.save()  # a restart alarm was restored: the restart's log entry still must be kept


def persist_load(pump):
    """The store's newest record, the guard's ring read straight into the guard (persist.py)."""
    from firmware import persist

    return pump.store.load({persist.TAG_RING: pump.guard.ring()})


def _log_boot(pump):
    pump.log.add(0, 0, eventlog.EV_BOOT, "firmware %s, library %s" % (FIRMWARE_VERSION, pump.library.version))


def _start_stopped(pump, why, storage_problem=None):
    """Start with nothing running and the restart alarm, keeping no part of a
    state that could not be restored whole. The pump stays stopped until
    programmed again; the unreadable record stays in its slot until the
    second save after this one."""
    pump.reset_state()
    _log_boot(pump)
    self_test(pump, storage_problem)
    pump.log_event(eventlog.EV_RESTART, why)
    pump.raise_alarm(codec.ALARM_RESTART, "restart: saved state lost, stopped")


def _start_kept(pump, what, e):
    """Start stopped, the saved record kept for the next boot: the board could not load it
    now (out of memory). The self-test fails, so nothing doses until a restart, and no
    save is made until then: a save would take the place of the record (store.py)."""
    pump.record_kept = True
    pump.reset_state()
    _log_boot(pump)
    what = "%s (%s)" % (what, type(e).__name__)
    self_test(pump, what + ": restart the pump")
    pump.log_event(eventlog.EV_RESTART, "stopped, saved state kept: %s: %s" % (what, e))
    pump.raise_alarm(codec.ALARM_RESTART, "restart: saved state not loaded, stopped")


def _load_keys(pump):
    """Take keys from a provisioning file if one was written (then empty it),
    else from the key store. Without keys every session is refused."""
    st = getattr(pump.hw, "key_storage", None)
    if st is None:
        return
    from firmware.store import Store

    key_store = Store(st, keyring.KEY_SLOTS)  # made for the boot and a key change, not kept between (0.6 KB)
    n = st.size(keyring.PROVISION_FILE)
    if n > 0:
        raw = bytearray(min(n, 256))
        st.read_into(keyring.PROVISION_FILE, 0, raw)
        keys = keyring.decode_keys(raw) if n <= 256 else None
        if keys is None:
            pump.log_event(eventlog.EV_KEYS, "provisioning file not valid: ignored, keys unchanged")
        else:
            key_store.save(keyring.key_record(*keys))
            pump.log_event(eventlog.EV_KEYS, "keys provisioned for device " + keys[0])
        st.begin(keyring.PROVISION_FILE)  # emptied: provisioned once
        st.end()
    record = key_store.load()
    keys = keyring.decode_keys(record[1].get(keyring.KEY_SECTION)) if record is not None else None
    if keys is not None:
        pump.auth.set_keys(*keys)
    else:
        pump.log_event(eventlog.EV_KEYS, "no keys: reading only until the pump is provisioned")
    if n > 0 or keys is None:
        pump.save()  # the log entry above is kept


def _battery_problem(gauge):
    """The self-test's look at the battery (gauge: the board's, or None): why it fails it, or None."""
    if gauge is None:
        return None
    try:
        soc = gauge.soc_permille()
    except OSError as e:
        return "battery monitor does not answer: %s" % e
    if soc <= BATTERY_EOS_PERMILLE:
        return "battery at %d permille, at or below end of service" % soc
    return None


def self_test(pump, storage_problem):
    """The power-on self-test: the firmware files against the flash manifest, storage
    readable (storage_problem: why not, or None), the battery above end of service, the
    clock running, the motor driver responding. A failure is logged, stops a therapy that
    doses, latches the self-test alarm, and refuses any program that doses until a restart
    passes it (pump.monitors.self_test_problems)."""
    hw = pump.hw
    problems = []
    if storage_problem:
        problems.append(storage_problem)
    check = getattr(hw, "firmware_check", None)
    files = check() if check is not None else None
    if files:
        problems.extend("firmware: " + p for p in files)
    battery = _battery_problem(pump.monitors.battery.gauge)
    if battery is not None:
        problems.append(battery)
    running = getattr(pump.clock, "running", None)
    if running is not None and not running():
        problems.append("the clock does not run")
    motor_check = getattr(hw, "motor_check", None)
    if motor_check is not None:
        why = motor_check()
        if why is not None:
            problems.append("motor: " + why)
    pump.monitors.self_test_problems = problems
    if not problems:
        pump.clear_alarm(codec.ALARM_SELF_TEST, 18)  # this power-on self-test passed
        pump.log_event(
            eventlog.EV_SELF_TEST,
            "passed: firmware %s, storage, battery, clock, motor"
            % ("not checked (no manifest)" if files is None else "matches its manifest"),
        )
        return  # saved by the boot's save (a failure saves with its alarm)
    for p in problems:
        pump.log_event(eventlog.EV_SELF_TEST, "FAILED: " + p)
    now = pump.timebase.total_us()
    if pump.therapy.program is not None and pump.therapy.rate_now(now):
        pump.therapy.stop(now)
        pump.apply(now)
        pump.log_event(eventlog.EV_STOP, "stopped: the self-test failed")
    pump.raise_alarm(codec.ALARM_SELF_TEST, "self-test failed: " + problems[0], active=True)
