"""Fused sparse LSTM step: recurrent product over kept blocks, gates, ``c_t`` and ``h_t`` at once.

``gates = xproj_t + h_{t-1} @ W_hh.T`` with W_hh (4H, P) in the block CSR format of
:mod:`sparse_rnn.block_layout`. Because each gate is blocked on its own, hidden-unit block ``r``
finds its input, forget, cell and output rows at block rows ``gate * block_rows_per_gate + r``.
One program owns such a block of BLOCK_H hidden units and a tile of BLOCK_B batch rows, runs four
fp32 accumulators over the kept blocks of those four block rows, applies the nonlinearities and
stores ``c_t`` and ``h_t``: no gate tensor goes through memory. With ``proj_size`` the projection
``h_t @ W_hr.T`` needs every hidden unit, so :mod:`sparse_rnn.kernel_ops` hands ``h_t`` to the
block-sparse linear kernel in a second launch. As in ``nn.LSTM``, ``c_t`` is stored in the input
dtype; within the step all gate math runs in fp32.

Checked against :func:`sparse_rnn.reference.sparse_lstm_step` under Triton's interpreter on CPU,
and compiled for sm_80 / sm_90 without a GPU (see :mod:`sparse_rnn.kernel_compile`).
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
from .block_sparse_linear import accumulate_block_row, round_to_bfloat16_by_hand

CONFIG_ENV = "SPARSE_RNN_STEP_CONFIG"


@triton.jit
def sparse_lstm_step_kernel(
    xproj_ptr,  # (B, 4H): x_t @ W_ih.T + b_ih + b_hh
    h_ptr,  # (B, P): h_{t-1}
    c_ptr,  # (B, H): c_{t-1}
    w_blocks_ptr,  # (nnz, BLOCK_H, BLOCK_H): kept blocks of W_hh (4H, P)
    w_col_indices_ptr,  # (nnz,) int32
    w_row_offsets_ptr,  # (4 * block_rows_per_gate + 1,) int32
    h_out_ptr,  # (B, H): h_t before any projection
    c_out_ptr,  # (B, H): c_t
    B,
    H,
    P,
    block_rows_per_gate,
    stride_xproj_batch,
    stride_h_batch,
    stride_c_batch,
    stride_h_out_batch,
    stride_c_out_batch,
    INTERPRETER_BF16: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    # Which tile this program owns: batch rows pid_b * BLOCK_B..., hidden units of block
    # hidden_block (the same units in each of the four gates).
    pid_b = tl.program_id(0)
    hidden_block = tl.program_id(1)
    offs_b = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_unit = hidden_block * BLOCK_H + tl.arange(0, BLOCK_H)
    b_mask = offs_b < B
    unit_mask = offs_unit < H
    tile_mask = b_mask[:, None] & unit_mask[None, :]

    # Where the pointers point; batch offsets in 64 bits, as B * stride can pass 2**31.
    rows = offs_b.to(tl.int64)[:, None]
    h_row_ptrs = h_ptr + rows * stride_h_batch
    xproj_ptrs = xproj_ptr + rows * stride_xproj_batch + offs_unit[None, :]

    # The four gates (PyTorch's order i, f, g, o) over the kept blocks, each in fp32.
    gate_i = tl.load(xproj_ptrs, mask=tile_mask, other=0.0).to(tl.float32)
    gate_f = tl.load(xproj_ptrs + H, mask=tile_mask, other=0.0).to(tl.float32)
    gate_g = tl.load(xproj_ptrs + 2 * H, mask=tile_mask, other=0.0).to(tl.float32)
    gate_o = tl.load(xproj_ptrs + 3 * H, mask=tile_mask, other=0.0).to(tl.float32)
    gate_i = accumulate_block_row(
        gate_i, h_row_ptrs, b_mask, P, w_blocks_ptr, w_col_indices_ptr, w_row_offsets_ptr,
        hidden_block, INTERPRETER_BF16, BLOCK_H,
    )  # fmt: skip
    gate_f = accumulate_block_row(
        gate_f, h_row_ptrs, b_mask, P, w_blocks_ptr, w_col_indices_ptr, w_row_offsets_ptr,
        block_rows_per_gate + hidden_block, INTERPRETER_BF16, BLOCK_H,
    )  # fmt: skip
    gate_g = accumulate_block_row(
        gate_g, h_row_ptrs, b_mask, P, w_blocks_ptr, w_col_indices_ptr, w_row_offsets_ptr,
        2 * block_rows_per_gate + hidden_block, INTERPRETER_BF16, BLOCK_H,
    )  # fmt: skip
    gate_o = accumulate_block_row(
        gate_o, h_row_ptrs, b_mask, P, w_blocks_ptr, w_col_indices_ptr, w_row_offsets_ptr,
        3 * block_rows_per_gate + hidden_block, INTERPRETER_BF16, BLOCK_H,
    )  # fmt: skip

    # Gate math in fp32. tanh(x) = 2 * sigmoid(2x) - 1 keeps to tl's portable functions (the
    # interpreter and every backend have sigmoid); its absolute error is a few fp32 ulps.
    in_gate = tl.sigmoid(gate_i)
    forget_gate = tl.sigmoid(gate_f)
    cell_gate = 2.0 * tl.sigmoid(2.0 * gate_g) - 1.0
    out_gate = tl.sigmoid(gate_o)
    c_ptrs = c_ptr + rows * stride_c_batch + offs_unit[None, :]
    c_prev = tl.load(c_ptrs, mask=tile_mask, other=0.0).to(tl.float32)
    c_next = forget_gate * c_prev + in_gate * cell_gate
    h_next = out_gate * (2.0 * tl.sigmoid(2.0 * c_next) - 1.0)

    # One cast to the state dtype, masked stores.
    if INTERPRETER_BF16:
        c_next = round_to_bfloat16_by_hand(c_next)
        h_next = round_to_bfloat16_by_hand(h_next)
    c_out_ptrs = c_out_ptr + rows * stride_c_out_batch + offs_unit[None, :]
    h_out_ptrs = h_out_ptr + rows * stride_h_out_batch + offs_unit[None, :]
    tl.store(c_out_ptrs, c_next.to(c_out_ptr.dtype.element_ty), mask=tile_mask)
    tl.store(h_out_ptrs, h_next.to(h_out_ptr.dtype.element_ty), mask=tile_mask)


class StepConfig(NamedTuple):
    BLOCK_B: int
    num_warps: int
    num_stages: int


def step_configs(block_size: int) -> list[StepConfig]:
    """Every configuration the launcher may pick for ``block_size``, smallest tile first.

    NOTE: chosen by register budget, not timed on a GPU yet. Four (BLOCK_B, block_size) fp32
    accumulators live at once; each configuration must compile without spills on sm_80 and
    sm_90, which the compile check in the tests enforces. Block size 64 takes 8 warps and at
    most 32 batch rows; a 16 x 16 tile with 4 warps spilled 8 bytes on sm_80, with 2 none.
    """
    if block_size == 16:
        return [StepConfig(16, 2, 2), StepConfig(32, 4, 2), StepConfig(64, 8, 2)]
    if block_size == 32:
        return [StepConfig(16, 4, 2), StepConfig(32, 4, 2), StepConfig(64, 8, 2)]
    return [StepConfig(16, 8, 2), StepConfig(32, 8, 2)]


def lstm_cell(
    xproj: Tensor, h: Tensor, c: Tensor, w_hh: BlockSparseWeight
) -> tuple[Tensor, Tensor]:
    """The fused step without projection: returns ``(h_t, c_t)``, both (B, H).

    xproj (B, 4H), h (B, P) with P = W_hh's columns, c (B, H); one device, one dtype (float32,
    bfloat16 or float16), contiguous.
    """
    layout = w_hh.layout
    check_kernel_inputs(
        "sparse_lstm_step",
        {"xproj": xproj, "h": h, "c": c, "w_hh blocks": w_hh.blocks},
        {"col_indices": w_hh.col_indices, "row_offsets": w_hh.row_offsets},
        layout.block_size,
    )
    hidden, p = layout.rows_per_gate, layout.cols
    if h.dim() != 2:
        raise ValueError(f"sparse_lstm_step: h must be 2-D (batch, {p}), got {h.dim()}-D")
    batch = h.shape[0]
    if layout.num_gates != 4:
        raise ValueError(f"sparse_lstm_step: W_hh must have 4 gates, got {layout.num_gates}")
    for name, tensor, shape in (
        ("xproj", xproj, (batch, 4 * hidden)),
        ("h", h, (batch, p)),
        ("c", c, (batch, hidden)),
    ):
        if tuple(tensor.shape) != shape:
            raise ValueError(
                f"sparse_lstm_step: {name} must have shape {shape} for W_hh of shape "
                f"{layout.shape}, got {tuple(tensor.shape)}"
            )

    h_next = torch.empty_like(c)
    c_next = torch.empty_like(c)
    if batch == 0:
        return h_next, c_next

    check_launchable("sparse_lstm_step")
    # The step is bound by reading W_hh: one batch tile covering the whole batch reads every
    # kept block once, so take the smallest tile that does, up to the largest one.
    config = pick_config(step_configs(layout.block_size), batch, CONFIG_ENV)
    grid = (triton.cdiv(batch, config.BLOCK_B), layout.block_rows_per_gate)
    traceable(sparse_lstm_step_kernel)[grid](
        xproj,
        h,
        c,
        w_hh.blocks,
        w_hh.col_indices,
        w_hh.row_offsets,
        h_next,
        c_next,
        batch,
        hidden,
        p,
        layout.block_rows_per_gate,
        xproj.stride(0),
        h.stride(0),
        c.stride(0),
        h_next.stride(0),
        c_next.stride(0),
        INTERPRETER_BF16=interpreter_bf16(xproj.dtype),
        BLOCK_B=config.BLOCK_B,
        BLOCK_H=layout.block_size,
        num_warps=config.num_warps,
        num_stages=config.num_stages,
    )
    return h_next, c_next
