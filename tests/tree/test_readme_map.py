"""The README's map of the tree matches the tree: a newcomer who reads it finds every folder and every firmware
module where it says, and nothing it names is gone."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def map_block():
    """The README's map: the code block that begins with the firmware folder's line."""
    text = (ROOT / "README.md").read_text()
    start = text.index("```\nfirmware/ ")
    return text[start + 4 : text.index("```", start + 4)]


def sections():
    """{top-level folder: the lines of its part of the map}."""
    parts = {}
    folder = None
    for line in map_block().splitlines():
        head = re.match(r"([a-z]+)/ ", line)
        if head:
            folder = head.group(1)
            parts[folder] = []
        parts[folder].append(line)
    return parts


def words(lines):
    return set(re.findall(r"[a-z_0-9]+/?", " ".join(lines)))


def test_every_top_level_folder_is_in_the_map_and_nothing_else():
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
    folders -= {"node_modules"}  # made by make setup, not part of the tree
    assert set(sections()) == folders


def test_every_firmware_module_and_family_is_named_and_every_named_one_exists():
    lines = sections()["firmware"]
    named = words(lines)
    modules = {p.stem for p in (ROOT / "firmware").glob("*.py")} - {"__init__"}
    families = {p.stem for p in (ROOT / "firmware" / "commands").glob("*.py")} - {"__init__"}
    assert sorted(modules - named) == []
    assert sorted(families - named) == []
    # the first word of each row is a module or a folder of firmware/
    firsts = {m.group(1) for m in (re.match(r" {12}([a-z_]+/?) ", line) for line in lines[1:]) if m}
    assert sorted(f for f in firsts if not (ROOT / "firmware" / (f if f.endswith("/") else f + ".py")).exists()) == []


def test_the_folders_named_inside_hal_host_and_tests_exist():
    expect = {"hal": ROOT / "hal", "host": ROOT / "host" / "pumpctl", "tests": ROOT / "tests"}
    for section, base in expect.items():
        inner = {w[:-1] for w in words(sections()[section][1:]) if w.endswith("/")}
        assert inner, section
        assert sorted(name for name in inner if not (base / name).is_dir()) == [], section
    tests_folders = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and not p.name.startswith((".", "__"))}
    assert tests_folders <= {w[:-1] for w in words(sections()["tests"])}
