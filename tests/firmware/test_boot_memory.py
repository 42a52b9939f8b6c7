"""Issue 24: running out of memory while loading the saved state is not a damaged record.

The firmware's PumpApp runs on CPython on the stand-in board of tests/protocol_examples.py, its state in memory.
A MemoryError is injected at the Nth call of each function of the load path (store.load and what it calls in
store_read, restore.restore and what it calls): once (the boot collects and tries again, and restores the record),
or at every call from the Nth on (the board stays short of memory: the pump starts stopped, refuses to dose, writes
nothing, and the next boot restores the record whole: its program, its guard history and its log)."""

import builtins
import sys
import types

import pytest
from programs import lines_of
from protocol_examples import _Clock, _Faults, _MemoryStorage, _Motor, _random_bytes, _Serial
from vms import MP_DIR

import boards.sim as sim_board
from firmware import codec, guard_records, persist, restore, store_read
from firmware.app import PumpApp
from firmware.errors import Refusal
from firmware.store import Store

sys.path.insert(0, str(MP_DIR))
from rate_now import rate_now  # noqa: E402  (tests/mp: shared with the VM scripts)

HOUR = 3_600_000_000
RATE_NL_PER_DAY = 500_000  # 400 steps an hour
MAX_STEP_US = 1 << 28


class Board:
    """The stand-in board around one in-memory storage, booted again and again."""

    def __init__(self, storage):
        self.clock = _Clock()
        self.motor = _Motor()
        hw = types.SimpleNamespace(
            clock=self.clock,
            motor=self.motor,
            serial=_Serial(),
            random_bytes=_random_bytes,
            storage=storage,
            key_storage=None,
            faults=_Faults(),
            sim=True,
        )
        self.app = PumpApp(sim_board, hw)

    def advance(self, us):
        while us:
            step = min(us, max(self.app.tick_and_wait(), 1), MAX_STEP_US)
            self.clock.t += step
            us -= step
        self.app.tick()


def what_a_restart_must_keep(app):
    log = app.log
    return {
        "program": lines_of(app.therapy.program) if app.therapy.program else None,
        "delivered": app.guard.delivered(),
        "window": app.guard.saved_state()[0],
        "log": [log.get(i) for i in range(log.oldest(), log.count)],
    }


@pytest.fixture(scope="module")
def saved():
    """A pump that dosed 3 h, took a bolus-free program change and saved: its storage and what it must keep."""
    storage = _MemoryStorage()
    board = Board(storage)
    rate_now(board.app, RATE_NL_PER_DAY)
    board.advance(3 * HOUR)
    board.app.save()
    assert board.motor.steps == 1200
    return {k: bytes(v) for k, v in storage.files.items()}, what_a_restart_must_keep(board.app)


def storage_of(files):
    storage = _MemoryStorage()
    storage.files = {k: bytearray(v) for k, v in files.items()}
    return storage


# Each function of the load path, where the boot reaches it: (owner, attribute).
LOAD_PATH = [
    (Store, "load"),
    (store_read, "load"),
    (store_read, "_candidates"),
    (store_read, "_peek"),
    (store_read, "_walk"),
    (store_read, "_crc_ends"),
    (restore, "restore"),
    (restore, "_fields"),
    (restore, "_opt_int"),
    (restore, "_drugs"),
    (restore, "_unesc"),
    (restore, "_from_saved"),
    (guard_records, "restore_guard"),
    (restore, "restore_alarms"),
    (restore, "restore_motor_watch"),
    (restore, "put_line"),
    (restore, "after_restore"),
]


def calls_in_a_boot(files):
    """How many times a clean boot calls each function of the load path."""
    counts = {}
    mp = pytest.MonkeyPatch()
    try:
        for owner, name in LOAD_PATH:
            real = getattr(owner, name)

            def counting(*args, _real=real, _key=(owner, name), **kwargs):
                counts[_key] = counts.get(_key, 0) + 1
                return _real(*args, **kwargs)

            mp.setattr(owner, name, counting)
        Board(storage_of(files))
    finally:
        mp.undo()
    return counts


def injections(files):
    """(owner, name, n) for every function of the load path: its first calls, then every 7th, and its last."""
    out = []
    counts = calls_in_a_boot(files)
    for owner, name in LOAD_PATH:
        total = counts.get((owner, name), 0)
        assert total, f"{name} is not on the load path any more: update LOAD_PATH"
        for n in sorted({1, 2, 3, total, *range(1, total + 1, 7)}):
            if n <= total:
                out.append((owner, name, n))
    return out


def boot_short_of_memory(monkeypatch, files, owner, name, n, once):
    """Boot with a MemoryError at the nth call of owner.name (once, or at every call from the nth on)."""
    real = getattr(owner, name)
    calls = [0]

    def failing(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n or (not once and calls[0] > n):
            raise MemoryError("memory allocation failed, allocating 9600 bytes")
        return real(*args, **kwargs)

    storage = storage_of(files)
    with monkeypatch.context() as m:
        m.setattr(owner, name, failing)
        board = Board(storage)
    assert calls[0] >= n, f"{name} was called {calls[0]} times, not {n}"
    return board, storage


def test_every_function_of_the_load_path_is_reached_by_a_boot(saved):
    files, _kept = saved
    counts = calls_in_a_boot(files)
    assert all(counts.get(key) for key in LOAD_PATH), counts


def test_a_memory_error_once_anywhere_in_the_load_path_is_retried_and_the_record_restored(saved, monkeypatch):
    files, kept = saved
    for owner, name, n in injections(files):
        board, _storage = boot_short_of_memory(monkeypatch, files, owner, name, n, once=True)
        app = board.app
        where = f"MemoryError at call {n} of {name}"
        restored = what_a_restart_must_keep(app)
        assert {k: restored[k] for k in ("program", "delivered", "window")} == {
            k: kept[k] for k in ("program", "delivered", "window")
        }, where
        assert restored["log"][: len(kept["log"])] == kept["log"], where
        assert app.alarm == codec.ALARM_RESTART and app.monitors.dosing_refusal() is None, where
        board.advance(HOUR)
        assert board.motor.steps > 0, where  # it doses its restored program


def test_a_memory_error_that_persists_keeps_the_record_and_the_next_boot_restores_it(saved, monkeypatch):
    files, kept = saved
    for owner, name, n in injections(files):
        where = f"MemoryError from call {n} of {name} on"
        board, storage = boot_short_of_memory(monkeypatch, files, owner, name, n, once=False)
        app = board.app
        # Stopped, with an alarm whose log says why, and no dosing until a restart.
        assert app.therapy.program is None and app.sched.rate == 0, where
        assert app.alarms.active(codec.ALARM_SELF_TEST) or app.alarm != codec.ALARM_NONE, where
        texts = [app.log.get(i)[3] for i in range(app.log.oldest(), app.log.count)]
        assert any(t.startswith("stopped, saved state kept: ") and "(MemoryError)" in t for t in texts), (where, texts)
        with pytest.raises(Refusal, match="restart the pump"):
            app.commands.get(codec.SET_RATE)((500_000,))
        board.advance(HOUR)  # alarms, monitors: nothing is saved over the record
        assert board.motor.steps == 0, where
        assert {k: bytes(v) for k, v in storage.files.items()} == files, where
        # The next boot, with memory enough: the record, whole.
        again = Board(storage)
        restored = what_a_restart_must_keep(again.app)
        assert restored["program"] == kept["program"] and restored["delivered"] == kept["delivered"], where
        assert restored["window"] == kept["window"], where
        assert restored["log"][: len(kept["log"])] == kept["log"], where
        again.advance(HOUR)
        assert again.motor.steps > 0, where  # it doses again, from the restored program


def test_a_damaged_record_is_still_told_apart_and_not_restored(saved):
    """A record whose content this firmware refuses (a verified bad record, not a shortage) starts the pump afresh,
    as before: the MemoryError path above must not swallow it."""
    files, _kept = saved
    storage = storage_of(files)
    store = Store(storage)
    seq, record = store.load()
    record[persist.TAG_META] = bytes(record[persist.TAG_META]).replace(b"format %d" % persist.FORMAT, b"format 9")
    store.save(sorted(record.items()))
    app = Board(storage).app
    texts = [app.log.get(i)[3] for i in range(app.log.oldest(), app.log.count)]
    assert any("not restored (ValueError: state format 9" in t for t in texts), texts
    assert app.monitors.dosing_refusal() is None  # it may be programmed again at once


def _restore_not_loaded(m):
    """firmware.restore off the heap, as a running pump has it (lazy.TRANSIENT)."""
    import firmware

    m.delitem(sys.modules, "firmware.restore", raising=False)
    m.delattr(firmware, "restore", raising=False)


def _boot_failing_to_import_restore(monkeypatch, storage, once):
    """Boot with a MemoryError from the import of firmware.restore (the first one, or every one)."""
    real_import = builtins.__import__
    tries = [0]

    def importing(name, *args, **kwargs):
        if name == "firmware.restore":
            tries[0] += 1
            if tries[0] == 1 or not once:
                raise MemoryError("memory allocation failed, allocating 2048 bytes")
        return real_import(name, *args, **kwargs)

    with monkeypatch.context() as m:
        _restore_not_loaded(m)
        m.setattr(builtins, "__import__", importing)
        board = Board(storage)
    assert tries[0] >= 1, "the boot did not import firmware.restore"
    return board


def test_the_restore_is_off_the_heap_after_a_restart(saved, monkeypatch):
    """restore.py is needed once, at a restart: the pump that resumed holds neither its code nor its name."""
    import firmware

    files, kept = saved
    with monkeypatch.context() as m:
        _restore_not_loaded(m)
        app = Board(storage_of(files)).app
        assert "firmware.restore" not in sys.modules and not hasattr(firmware, "restore")
    assert what_a_restart_must_keep(app)["delivered"] == kept["delivered"]


def test_a_memory_error_loading_the_restore_once_is_retried_and_the_record_restored(saved, monkeypatch):
    files, kept = saved
    app = _boot_failing_to_import_restore(monkeypatch, storage_of(files), once=True).app
    restored = what_a_restart_must_keep(app)
    assert {k: restored[k] for k in ("program", "delivered", "window")} == {
        k: kept[k] for k in ("program", "delivered", "window")
    }
    assert app.alarm == codec.ALARM_RESTART and app.monitors.dosing_refusal() is None


def test_a_restore_that_cannot_be_loaded_keeps_the_record_for_the_next_boot(saved, monkeypatch):
    """The board short of memory for restore.py's code: the pump starts stopped, saves nothing over the record
    (the dose guard's history above all), and the next boot restores it whole."""
    files, kept = saved
    storage = storage_of(files)
    board = _boot_failing_to_import_restore(monkeypatch, storage, once=False)
    app = board.app
    assert app.therapy.program is None and app.sched.rate == 0
    texts = [app.log.get(i)[3] for i in range(app.log.oldest(), app.log.count)]
    assert any(t.startswith("stopped, saved state kept: ") and "(MemoryError)" in t for t in texts), texts
    with pytest.raises(Refusal, match="restart the pump"):
        app.commands.get(codec.SET_RATE)((500_000,))
    board.advance(HOUR)
    assert board.motor.steps == 0
    assert {k: bytes(v) for k, v in storage.files.items()} == files
    restored = what_a_restart_must_keep(Board(storage).app)
    assert restored["program"] == kept["program"] and restored["delivered"] == kept["delivered"]
    assert restored["window"] == kept["window"]
