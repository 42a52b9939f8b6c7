"""The record store on the real MicroPython VMs, and real power cuts.

tests/mp/store_vectors.py runs the store over an in-memory storage on
CPython (the reference), the unix port and the 32-bit webassembly port: the
outputs must match. tests/mp/store_files.py runs it over the file driver on
the unix port, in two processes. tests/mp/store_cut.py arms the simulated
board's storage from the command line (--storage, --cut-after-bytes) and
saves: the process must die at exactly that byte (SIGKILL: no `finally`, no
atexit, no task loop), and a new process must load the record before, or the
new one when the cut fell at its very end.
"""

import os
import signal
import subprocess
import sys
import zlib

import pytest
from pumpctl.sim import find_micropython
from test_store import encode
from vms import MP_DIR, ROOT, run_unix, run_wasm32

from firmware.store import MAX_SECTION
from hal.sim.file_storage import CUT_SIGNAL

sys.path.insert(0, str(MP_DIR))
import store_cut  # noqa: E402  (tests/mp: the records the cut script saves)

VECTORS = MP_DIR / "store_vectors.py"
EXTRA_BOUND = 4096  # bytes load() may allocate beyond the sections it returns (a 20 KB state)


def vectors_on_cpython():
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{MP_DIR}")
    out = subprocess.run([sys.executable, str(VECTORS)], env=env, capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[-1] == "alloc -1"
    return lines[:-1]


def check_vectors(out, reference):
    lines = out.splitlines()
    assert lines[:-1] == reference
    word, extra = lines[-1].split()
    assert word == "alloc" and 0 <= int(extra) < EXTRA_BOUND, lines[-1]


@pytest.fixture(scope="module")
def reference():
    lines = vectors_on_cpython()
    # The reference itself shows what the store must do.
    assert lines[0] == "empty None"
    assert lines[2].startswith("load 0 True 1:40:")
    assert "turn 3 state.1 3 True" in lines
    assert lines[lines.index("wrap_before True") + 1 :][:2] == ["wrap 0 state.0 0 True", "wrap 1 state.1 1 True"]
    torn = next(line for line in lines if line.startswith("torn ")).split()
    assert torn[2] == torn[3] == str(int(torn[1]) + 1)  # every prefix, and the whole record, loaded right
    flips = next(line for line in lines if line.startswith("flips ")).split()[1:]
    assert all(a == b and int(a) > 0 for a, b in (f.split("/") for f in flips))
    assert f"oversize store: section 7 is {MAX_SECTION + 1} bytes, more than the limit of {MAX_SECTION} bytes True" in (
        lines
    )
    return lines


@pytest.mark.micropython
def test_store_on_the_unix_port_matches_cpython(reference):
    check_vectors(run_unix(VECTORS, heap="1M"), reference)


@pytest.mark.micropython32
def test_store_on_32bit_micropython_matches_cpython(reference, tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import sys\nprint(sys.maxsize)\n")
    assert run_wasm32(probe) == "2147483647\n"  # really the 32-bit VM
    check_vectors(run_wasm32(VECTORS, MP_DIR / "mem_storage.py"), reference)


@pytest.mark.micropython
def test_store_over_files_on_the_unix_port_survives_a_new_process(tmp_path):
    script = MP_DIR / "store_files.py"
    out = run_unix(script, cwd=tmp_path, heap="256K", args=("save",)).splitlines()  # flash/ in tmp_path
    assert out[:-1] == [
        "missing -1 0",
        "size 16",
        "read 5 b'wide '",
        "short 3 b'rld'",
        "end 0 0",
        "view 2 b'rhee '",
        "truncated 0",
        "rewritten 2 b'xy'",
        "read_alloc 0",
        "seq 0 1",
        "sizes 16445 19711",
    ]
    word, extra = out[-1].split()
    assert word == "alloc" and 0 <= int(extra) < EXTRA_BOUND, out[-1]
    assert (tmp_path / "flash" / "f").read_bytes() == b"xy"
    assert (tmp_path / "flash" / "state.1").stat().st_size == 19711
    loaded = run_unix(script, cwd=tmp_path, heap="256K", args=("load",)).splitlines()
    assert loaded == ["load 1 1:40:4a4f9597 2:16384:3b756075 3:3000:2a9cfd34 9:0:00000000 200:257:3ac1380e"]


def cut_script(tmp_path, phase, cut=None):
    """Run store_cut.py PHASE on the unix port with the storage in tmp_path/flash."""
    args = [find_micropython(), str(MP_DIR / "store_cut.py"), phase, "--storage", "flash"]
    if cut is not None:
        args += ["--cut-after-bytes", str(cut)]
    env = dict(os.environ, MICROPYPATH=f"{ROOT}:{MP_DIR}:.frozen")
    return subprocess.run(
        args, capture_output=True, text=True, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=60
    )


def load_line(seq, record):
    return "load %d %s" % (seq, " ".join("%d:%d:%08x" % (t, len(d), zlib.crc32(d)) for t, d in sorted(record)))


B = encode(1, store_cut.RECORD_B)
A_LINE = load_line(0, store_cut.RECORD_A)
B_LINE = load_line(1, store_cut.RECORD_B)
# Where the cuts fall in B (8-byte header, then 3-byte section headers).
B1_DATA = 8 + 3
B2_HEAD = B1_DATA + len(store_cut.RECORD_B[0][1])
B2_DATA = B2_HEAD + 3
CUTS = {
    "before-the-first-byte": 0,
    "after-the-first-byte": 1,
    "in-the-seq": 6,
    "mid-section-header": 8 + 1,
    "mid-second-section-header": B2_HEAD + 2,
    "mid-data": B2_DATA + 75,
    "in-the-end-section": len(B) - 6,
    "before-the-last-crc-byte": len(B) - 1,
    "exactly-at-the-end": len(B),
}


@pytest.mark.micropython
def test_the_simulated_board_reads_its_storage_options(tmp_path):
    proc = cut_script(tmp_path, "options", 7)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "storage None",
        "refused --cut-after-bytes needs --storage DIR",
        "armed SimStorage 7",
    ]
    assert (tmp_path / "flash").is_dir()


@pytest.fixture
def saved_a(tmp_path):
    proc = cut_script(tmp_path, "save-a")
    assert proc.returncode == 0, proc.stderr
    # Unarmed, the save finishes and every later piece of code runs: what a cut must prevent.
    assert proc.stdout.splitlines() == ["saved 0", "finally ran", "tasks ran", "atexit ran"]
    a = (tmp_path / "flash" / "state.0").read_bytes()
    assert a == encode(0, store_cut.RECORD_A)
    return a


@pytest.mark.micropython
@pytest.mark.parametrize("k", CUTS.values(), ids=CUTS.keys())
def test_a_power_cut_at_byte_k_of_a_save_keeps_the_record_before(tmp_path, saved_a, k):
    proc = cut_script(tmp_path, "save-b", k)
    assert proc.returncode == -signal.SIGKILL == -CUT_SIGNAL, (proc.returncode, proc.stderr)
    assert proc.stdout == "" and proc.stderr == ""  # died at once: nothing printed, no finally, no atexit
    assert (tmp_path / "flash" / "state.1").read_bytes() == B[:k]  # exactly the bytes before the cut
    assert (tmp_path / "flash" / "state.0").read_bytes() == saved_a
    after = cut_script(tmp_path, "load")
    assert after.returncode == 0, after.stderr
    assert after.stdout.splitlines() == [B_LINE if k == len(B) else A_LINE]


@pytest.mark.micropython
def test_a_cut_past_the_end_of_a_save_lets_it_finish(tmp_path, saved_a):
    proc = cut_script(tmp_path, "save-b", len(B) + 1)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["saved 1", "finally ran", "tasks ran", "atexit ran"]
    assert cut_script(tmp_path, "load").stdout.splitlines() == [B_LINE]


@pytest.mark.micropython
def test_the_cut_counts_bytes_across_saves_and_files(tmp_path, saved_a):
    proc = cut_script(tmp_path, "save-bc", len(B) + 5)
    assert proc.returncode == -CUT_SIGNAL, proc.stderr
    assert proc.stdout.splitlines() == ["saved 1"]  # B finished; C died 5 bytes in
    assert (tmp_path / "flash" / "state.1").read_bytes() == B
    assert (tmp_path / "flash" / "state.0").read_bytes() == encode(2, store_cut.RECORD_C)[:5]
    assert cut_script(tmp_path, "load").stdout.splitlines() == [B_LINE]


@pytest.mark.micropython
def test_the_simulator_starts_the_firmware_with_storage(tmp_path):
    from pumpctl.sim import Simulator

    sim = Simulator(storage=tmp_path / "flash", cut_after_bytes=1_000_000)  # past the boot's own save
    command = sim.command()
    assert command[-4:] == ["--storage", str(tmp_path / "flash"), "--cut-after-bytes", "1000000"]
    assert "--storage" not in Simulator().command()
    with sim, sim.pump() as pump:
        assert pump.hello().board == "sim"
        assert sim.running()
    assert (tmp_path / "flash").is_dir()
    assert (tmp_path / "flash" / "state.0").stat().st_size > 4800  # the first boot saved its state (the ring: 4.8 KB)
