"""Block scores and the ranking that turns them into block masks.

A block's score is a norm of its entries (L1, L2 or the largest magnitude). Blocks are ranked
either within each gate of each matrix (layer-wise, the default; every gate reaches the same
sparsity) or across all target matrices together (global). Balanced mode keeps the same number
of blocks in every block row of a gate, so that a kernel gives each block row equal work.
All masks are bool tensors of shape (num_block_rows, num_block_cols) of the weight's layout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from sparse_rnn.block_layout import BlockLayout, check_sparsity

SCORE_NORMS = {"l1": 1.0, "l2": 2.0, "max": math.inf}
RANKINGS = ("layer", "global")


def check_score(score: str) -> None:
    if score not in SCORE_NORMS:
        raise ValueError(f"score must be one of {sorted(SCORE_NORMS)}, got {score!r}")


def check_ranking(ranking: str) -> None:
    if ranking not in RANKINGS:
        raise ValueError(f"ranking must be one of {list(RANKINGS)}, got {ranking!r}")


def block_scores(weight: Tensor, layout: BlockLayout, score: str = "l2") -> Tensor:
    """Score of every block of ``weight`` (shape ``layout.shape``), as float32.

    Returns shape (num_block_rows, num_block_cols); block row ``g * block_rows_per_gate + r``
    is block row ``r`` of gate ``g``.
    """
    check_score(score)
    return layout.block_norms(weight, ord=SCORE_NORMS[score])


def balanced_top_blocks_mask(layout: BlockLayout, scores: Tensor, sparsity: float) -> Tensor:
    """Keep the ``round((1 - sparsity) * num_block_cols)`` best blocks of every block row.

    Every block row of every gate then holds the same number of blocks. Ties go to the lower
    column.
    """
    check_sparsity(sparsity)
    keep = round((1.0 - sparsity) * layout.num_block_cols)
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    mask = torch.zeros_like(scores, dtype=torch.bool)
    mask.scatter_(1, order[:, :keep], True)
    return mask


def layerwise_masks(
    scores: Mapping[str, Tensor],
    layouts: Mapping[str, BlockLayout],
    sparsity: Mapping[str, float],
    *,
    balanced: bool = False,
) -> dict[str, Tensor]:
    """Per matrix and per gate, keep the best blocks at that matrix's sparsity."""
    masks = {}
    for name, layout in layouts.items():
        if balanced:
            masks[name] = balanced_top_blocks_mask(layout, scores[name], sparsity[name])
        else:
            masks[name] = layout.top_blocks_mask(scores[name], sparsity[name])
    return masks


def global_masks(scores: Mapping[str, Tensor], sparsity: float) -> dict[str, Tensor]:
    """Rank the blocks of all matrices together; keep ``round((1 - sparsity) * total)``.

    Scores are compared as they are, so matrices of larger weights keep more blocks. Ties go to
    the earlier matrix and the lower index.
    """
    check_sparsity(sparsity)
    names = list(scores)
    flat = torch.cat([scores[name].flatten() for name in names])
    keep = round((1.0 - sparsity) * flat.numel())
    order = torch.sort(flat, descending=True, stable=True).indices
    kept = torch.zeros_like(flat, dtype=torch.bool)
    kept[order[:keep]] = True
    masks, start = {}, 0
    for name in names:
        count = scores[name].numel()
        masks[name] = kept[start : start + count].view_as(scores[name])
        start += count
    return masks


def rank_blocks(
    scores: Mapping[str, Tensor],
    layouts: Mapping[str, BlockLayout],
    sparsity: Mapping[str, float],
    *,
    ranking: str = "layer",
    balanced: bool = False,
) -> dict[str, Tensor]:
    """Block masks of every matrix: ``layerwise_masks`` or ``global_masks``.

    Global ranking takes one sparsity for all matrices and cannot be balanced.
    """
    check_ranking(ranking)
    if ranking == "layer":
        return layerwise_masks(scores, layouts, sparsity, balanced=balanced)
    if balanced:
        raise ValueError("balanced=True needs ranking='layer', got ranking='global'")
    levels = set(sparsity.values())
    if len(levels) != 1:
        raise ValueError(
            f"ranking='global' takes one sparsity for all weights, got {sorted(levels)}"
        )
    return global_masks(scores, levels.pop())
