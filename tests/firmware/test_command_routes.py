"""The boot routes commands without importing their families (firmware/commands/__init__.py _ROUTES).

_ROUTES lists each family's request codes and which of them save, so that a boot imports no family: each
family's code, and the names it interns for good, comes with its first command and goes at a command of
another (23 KB less garbage at a boot and 19 KB at a restart, on the 32-bit VM, 2026-12-07). It must say
what each family's COMMANDS rows say, code for code, in their order."""

import importlib

import pytest
from vms import HEAP32_PARTS, MP_DIR, run_wasm32

from firmware import commands
from firmware.commands import _ROUTES, FAMILIES, _routes_of

ALL = FAMILIES + ("sim",)  # the sim board adds its family (app.py)


def routes(name):
    at = _routes_of(name)
    return [(b & 0x7F, bool(b & 0x80)) for b in _ROUTES[at + 1 : at + 1 + _ROUTES[at]]]


@pytest.mark.parametrize("name", ALL)
def test_a_family_s_routes_are_its_rows(name):
    rows = importlib.import_module(f"firmware.commands.{name}").COMMANDS
    assert routes(name) == [(code, bool(saves)) for code, _handler, saves in rows]


def test_the_table_holds_every_family_and_nothing_more():
    at = 0
    for _ in ALL:
        at += 1 + _ROUTES[at]
    assert at == len(_ROUTES)
    codes = [code for name in ALL for code, _ in routes(name)]
    assert len(codes) == len(set(codes))  # no code served by two families
    with pytest.raises(ValueError):
        _routes_of("no-such-family")


def test_a_board_with_some_families_routes_only_theirs():
    """A board may serve fewer families (COMMAND_FAMILIES): a code of another gets no handler."""
    import types

    from firmware import codec

    pump = types.SimpleNamespace(staging=commands.Staging())
    served = commands.Commands(pump, ("status", "stop"), saving=False)
    assert served.get(codec.STOP) is not None
    assert served.get(codec.STAGE) is None and served.get(codec.SIM_STATE) is None


@pytest.mark.micropython32
def test_a_booted_pump_holds_no_family_and_then_one_at_a_time():
    out = run_wasm32(MP_DIR / "routes32.py", *HEAP32_PARTS).splitlines()
    assert out[:4] == ["boot:", "status: status", "therapy: alarms", "auth-begin: session"], out
