"""``GradualPruner``: block pruning during training, following a schedule.

Call :meth:`GradualPruner.step` once after every optimizer step. On update steps (every
``frequency`` steps from ``start_step`` to ``end_step``, and at ``end_step``) the pruner scores
the blocks of its target weights and prunes the weakest ones; in between it only keeps pruned
blocks at zero. Pruned blocks never come back. Masks live on the ordinary modules (see
:mod:`sparse_rnn.pruning.masks`), so ``sparse_rnn.sparsify(model, block_size=...)`` with the
same ``block_size`` converts the pruned model without changing its outputs.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from sparse_rnn.block_layout import check_block_size, check_sparsity
from sparse_rnn.pruning.masks import MaskedWeight
from sparse_rnn.pruning.schedules import NarangSchedule, ScheduleArg, resolve_schedule
from sparse_rnn.pruning.scores import block_scores, check_ranking, check_score, rank_blocks
from sparse_rnn.pruning.targets import TargetsArg, select_targets

logger = logging.getLogger(__name__)

_PRUNED_SCORE = -1.0  # below every real score, so pruned blocks rank last and stay pruned


class GradualPruner:
    """Prune the blocks of a model's LSTM and Linear weights gradually during training.

    Args:
        model: the model (an ``nn.Module``, possibly wrapped in ``DistributedDataParallel``).
        sparsity: final fraction of pruned blocks per gate, in [0, 1).
        block_size: side of the square blocks; use the same value with ``sparsify``.
        start_step, end_step: the first and last step (counted in calls to :meth:`step`) at
            which masks change.
        frequency: steps between mask updates.
        schedule: ``"cubic"`` (Zhu & Gupta), ``"one_shot"`` (everything at ``start_step``),
            ``"narang"`` or a :class:`NarangSchedule` (two-ramp threshold), or a callable
            ``(step, start_step, end_step, final_sparsity) -> sparsity``.
        targets: ``None`` for every ``nn.LSTM`` and ``nn.Linear`` weight; a sequence of
            parameter names or parameters; or a mapping from either to its own final sparsity.
        score: block score, ``"l2"``, ``"l1"`` or ``"max"``.
        ranking: ``"layer"`` (each gate of each matrix on its own) or ``"global"`` (all blocks
            of all targets ranked together; one sparsity for all).
        balanced: keep the same number of blocks in every block row of a gate.
        optimizer: if given, attached as by :meth:`attach_optimizer`.
    """

    def __init__(
        self,
        model: nn.Module,
        sparsity: float,
        block_size: int = 32,
        *,
        start_step: int = 0,
        end_step: int,
        frequency: int = 100,
        schedule: ScheduleArg = "cubic",
        targets: TargetsArg = None,
        score: str = "l2",
        ranking: str = "layer",
        balanced: bool = False,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> None:
        check_sparsity(sparsity)
        check_block_size(block_size)
        _check_steps(start_step, end_step, frequency)
        check_score(score)
        check_ranking(ranking)
        self.schedule = resolve_schedule(schedule)
        if isinstance(self.schedule, NarangSchedule) and (ranking != "layer" or balanced):
            raise ValueError(
                "the narang threshold schedule works per gate: it needs ranking='layer' and "
                f"balanced=False, got ranking={ranking!r}, balanced={balanced!r}"
            )

        selected, final_sparsity = select_targets(model, block_size, targets, float(sparsity))
        if not selected:
            raise ValueError("GradualPruner: the model has no nn.LSTM or nn.Linear weight to prune")
        for value in final_sparsity.values():
            check_sparsity(value)
        if ranking == "global" and balanced:
            raise ValueError("balanced=True needs ranking='layer', got ranking='global'")
        if ranking == "global" and len(set(final_sparsity.values())) > 1:
            raise ValueError(
                "ranking='global' takes one sparsity for all weights, got per-weight sparsities "
                f"{final_sparsity}"
            )
        self.block_size = block_size
        self.start_step = start_step
        self.end_step = end_step
        self.frequency = frequency
        self.score = score
        self.ranking = ranking
        self.balanced = balanced
        self.final_sparsity: dict[str, float] = final_sparsity
        self.weights = {t.name: MaskedWeight(t.parameter, t.layout) for t in selected}
        self.step_count = 0
        self._optimizers: list[torch.optim.Optimizer] = []
        self._optimizer_hooks: list[Any] = []
        self._warned_empty: set[str] = set()
        if optimizer is not None:
            self.attach_optimizer(optimizer)

    # Training loop ----------------------------------------------------------------------------

    def attach_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Clear ``optimizer``'s state of pruned entries now and whenever masks change, and
        zero pruned weights again after each of its steps."""
        self._optimizers.append(optimizer)
        self._optimizer_hooks.append(optimizer.register_step_post_hook(self._after_optimizer_step))
        for weight in self.weights.values():
            weight.clear_optimizer_state(optimizer)

    def step(self) -> None:
        """Advance one step: update the masks on an update step, then zero pruned weights."""
        if self.is_update_step(self.step_count):
            self._update_masks(self.step_count)
        else:
            for weight in self.weights.values():
                weight.apply()
        self.step_count += 1

    def is_update_step(self, step: int) -> bool:
        if not self.start_step <= step <= self.end_step:
            return False
        return (step - self.start_step) % self.frequency == 0 or step == self.end_step

    def sparsity_at(self, step: int) -> dict[str, float]:
        """The scheduled sparsity of every target at ``step`` (not for the narang schedule)."""
        if isinstance(self.schedule, NarangSchedule):
            raise ValueError("the narang schedule sets a threshold, not a sparsity")
        levels = {}
        for name, final in self.final_sparsity.items():
            level = self.schedule(step, self.start_step, self.end_step, final)
            check_sparsity(level)
            levels[name] = float(level)
        return levels

    def block_sparsity(self) -> dict[str, float]:
        """Fraction of pruned blocks of every target, as the masks stand."""
        return {
            name: 1.0 - weight.block_mask.double().mean().item()
            for name, weight in self.weights.items()
        }

    def block_masks(self) -> dict[str, Tensor]:
        """Bool block mask (num_block_rows, num_block_cols) of every target; true = kept."""
        return {name: weight.block_mask.clone() for name, weight in self.weights.items()}

    def set_block_masks(self, masks: Mapping[str, Tensor]) -> None:
        """Impose block masks (for example imported ones) on some targets, by name."""
        unknown = sorted(set(masks) - set(self.weights))
        if unknown:
            raise ValueError(f"set_block_masks: {unknown} are not targets of this pruner")
        for name, mask in masks.items():
            layout = self.weights[name].layout
            expected = (layout.num_block_rows, layout.num_block_cols)
            if tuple(mask.shape) != expected:
                raise ValueError(
                    f"set_block_masks: the mask of {name} must have shape {expected} for blocks "
                    f"of {layout.block_size}, got {tuple(mask.shape)}"
                )
        for name, mask in masks.items():
            self.weights[name].set_block_mask(mask)
        self._clear_optimizer_state()

    def remove(self) -> None:
        """Detach every hook; weights keep their zeros but are no longer held at zero."""
        for weight in self.weights.values():
            weight.remove()
        for hook in self._optimizer_hooks:
            hook.remove()
        self._optimizer_hooks.clear()
        self._optimizers.clear()

    # Checkpoints ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Schedule position and masks (CPU tensors)."""
        return {
            "step_count": self.step_count,
            "block_masks": {name: mask.cpu() for name, mask in self.block_masks().items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; pruned weights and optimizer state are zeroed."""
        masks = state["block_masks"]
        if set(masks) != set(self.weights):
            raise ValueError(
                f"load_state_dict: the state has masks for {sorted(masks)}, "
                f"this pruner targets {sorted(self.weights)}"
            )
        self.set_block_masks(masks)
        self.step_count = int(state["step_count"])

    # Internals --------------------------------------------------------------------------------

    def _after_optimizer_step(self, optimizer, args, kwargs) -> None:
        for weight in self.weights.values():
            weight.apply()

    def _clear_optimizer_state(self) -> None:
        for optimizer in self._optimizers:
            for weight in self.weights.values():
                weight.clear_optimizer_state(optimizer)

    def _update_masks(self, step: int) -> None:
        scores = {
            name: block_scores(w.parameter, w.layout, self.score).masked_fill(
                ~w.block_mask, _PRUNED_SCORE
            )
            for name, w in self.weights.items()
        }
        if isinstance(self.schedule, NarangSchedule):
            masks = self._threshold_masks(step, scores)
        else:
            layouts = {name: w.layout for name, w in self.weights.items()}
            masks = rank_blocks(
                scores,
                layouts,
                self.sparsity_at(step),
                ranking=self.ranking,
                balanced=self.balanced,
            )
        masks = _broadcast_from_rank_zero(masks)
        for name, mask in masks.items():
            # A schedule below the current sparsity (imported masks) never revives a block.
            self.weights[name].set_block_mask(mask & self.weights[name].block_mask)
        self._clear_optimizer_state()
        self._warn_about_empty_gates()
        logger.debug("step %d: block sparsity %s", step, self.block_sparsity())

    def _warn_about_empty_gates(self) -> None:
        for name, w in self.weights.items():
            kept = w.block_mask.view(w.layout.num_gates, -1).sum(dim=1)
            if name in self._warned_empty or bool(kept.all()):
                continue
            self._warned_empty.add(name)
            warnings.warn(
                f"GradualPruner: {name} has gates with no kept block (kept blocks per gate: "
                f"{kept.tolist()} of {w.layout.blocks_per_gate}); a smaller block_size or "
                "sparsity keeps them alive",
                stacklevel=4,  # the caller of step()
            )

    def _threshold_masks(self, step: int, scores: Mapping[str, Tensor]) -> dict[str, Tensor]:
        # The final threshold of each gate is the score of the weakest block that the target
        # sparsity would keep, measured on the current weights at every update, so the end
        # point is the target even though weights grow during training.
        fraction = self.schedule.threshold(
            step, self.start_step, self.end_step, self.frequency, 1.0
        )
        masks = {}
        for name, w in self.weights.items():
            final = _weakest_kept_score(scores[name], w.layout, self.final_sparsity[name])
            per_block_row = (final * fraction).repeat_interleave(w.layout.block_rows_per_gate)
            masks[name] = scores[name] >= per_block_row[:, None]
        return masks


def _weakest_kept_score(scores: Tensor, layout, sparsity: float) -> Tensor:
    """Per gate, the score of the weakest block kept at ``sparsity``, shape (num_gates,)."""
    keep = round((1.0 - sparsity) * layout.blocks_per_gate)
    ranked = scores.reshape(layout.num_gates, -1).sort(dim=1, descending=True).values
    if keep == 0:
        return ranked[:, 0] + 1.0  # above every block: all of them go
    return ranked[:, keep - 1]


def _broadcast_from_rank_zero(masks: dict[str, Tensor]) -> dict[str, Tensor]:
    """Under torch.distributed, give every rank the masks of rank 0 (in the same order)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return masks
    shared = {}
    for name, mask in masks.items():
        buffer = mask.to(torch.uint8).contiguous()
        dist.broadcast(buffer, src=0)
        shared[name] = buffer.to(torch.bool)
    return shared


def _check_steps(start_step: int, end_step: int, frequency: int) -> None:
    for name, value in (("start_step", start_step), ("end_step", end_step)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if end_step < start_step:
        raise ValueError(
            f"end_step must not come before start_step, got start_step={start_step}, "
            f"end_step={end_step}"
        )
    if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency <= 0:
        raise ValueError(f"frequency must be a positive integer, got {frequency!r}")
