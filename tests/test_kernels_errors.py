"""Bad input to the kernel launchers: a clear ValueError before any launch, never a crash."""

from __future__ import annotations

import pytest
import torch
from kernel_testing import DEVICE, random_weight

from sparse_rnn.block_layout import BlockLayout, BlockSparseWeight
from sparse_rnn.kernels.block_sparse_linear import block_sparse_linear
from sparse_rnn.kernels.sparse_lstm_step import lstm_cell


@pytest.fixture
def weight():
    return random_weight(1, 20, 24, 16, 1.0)


def test_unsupported_dtype(weight):
    x = torch.randn(3, 24, device=DEVICE, dtype=torch.float64)
    with pytest.raises(ValueError, match="block_sparse_linear: the Triton kernels support"):
        block_sparse_linear(x, weight._replace(blocks=weight.blocks.double()))


def test_mixed_dtypes(weight):
    x = torch.randn(3, 24, device=DEVICE, dtype=torch.float16)
    with pytest.raises(ValueError, match="blocks has dtype torch.float32 but x has torch.float16"):
        block_sparse_linear(x, weight)


def test_non_contiguous_input(weight):
    x = torch.randn(24, 3, device=DEVICE).T
    with pytest.raises(ValueError, match="x must be contiguous"):
        block_sparse_linear(x, weight)


def test_mismatched_devices(weight):
    x = torch.empty(3, 24, device="meta")
    with pytest.raises(ValueError, match="blocks is on .* but x is on meta"):
        block_sparse_linear(x, weight)


def test_index_dtype(weight):
    wrong = weight._replace(col_indices=weight.col_indices.long())
    with pytest.raises(ValueError, match="col_indices must be int32"):
        block_sparse_linear(torch.randn(3, 24, device=DEVICE), wrong)


@pytest.mark.parametrize("block_size", [8, 128])
def test_unsupported_block_size(block_size):
    layout = BlockLayout(1, 20, 24, block_size)
    dense = torch.randn(layout.shape)
    full = torch.ones(layout.num_block_rows, layout.num_block_cols, dtype=torch.bool)
    weight = BlockSparseWeight(*[t.to(DEVICE) for t in layout.compress(dense, full)[:3]], layout)
    expected = r"block_size must be one of \(16, 32, 64\) .*, got block_size="
    with pytest.raises(ValueError, match=expected):
        block_sparse_linear(torch.randn(3, 24, device=DEVICE), weight)


def test_step_shapes():
    w_hh = random_weight(4, 20, 20, 16, 1.0)
    xproj, h, c = (torch.randn(2, n, device=DEVICE) for n in (80, 20, 20))
    with pytest.raises(ValueError, match=r"c must have shape \(2, 20\).*got \(3, 20\)"):
        lstm_cell(xproj, h, torch.randn(3, 20, device=DEVICE), w_hh)
    with pytest.raises(ValueError, match=r"xproj must have shape \(2, 80\)"):
        lstm_cell(xproj[:, :40].contiguous(), h, c, w_hh)
    with pytest.raises(ValueError, match="W_hh must have 4 gates"):
        lstm_cell(xproj, h, c, random_weight(1, 80, 20, 16, 1.0))


def test_too_many_block_rows(monkeypatch):
    from sparse_rnn.kernels import block_sparse_linear as module

    monkeypatch.setattr(module, "MAX_GRID_Y", 1)
    with pytest.raises(ValueError, match="2 block rows, more than the 1 programs"):
        block_sparse_linear(torch.randn(3, 24, device=DEVICE), random_weight(1, 20, 24, 16, 1.0))
