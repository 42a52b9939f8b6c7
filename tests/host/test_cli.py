"""pumpctl as a user runs it: the console script, against the simulator."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import tty
from pathlib import Path

import pytest
from pumpctl import Pump, Simulator, config, quantities
from pumpctl import flash as flash_module
from pumpctl.client import NO_DRUG_LIMITS
from vms import ROOT

from firmware import codec

PUMPCTL = str(Path(sys.executable).with_name("pumpctl"))


def pumpctl(*args, timeout=60):
    return subprocess.run([PUMPCTL, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def sim_port():
    """`pumpctl sim` in the background; yields the port it prints."""
    proc = subprocess.Popen([PUMPCTL, "sim"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    assert " on /dev/" in first, first + proc.stderr.read()
    yield first.rsplit(" on ", 1)[1].strip()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_help_shows_examples():
    out = pumpctl("--help")
    assert out.returncode == 0
    assert 'program --rate "0.5 mL/day"' in out.stdout


@pytest.mark.micropython
def test_a_session_against_the_simulator(sim_port):
    # Staged, reviewed beside what runs and committed like every therapy change (issue 23): without --yes
    # (and no terminal to ask) nothing is committed.
    out = pumpctl("--port", sim_port, "program", "--rate", "0.5 mL/day")
    assert out.returncode == 2 and "not committed" in out.stderr and "--yes" in out.stderr
    assert out.stdout.splitlines()[2] == "* stop  [no program]  basal 0.5 mL/day  [0.5 mL/day]"
    assert NO_DRUG_LIMITS in out.stdout
    out = pumpctl("--port", sim_port, "program", "--rate", "0.5 mL/day", "--yes")
    assert out.returncode == 0, out.stderr
    assert "committed at pump time 00 h 00 min 00 s; read back and identical" in out.stdout
    data = json.loads(pumpctl("--port", sim_port, "--json", "program", "--rate", "0.5 mL/day", "--yes").stdout)
    assert data["drug_limits"] is False and data["rate_nl_per_day"] == 500_000
    assert data["lines"] == ["basal 0.5 mL/day"]

    out = pumpctl("--port", sim_port, "advance", "24h")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "pump time now 24 h 00 min 00 s; delivered 499.9968 uL"

    out = pumpctl("--port", sim_port, "status")
    lines = out.stdout.splitlines()
    assert lines[:4] == [
        "pump time   24 h 00 min 00 s",
        "mode        continuous",
        "rate        0.5 mL/day (500000 nL/day)",
        "delivered   499.9968 uL (9600 steps of 52.083 nL)",
    ]
    # then what the monitors see: no fill was programmed, so no reservoir count
    assert lines[4].startswith("reservoir   not counted (no fill programmed)")
    assert any(line.startswith("battery     ") and "permille" in line for line in lines)
    assert lines[-1] == "alarms      none"

    out = pumpctl("--port", sim_port, "--json", "status")
    status = json.loads(out.stdout)
    assert status["steps"] == 9600 and status["delivered_pl"] == 9600 * 52_083
    assert status["reservoir_nl"] is None and status["alarms"] == [] and status["sounding"] == "none"

    out = pumpctl("--port", sim_port, "stop")
    assert out.returncode == 0 and out.stdout.startswith("stopped at pump time 24 h")


@pytest.mark.micropython
def test_a_rate_pumpctl_cannot_take_exits_2_with_the_whole_reason_and_sends_nothing(sim_port):
    out = pumpctl("--port", sim_port, "program", "--rate", "5 mg/h")
    assert out.returncode == 2
    assert out.stderr == (
        "pumpctl: rate: unknown unit 'mg/h'; give a volume per time: nL, uL or mL per s, min, h or day "
        "(for example 0.5 mL/day); nothing was sent to the pump\n"
    )
    out = pumpctl("--port", sim_port, "program", "--rate", "12 mL/h")
    assert out.returncode == 2
    assert "pumpctl: rate: rate 12 mL/h is above the pump maximum of 10 mL/h (240000000 nL/day)" in out.stderr


def test_no_port_exits_2_and_says_how_to_give_one():
    env = {k: v for k, v in os.environ.items() if k != "PUMPCTL_PORT"}
    out = subprocess.run([PUMPCTL, "status"], capture_output=True, text=True, env=env)
    assert out.returncode == 2
    assert "no port given: use --port PORT or set PUMPCTL_PORT" in out.stderr


def test_an_absent_port_exits_3():
    out = pumpctl("--port", "/dev/ttyNOSUCHPORT", "status")
    assert out.returncode == 3
    assert "cannot open /dev/ttyNOSUCHPORT" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_silent_port_exits_3_after_the_timeout():
    master, slave = os.openpty()  # a tty with nothing behind it
    tty.setraw(slave)
    try:
        out = pumpctl("--port", os.ttyname(slave), "--timeout", "0.3", "status")
    finally:
        os.close(master)
        os.close(slave)
    assert out.returncode == 3
    assert "no reply from the pump" in out.stderr


@pytest.mark.micropython
def test_a_busy_port_exits_3(sim_port):
    with Pump(sim_port):
        out = pumpctl("--port", sim_port, "status")
    assert out.returncode == 3
    assert f"cannot open {sim_port}" in out.stderr


@pytest.mark.parametrize("duration", ["24", "soon", "1.5x"])
def test_a_duration_without_a_unit_exits_2(duration):
    out = pumpctl("--port", "/dev/null", "advance", duration)
    assert out.returncode == 2
    assert "is not a duration" in out.stderr


@pytest.mark.micropython
def test_demo_doses_a_day_and_matches_the_exact_expectation():
    out = pumpctl("demo")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "pumpctl demo: morphine 10 mg/mL at 0.5 mL/day for 24 h 00 min 00 s, on the simulated pump"
    table = [line.split() for line in lines if line.startswith(("  steps", "  volume", "  morphine"))]
    assert table == [
        ["steps", "9600.0614", "9600", "9600"],
        ["volume", "500", "uL", "499.9968", "uL", "499.9968", "uL"],
        ["morphine", "5", "mg", "4.999968", "mg", "4.999968", "mg"],
    ]
    assert "delivered exactly the 9600 steps owed; 3.2 nL (0.06 of a step) short" in out.stdout
    # The drug went through the library: programmed as a drug, not as a bare volume.
    program = "drug morphine 10 mg/mL; fill 20 mL; basal 0.5 mL/day (0.5 mL/day = morphine 5 mg/day)"
    assert f"  program       {program}" in lines
    assert any(line.startswith("  drug limits   library default-2026.11: checked") for line in lines)
    assert "no drug-library limit" not in out.stdout


@pytest.mark.micropython
def test_demo_over_a_hard_limit_is_refused_and_the_motor_makes_no_step():
    # Issue 18: 1 mL/h of baclofen 2000 mcg/mL is 48 mg/day, 24 times its 2 mg/day hard limit.
    args = ("demo", "--rate", "1 mL/h", "--duration", "2h", "--drug", "baclofen", "--concentration", "2000 mcg/mL")
    out = pumpctl(*args)
    assert out.returncode == 1, out.stdout + out.stderr
    reason = "daily dose of baclofen 48 mg/day is above the hard limit of 2 mg/day (library default-2026.11)"
    assert out.stderr.strip() == f"pumpctl: pump refused (daily dose): {reason}; nothing was changed"
    lines = out.stdout.splitlines()
    assert f"  refused       {reason}" in lines
    # What the simulated motor itself counted over the 2 h after the refusal (SIM_STATE), and the pump's count.
    assert "  motor         0 steps in 02 h 00 min 00 s of pump time since (the pump reports 0)" in lines
    assert "result: the pump refused the program and delivered nothing." in out.stdout
    assert "delivered exactly" not in out.stdout and "programmed    " not in out.stdout
    data = json.loads(pumpctl("--json", *args).stdout)
    assert data["refused"] == {"field": "daily dose", "reason": reason}
    assert (data["motor_steps"], data["reported_steps"], data["drug_limits"]) == (0, 0, True)


@pytest.mark.micropython
def test_demo_past_a_soft_limit_needs_confirming_and_then_doses_exactly():
    args = ("demo", "--rate", "1.1 mL/day", "--duration", "1h")  # morphine 11 mg/day, soft limit 10 mg/day
    out = pumpctl(*args)
    assert out.returncode == 2 and "soft limits passed: not committed" in out.stderr
    assert "daily dose of morphine 11 mg/day is above the soft limit of 10 mg/day" in out.stdout
    out = pumpctl(*args, "--confirm-soft")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "delivered exactly the 880 steps owed" in out.stdout  # floor(1.1 mL/day * 1 h / 52.083 nL)


@pytest.mark.micropython
def test_demo_with_no_drug_says_no_drug_limit_applies():
    out = pumpctl("demo", "--no-drug", "--rate", "1 mL/h", "--duration", "1h")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0] == (
        "pumpctl demo: no drug (a plain volume rate) at 1 mL/h for 01 h 00 min 00 s, on the simulated pump"
    )
    assert f"  drug limits   {NO_DRUG_LIMITS}" in out.stdout.splitlines()
    assert "delivered exactly the 19200 steps owed" in out.stdout  # floor(1 mL / 52.083 nL)
    assert "morphine" not in out.stdout
    data = json.loads(pumpctl("--json", "demo", "--no-drug", "--duration", "1h").stdout)
    assert data["drug_limits"] is False and data["note"] == NO_DRUG_LIMITS
    assert data["reported_steps"] == data["motor_steps"] == data["expected_steps"] == 400
    out = pumpctl("demo", "--no-drug", "--drug", "baclofen")
    assert out.returncode == 2 and "do not give --drug or --concentration" in out.stderr


def test_demo_refuses_a_drug_name_that_is_not_one_word():
    out = pumpctl("demo", "--drug", "morphine 1 mg/mL")
    assert out.returncode == 2 and "give one drug name" in out.stderr


@pytest.mark.micropython
def test_telemetry_prints_samples_and_stops(sim_port):
    out = pumpctl("--port", sim_port, "telemetry", "--interval", "50ms", "--count", "3")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["sample", "pump", "time", "mode", "rate", "steps", "reservoir", "alarm"]  # once
    assert len(lines) == 4 and all(line.split()[-1] == "none" and "stopped" in line for line in lines[1:])
    assert all(len(line) <= 80 for line in lines)
    assert "3 samples, 0 lost on the way" in out.stderr
    out = pumpctl("--port", sim_port, "--json", "telemetry", "--interval", "20ms", "--count", "5")
    samples = [json.loads(line) for line in out.stdout.splitlines()]
    assert [s["seq"] for s in samples] == list(range(5)) and samples[0]["mode"] == "stopped"


@pytest.mark.micropython
def test_keys_lists_the_simulator_and_changes_a_key(sim_port):
    out = pumpctl("--json", "keys")
    assert out.returncode == 0
    pumps = json.loads(out.stdout)["pumps"]
    device = next(d for d in pumps if d.startswith("sim-"))
    assert pumps[device] == ["clinician", "patient"]
    before = open(os.environ["PUMPCTL_CONFIG"]).read()
    out = pumpctl("--port", sim_port, "keys", "change", "patient")
    assert out.returncode == 0, out.stderr
    assert "patient key of pump sim-" in out.stdout
    assert open(os.environ["PUMPCTL_CONFIG"]).read() != before
    out = pumpctl("--port", sim_port, "patient-bolus")  # with the new key: refused for the program, not the key
    assert out.returncode == 1 and "no patient bolus" in out.stderr


@pytest.mark.micropython
def test_no_key_for_the_pump_exits_5_and_says_where_keys_go(sim_port, tmp_path):
    empty = tmp_path / "config.toml"
    env = dict(os.environ, PUMPCTL_CONFIG=str(empty))
    out = subprocess.run(
        [PUMPCTL, "--port", sim_port, "stop"], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL
    )
    assert out.returncode == 5
    assert "no keys for simulator sim-" in out.stderr and str(empty) in out.stderr
    assert "keys=" not in out.stderr and "start a new simulator with pumpctl sim" in out.stderr  # CLI words
    assert "flash it again" not in out.stderr  # a simulator is not flashed
    out = subprocess.run([PUMPCTL, "--port", sim_port, "status"], capture_output=True, text=True, env=env)
    assert out.returncode == 0  # reading needs no key


@pytest.mark.micropython
def test_a_config_file_others_can_read_exits_5(sim_port):
    path = os.environ["PUMPCTL_CONFIG"]
    os.chmod(path, 0o644)
    try:
        out = pumpctl("--port", sim_port, "stop")
    finally:
        os.chmod(path, 0o600)
    assert out.returncode == 5 and f"run chmod 600 {path}" in out.stderr


def test_the_global_options_may_come_after_the_command_too(sim_port):
    before = pumpctl("--json", "--port", sim_port, "status")
    after = pumpctl("status", "--json", "--port", sim_port, "--timeout", "5")
    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert json.loads(after.stdout)["mode"] == json.loads(before.stdout)["mode"] == "stopped"
    # Given after the command, an option overrides the one before it; not given there, it keeps it.
    overridden = pumpctl("--port", "/dev/no-such-port", "status", "--port", sim_port)
    assert overridden.returncode == 0 and "stopped" in overridden.stdout, overridden.stderr
    kept = pumpctl("--port", sim_port, "--json", "status")
    assert kept.returncode == 0 and json.loads(kept.stdout)["mode"] == "stopped"


def test_version_says_pumpctls_and_with_a_port_the_pumps_firmware(sim_port):
    from pumpctl import __version__

    alone = pumpctl("--version")
    assert alone.returncode == 0 and alone.stdout == f"pumpctl {__version__} (protocol {codec.PROTOCOL_VERSION})\n"
    with_pump = pumpctl("--port", sim_port, "--version")
    firmware = flash_module.module_constant(ROOT / "firmware" / "app.py", "FIRMWARE_VERSION")
    assert with_pump.returncode == 0, with_pump.stderr
    assert with_pump.stdout.splitlines() == [
        f"pumpctl {__version__} (protocol {codec.PROTOCOL_VERSION})",
        f"pump on {sim_port}: firmware {firmware} (protocol {codec.PROTOCOL_VERSION}), board sim",
    ]
    nobody = pumpctl("--port", "/dev/no-such-port", "--version")
    assert nobody.returncode == 3 and "there is no such port" in nobody.stderr


def test_ctrl_c_stops_a_long_advance_where_it_is_and_says_so(sim_port):
    """Issue 22: Ctrl-C after 2 s of `advance 20d` exited 130 and the simulator ran on to the end."""
    assert pumpctl("--port", sim_port, "program", "--rate", "1 mL/h", "--yes").returncode == 0
    proc = subprocess.Popen(
        [PUMPCTL, "--port", sim_port, "advance", "3000day"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)  # as Ctrl-C at a terminal
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert err.startswith("pumpctl: interrupted: pump time stopped at "), err
    assert f"of the {quantities.duration(3000 * 86_400 * 10**6)} asked for ran); delivered " in err
    # Pump time stands where it stopped (the simulator at speed 0 moves only when time is granted).
    with Pump(sim_port) as pump:
        first = pump.status()
        time.sleep(0.5)
        second = pump.status()
    assert first.time_us == second.time_us < 3000 * 86_400 * 10**6
    assert first.time_us > 0 and second.steps == first.steps


@contextlib.contextmanager
def pumpctl_sim(*options):
    """`pumpctl sim OPTIONS` in the background, as a user starts it; yields (its port, its output's first
    lines); stops it as Ctrl-C does."""
    proc = subprocess.Popen([PUMPCTL, "sim", *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline()]
        assert " on /dev/" in lines[0], lines[0] + proc.stderr.read()
        while not lines[-1].startswith("try: "):
            lines.append(proc.stdout.readline())
        yield lines[0].rsplit(" on ", 1)[1].strip(), lines
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def test_pumpctl_sim_offers_the_simulators_options(tmp_path):
    """Issue 22: the reservoir's size and fill, the battery, a head that moves another volume and
    storage with power cuts were the simulator's, out of pumpctl sim's reach."""
    with pumpctl_sim(
        "--reservoir", "35 mL", "--reservoir-size", "40", "--battery", "120", "--true-step-pl", "54000"
    ) as (
        port,
        _lines,
    ):
        with Pump(port) as pump:
            state = pump.sim_state()
            therapy = pump.therapy()
        assert state.true_step_volume_pl == 54_000 and state.battery_permille == 120
        assert therapy.sensor_nl is not None and abs(therapy.sensor_nl - 35_000_000) < 100_000
    storage = tmp_path / "pump-files"
    with pumpctl_sim("--storage", str(storage)) as (port, lines):
        assert f"its files are in {storage} (start it again on them to resume)\n" in lines
        assert pumpctl("--port", port, "program", "--rate", "1 mL/h", "--yes").returncode == 0
        assert pumpctl("--port", port, "advance", "1h").returncode == 0
        first_id = next(ln for ln in lines if ln.startswith("device id ")).split()[2].rstrip(";")
    with pumpctl_sim("--storage", str(storage)) as (port, lines):  # the pump resumes from its files
        with Pump(port) as pump:
            status = pump.status()
            assert pump.hello().device_id == first_id  # the same pump, its keys kept (issue 23, re-tried)
        assert (status.mode, status.rate_nl_per_day) == ("continuous", 24_000_000) and status.steps > 0
        assert f"device id {first_id}; its keys are in the config file\n" in lines
        assert pumpctl("--port", port, "stop").returncode == 0  # and its key still opens a session


@pytest.mark.parametrize(
    "options, message",
    [
        (
            ["--reservoir", "50 mL"],
            "--reservoir 50 mL: more than the reservoir holds (20 mL; --reservoir-size 20 or 40)",
        ),
        (["--true-step-pl", "5"], "--true-step-pl 5: give what one step really moves, 26041 to 104166 pL"),
        (["--cut-after-bytes", "500"], "--cut-after-bytes needs --storage DIR"),
        (["--battery", "1001"], "--battery 1001: give the cell's charge at boot, 0 to 1000 permille"),
        (["--board", "rp2_pico"], "argument --board: invalid choice: 'rp2_pico' (choose from 'sim')"),
        (["--storage", "/proc/version"], "--storage /proc/version: not a folder"),
        (["--storage", "/proc/nosuch/pump"], "--storage /proc/nosuch/pump: "),
    ],
)
def test_a_wrong_sim_option_is_one_line_and_no_simulator_starts_nor_keys_are_saved(options, message):
    before = config.config_path().read_text() if config.config_path().exists() else None
    out = pumpctl("sim", *options, timeout=20)
    assert out.returncode == 2 and out.stdout == ""
    assert message in out.stderr and "Traceback" not in out.stderr
    after = config.config_path().read_text() if config.config_path().exists() else None
    assert after == before


def test_pumpctl_sim_says_its_firmware_was_killed_and_by_which_signal():
    """Issue 22: a killed simulator's firmware was reported by its last stderr line alone."""
    proc = subprocess.Popen([PUMPCTL, "sim"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert " on /dev/" in proc.stdout.readline()
        children = [
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and (p / "stat").exists() and _ppid(p) == proc.pid
        ]
        firmware = [pid for pid in children if "micropython" in (Path("/proc") / str(pid) / "cmdline").read_text()]
        assert len(firmware) == 1, children
        os.kill(firmware[0], signal.SIGKILL)
        _out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 4  # EXIT_SIM
    assert err.startswith("the simulated firmware stopped: killed by signal 9 (SIGKILL)"), err


def _ppid(proc_dir: Path) -> int:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def test_keys_forget_drops_simulators_keys_or_a_named_pumps_and_asks_first(tmp_path, monkeypatch):
    """Issue 23: the keys of every dead simulator piled up in the config with no way to forget them."""
    env = dict(os.environ, PUMPCTL_CONFIG=str(tmp_path / "config.toml"))
    for device_id in ("sim-0000aaaa", "sim-0000bbbb", "rp2_pico-12345678"):
        config.save_keys(config.new_keys(device_id), tmp_path / "config.toml")

    def run(*args):
        return subprocess.run([PUMPCTL, *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)

    out = run("keys", "forget", "rp2_pico-12345678")  # a real pump's: asked first, and no terminal to ask on
    assert out.returncode == 2 and "not forgotten: add --yes" in out.stderr
    out = run("keys", "forget", "nosuch-1")
    assert out.returncode == 2 and "this host holds no keys for nosuch-1" in out.stderr
    monkeypatch.setenv("PUMPCTL_CONFIG", str(tmp_path / "config.toml"))  # the simulator below registers there
    with Simulator(register=True) as running:  # a simulator still running keeps its keys (issue 23, re-tried)
        out = run("keys", "forget", "--simulators", "--yes")
        assert out.returncode == 0 and out.stdout.strip() == (
            "forgot the keys of 2 pump(s): sim-0000aaaa, sim-0000bbbb "
            f"(kept those of the running simulator(s) {running.keys.device_id})"
        )
    assert sorted(config.known_devices(tmp_path / "config.toml")) == ["rp2_pico-12345678", running.keys.device_id]
    config.forget_keys([running.keys.device_id], tmp_path / "config.toml")
    out = run("--json", "keys", "forget", "rp2_pico-12345678", "--yes")
    assert out.returncode == 0 and json.loads(out.stdout)["forgotten"] == ["rp2_pico-12345678"]
    assert config.known_devices(tmp_path / "config.toml") == {}
