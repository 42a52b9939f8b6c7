"""The wire decoder fuzzed in-process on both MicroPython VMs (tests/mp/decoder_fuzz.py):
random and mutated byte streams, seeded, fed byte by byte to framing.FrameDecoder as the
firmware feeds it. Nothing but FrameError is raised, a valid frame after any garbage
and a delimiter decodes, feed() allocates nothing (every byte is fed with the heap
locked, runs of megabytes without a delimiter among them), and what frame() allocates
does not grow with its input.

PUMP_TEST_PROFILE=long feeds more streams and longer runs; PUMP_FUZZ_SEED changes the seed.
"""

import os

import pytest
from vms import MP_DIR, run_unix, run_wasm32

from firmware import codec, framing

SCRIPT = MP_DIR / "decoder_fuzz.py"
LONG = os.environ.get("PUMP_TEST_PROFILE", "default") == "long"
SEED = int(os.environ.get("PUMP_FUZZ_SEED", "1"))


def figures(out, streams):
    """Check the script's report; return its figures."""
    assert "NOT RESYNCED" not in out, out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    assert lines["heap_lock"] == ["True"]  # the feeding really ran with the heap locked
    n, _, n_bytes, _, frames, _, resynced = lines["streams"]
    assert int(n) == int(resynced) == streams  # a valid frame came out whole after every stream
    refused = dict(map(int, pair.split(":")) for pair in lines["refused"])
    for code in (codec.ERR_BAD_FRAME, codec.ERR_TOO_LONG, codec.ERR_BAD_VERSION, codec.ERR_MALFORMED):
        assert refused.get(code, 0) > 0, f"no frame refused with error {code}: {refused}"
    _, fields_ok, _, fields_refused = lines["fields"]
    assert int(fields_ok) > 0 and int(fields_refused) > 0 and int(frames) > streams // 2
    alloc = [tuple(map(int, pair.split(":"))) for pair in lines["alloc"]]
    assert max(a for _n, a in alloc) <= 2048, alloc  # a frame() costs a bounded few hundred bytes
    too_long = {a for n, a in alloc if n > framing.MAX_ENCODED}
    assert len(too_long) == 1, alloc  # the same for 271 bytes as for megabytes: nothing kept of them
    before, after, _end = map(int, lines["heap"])
    decoder = int(lines["decoder"][0])
    return {
        "bytes": int(n_bytes),
        "frames": int(frames),
        "refused": refused,
        "alloc": alloc,
        "heap_change": before - after,
        "decoder": decoder,
    }


@pytest.mark.micropython
def test_the_decoder_survives_any_bytes_in_bounded_memory_on_the_unix_port():
    streams = 50_000 if LONG else 3_000
    long_run = 16_000_000 if LONG else 2_000_000
    # A 1 MB heap for megabytes of input: the decoder holds one frame's bytes at most.
    out = run_unix(SCRIPT, heap="1M", args=(str(streams), str(SEED), str(long_run)))
    got = figures(out, streams)
    assert abs(got["heap_change"]) <= 2048, got  # the heap after the run holds what it held before
    assert got["decoder"] <= 1024, got  # the decoder itself: a 270-byte buffer and a few fields
    print(f"\nunix port: {got}")


@pytest.mark.micropython32
def test_the_decoder_survives_any_bytes_in_bounded_memory_on_32bit_micropython(tmp_path):
    streams = 20_000 if LONG else 1_000
    long_run = 2_000_000 if LONG else 200_000
    args = tmp_path / "decoder_fuzz_args.py"
    args.write_text(f"STREAMS = {streams}\nSEED = {SEED}\nLONG_RUN = {long_run}\n")
    got = figures(run_wasm32(SCRIPT, args), streams)
    # The webassembly VM's gc.collect() frees nothing here, so its heap figures say
    # nothing; the heap lock and what frame() allocates (gc off) still do.
    print(f"\n32-bit webassembly: {got}")
