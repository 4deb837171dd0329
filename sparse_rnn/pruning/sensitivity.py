"""Sensitivity analysis: how much held-out loss each weight matrix costs when pruned alone.

Each target matrix in turn is pruned to every sparsity of a sweep (per gate, by block score)
while the others stay dense; the model is evaluated and the matrix restored. Matrices whose loss
rises little can take a higher sparsity. The result is a list of rows, with a plain-text table
and an optional matplotlib plot (matplotlib is imported only when plotting).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from sparse_rnn.block_layout import check_sparsity
from sparse_rnn.pruning.masks import apply_mask_, element_mask
from sparse_rnn.pruning.scores import block_scores
from sparse_rnn.pruning.targets import TargetsArg, select_targets


@dataclass(frozen=True)
class SensitivityRow:
    """Held-out loss with one weight pruned to ``sparsity``; ``baseline`` is the dense loss."""

    name: str
    sparsity: float
    loss: float
    baseline: float

    @property
    def loss_increase(self) -> float:
        return self.loss - self.baseline


def sensitivity_analysis(
    model: nn.Module,
    evaluate: Callable[[nn.Module], float],
    sparsities: Sequence[float],
    block_size: int = 32,
    *,
    targets: TargetsArg = None,
    score: str = "l2",
) -> list[SensitivityRow]:
    """Prune one target at a time to each of ``sparsities`` and record ``evaluate(model)``.

    ``evaluate`` returns the held-out loss of the model as a number; it runs under
    ``torch.no_grad``. Every weight is restored exactly afterwards, also on error.
    Returns one row per (target, sparsity), targets in model order.
    """
    for sparsity in sparsities:
        check_sparsity(sparsity)
    selected, _ = select_targets(model, block_size, targets, 0.0)
    with torch.no_grad():
        baseline = float(evaluate(model))
        rows = []
        for target in selected:
            original = target.parameter.detach().clone()
            scores = block_scores(original, target.layout, score)
            try:
                for sparsity in sparsities:
                    kept = target.layout.top_blocks_mask(scores, sparsity)
                    target.parameter.copy_(original)
                    apply_mask_(target.parameter, element_mask(target.layout, kept))
                    loss = float(evaluate(model))
                    rows.append(SensitivityRow(target.name, float(sparsity), loss, baseline))
            finally:
                target.parameter.copy_(original)
    return rows


def format_sensitivity_table(rows: Sequence[SensitivityRow]) -> str:
    """One line per weight, one column per sparsity, giving the loss; baseline in the header."""
    if not rows:
        return "(no rows)"
    sparsities = sorted({row.sparsity for row in rows})
    names = list(dict.fromkeys(row.name for row in rows))
    loss = {(row.name, row.sparsity): row.loss for row in rows}
    width = max(len("weight"), *(len(name) for name in names))
    header = f"{'weight':<{width}}" + "".join(f"  {f's={s:.2f}':>9}" for s in sparsities)
    lines = [f"held-out loss, dense baseline {rows[0].baseline:.4f}", header, "-" * len(header)]
    for name in names:
        cells = "".join(f"  {loss.get((name, s), float('nan')):>9.4f}" for s in sparsities)
        lines.append(f"{name:<{width}}{cells}")
    return "\n".join(lines)


def plot_sensitivity(rows: Sequence[SensitivityRow], ax=None):
    """Loss against sparsity, one line per weight, the dense baseline dashed; returns the Axes.

    Needs matplotlib (``pip install sparse_rnn[plot]``).
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("plot_sensitivity needs matplotlib: pip install matplotlib") from error
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(row.name for row in rows):
        points = sorted((row.sparsity, row.loss) for row in rows if row.name == name)
        ax.plot([s for s, _ in points], [v for _, v in points], marker="o", label=name)
    if rows:
        ax.axhline(rows[0].baseline, color="gray", linestyle="--", label="dense")
    ax.set_xlabel("block sparsity of the one pruned weight")
    ax.set_ylabel("held-out loss")
    ax.legend(fontsize="small")
    return ax
