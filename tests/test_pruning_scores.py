"""Block scores per gate against explicit slicing; layer-wise, balanced and global masks."""

import pytest
import torch

from sparse_rnn.block_layout import BlockLayout
from sparse_rnn.pruning import (
    balanced_top_blocks_mask,
    block_scores,
    global_masks,
    layerwise_masks,
    rank_blocks,
)


def explicit_scores(weight, layout, norm):
    """Scores by slicing each gate's rows into blocks by hand, shape like the block grid."""
    bs = layout.block_size
    scores = torch.zeros(layout.num_block_rows, layout.num_block_cols)
    for gate in range(layout.num_gates):
        rows = weight[gate * layout.rows_per_gate : (gate + 1) * layout.rows_per_gate]
        for r in range(layout.block_rows_per_gate):
            for c in range(layout.num_block_cols):
                block = rows[r * bs : (r + 1) * bs, c * bs : (c + 1) * bs].flatten()
                scores[gate * layout.block_rows_per_gate + r, c] = norm(block)
    return scores


NORMS = {
    "l1": lambda b: b.abs().sum(),
    "l2": lambda b: b.pow(2).sum().sqrt(),
    "max": lambda b: b.abs().max(),
}


@pytest.mark.parametrize("score", sorted(NORMS))
@pytest.mark.parametrize("shape", [(4, 10, 7, 4), (1, 9, 16, 4), (4, 3, 5, 2)])
def test_block_scores_match_explicit_slicing(score, shape):
    torch.manual_seed(0)
    layout = BlockLayout(*shape)
    weight = torch.randn(layout.shape)
    expected = explicit_scores(weight, layout, NORMS[score])
    torch.testing.assert_close(block_scores(weight, layout, score), expected, atol=1e-6, rtol=1e-6)


def test_unknown_score_is_refused():
    layout = BlockLayout(1, 4, 4, 2)
    with pytest.raises(ValueError, match=r"score must be one of \['l1', 'l2', 'max'\], got 'l0'"):
        block_scores(torch.ones(4, 4), layout, "l0")


def test_layerwise_keeps_the_best_blocks_of_each_gate():
    torch.manual_seed(1)
    layout = BlockLayout(4, 8, 12, 4)  # 2 x 3 = 6 blocks per gate
    scores = torch.rand(layout.num_block_rows, layout.num_block_cols)
    mask = layerwise_masks({"w": scores}, {"w": layout}, {"w": 0.5})["w"]
    for gate in range(4):
        gate_scores = scores[gate * 2 : (gate + 1) * 2].flatten()
        gate_mask = mask[gate * 2 : (gate + 1) * 2].flatten()
        assert int(gate_mask.sum()) == 3
        assert gate_scores[gate_mask].min() > gate_scores[~gate_mask].max()


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9])
def test_balanced_keeps_the_best_blocks_of_each_block_row(sparsity):
    torch.manual_seed(2)
    layout = BlockLayout(4, 8, 20, 4)  # 5 block columns
    scores = torch.rand(layout.num_block_rows, layout.num_block_cols)
    mask = balanced_top_blocks_mask(layout, scores, sparsity)
    keep = round((1 - sparsity) * 5)
    for row in range(layout.num_block_rows):
        assert int(mask[row].sum()) == keep
        if 0 < keep < 5:
            assert scores[row][mask[row]].min() > scores[row][~mask[row]].max()


def test_global_ranking_over_matrices_of_different_scale():
    scores = {"a": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "b": torch.tensor([[10.0, 0.5]])}
    masks = global_masks(scores, 0.5)
    assert masks["a"].tolist() == [[False, False], [True, True]]
    assert masks["b"].tolist() == [[True, False]]


def test_rank_blocks_refuses_global_with_several_sparsities():
    layout = BlockLayout(1, 2, 2, 1)
    scores = {"a": torch.rand(2, 2), "b": torch.rand(2, 2)}
    with pytest.raises(ValueError, match=r"one sparsity for all weights, got \[0.2, 0.5\]"):
        rank_blocks(scores, {"a": layout, "b": layout}, {"a": 0.5, "b": 0.2}, ranking="global")
    with pytest.raises(ValueError, match="ranking must be one of"):
        rank_blocks(scores, {"a": layout, "b": layout}, {"a": 0.5, "b": 0.5}, ranking="row")
