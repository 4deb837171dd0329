"""Schedule values against the Zhu & Gupta formula, torch.ao.pruning.CubicSL, and Narang."""

import warnings

import pytest
from torch import nn
from torch.ao.pruning import CubicSL, WeightNormSparsifier

from sparse_rnn.pruning import NarangSchedule, cubic, one_shot
from sparse_rnn.pruning.schedules import resolve_schedule


@pytest.mark.parametrize("initial, final", [(0.0, 0.9), (0.2, 0.75), (0.0, 0.0)])
@pytest.mark.parametrize("start, end", [(0, 10), (5, 105), (7, 7)])
def test_cubic_matches_the_formula(initial, final, start, end):
    for step in range(0, end + 20):
        if step >= end:
            expected = final
        elif step <= start:
            expected = initial
        else:
            expected = final + (initial - final) * (1 - (step - start) / (end - start)) ** 3
        assert cubic(step, start, end, final, initial) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "initial, final, start, frequency, num_updates", [(0.0, 0.9, 0, 10, 10), (0.1, 0.8, 3, 2, 5)]
)
def test_cubic_matches_torch_ao_cubic_sl(initial, final, start, frequency, num_updates):
    linear = nn.Sequential(nn.Linear(4, 4))
    sparsifier = WeightNormSparsifier(sparsity_level=final)
    sparsifier.prepare(linear, [{"tensor_fqn": "0.weight"}])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = CubicSL(
            sparsifier, init_sl=initial, init_t=start, delta_t=frequency, total_t=num_updates
        )
        end = start + frequency * num_updates
        for _ in range(end + 10):
            step = scheduler.last_epoch
            assert cubic(step, start, end, final, initial) == pytest.approx(
                scheduler.get_last_sl()[0], abs=1e-12
            )
            sparsifier.step()
            scheduler.step()


def test_one_shot_jumps_at_start():
    assert [one_shot(step, 3, 10, 0.5) for step in range(5)] == [0.0, 0.0, 0.0, 0.5, 0.5]


def test_narang_threshold_follows_two_ramps():
    schedule = NarangSchedule(ramp_fraction=0.4, ramp_slope_ratio=1.5)
    start, end, frequency, final = 10, 110, 5, 2.0
    ramp = schedule.ramp_step(start, end)
    assert ramp == 50
    # theta * (40 + 1.5 * 60) / 5 == 2  =>  theta = 10 / 130
    theta = final * frequency / (40 + 1.5 * 60)
    for step in range(0, 130):
        if step < start:
            expected = 0.0
        elif step < ramp:
            expected = theta * (step - start) / frequency
        else:
            expected = (theta * 40 + 1.5 * theta * (min(step, end) - ramp)) / frequency
        assert schedule.threshold(step, start, end, frequency, final) == pytest.approx(expected)
    assert schedule.threshold(end, start, end, frequency, final) == pytest.approx(final)


def test_resolve_schedule_names_and_errors():
    assert resolve_schedule("cubic") is cubic
    assert isinstance(resolve_schedule("narang"), NarangSchedule)
    own = lambda step, start, end, final: final
    assert resolve_schedule(own) is own
    with pytest.raises(ValueError, match="'quadratic'"):
        resolve_schedule("quadratic")
    with pytest.raises(ValueError, match="ramp_fraction"):
        NarangSchedule(ramp_fraction=1.5)
