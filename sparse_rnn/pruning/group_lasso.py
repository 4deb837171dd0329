"""Group lasso over blocks: a loss term that drives whole blocks to zero (Narang et al., 2017).

The penalty of a weight is the sum over its blocks of the block's L2 norm,
``sum_b ||W_b||_2``. Its gradient with respect to a block is ``W_b / ||W_b||_2``: every block is
pulled towards zero with the same force whatever its size, so weak blocks reach zero and the
block pruner removes them at no cost. A block that is already zero gets gradient zero.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sparse_rnn.block_layout import BlockLayout
from sparse_rnn.pruning.targets import TargetsArg, select_targets


def group_lasso_penalty(weight: Tensor, layout: BlockLayout) -> Tensor:
    """``sum_b ||W_b||_2`` over the blocks of ``weight`` (shape ``layout.shape``); a scalar.

    Differentiable; padding of partial edge blocks contributes nothing.
    """
    grid = layout.to_block_grid(weight).flatten(2)
    return torch.linalg.vector_norm(grid, ord=2, dim=2).sum()


class GroupLasso:
    """``strength * sum over targets of group_lasso_penalty``, to add to the training loss.

    Targets are chosen as for :class:`~sparse_rnn.pruning.GradualPruner` (every ``nn.LSTM`` and
    ``nn.Linear`` weight by default); a mapping in ``targets`` gives a per-weight factor that
    multiplies ``strength``.
    """

    def __init__(
        self,
        model: nn.Module,
        strength: float,
        block_size: int = 32,
        *,
        targets: TargetsArg = None,
    ) -> None:
        if not strength >= 0:
            raise ValueError(f"strength must be a non-negative number, got {strength!r}")
        self.strength = float(strength)
        self.targets, factors = select_targets(model, block_size, targets, 1.0)
        for name, factor in factors.items():
            if not factor >= 0:
                raise ValueError(f"targets: the factor of {name} must be >= 0, got {factor!r}")
        self.factors = factors

    def __call__(self) -> Tensor:
        """The penalty, a scalar tensor on the device of the first target."""
        terms = [
            self.factors[t.name] * group_lasso_penalty(t.parameter, t.layout) for t in self.targets
        ]
        return self.strength * torch.stack(terms).sum()
