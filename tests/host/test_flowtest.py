"""The gravimetric flow-test analysis (pumpctl.flowtest): flows, mean error, trumpet curve, volumes, plot.

Expected values are worked out here from the formulas themselves (IEC 60601-2-24 method, see the module),
written out longhand with Fractions, so a slip in the module's sliding windows or indexing cannot hide
behind the same slip in the test.
"""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

import pytest
from pumpctl import flowtest
from pumpctl.flowtest import Sample, analyse, flows_ml_per_h, trumpet

D_WATER = Decimal("0.9982")  # g/mL, water at 20 C


def series(increments_g, start_g=Decimal("10.0000"), sample_s=30, steps=None):
    """Samples every sample_s from t = 0, the balance gaining increments_g[k] in interval k."""
    masses = [start_g]
    for inc in increments_g:
        masses.append(masses[-1] + inc)
    return [
        Sample(t_s=k * sample_s, mass_g=m, pump_steps=None if steps is None else steps[k]) for k, m in enumerate(masses)
    ]


# (a) a small data set worked by hand

INCREMENTS_G = [
    Decimal(x) for x in "0.0050 0.0090 0.0101 0.0097 0.0104 0.0099 0.0100 0.0095 0.0106 0.0098 0.0102".split()
]
RATE = Fraction(6, 5)  # 1.2 mL/h: 0.01 mL per 30 s


def hand_flows():
    # Q = 60 (W_i - W_(i-1)) / (S d) with S = 0.5 min
    return [60 * Fraction(inc) / (Fraction(1, 2) * Fraction(D_WATER)) for inc in INCREMENTS_G]


def test_flows_are_the_mass_increments_over_interval_and_density():
    samples = series(INCREMENTS_G)  # 12 samples, t = 0 .. 330 s
    flows = flows_ml_per_h(samples, D_WATER)
    assert flows == [(30 * (k + 1), q) for k, q in enumerate(hand_flows())]


def test_hand_worked_trumpet_and_mean_error():
    samples = series(INCREMENTS_G)
    q = hand_flows()[2:]  # analysis start 60 s: the intervals ending at 90 .. 330 s, nine of them
    r = RATE

    def e(i):
        return (q[i] - r) / r

    ep_1min = [  # p = 2
        50 * (e(0) + e(1)),
        50 * (e(1) + e(2)),
        50 * (e(2) + e(3)),
        50 * (e(3) + e(4)),
        50 * (e(4) + e(5)),
        50 * (e(5) + e(6)),
        50 * (e(6) + e(7)),
        50 * (e(7) + e(8)),
    ]
    ep_2min = [  # p = 4
        25 * (e(0) + e(1) + e(2) + e(3)),
        25 * (e(1) + e(2) + e(3) + e(4)),
        25 * (e(2) + e(3) + e(4) + e(5)),
        25 * (e(3) + e(4) + e(5) + e(6)),
        25 * (e(4) + e(5) + e(6) + e(7)),
        25 * (e(5) + e(6) + e(7) + e(8)),
    ]
    mean_error = 100 * ((q[0] + q[1] + q[2] + q[3] + q[4] + q[5] + q[6] + q[7] + q[8]) / 9 - r) / r

    flows = flows_ml_per_h(samples, D_WATER)
    analysed = [(t, flow) for t, flow in flows if t > 60]
    # a 5 min window (10 samples) is longer than the nine analysed: left out
    exact = trumpet(analysed, r, windows_min=(1, 2, 5))
    assert exact == {1: (max(ep_1min), min(ep_1min)), 2: (max(ep_2min), min(ep_2min))}

    res = analyse(samples, r, D_WATER, analysis_start_s=60, windows_min=(1, 2, 5))
    assert res.trumpet == {
        1: {"ep_max_pct": float(max(ep_1min)), "ep_min_pct": float(min(ep_1min))},
        2: {"ep_max_pct": float(max(ep_2min)), "ep_min_pct": float(min(ep_2min))},
    }
    assert res.mean_error_pct == float(mean_error)
    # the start-up curve is the whole test, from the first interval
    assert res.flows == [(float(Fraction(30 * (k + 1), 60)), float(flow)) for k, flow in enumerate(hand_flows())]
    assert res.delivered_ml == float(sum(INCREMENTS_G) / D_WATER)


def test_flow_uses_the_actual_interval():
    # resumed after a gap: 45 s between the second and third readings
    samples = [Sample(0, Decimal("5.0000")), Sample(30, Decimal("5.0100")), Sample(75, Decimal("5.0250"))]
    flows = flows_ml_per_h(samples, 1)
    assert flows == [(30, Fraction("1.2")), (75, 3600 * Fraction("0.0150") / 45)]


# (b) a perfect pump


def test_constant_flow_at_the_set_rate_has_no_error():
    mass_per_sample_g = Decimal("0.01") * D_WATER  # 1.2 mL/h for 30 s
    samples = series([mass_per_sample_g] * 240)  # 2 hours
    res = analyse(samples, Decimal("1.2"))  # the default density is 0.9982
    assert res.mean_error_pct == 0
    assert set(res.trumpet) == set(flowtest.WINDOWS_MIN)
    for window, ep in res.trumpet.items():
        assert ep == {"ep_max_pct": 0, "ep_min_pct": 0}, window
    assert all(q == 1.2 for _, q in res.flows)
    assert res.delivered_ml == res.programmed_ml == 2.4
    assert res.volume_accuracy_pct == 100
    assert res.pump_delivered_ml is None and res.pump_volume_accuracy_pct is None
    assert res.unstable_samples == 0 and res.irregular_intervals == 0
    d = res.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["trumpet"]["31"] == {"ep_max_pct": 0, "ep_min_pct": 0}


# (c) one missed step

STEP_PL = 52083  # 52.083 nL
STEP_ML = Fraction(STEP_PL, 10**9)


def test_one_missed_step_shows_in_short_windows_and_fades_in_long_ones():
    # 1 mL/h, with a density of 0.996 g/mL so that 30 s is exactly 0.0083 g; the interval ending at 100 min
    # (in the analysis period, off its middle so that some 31 min windows miss it) is short by one step's mass.
    d = Decimal("0.996")
    per_sample_g = Decimal(1) / 120 * d
    assert per_sample_g == Decimal("0.0083")
    increments = [per_sample_g] * 240
    increments[6000 // 30 - 1] -= Decimal(STEP_PL) / 10**9 * d
    samples = series(increments)
    r = 1

    flows = flows_ml_per_h(samples, d)
    exact = trumpet([(t, q) for t, q in flows if t > 3600], r)
    res = analyse(samples, r, d)
    for window in flowtest.WINDOWS_MIN:
        # every window holding the short interval is one step short: 100 * step / (r * P/60 h)
        expected = -100 * STEP_ML / (r * Fraction(window, 60))
        assert exact[window] == (0, expected), window
        assert res.trumpet[window] == {"ep_max_pct": 0, "ep_min_pct": float(expected)}
    assert res.trumpet[2]["ep_min_pct"] == pytest.approx(-0.156249)
    assert res.trumpet[31]["ep_min_pct"] == pytest.approx(-0.0100806, rel=1e-5)
    lows = [abs(res.trumpet[w]["ep_min_pct"]) for w in flowtest.WINDOWS_MIN]
    assert lows == sorted(lows, reverse=True) and lows[0] > lows[-1]
    # over the hour of analysis the step is 52.083 nL in 1 mL
    assert res.mean_error_pct == float(-100 * STEP_ML / r)
    assert res.delivered_ml == float(2 - STEP_ML)


# (d) evaporation


def test_evaporation_correction_turns_a_drying_vessel_into_no_flow():
    loss_g_per_h = Decimal("0.06")  # 0.0005 g per 30 s
    samples = series([-loss_g_per_h / 120] * 240, start_g=Decimal("20.0000"))
    assert samples[-1].mass_g == Decimal("19.8800")

    assert all(q == 0 for _, q in flows_ml_per_h(samples, D_WATER, loss_g_per_h))
    uncorrected = flows_ml_per_h(samples, D_WATER)
    assert all(q == -Fraction(loss_g_per_h) / Fraction(D_WATER) for _, q in uncorrected)

    res = analyse(samples, 1, D_WATER, evaporation_g_per_h=loss_g_per_h)
    assert res.delivered_ml == 0
    assert res.mean_error_pct == -100
    assert all(ep == {"ep_max_pct": -100, "ep_min_pct": -100} for ep in res.trumpet.values())


def test_evaporation_is_added_back_to_a_flowing_pump():
    loss_g_per_h = Decimal("0.06")
    samples = series([Decimal("0.01") * D_WATER - loss_g_per_h / 120] * 240)
    res = analyse(samples, Decimal("1.2"), D_WATER, evaporation_g_per_h=loss_g_per_h)
    assert res.mean_error_pct == 0
    assert res.volume_accuracy_pct == 100


# (e) volumes: the balance's view and the pump's


def test_volume_accuracy_and_the_pumps_view_from_steps():
    # 1.2 mL/h programmed, 0.0099 mL delivered per 30 s by the balance; the pump counts 192 steps per 30 s
    steps = [1000 + 192 * k for k in range(241)]
    samples = series([Decimal("0.0099") * D_WATER] * 240, steps=steps)
    res = analyse(samples, Decimal("1.2"), D_WATER, step_volume_pl=STEP_PL)
    assert res.programmed_ml == 2.4
    assert res.delivered_ml == 2.376
    assert res.volume_accuracy_pct == 99
    assert res.mean_error_pct == -1
    pump_ml = Fraction(240 * 192 * STEP_PL, 10**9)
    assert res.pump_delivered_ml == float(pump_ml) == 2.39998464
    assert res.pump_volume_accuracy_pct == float(100 * pump_ml / Fraction("2.4"))

    # no step volume, or no step count at the start: no pump view
    assert analyse(samples, Decimal("1.2"), D_WATER).pump_delivered_ml is None
    samples[0] = Sample(0, samples[0].mass_g)
    res = analyse(samples, Decimal("1.2"), D_WATER, step_volume_pl=STEP_PL)
    assert res.pump_delivered_ml is None and res.pump_volume_accuracy_pct is None


def test_unstable_readings_are_counted():
    samples = series([Decimal("0.01") * D_WATER] * 240)
    samples[7] = Sample(samples[7].t_s, samples[7].mass_g, stable=False)
    samples[150] = Sample(samples[150].t_s, samples[150].mass_g, stable=False)
    assert analyse(samples, Decimal("1.2")).unstable_samples == 2


# (f) refusals

GOOD = series([Decimal("0.01") * D_WATER] * 240)


@pytest.mark.parametrize(
    "samples, kwargs, reason",
    [
        (GOOD[:1], {}, "at least 2 samples"),
        ([], {}, "at least 2 samples"),
        (GOOD[:3] + [Sample(60, Decimal("10.1"))], {}, "times must increase"),
        (GOOD[:3] + [Sample(30, Decimal("10.1"))], {}, "times must increase"),
        (GOOD, {"rate_ml_per_h": 0}, "rate_ml_per_h must be positive"),
        (GOOD, {"rate_ml_per_h": Decimal("-1.2")}, "rate_ml_per_h must be positive"),
        (GOOD, {"density_g_per_ml": 0}, "density_g_per_ml must be positive"),
        (GOOD, {"density_g_per_ml": -0.9982}, "density_g_per_ml must be positive"),
        (GOOD[:121], {}, "longer test"),  # one hour: nothing after the first
        (GOOD[:123], {}, "longer test"),  # 2 samples in the analysis period, the 2 min window needs 4
        (GOOD, {"windows_min": (1.25,)}, "not a whole number"),
        (GOOD, {"windows_min": ()}, "windows_min is empty"),
        (GOOD, {"evaporation_g_per_h": Decimal("-0.05")}, "reference vial loses"),
        (GOOD, {"step_volume_pl": 0}, "step_volume_pl must be positive"),
    ],
)
def test_refusals(samples, kwargs, reason):
    kwargs = {"rate_ml_per_h": Decimal("1.2"), **kwargs}
    with pytest.raises(ValueError, match=reason):
        analyse(samples, **kwargs)


def test_the_shortest_window_just_fits():
    # 62 min: four samples after the first hour, exactly one 2 min window; the longer ones are left out
    res = analyse(GOOD[:125], Decimal("1.2"))
    assert set(res.trumpet) == {2}


# irregular sampling

RATE_G_PER_S = Decimal("0.0003")  # 1.2 mL/h at 0.9 g/mL: a whole number of ug per ms, so every mass is exact


def steady(times_s):
    return [Sample(t, Decimal("10") + RATE_G_PER_S * Decimal(t.numerator) / t.denominator) for t in times_s]


def test_jitter_in_the_reading_instants_costs_nothing():
    # each reading up to 49 ms late, as when the pump's clock is read after the balance has answered
    times = [Fraction(30_000 * k + (k * 37) % 50, 1000) for k in range(241)]
    res = analyse(steady(times), Decimal("1.2"), Decimal("0.9"))
    assert all(q == 1.2 for _, q in res.flows)
    assert res.mean_error_pct == 0
    assert all(ep == {"ep_max_pct": 0, "ep_min_pct": 0} for ep in res.trumpet.values())
    assert res.irregular_intervals == 0


def test_a_missing_reading_is_analysed_and_counted():
    times = [Fraction(30 * k) for k in range(241) if k not in (10, 200)]  # one lost in each hour
    res = analyse(steady(times), Decimal("1.2"), Decimal("0.9"))
    assert all(q == 1.2 for _, q in res.flows)  # the 60 s intervals still give the right flow
    assert len(res.flows) == 238
    assert res.mean_error_pct == 0
    assert res.irregular_intervals == 1  # only the analysis period's gap: the start-up curve may be irregular
    assert res.to_dict()["irregular_intervals"] == 1


# (g) the plot


def test_plot_writes_a_png(tmp_path):
    steps = [192 * k for k in range(241)]
    # a little start-up delay and ripple, so the curves have something to show
    increments = [Decimal(0)] * 4 + [Decimal("0.0100") + Decimal("0.0004") * (k % 3 - 1) for k in range(236)]
    res = analyse(series(increments, steps=steps), Decimal("1.2"), step_volume_pl=STEP_PL)
    path = tmp_path / "flow.png"
    flowtest.plot(res, path, "Bench test: 1.2 mL/h, water, 20 C")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000
