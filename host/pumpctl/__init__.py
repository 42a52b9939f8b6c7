"""pumpctl: program, watch and test a drug pump over USB serial.

    from pumpctl import Pump
    with Pump("/dev/ttyACM0") as pump:
        print(pump.status())
"""

from .client import Pump, PumpInfo, RateSet, SimState, Status, expected_steps
from .errors import LinkError, NoReply, PumpError, PumpRefused, SimulatorError, UsageError
from .sim import Simulator

__version__ = "0.1.0"

__all__ = [
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
]
