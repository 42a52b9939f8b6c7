"""What the dose guard's admission sees of a therapy's future (firmware.therapy.Projection): the steps it will
deliver, bucket by bucket, counted in steps of the fluid the guard holds now, also across a bridge to a new
concentration."""

import pytest

from firmware.guard import BUCKET_US
from firmware.library import default_library
from firmware.program import parse_program
from firmware.therapy import Projection, Therapy

LIB = default_library()
STEP_PL = 52_083
US_PER_MDAY = 86_400_000
STEP_U = STEP_PL * US_PER_MDAY  # one step in nL/day x us
HOUR = 3_600_000_000


def therapy_after_refill(old_conc, new_conc):
    old = parse_program([f"drug morphine {old_conc} mg/mL", "fill 20 mL", "basal 2 mg/day"], LIB)
    t = Therapy()
    t.commit(old, 0)
    new = parse_program(
        [f"drug morphine {new_conc} mg/mL", "fill 18 mL", "basal 2 mg/day", "bridge 50 uL"], LIB, old.drugs
    )
    t.commit(new, 0)
    return t


def cumulative(therapy, buckets):
    proj = Projection(therapy.fork(), 0, BUCKET_US, BUCKET_US, 0, STEP_U)
    return [proj.next_bucket() for _ in range(buckets)]


@pytest.mark.parametrize("old_conc, new_conc", [(10, 20), (20, 10), (5, 20)])
def test_a_steady_dose_across_a_bridge_is_a_steady_count_of_the_old_fluids_steps(old_conc, new_conc):
    # 2 mg/day throughout: as steps of the old fluid that is old-fluid volume at 2 mg/day, whatever the new
    # concentration; the bridge's 50 uL ends after 50 uL / (2 mg/day / old) of it.
    old_rate_nl_per_day = 2_000_000 // old_conc
    got = cumulative(therapy_after_refill(old_conc, new_conc), 24 * 100)
    bridge_end_bucket = 50_000 * 86_400 // old_rate_nl_per_day // 36
    for k in (0, 99, bridge_end_bucket - 1, bridge_end_bucket + 1, 1000, 2399):
        exact = old_rate_nl_per_day * (k + 1) * BUCKET_US // STEP_U
        # Rounding each segment up may add a step at most where the count is about to reach it.
        assert exact <= got[k] <= exact + 1, (k, got[k], exact)
