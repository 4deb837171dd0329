"""BlockLayout: round trips between dense matrices and kept blocks, patterns and their views."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparse_rnn.block_layout import BlockLayout


@st.composite
def layouts_and_masks(draw):
    layout = BlockLayout(
        num_gates=draw(st.sampled_from([1, 4])),
        rows_per_gate=draw(st.integers(1, 13)),
        cols=draw(st.integers(1, 13)),
        block_size=draw(st.integers(1, 6)),
    )
    flat = draw(
        st.lists(
            st.booleans(),
            min_size=layout.num_block_rows * layout.num_block_cols,
            max_size=layout.num_block_rows * layout.num_block_cols,
        )
    )
    mask = torch.tensor(flat, dtype=torch.bool).view(layout.num_block_rows, layout.num_block_cols)
    return layout, mask


@settings(max_examples=60, deadline=None)
@given(layouts_and_masks())
def test_compress_then_densify_keeps_exactly_the_kept_blocks(layout_and_mask):
    layout, mask = layout_and_mask
    dense = torch.randn(layout.shape)
    weight = layout.compress(dense, mask)
    layout.validate(*weight[:3])

    # Entry (row, col) survives iff its block is kept; a gate's rows start a new block row.
    rows = torch.arange(layout.shape[0])
    gate, row_in_gate = rows // layout.rows_per_gate, rows % layout.rows_per_gate
    block_row = gate * layout.block_rows_per_gate + row_in_gate // layout.block_size
    block_col = torch.arange(layout.cols) // layout.block_size
    kept = mask[block_row][:, block_col]
    torch.testing.assert_close(weight.to_dense(), torch.where(kept, dense, 0.0), rtol=0, atol=0)

    assert torch.equal(layout.mask_from_pattern(weight.col_indices, weight.row_offsets), mask)
    assert torch.equal(layout.nonzero_block_mask(weight.to_dense()), mask)


@settings(max_examples=40, deadline=None)
@given(layouts_and_masks())
def test_transposed_order_lists_blocks_by_column(layout_and_mask):
    layout, mask = layout_and_mask
    weight = layout.compress(torch.randn(layout.shape), mask)
    order, col_offsets = layout.transposed_order(weight.col_indices, weight.row_offsets)
    rows = layout.row_indices(weight.row_offsets)
    # Rebuild the mask of the transpose from the column-major view.
    transposed = torch.zeros(layout.num_block_cols, layout.num_block_rows, dtype=torch.bool)
    for col in range(layout.num_block_cols):
        members = order[col_offsets[col] : col_offsets[col + 1]].long()
        assert (weight.col_indices[members] == col).all()
        assert (rows[members].diff() > 0).all()
        transposed[col, rows[members]] = True
    assert torch.equal(transposed, mask.T)


def test_top_blocks_mask_keeps_the_largest_per_gate():
    layout = BlockLayout(num_gates=2, rows_per_gate=4, cols=4, block_size=2)
    scores = torch.tensor(
        [[1.0, 5.0], [3.0, 2.0], [9.0, 8.0], [7.0, 0.5]]  # gate 0: rows 0-1, gate 1: rows 2-3
    )
    mask = layout.top_blocks_mask(scores, sparsity=0.5)
    assert mask.tolist() == [[False, True], [True, False], [True, True], [False, False]]


def test_block_norms_cover_partial_blocks():
    layout = BlockLayout(num_gates=1, rows_per_gate=3, cols=3, block_size=2)
    dense = torch.arange(9.0).view(3, 3)
    norms = layout.block_norms(dense, ord=1)
    assert norms.tolist() == [[0 + 1 + 3 + 4, 2 + 5], [6 + 7, 8]]
    assert layout.block_norms(dense, ord=float("inf")).tolist() == [[4, 5], [7, 8]]


@pytest.mark.parametrize(
    "corrupt,match",
    [
        (lambda b, c, r: (b, c, r[:-1]), "row_offsets must have shape"),
        (lambda b, c, r: (b[:-1], c, r), "expected blocks of shape"),
        (lambda b, c, r: (b, c + 10, r), "col_indices must lie in"),
        (lambda b, c, r: (b, c.flip(0), r), "sorted by \\(row, column\\)"),
        (lambda b, c, r: (b, c, r.flip(0)), "must rise from 0"),
    ],
)
def test_validate_rejects_broken_patterns(corrupt, match):
    layout = BlockLayout(num_gates=4, rows_per_gate=4, cols=6, block_size=2)
    mask = torch.rand(layout.num_block_rows, layout.num_block_cols) < 0.6
    mask[0, :2] = True
    weight = layout.compress(torch.randn(layout.shape), mask)
    with pytest.raises(ValueError, match=match):
        layout.validate(*corrupt(*weight[:3]))
