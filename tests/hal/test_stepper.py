"""hal/stepper.py: the step/dir drivers' configuration, its errors naming the chip."""

from pathlib import Path

import pytest

from hal.stepper import StepperConfig

ROOT = Path(__file__).resolve().parents[2]


# -- stepper configuration ----------------------------------------------------


def test_stepper_config_errors_name_the_chip():
    with pytest.raises(ValueError, match=r"^microsteps must be one of 1, 2, 4, 8, 16 for an A4988, not 3$"):
        StepperConfig("A4988", 3, 2000)
    with pytest.raises(ValueError, match=r"^microsteps must be one of 8, 16, 32, 64 for a TMC2209, not 4$"):
        StepperConfig("TMC2209", 4, 2000)
    with pytest.raises(ValueError, match="must be one of A4988, DRV8825, TMC2209, not 'L298'"):
        StepperConfig("L298", 1, 2000)
    with pytest.raises(
        ValueError,
        match="step_motion_us 3 us is too short for a DRV8825: one step needs at least 1900 ns high plus 1900 ns low",
    ):
        StepperConfig("DRV8825", 32, 3)
    c = StepperConfig("DRV8825", 32, 4)
    assert c.ms_levels == (1, 0, 1) and c.dir_setup_ns == 650
    with pytest.raises(
        ValueError, match="STEP high time 1000 ns from a timer is too short for a DRV8825: it needs at least 1900 ns"
    ):
        c.check_pulse(1000, 5000, "a timer")
    with pytest.raises(ValueError, match="STEP low time 100 ns"):
        c.check_pulse(2000, 100, "a timer")
