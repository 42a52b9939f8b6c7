"""The layers stay clean: imports go boards -> hal -> firmware, only hal/
touches the hardware, the core does no I/O, and the host reaches into the
firmware only through the shared wire codec."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARDWARE = {"machine", "rp2", "esp32", "network", "bluetooth"}
IO = HARDWARE | {"sys", "os", "select", "socket", "time", "asyncio", "io", "termios"}
# The pure core: integer maths, parsing and encoding, no I/O at all.
CORE = [
    "scheduler",
    "timebase",
    "codec",
    "framing",
    "auth",
    "errors",
    "link",
    "store",
    "program_items",
    "program_check",
]


def imports(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def top(names):
    return {n.split(".")[0] for n in names}


def py_files(folder):
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", ["firmware", "boards", "host"])
def test_only_hal_touches_the_hardware(folder):
    for path in py_files(folder):
        assert not top(imports(path)) & HARDWARE, f"{path.relative_to(ROOT)} imports hardware modules"


@pytest.mark.parametrize("module", CORE)
def test_the_firmware_core_does_no_io(module):
    found = top(imports(ROOT / "firmware" / f"{module}.py"))
    assert not found & IO, f"firmware/{module}.py imports {found & IO}"
    assert not found & {"hal", "boards"}


def test_firmware_imports_no_driver_except_where_main_boots_a_board():
    for path in py_files("firmware"):
        if path.name != "main.py":
            assert not top(imports(path)) & {"hal", "boards"}, path.name


def test_hal_does_not_depend_on_boards():
    for path in py_files("hal"):
        assert "boards" not in top(imports(path)), path.name


def firmware_modules(path):
    """Names of the firmware, hal and boards modules a file imports, however it spells it."""
    ours = {"firmware", "hal", "boards"}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] in ours}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ours:
            if node.module in ours:
                found |= {f"{node.module}.{a.name}" for a in node.names}
            else:
                found.add(node.module)
    return found


def test_the_host_uses_only_the_shared_codec_and_its_authentication_from_the_firmware():
    """The wire's one definition: messages and their fields (codec), the fields packed into a
    payload and the payload in a frame (framing), and the proofs and MACs over them (auth, keyring); and
    the pump's refusal (errors.Refusal), which pumpctl's own parsers raise too.
    Nothing else of the firmware's insides: pumpctl reads quantities and
    programs itself (pumpctl.units, pumpctl.program_text) and sends numbers."""
    allowed = {"firmware", "firmware.codec", "firmware.auth"}  # the bare package: sim.py finds its folder
    allowed |= {"firmware.framing"}  # the codec's messages packed into frames
    allowed |= {"firmware.keyring"}  # auth's keys at rest (the provisioning file) and a key change's mask
    allowed |= {"firmware.errors"}
    # The factory library's one definition: pumpctl shows its source notes beside the numbers the pump holds.
    allowed |= {"firmware.druglib"}
    for path in py_files("host"):
        stray = firmware_modules(path) - allowed
        assert not stray, f"{path.name} imports {stray}"


def test_the_layer_check_sees_every_spelling_of_an_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from firmware import codec, app\nimport hal.sim.clock\nfrom firmware.guard import DoseGuard\n")
    assert firmware_modules(probe) == {"firmware.codec", "firmware.app", "hal.sim.clock", "firmware.guard"}
