"""The simulated board's monitored parts and its fault plan (hal/sim): each
fault's physical effect on the motor, reservoir, battery and monitors, the
exact pump time a fault fires at, the sensor's noise, the battery's life over
years, and the watchdog biting (a real SIGKILL) only after its timeout.
The parts on CPython with the real sim clock; the whole board, the
allocation-free paths under a heap lock, and the watchdog's bite on the
MicroPython unix port, and the small-int bounds on the 32-bit VM."""

import subprocess

import pytest
from vms import MP_DIR, ROOT, run_unix, run_wasm32

import boards.sim as board
from firmware import codec
from firmware.scheduler import STEP_RADIX
from hal.sim import battery as battery_model
from hal.sim.battery import SimBattery
from hal.sim.clock import MAX_JUMP_US, SimClock
from hal.sim.faults import MAX_CLOCK_JUMP_S, MAX_PENDING, FaultPlan
from hal.sim.file_storage import CUT_SIGNAL
from hal.sim.monitors import TRIP_STEPS, SimEncoder, SimOcclusion, SimStall
from hal.sim.reservoir import NOISE_NL, SimReservoir
from hal.sim.stepper import SimStepper
from hal.sim.watchdog import RESET_CAUSE_FILE, SimWatchdog, read_reset_cause

M = board.STEP_MOTION_US
PL = board.STEP_VOLUME_PL
S = 1_000_000  # us per second
DAY_US = 86_400 * S
FULL_NL = 10_000_000  # 10 mL in the reservoir for most tests


class Parts:
    """The sim board's models, wired as boards/sim.Hardware wires them (which needs the
    MicroPython unix port for its serial link; these run on CPython too)."""

    def __init__(self, content_nl=FULL_NL, seed=1, permille=1000, storage_dir=None):
        self.clock = SimClock(0)
        self.motor = SimStepper(PL, self.clock, M)
        self.reservoir = SimReservoir(self.motor, board.RESERVOIR_ML * 1_000_000, content_nl, seed)
        self.battery = SimBattery(self.clock, self.motor, permille)
        self.stall = SimStall()
        self.encoder = SimEncoder(self.motor)
        self.occlusion = SimOcclusion(self.motor)
        self.faults = FaultPlan(self.clock, self.motor, self.reservoir, self.battery, self.stall)
        self.watchdog = SimWatchdog(self.clock, self.faults, board.WATCHDOG_US, storage_dir)
        self.issued = 0  # the firmware's own count of the steps it gave the motor

    def step(self, n=1):
        """Issue n steps and let them finish (the firmware's rhythm: one step, then time passes)."""
        self.motor.step(n)
        self.issued += n
        self.clock.advance(n * M)

    def now_us(self):
        """Pump time since the clock started, as one number (test side: unbounded ints)."""
        return self.clock.wraps * (1 << 30) + self.clock.ticks_us()

    def advance(self, us):
        while us:
            step = min(us, MAX_JUMP_US)
            self.clock.advance(step)
            us -= step


@pytest.fixture(autouse=True)
def power_cuts(monkeypatch):
    """A bite in these in-process tests must not SIGKILL pytest: power_cut() only records it here
    (the real one is tested in a subprocess below)."""
    import hal.sim.file_storage

    cuts = []
    monkeypatch.setattr(hal.sim.file_storage, "power_cut", lambda: cuts.append(1))
    return cuts


def moved_nl(steps):
    return steps * PL // 1000


# -- the fault plan: kinds, values, timing ---------------------------------------


def test_an_unknown_kind_is_refused_naming_the_kinds():
    p = Parts()
    with pytest.raises(ValueError, match="0 motor, 1 stall, 2 occlusion.*9 leak"):
        p.faults.schedule(10, 0, 0)


@pytest.mark.parametrize(
    "kind, value",
    [
        (codec.FAULT_STALL, 2),
        (codec.FAULT_OCCLUSION, -1),
        (codec.FAULT_CLOCK_JUMP, MAX_CLOCK_JUMP_S + 1),
        (codec.FAULT_BATTERY, 1001),
        (codec.FAULT_FILL, board.RESERVOIR_ML * 1_000_000 + 1),
        (codec.FAULT_LEAK, -5),
    ],
)
def test_a_bad_value_is_refused_at_once_even_for_later(kind, value):
    p = Parts()
    with pytest.raises(ValueError):
        p.faults.schedule(kind, 10 * S, value)
    assert p.faults.pending() == []


def test_a_clock_jump_above_500_s_is_refused_and_500_s_is_not():
    p = Parts()
    with pytest.raises(ValueError, match="0..500 s"):
        p.faults.schedule(codec.FAULT_CLOCK_JUMP, 0, 501)
    before = p.clock.ticks_us()
    p.faults.schedule(codec.FAULT_CLOCK_JUMP, 0, 500)
    assert p.clock.ticks_diff(p.clock.ticks_us(), before) == 500 * S  # visible to ticks_diff (< 2**29)


def test_at_most_16_faults_may_be_pending():
    p = Parts()
    for i in range(MAX_PENDING):
        p.faults.schedule(codec.FAULT_BATTERY, (i + 1) * S, 900)
    with pytest.raises(ValueError, match="at most 16"):
        p.faults.schedule(codec.FAULT_BATTERY, 100 * S, 900)
    p.faults.schedule(codec.FAULT_BATTERY, 0, 900)  # now: not pending, so allowed
    assert MAX_PENDING == 16


def record_fires(p):
    """Make the plan note the pump time each fault is applied at."""
    fires = []
    apply = p.faults._apply

    def recording(kind, value):
        fires.append((kind, value, p.now_us()))
        apply(kind, value)

    p.faults._apply = recording
    return fires


def test_a_fault_90_s_ahead_fires_at_that_pump_time_within_one_clock_jump():
    p = Parts()
    fires = record_fires(p)
    start = p.now_us()
    p.faults.schedule(codec.FAULT_STALL, 90 * S, 1)
    p.clock.advance(MAX_JUMP_US)  # one jump of 268 s, no step in between
    assert fires == [(codec.FAULT_STALL, 1, start + 90 * S)]
    assert p.now_us() == start + MAX_JUMP_US  # the jump went on after it


def test_a_fault_fires_exactly_at_its_time_not_a_microsecond_early():
    p = Parts()
    p.faults.schedule(codec.FAULT_STALL, 90 * S, 1)
    p.clock.advance(90 * S - 1)
    assert not p.motor.jammed and not p.stall.stalled()
    p.clock.advance(1)
    assert p.motor.jammed and p.stall.stalled()


def test_faults_fire_in_time_order_and_equal_times_in_the_order_scheduled_across_wraps():
    p = Parts()
    fires = record_fires(p)
    start = p.now_us()
    p.faults.schedule(codec.FAULT_BATTERY, 3_000 * S, 700)  # 50 min: across about three tick wraps
    p.faults.schedule(codec.FAULT_BATTERY, 1_000 * S, 900)
    p.faults.schedule(codec.FAULT_BATTERY, 3_000 * S, 600)
    p.faults.schedule(codec.FAULT_TASK, 1_000 * S, 0)
    p.advance(4_000 * S)
    assert fires == [
        (codec.FAULT_BATTERY, 900, start + 1_000 * S),
        (codec.FAULT_TASK, 0, start + 1_000 * S),
        (codec.FAULT_BATTERY, 700, start + 3_000 * S),
        (codec.FAULT_BATTERY, 600, start + 3_000 * S),
    ]
    assert p.clock.wraps >= 3 and p.faults.fired == 4


def test_a_fault_a_year_ahead_fires_then():
    p = Parts()
    fires = record_fires(p)
    start = p.now_us()
    year = 365 * DAY_US
    p.faults.schedule(codec.FAULT_LEAK, year, 1_000)
    p.advance(year - 1)
    assert fires == []
    p.advance(2)
    assert fires == [(codec.FAULT_LEAK, 1_000, start + year)]


def test_a_clock_jump_fires_the_faults_within_it_on_the_way():
    p = Parts()
    fires = record_fires(p)
    start = p.now_us()
    p.faults.schedule(codec.FAULT_BATTERY, 100 * S, 500)
    p.faults.schedule(codec.FAULT_CLOCK_JUMP, 0, 400)
    assert fires == [(codec.FAULT_CLOCK_JUMP, 400, start), (codec.FAULT_BATTERY, 500, start + 100 * S)]
    assert p.now_us() == start + 400 * S and p.battery.true_permille() == 499


# -- each fault's physical effect -------------------------------------------------


def test_motor_fault_the_head_never_turns_again():
    p = Parts()
    p.step(10)
    p.faults.schedule(codec.FAULT_MOTOR, 0, 0)
    assert p.motor.failed
    p.step(5)
    assert p.reservoir.true_nl() == FULL_NL - moved_nl(10)
    assert (p.motor.steps_hi, p.motor.steps_lo) == (0, 15)  # issued (the tally's count) ...
    assert (p.motor.turned_hi, p.motor.turned_lo) == (0, 10)  # ... but not turned
    assert p.encoder.missing(p.issued) == 5 - 1  # the tolerance: one pulse
    assert not p.stall.stalled()


def test_stall_no_turn_no_fluid_latched_until_cleared():
    p = Parts()
    p.step(4)
    p.faults.schedule(codec.FAULT_STALL, 0, 1)
    assert p.stall.stalled()
    p.step(6)
    assert p.reservoir.true_nl() == FULL_NL - moved_nl(4)
    assert p.encoder.missing(p.issued) == 6 - 1
    p.faults.schedule(codec.FAULT_STALL, 0, 0)
    assert p.stall.stalled()  # latched: seen since the last clear()
    p.stall.clear()
    assert not p.stall.stalled()
    p.faults.schedule(codec.FAULT_STALL, 0, 1)
    p.stall.clear()
    assert p.stall.stalled()  # the line is active now: clear() forgets only what was seen (as StallInput)
    p.faults.schedule(codec.FAULT_STALL, 0, 0)
    assert not p.stall.stalled()
    p.encoder.restart(p.issued)
    p.step(3)
    assert p.reservoir.true_nl() == FULL_NL - moved_nl(7) and p.encoder.missing(p.issued) == 0


def test_occlusion_turns_without_fluid_trips_after_8_steps_and_clears_at_once():
    p = Parts()
    p.step(2)
    p.faults.schedule(codec.FAULT_OCCLUSION, 0, 1)
    for _ in range(TRIP_STEPS - 1):
        p.step()
        assert not p.occlusion.occluded()
    p.motor.step(1)  # the 8th, still in motion: the pressure has not risen yet
    assert not p.occlusion.occluded()
    p.clock.advance(M)
    p.issued += 1
    assert p.occlusion.occluded() and TRIP_STEPS == 8
    assert p.encoder.missing(p.issued) == 0  # the head turned
    assert not p.stall.stalled()
    p.step(5)
    assert p.reservoir.true_nl() == FULL_NL - moved_nl(2)  # what pushed against the block stays in the reservoir
    p.faults.schedule(codec.FAULT_OCCLUSION, 0, 0)
    assert not p.occlusion.occluded()
    p.step(3)
    assert p.reservoir.true_nl() == FULL_NL - moved_nl(5)  # the blocked steps are not delivered later either


def test_encoder_fault_no_pulses_no_fluid_no_stall_signal():
    p = Parts()
    p.step(3)
    p.faults.schedule(codec.FAULT_ENCODER, 0, 1)
    p.step(4)
    assert p.encoder.missing(p.issued) == 3
    assert not p.stall.stalled() and not p.occlusion.occluded()
    assert p.reservoir.true_nl() == FULL_NL - moved_nl(3)
    p.faults.schedule(codec.FAULT_ENCODER, 0, 0)
    p.encoder.restart(p.issued)
    p.step(2)
    assert p.encoder.missing(p.issued) == 0 and p.reservoir.true_nl() == FULL_NL - moved_nl(5)


def test_clock_jump_the_ticks_jump_with_no_grant_and_the_watchdog_does_not_bite(power_cuts):
    p = Parts()
    p.watchdog.start()
    p.advance(board.WATCHDOG_US - 60 * S)  # fed long ago: a minute left
    before = p.clock.ticks_us()
    p.faults.schedule(codec.FAULT_CLOCK_JUMP, 0, 300)  # its own oscillator saw none of the 300 s
    assert p.clock.ticks_diff(p.clock.ticks_us(), before) == 300 * S
    assert p.clock.granted_us == 0 and p.watchdog.bites == 0 and power_cuts == []
    p.advance(60 * S - 1)
    assert power_cuts == []
    p.advance(1)  # the minute it had left, in its own time
    assert power_cuts == [1]


def test_sensor_stuck_keeps_its_last_reading_whatever_moves():
    p = Parts()
    first = p.reservoir.volume_nl(1000)
    p.faults.schedule(codec.FAULT_SENSOR_STUCK, 0, 1)
    p.step(200)  # 10.4 uL out: more than the noise band
    p.faults.schedule(codec.FAULT_LEAK, 0, 1_000_000)
    assert [p.reservoir.volume_nl(1000) for _ in range(5)] == [first] * 5
    p.faults.schedule(codec.FAULT_SENSOR_STUCK, 0, 0)
    again = [p.reservoir.volume_nl(1000) for _ in range(20)]
    assert all(abs(v - p.reservoir.true_nl()) <= NOISE_NL for v in again) and len(set(again)) > 1


def test_a_sensor_stuck_before_any_reading_freezes_where_it_is():
    p = Parts()
    p.faults.schedule(codec.FAULT_SENSOR_STUCK, 0, 1)
    p.step(300)
    assert p.reservoir.volume_nl(1000) == p.reservoir.volume_nl(1000)
    assert abs(p.reservoir.volume_nl(1000) - FULL_NL) <= NOISE_NL


def test_battery_fault_drops_the_charge_at_once():
    p = Parts()
    assert p.battery.soc_permille() == 1000 and p.battery.voltage_mv() == 4200
    p.faults.schedule(codec.FAULT_BATTERY, 0, 150)
    assert p.battery.soc_permille() == 150 and p.battery.true_permille() == 150
    assert 3690 < p.battery.voltage_mv() < 3730  # between the curve's 100 and 200 permille points
    p.faults.schedule(codec.FAULT_BATTERY, 0, 0)
    assert p.battery.voltage_mv() == 3270


def test_task_fault_the_next_battery_read_raises_once():
    p = Parts()
    p.faults.schedule(codec.FAULT_TASK, 0, 0)
    assert p.battery.true_permille() == 1000  # SIM_STATE's read does not raise
    with pytest.raises(RuntimeError, match="injected failure of the monitoring task"):
        p.battery.soc_permille()
    assert p.battery.soc_permille() == 1000


def test_fill_sets_the_contents_and_is_refused_above_the_capacity():
    p = Parts(content_nl=0)
    assert p.reservoir.true_nl() == 0
    p.step(10)  # the head turns on an empty reservoir: nothing to lose
    p.faults.schedule(codec.FAULT_FILL, 0, 18_000_000)
    assert p.reservoir.true_nl() == 18_000_000
    p.step(100)
    assert p.reservoir.true_nl() == 18_000_000 - moved_nl(100)
    with pytest.raises(ValueError, match="20 mL"):
        p.faults.schedule(codec.FAULT_FILL, 0, 20_000_001)
    p.faults.schedule(codec.FAULT_FILL, 0, 20_000_000)
    assert p.reservoir.true_nl() == 20_000_000


def test_leak_loses_fluid_at_once_down_to_empty():
    p = Parts()
    p.step(10)
    p.faults.schedule(codec.FAULT_LEAK, 0, 2_000_000)
    assert p.reservoir.true_nl() == FULL_NL - moved_nl(10) - 2_000_000
    assert p.motor.steps_lo == 10  # none of it through the pump
    p.faults.schedule(codec.FAULT_LEAK, 0, 50_000_000)
    assert p.reservoir.true_nl() == 0 and p.reservoir.volume_nl(1000) >= 0


# -- the motor's turning model -----------------------------------------------------


def test_a_step_in_motion_when_the_rotor_jams_does_not_turn_and_a_halt_keeps_the_counts_apart():
    p = Parts()
    p.motor.step(3)  # in motion
    p.faults.schedule(codec.FAULT_STALL, 0, 1)
    assert p.motor.turned_lo == 0 and p.motor.steps_lo == 3
    p.motor.halt()  # drops the three: issued no more, and they had not turned
    assert (p.motor.steps_lo, p.motor.turned_lo, p.motor.dropped) == (0, 0, 3)
    p.faults.schedule(codec.FAULT_STALL, 0, 0)
    p.motor.step(2)
    p.clock.advance(M // 2)
    p.motor.halt()  # one half way, one queued: both dropped, neither turned
    assert (p.motor.steps_lo, p.motor.turned_lo) == (0, 0)
    assert p.reservoir.true_nl() == FULL_NL


def test_steps_queued_when_a_jam_clears_turn():
    p = Parts()
    p.faults.schedule(codec.FAULT_STALL, 0, 1)
    p.motor.step(4)
    p.clock.advance(M)  # one finished while jammed: lost
    p.faults.schedule(codec.FAULT_STALL, 0, 0)
    p.clock.advance(3 * M)
    assert p.motor.turned_lo == 3 and p.reservoir.true_nl() == FULL_NL - moved_nl(3)


def test_the_turned_count_carries_into_its_high_word():
    p = Parts()
    p.motor.turned_lo = STEP_RADIX - 1
    p.motor.steps_lo = STEP_RADIX - 1
    p.motor.step(2)
    assert (p.motor.turned_hi, p.motor.turned_lo) == (1, 1)
    p.motor.halt()
    assert (p.motor.turned_hi, p.motor.turned_lo) == (0, STEP_RADIX - 1)


def test_the_encoder_allows_the_step_in_motion_and_counts_only_finished_steps():
    p = Parts()
    p.motor.step(1)
    p.issued += 1
    assert p.encoder.pulses() == 0 and p.encoder.missing(p.issued) == 0  # one in motion: the tolerance
    p.motor.step(1)
    p.issued += 1
    assert p.encoder.missing(p.issued) == 1
    p.clock.advance(2 * M)
    assert p.encoder.pulses() == 2 and p.encoder.missing(p.issued) == 0


def test_the_encoder_works_from_a_base_above_2_to_the_30():
    p = Parts()
    base = 3 << 30  # the firmware's exact count after a long run
    p.encoder.restart(base)
    p.step(5)
    assert p.encoder.missing(base + 5) == 0
    assert p.encoder.missing(base + 8) == 2


# -- the sensor's noise ------------------------------------------------------------


def test_noise_stays_within_10_uL_is_centred_and_repeats_per_seed():
    p = Parts()
    readings = [p.reservoir.volume_nl(1000) - FULL_NL for _ in range(5_000)]
    assert max(readings) <= NOISE_NL and min(readings) >= -NOISE_NL
    assert max(readings) > NOISE_NL * 9 // 10 and min(readings) < -NOISE_NL * 9 // 10  # it uses the band
    assert abs(sum(readings) // len(readings)) < 500  # centred (sigma 5.8 uL / sqrt(5000) = 82 nL)
    var = sum(r * r for r in readings) // len(readings)
    assert 4_500**2 < var < 7_000**2  # about 5.8 uL
    assert [Parts().reservoir.volume_nl(1000) for _ in range(3)] == [FULL_NL + r for r in readings[:1]] * 3
    other = Parts(seed=7).reservoir
    assert [other.volume_nl(1000) - FULL_NL for _ in range(10)] != readings[:10]


def test_a_reading_is_never_below_zero():
    p = Parts(content_nl=0)
    assert min(p.reservoir.volume_nl(1000) for _ in range(500)) == 0


def test_the_density_is_checked():
    p = Parts()
    with pytest.raises(ValueError, match="density"):
        p.reservoir.volume_nl(0)


# -- the battery over years --------------------------------------------------------


def test_a_full_cell_lasts_about_7_years_at_9600_steps_a_day():
    """0.5 mL/day (9600 steps of 52.083 nL): the cell empties on the day the model's constants say,
    between 6.5 and 7.5 years."""
    per_day_u = DAY_US // battery_model.BASE_US_PER_U + 9_600 * battery_model.STEP_U
    expect_days = battery_model.FULL_U // per_day_u
    assert 6.5 * 365.25 < expect_days < 7.5 * 365.25
    p = Parts(content_nl=0)
    days = 0
    while p.battery.charge_u() > 0:
        p.motor.step(9_600)  # a day's steps, moved in 19.2 s of the day
        p.advance(DAY_US)
        days += 1
    assert expect_days <= days <= expect_days + 1
    assert p.battery.soc_permille() == 0 and p.battery.voltage_mv() == 3270


def test_the_charge_is_exact_after_10_years_read_once_or_daily():
    ten_years = 3_652 * DAY_US + DAY_US // 2
    steps = 9_600 * 100  # a hundred days' steps early on, then idle
    expect_u = battery_model.FULL_U - ten_years // battery_model.BASE_US_PER_U - steps * battery_model.STEP_U
    assert expect_u > 0
    once = Parts(content_nl=0)
    daily = Parts(content_nl=0)
    for p in (once, daily):
        for _ in range(100):
            p.motor.step(9_600)
            p.advance(DAY_US)
    elapsed = 100 * DAY_US
    while elapsed < ten_years:
        span = min(DAY_US, ten_years - elapsed)
        once.advance(span)
        daily.advance(span)
        daily.battery.soc_permille()
        elapsed += span
    assert once.clock.wraps > 290_000
    assert once.battery.charge_u() == daily.battery.charge_u() == expect_u
    assert once.battery.true_permille() == expect_u // 1_000_000


def test_a_cell_left_unread_for_100_years_is_empty_not_negative():
    p = Parts()
    p.clock.wraps += 3_000_000  # 100 years of wraps at once: the chunked settling stops at empty
    assert p.battery.charge_u() == 0 and p.battery.soc_permille() == 0


# -- the watchdog -------------------------------------------------------------------


def test_the_watchdog_bites_only_after_its_timeout_and_feeding_pushes_it_on(tmp_path, power_cuts):
    cuts = power_cuts
    p = Parts(storage_dir=str(tmp_path))
    assert board.WATCHDOG_US == 2 * board.MAX_SLEEP_US + 60 * S == 596_870_912
    p.advance(10 * board.WATCHDOG_US)  # not started: no bite
    p.watchdog.start()
    p.advance(board.WATCHDOG_US - 1)
    p.watchdog.feed()
    p.advance(board.WATCHDOG_US - 1)
    assert cuts == [] and p.watchdog.feeds == 1
    p.advance(1)
    assert cuts == [1] and p.watchdog.bites == 1
    assert (tmp_path / RESET_CAUSE_FILE).read_text() == "watchdog"
    assert read_reset_cause(str(tmp_path)) == "watchdog"
    assert not (tmp_path / RESET_CAUSE_FILE).exists() and read_reset_cause(str(tmp_path)) == "power"
    assert read_reset_cause(None) == "power"


def test_a_feed_before_start_does_nothing():
    p = Parts()
    p.watchdog.feed()
    assert p.watchdog.feeds == 0 and not p.watchdog.started


# -- on MicroPython: the whole board, the heap lock, the bite ----------------------

BOARD_SCRIPT = """
import boards.sim as board
from firmware import codec, tasks

hw = board.make({"reservoir-nl": "5000000", "battery-permille": "800", "seed": "3"})
print("parts", hw.reservoir.true_nl(), hw.battery.true_permille(), hw.buzzer.plays, hw.watchdog.feeds)
print("checks", hw.motor_check(), hw.clock.running(), hw.reset_cause(), hw.firmware_check())
print("sizes", hw.reservoir.capacity_nl, board.make({"reservoir-ml": "40"}).reservoir_model.capacity_nl)
print("no sensor", board.make({}).reservoir, board.make({}).reservoir_model.true_nl())
for bad in ({"reservoir-ml": "30"}, {"reservoir-nl": "20000001"}, {"motor-dead": "2"}, {"battery-permille": "1001"}):
    try:
        board.make(bad)
        print("accepted", bad)
    except ValueError:
        pass
dead = board.make({"motor-dead": "1", "clock-dead": "1"})
print("dead", dead.motor_check(), dead.clock.running())

async def main():
    await hw.buzzer.play(3)
    await hw.buzzer.play(1)
    try:
        await hw.buzzer.play(4)
    except ValueError:
        print("priority 4 refused")
    hw.buzzer.silence()
    print("buzzer", hw.buzzer.plays, hw.buzzer.priority)
    # A sleep with time granted ends exactly at a fault 90 s ahead, not at its wake-up time.
    clock = hw.clock
    hw.faults.schedule(codec.FAULT_STALL, 90_000_000, 1)
    clock.grant(200_000_000)
    t0 = clock.ticks_us()
    await clock.sleep_us(board.MAX_SLEEP_US)
    print("slept", clock.ticks_diff(clock.ticks_us(), t0), hw.stall.stalled(), clock.granted_us)
    # No grant, speed 0: a sleep waits and no time passes, so the started watchdog cannot bite.
    hw.watchdog.start()
    await clock.sleep_us(board.MAX_SLEEP_US)  # the rest of the grant: 110 s
    t0 = clock.ticks_us()
    woke = []

    async def sleeper():
        await clock.sleep_us(board.MAX_SLEEP_US)
        woke.append(1)

    tasks.create_task(sleeper())
    await tasks.sleep_ms(200)  # 200 ms of wall time: the sleeper still waits, and no pump time passed
    print("waited", clock.ticks_diff(clock.ticks_us(), t0), len(woke))

tasks.run(main())
hw.faults.schedule(codec.FAULT_MOTOR, 0, 0)
print("motor", hw.motor_check())
"""


@pytest.mark.micropython
def test_the_board_on_the_unix_port(tmp_path):
    script = tmp_path / "board_parts.py"
    script.write_text(BOARD_SCRIPT)
    lines = run_unix(script, cwd=tmp_path).splitlines()
    assert lines == [
        "parts 5000000 800 0 0",
        "checks None True power None",
        "sizes 20000000 40000000",
        "no sensor None 0",  # modelled but not fitted without --reservoir-nl
        "dead motor driver not responding False",
        "priority 4 refused",
        "buzzer 2 1",
        "slept 90000000 True 110000000",
        "waited 0 0",
        "motor motor driver not responding",
    ]


# Every call the firmware may make on a tick, and the clock's stops, with the heap locked: nothing
# allocates (on the 32-bit VM a long int would allocate, so this also shows every value stays small).
HEAPLOCK_SCRIPT = """
from heaplock import heap_lock_works, lock, unlock
from firmware import codec
from hal.sim.battery import SimBattery
from hal.sim.clock import SimClock
from hal.sim.faults import FaultPlan
from hal.sim.monitors import SimEncoder, SimOcclusion, SimStall
from hal.sim.stepper import SimStepper
from hal.sim.reservoir import SimReservoir
from hal.sim.watchdog import SimWatchdog

clock = SimClock(0)
motor = SimStepper(52_083, clock, 2_000)
reservoir = SimReservoir(motor, 20_000_000, 15_000_000, 1)
battery = SimBattery(clock, motor, 1000)
stall = SimStall()
encoder = SimEncoder(motor)
occlusion = SimOcclusion(motor)
plan = FaultPlan(clock, motor, reservoir, battery, stall)
wd = SimWatchdog(clock, plan, 596_870_912, None)
wd.start()
for i in range(MAX):
    plan.schedule(codec.FAULT_OCCLUSION, (i + 1) * 200_000_000, (i + 1) & 1)  # on, off, ...: every 200 s
N = 40_000
issued = i = acc = 0  # bound before the lock: a new global would grow the globals dict
lock()
try:
    for i in range(N):
        motor.step(1)
        issued += 1
        clock.advance(100_000 + (i & 7))  # ten steps a second; passes the faults and 2**29 stops without a feed
        if i & 3 == 0:
            wd.feed()
        acc ^= stall.stalled() + occlusion.occluded() + encoder.missing(issued)  # ^: stays below 2**30
        acc ^= battery.soc_permille() + battery.voltage_mv() + reservoir.true_nl() + reservoir.volume_nl(1000)
        if i == N // 2:
            motor.halt()
finally:
    unlock()
print("heap_lock", heap_lock_works(), "wraps", clock.wraps, "pending", len(plan.pending()), "fired", plan.fired)
print("turned", motor.turned_hi, motor.turned_lo, "blocked", motor.blocked_lo, "acc", acc > 0)
# Ten more years unread, then one settling: chunked, still small ints (under the lock again).
clock.wraps += 293_800
charge = nl = 0  # bound before the lock: a new global would grow the globals dict
lock()
try:
    charge = battery.charge_u()
    nl = reservoir.true_nl()
finally:
    unlock()
print("after", charge, nl)
"""


def check_heaplock(out):
    lines = out.splitlines()
    head = lines[0].split()
    assert head[:2] == ["heap_lock", "True"]
    assert int(head[3]) >= 3 and head[5] == "0" and head[7] == str(MAX_PENDING)
    turned = lines[1].split()
    assert turned[1:3] == ["0", "40000"] and int(turned[4]) > 10_000 and turned[-1] == "True"
    after = lines[2].split()
    assert after[0] == "after" and 0 <= int(after[1]) < battery_model.FULL_U and 0 < int(after[2]) < 15_000_000


@pytest.mark.micropython
def test_the_tick_paths_allocate_nothing_on_the_unix_port(tmp_path):
    script = tmp_path / "parts_heaplock.py"
    script.write_text(HEAPLOCK_SCRIPT.replace("MAX", str(MAX_PENDING)))
    check_heaplock(run_unix(script, cwd=tmp_path, path=(MP_DIR,)))


@pytest.mark.micropython32
def test_the_tick_paths_allocate_nothing_with_small_ints_on_32bit_micropython(tmp_path):
    script = tmp_path / "parts_heaplock.py"
    script.write_text(HEAPLOCK_SCRIPT.replace("MAX", str(MAX_PENDING)))
    check_heaplock(run_wasm32(script))


BITE_SCRIPT = """
import sys
import boards.sim as board

hw = board.make({"storage": sys.argv[1]})
print("cause", hw.reset_cause())
hw.watchdog.start()
clock = hw.clock
left = board.WATCHDOG_US - 1
while left:
    step = left if left < board.MAX_SLEEP_US else board.MAX_SLEEP_US
    clock.advance(step)
    left -= step
print("alive at the timeout less 1 us")
clock.advance(1)
print("still alive: the watchdog did not bite")
"""


@pytest.mark.micropython
def test_the_watchdog_bite_kills_the_process_and_the_next_boot_reads_the_cause(tmp_path):
    from pumpctl.sim import find_micropython

    storage = tmp_path / "storage"
    script = tmp_path / "bite.py"
    script.write_text(BITE_SCRIPT)
    env = {"MICROPYPATH": f"{ROOT}:.frozen", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [find_micropython(), str(script), str(storage)], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == -CUT_SIGNAL, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout.splitlines() == ["cause power", "alive at the timeout less 1 us"]
    assert (storage / RESET_CAUSE_FILE).read_text() == "watchdog"
    again = tmp_path / "again.py"
    again.write_text(
        "import sys\nimport boards.sim as board\nhw = board.make({'storage': sys.argv[1]})\n"
        "print(hw.reset_cause(), hw.reset_cause())\n"
    )
    out = run_unix(again, cwd=tmp_path, args=(str(storage),))
    assert out.split() == ["watchdog", "power"]
    assert not (storage / RESET_CAUSE_FILE).exists()
