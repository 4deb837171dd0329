"""Block-sparse linear layer: ``Y = X @ W.T + b`` reading only the kept blocks of W.

X is dense (M, K) and W (N, K) is stored in the block CSR format of
:mod:`sparse_rnn.block_layout`. One program owns a tile of BLOCK_M rows of X and one block row
of W (BLOCK_N = block_size output features): it walks that block row's kept blocks, multiplies
each with the matching BLOCK_N columns of X into an fp32 accumulator, adds the bias and stores
the tile. It serves the input projection of all time steps at once (M = T * B), the output
projection ``weight_hr`` of the LSTM step, and ``SparseLinear``.

Checked against :func:`sparse_rnn.reference.block_sparse_linear` under Triton's interpreter on
CPU, and compiled for sm_80 / sm_90 without a GPU (see :mod:`sparse_rnn.kernel_compile`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from sparse_rnn.block_layout import BlockSparseWeight
from sparse_rnn.kernel_checks import check_kernel_inputs, check_launchable, interpreter_bf16

from . import pick_config, traceable

CONFIG_ENV = "SPARSE_RNN_LINEAR_CONFIG"
MAX_GRID_Y = 65535  # block rows go on the grid's second axis, whose size CUDA caps


@triton.jit
def round_to_bfloat16_by_hand(x):
    """fp32 ``x`` rounded to the nearest bf16 value (ties to even), still as fp32.

    NOTE: for the interpreter only, whose fp32 -> bf16 cast truncates; compiled kernels round
    in the cast itself. Adding 0x7FFF plus the lowest kept bit, then clearing the 16 dropped
    bits, is round-half-to-even on the bit pattern (a carry correctly bumps the exponent).
    """
    bits = x.to(tl.uint32, bitcast=True)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).to(tl.float32, bitcast=True)


@triton.jit
def accumulate_block_row(
    acc,  # (ROWS, BLOCK) fp32
    a_row_ptrs,  # (ROWS, 1) pointers to the rows of the dense operand A (ROWS, K)
    a_row_mask,  # (ROWS,)
    K,
    w_blocks_ptr,  # (nnz, BLOCK, BLOCK)
    w_col_indices_ptr,  # (nnz,) int32
    w_row_offsets_ptr,  # (num_block_rows + 1,) int32
    block_row,
    INTERPRETER_BF16: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """``acc += A @ W[block_row].T`` over the kept blocks of one block row of W.

    The loop both kernels share: for each kept block, load the matching BLOCK columns of A and
    the block transposed, (k, n), and multiply into the fp32 accumulator.
    """
    offs_block = tl.arange(0, BLOCK)
    w_t_offsets = offs_block[:, None] + offs_block[None, :] * BLOCK
    start = tl.load(w_row_offsets_ptr + block_row)
    end = tl.load(w_row_offsets_ptr + block_row + 1)
    # The block pointers advance one block per step from 64-bit starts: nnz * BLOCK**2 can
    # pass 2**31 for large layers.
    w_t_ptrs = w_blocks_ptr + start.to(tl.int64) * (BLOCK * BLOCK) + w_t_offsets
    col_index_ptr = w_col_indices_ptr + start
    for _ in range(start, end):
        offs_k = tl.load(col_index_ptr) * BLOCK + offs_block
        a_mask = a_row_mask[:, None] & (offs_k < K)[None, :]
        a_tile = tl.load(a_row_ptrs + offs_k[None, :], mask=a_mask, other=0.0)
        w_t = tl.load(w_t_ptrs)
        if INTERPRETER_BF16:  # see kernel_checks.interpreter_bf16
            a_tile, w_t = a_tile.to(tl.float32), w_t.to(tl.float32)
        # "ieee": exact fp32 products, never TF32 (16-bit inputs ignore it).
        acc = tl.dot(a_tile, w_t, acc, input_precision="ieee")
        w_t_ptrs += BLOCK * BLOCK
        col_index_ptr += 1
    return acc


@triton.jit
def block_sparse_linear_kernel(
    x_ptr,  # (M, K)
    w_blocks_ptr,  # (nnz, BLOCK_N, BLOCK_N), row = output feature, column = input feature
    w_col_indices_ptr,  # (nnz,) int32
    w_row_offsets_ptr,  # (num_block_rows + 1,) int32
    bias_ptr,  # (N,), read only when HAS_BIAS
    y_ptr,  # (M, N)
    M,
    K,
    rows_per_gate,
    block_rows_per_gate,
    stride_x_row,
    stride_y_row,
    HAS_BIAS: tl.constexpr,
    INTERPRETER_BF16: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    # Which tile this program owns: rows pid_m * BLOCK_M... of X, block row `block_row` of W.
    pid_m = tl.program_id(0)
    block_row = tl.program_id(1)
    gate = block_row // block_rows_per_gate
    row_in_gate = (block_row % block_rows_per_gate) * BLOCK_N + tl.arange(0, BLOCK_N)
    # Gates are stacked with rows_per_gate rows each (not padded to whole blocks), so the last
    # block row of a gate is partial and its extra rows must not be stored.
    n_mask = row_in_gate < rows_per_gate
    offs_n = gate * rows_per_gate + row_in_gate

    # Where the pointers point. Row offsets go 64-bit: M * stride can pass 2**31 for long inputs.
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    m_mask = offs_m < M
    x_row_ptrs = x_ptr + offs_m.to(tl.int64)[:, None] * stride_x_row

    # Loop over the kept blocks of this block row into an fp32 accumulator.
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    acc = accumulate_block_row(
        acc, x_row_ptrs, m_mask, K, w_blocks_ptr, w_col_indices_ptr, w_row_offsets_ptr,
        block_row, INTERPRETER_BF16, BLOCK_N,
    )  # fmt: skip

    # Bias, then one cast to the output dtype and a masked store.
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_n, mask=n_mask, other=0.0).to(tl.float32)[None, :]
    if INTERPRETER_BF16:
        acc = round_to_bfloat16_by_hand(acc)
    y_ptrs = y_ptr + offs_m.to(tl.int64)[:, None] * stride_y_row + offs_n[None, :]
    tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=m_mask[:, None] & n_mask[None, :])


class LinearConfig(NamedTuple):
    BLOCK_M: int
    num_warps: int
    num_stages: int


def linear_configs(block_size: int) -> list[LinearConfig]:
    """Every configuration the launcher may pick for ``block_size``, smallest tile first.

    NOTE: chosen by register budget, not timed on a GPU yet. Each must compile without spills
    on sm_80 and sm_90 (the compile check in the tests enforces it): with fp32 inputs the
    products run on FMA units and a 64 x 64 tile at block size 64 spilled on sm_80 (255
    registers, 24 bytes of stack), so block size 64 stops at 32 rows.
    """
    if block_size <= 32:
        return [LinearConfig(16, 4, 2), LinearConfig(32, 4, 2), LinearConfig(64, 4, 2)]
    return [LinearConfig(16, 8, 2), LinearConfig(32, 8, 2)]


def block_sparse_linear(x: Tensor, weight: BlockSparseWeight, bias: Tensor | None = None) -> Tensor:
    """``x @ W.T + bias`` for x (..., K) and a block-sparse W (N, K); returns (..., N).

    x, the blocks and bias share one device and one dtype (float32, bfloat16 or float16) and are
    contiguous; products accumulate in fp32 and fp32 inputs multiply in exact IEEE arithmetic.
    """
    layout = weight.layout
    n, k = layout.shape
    check_kernel_inputs(
        "block_sparse_linear",
        {"x": x, "blocks": weight.blocks, "bias": bias},
        {"col_indices": weight.col_indices, "row_offsets": weight.row_offsets},
        layout.block_size,
    )
    if x.shape[-1] != k:
        raise ValueError(f"block_sparse_linear: x has {x.shape[-1]} features, W expects {k}")
    if bias is not None and tuple(bias.shape) != (n,):
        raise ValueError(
            f"block_sparse_linear: bias must have shape ({n},), got {tuple(bias.shape)}"
        )

    if layout.num_block_rows > MAX_GRID_Y:
        raise ValueError(
            f"block_sparse_linear: W has {layout.num_block_rows} block rows, more than the "
            f"{MAX_GRID_Y} programs CUDA allows on the second grid axis; use a larger block size"
        )

    x2d = x.reshape(-1, k)
    m = x2d.shape[0]
    y = torch.empty(m, n, device=x.device, dtype=x.dtype)
    if m == 0 or weight.col_indices.numel() == 0:
        y.zero_()
        if bias is not None:
            y += bias
        return y.view(*x.shape[:-1], n)

    check_launchable("block_sparse_linear")
    # The smallest tile that covers M wastes no masked rows; past the largest tile, more
    # programs share the work.
    config = pick_config(linear_configs(layout.block_size), m, CONFIG_ENV)
    grid = (triton.cdiv(m, config.BLOCK_M), layout.num_block_rows)
    traceable(block_sparse_linear_kernel)[grid](
        x2d,
        weight.blocks,
        weight.col_indices,
        weight.row_offsets,
        y if bias is None else bias,  # never read without a bias
        y,
        m,
        k,
        layout.rows_per_gate,
        layout.block_rows_per_gate,
        x2d.stride(0),
        y.stride(0),
        HAS_BIAS=bias is not None,
        INTERPRETER_BF16=interpreter_bf16(x.dtype),
        BLOCK_M=config.BLOCK_M,
        BLOCK_N=layout.block_size,
        num_warps=config.num_warps,
        num_stages=config.num_stages,
    )
    return y.view(*x.shape[:-1], n)
