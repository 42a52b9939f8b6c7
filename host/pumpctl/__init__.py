"""pumpctl: program, watch and test a drug pump over USB serial.

from pumpctl import Pump
with Pump("/dev/ttyACM0") as pump:
    print(pump.status())
"""

from .balance import Balance, MtSicsBalance, Reading, SbiBalance, open_balance
from .benchtest import BenchConfig, BenchInterrupted, BenchReport, BenchTest, run_many
from .client import Pump, expected_steps, pump_clock
from .config import PumpKeys
from .errors import (
    AuthError,
    BalanceError,
    ConfigError,
    LinkError,
    NoReply,
    PumpError,
    PumpRefused,
    SimulatorError,
    UsageError,
)
from .replies import PumpInfo, RateSet, SimState, Status, Telemetry
from .sim import Simulator

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "Balance",
    "BalanceError",
    "BenchConfig",
    "BenchInterrupted",
    "BenchReport",
    "BenchTest",
    "MtSicsBalance",
    "Reading",
    "SbiBalance",
    "open_balance",
    "run_many",
    "ConfigError",
    "PumpKeys",
    "Telemetry",
    "LinkError",
    "NoReply",
    "Pump",
    "PumpError",
    "PumpInfo",
    "PumpRefused",
    "RateSet",
    "SimState",
    "Simulator",
    "SimulatorError",
    "Status",
    "UsageError",
    "expected_steps",
    "pump_clock",
]
