"""Lab balance drivers over pyserial: Mettler-Toledo MT-SICS and Sartorius SBI.

A gravimetric check of the pump weighs what it delivered, so the balance is
read as a Decimal in grams, whatever unit it prints, and every failure is a
BalanceError that says what happened and what to do.

    with open_balance("/dev/ttyUSB0") as balance:
        balance.tare()
        reading = balance.read(stable=True)
        print(reading.mass_g, reading.stable)

The drivers: base.py (what every balance shares), mtsics.py and sbi.py, each with what is
verified and what is assumed of its protocol; the simulated MT-SICS balance that the tests and
`pumpctl sim` use is pumpctl.simbalance.
"""

from __future__ import annotations

from ..errors import BalanceError
from .base import PROTOCOLS, Balance, Reading
from .mtsics import MtSicsBalance
from .sbi import SbiBalance

__all__ = ["Balance", "BalanceError", "MtSicsBalance", "Reading", "SbiBalance", "open_balance"]


def open_balance(port: str, protocol: str = "mt-sics", timeout: float = 2.0) -> Balance:
    """A balance on port speaking protocol ("mt-sics" or "sbi"), with default serial settings."""
    if protocol == "mt-sics":
        return MtSicsBalance(port, timeout=timeout)
    if protocol == "sbi":
        return SbiBalance(port, timeout=timeout)
    raise ValueError(f"unknown balance protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
