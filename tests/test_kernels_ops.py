"""The block-sparse linear and fused LSTM step kernels against the reference path.

Without a GPU these run through Triton's interpreter (set in conftest.py), which is slow, so
the shapes are small: every dimension that feeds ``tl.dot`` is at least 16 after padding, and
the awkward cases (partial edge blocks, batch 1, empty block rows, no kept block at all,
sparsity 0 and 0.95, several batch tiles) each appear once. The accuracy rule is in
``kernel_testing``.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel_testing import (
    DEVICE,
    assert_matches_reference,
    needs_kernels,
    random_weight,
    with_dtype,
)

from sparse_rnn import reference
from sparse_rnn.kernel_ops import block_sparse_linear, sparse_lstm_step

pytestmark = needs_kernels

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def check_linear(x, weight, bias):
    actual = block_sparse_linear(x, weight, bias)
    exact = reference.block_sparse_linear(
        x.double(), with_dtype(weight, torch.float64), None if bias is None else bias.double()
    )
    same = reference.block_sparse_linear(x, weight, bias)
    assert_matches_reference(actual, exact, same, "block_sparse_linear")


def check_step(xproj, h, c, w_hh, w_hr):
    h_next, c_next = sparse_lstm_step(xproj, h, c, w_hh, w_hr)
    double = [t.double() for t in (xproj, h, c)]
    h_exact, c_exact = reference.sparse_lstm_step(
        *double, with_dtype(w_hh, torch.float64), with_dtype(w_hr, torch.float64)
    )
    h_same, c_same = reference.sparse_lstm_step(xproj, h, c, w_hh, w_hr)
    assert_matches_reference(h_next, h_exact, h_same, "sparse_lstm_step h")
    assert_matches_reference(c_next, c_exact, c_same, "sparse_lstm_step c")


def step_inputs(batch, hidden, inputs_to_gates, dtype, generator):
    def randn(*shape):
        return torch.randn(*shape, generator=generator).to(device=DEVICE, dtype=dtype)

    return randn(batch, 4 * hidden), randn(batch, inputs_to_gates), randn(batch, hidden)


@pytest.mark.parametrize(
    "num_gates, rows, cols, block_size, density, m, has_bias",
    [
        (4, 37, 50, 16, 0.5, 23, True),  # partial edge blocks in every gate and column
        (1, 40, 33, 32, 1.0, 1, False),  # sparsity 0, batch 1
        (1, 70, 20, 64, 0.05, 5, True),  # sparsity 0.95; cols smaller than one block
    ],
)
def test_linear_matches_reference(num_gates, rows, cols, block_size, density, m, has_bias):
    generator = torch.Generator().manual_seed(rows)
    weight = random_weight(num_gates, rows, cols, block_size, density, generator=generator)
    x = torch.randn(m, cols, generator=generator).to(DEVICE)
    bias = torch.randn(num_gates * rows, generator=generator).to(DEVICE) if has_bias else None
    check_linear(x, weight, bias)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_dtypes_empty_rows_and_leading_dims(dtype):
    generator = torch.Generator().manual_seed(0)
    weight = random_weight(2, 20, 40, 16, 0.7, dtype, generator, empty_block_rows=(0, 3))
    x = torch.randn(2, 3, 40, generator=generator).to(device=DEVICE, dtype=dtype)
    bias = torch.randn(40, generator=generator).to(device=DEVICE, dtype=dtype)
    check_linear(x, weight, bias)


def test_linear_without_kept_blocks_gives_bias():
    weight = random_weight(1, 20, 20, 16, 0.0)
    x = torch.randn(3, 20, device=DEVICE)
    bias = torch.randn(20, device=DEVICE)
    torch.testing.assert_close(block_sparse_linear(x, weight, bias), bias.expand(3, 20))


@pytest.mark.parametrize(
    "batch, hidden, proj, block_size, density, dtype",
    [
        (5, 37, 0, 16, 0.5, torch.float32),  # partial hidden blocks
        (1, 32, 0, 32, 1.0, torch.float32),  # batch 1, sparsity 0
        (3, 40, 24, 16, 0.05, torch.float32),  # proj_size, sparsity 0.95
        (4, 20, 0, 64, 0.8, torch.float32),  # block size 64, one partial block per gate
        (5, 37, 19, 16, 0.6, torch.bfloat16),
        (5, 37, 19, 16, 0.6, torch.float16),
    ],
)
def test_step_matches_reference(batch, hidden, proj, block_size, density, dtype):
    generator = torch.Generator().manual_seed(batch * hidden)
    inputs_to_gates = proj or hidden
    w_hh = random_weight(4, hidden, inputs_to_gates, block_size, density, dtype, generator)
    w_hr = random_weight(1, proj, hidden, block_size, 0.7, dtype, generator) if proj else None
    check_step(*step_inputs(batch, hidden, inputs_to_gates, dtype, generator), w_hh, w_hr)


def test_step_several_batch_tiles_and_empty_rows(monkeypatch):
    # Pinning a 16-row tile makes 20 rows take two batch tiles, the second one partial.
    monkeypatch.setenv("SPARSE_RNN_STEP_CONFIG", "16,2,2")
    generator = torch.Generator().manual_seed(1)
    w_hh = random_weight(4, 30, 30, 16, 0.8, generator=generator, empty_block_rows=(1, 4))
    check_step(*step_inputs(20, 30, 30, torch.float32, generator), w_hh, None)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hidden=st.integers(1, 40),
    proj=st.sampled_from([0, 7, 21]),
    batch=st.integers(1, 9),
    block_size=st.sampled_from([16, 32]),
    density=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_step_random_shapes_and_patterns(hidden, proj, batch, block_size, density, seed):
    generator = torch.Generator().manual_seed(seed)
    inputs_to_gates = proj or hidden
    w_hh = random_weight(4, hidden, inputs_to_gates, block_size, density, generator=generator)
    w_hr = None
    if proj:
        w_hr = random_weight(1, proj, hidden, block_size, density, generator=generator)
    check_step(*step_inputs(batch, hidden, inputs_to_gates, torch.float32, generator), w_hh, w_hr)
