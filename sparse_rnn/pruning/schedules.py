"""Pruning schedules: how sparse the model should be at a given training step.

A sparsity schedule is a function ``(step, start_step, end_step, final_sparsity) -> sparsity``;
:data:`SPARSITY_SCHEDULES` names the built-in ones, and any function of that signature works.
Narang et al. (2017) instead raise a magnitude threshold along two linear ramps; blocks whose
score falls below it are pruned, so the sparsity reached is a consequence, not a target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SparsitySchedule = Callable[[int, int, int, float], float]


def one_shot(step: int, start_step: int, end_step: int, final_sparsity: float) -> float:
    """0 before ``start_step``, then ``final_sparsity`` at once (``end_step`` is unused)."""
    return final_sparsity if step >= start_step else 0.0


def cubic(
    step: int,
    start_step: int,
    end_step: int,
    final_sparsity: float,
    initial_sparsity: float = 0.0,
) -> float:
    """Zhu & Gupta (2017): ``s_f + (s_i - s_f) * (1 - (t - t0) / (end - t0)) ** 3``.

    ``end - t0`` is the paper's ``n * dt``. The value is clamped to [s_i, s_f], so it is
    ``initial_sparsity`` before ``start_step`` and ``final_sparsity`` from ``end_step`` on;
    these are the values of ``torch.ao.pruning.CubicSL`` with ``init_t=t0`` and
    ``delta_t * total_t = end - t0``.
    """
    if step >= end_step:
        return final_sparsity
    if step <= start_step:
        return initial_sparsity
    progress = (step - start_step) / (end_step - start_step)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** 3


SPARSITY_SCHEDULES: dict[str, SparsitySchedule] = {"one_shot": one_shot, "cubic": cubic}


@dataclass(frozen=True)
class NarangSchedule:
    """Narang et al. (2017) two-ramp threshold schedule.

    Between ``start_step`` and ``ramp_step`` the threshold rises with slope ``theta`` per
    ``frequency`` steps; from ``ramp_step`` to ``end_step`` with slope
    ``phi = ramp_slope_ratio * theta``. ``theta`` is chosen so that the threshold reaches
    ``final_threshold`` at ``end_step``. ``ramp_step`` lies ``ramp_fraction`` of the way
    from ``start_step`` to ``end_step``. The paper's ``+ 1`` offsets are left out so that the
    threshold is exactly ``final_threshold`` at ``end_step``.

    :class:`~sparse_rnn.pruning.GradualPruner` sets ``final_threshold`` per gate to the score of
    the weakest block the target sparsity keeps, re-measured at every update (the paper fixes
    it once from the weights); the sparsity on the way follows the distribution of scores.
    """

    ramp_fraction: float = 0.5
    ramp_slope_ratio: float = 1.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.ramp_fraction <= 1.0:
            raise ValueError(f"ramp_fraction must be in [0, 1], got {self.ramp_fraction!r}")
        if self.ramp_slope_ratio <= 0:
            raise ValueError(f"ramp_slope_ratio must be positive, got {self.ramp_slope_ratio!r}")

    def ramp_step(self, start_step: int, end_step: int) -> int:
        return start_step + round(self.ramp_fraction * (end_step - start_step))

    def threshold(
        self, step: int, start_step: int, end_step: int, frequency: int, final_threshold: float
    ) -> float:
        """The pruning threshold at ``step``; 0 before ``start_step``, held after ``end_step``."""
        if step < start_step:
            return 0.0
        step = min(step, end_step)
        ramp_step = self.ramp_step(start_step, end_step)
        first_ramp = ramp_step - start_step
        second_ramp = end_step - ramp_step
        # theta * (first_ramp + ratio * second_ramp) / frequency == final_threshold
        theta = final_threshold * frequency / (first_ramp + self.ramp_slope_ratio * second_ramp)
        phi = self.ramp_slope_ratio * theta
        if step < ramp_step:
            return theta * (step - start_step) / frequency
        return (theta * first_ramp + phi * (step - ramp_step)) / frequency


ScheduleArg = str | SparsitySchedule | NarangSchedule


def resolve_schedule(schedule: ScheduleArg) -> SparsitySchedule | NarangSchedule:
    """The schedule named by ``schedule`` (``"one_shot"``, ``"cubic"``, ``"narang"``) or itself."""
    if isinstance(schedule, NarangSchedule) or callable(schedule):
        return schedule
    if schedule == "narang":
        return NarangSchedule()
    if schedule in SPARSITY_SCHEDULES:
        return SPARSITY_SCHEDULES[schedule]
    raise ValueError(
        f"schedule must be one of {sorted([*SPARSITY_SCHEDULES, 'narang'])}, a NarangSchedule "
        f"or a callable (step, start_step, end_step, final_sparsity) -> sparsity; got {schedule!r}"
    )
