"""The Triton kernels as ``torch.library`` operators, differentiable, for the ``"triton"`` backend.

``sparse_rnn::block_sparse_linear`` and ``sparse_rnn::lstm_cell`` are Triton ops
(:func:`torch.library.triton_op`), so that ``torch.compile`` can trace through them into the
kernels without a graph break, and their launchers neither synchronise nor read tensor values
on the host, so that a CUDA graph can capture them (both checked by GPU-only tests, which have
not run yet). A block-sparse weight crosses the op boundary as its three tensors plus the
integers of its layout.

NOTE: the kernels are forward only. The backward formulas here are plain PyTorch on the
densified weights: correct, and differentiable once, but not fast; backward kernels that read
only the kept blocks (in :meth:`BlockLayout.transposed_order`) are a later issue.

Importing this module imports triton.
"""

import torch
from torch import Tensor
from torch.library import triton_op

from sparse_rnn.block_layout import BlockLayout, BlockSparseWeight
from sparse_rnn.kernels import block_sparse_linear as linear_kernel
from sparse_rnn.kernels import sparse_lstm_step as step_kernel


def block_sparse_linear(x: Tensor, weight: BlockSparseWeight, bias: Tensor | None = None) -> Tensor:
    """``x @ W.T + bias`` for x (..., K), W block-sparse (N, K), through the Triton kernel."""
    layout = weight.layout
    return _linear_op(
        x.contiguous(),
        weight.blocks,
        weight.col_indices,
        weight.row_offsets,
        bias,
        layout.num_gates,
        layout.rows_per_gate,
        layout.cols,
    )


def sparse_lstm_step(
    xproj: Tensor,
    h: Tensor,
    c: Tensor,
    w_hh: BlockSparseWeight,
    w_hr: BlockSparseWeight | None = None,
) -> tuple[Tensor, Tensor]:
    """One LSTM step through the fused kernel; arguments and results as
    :func:`sparse_rnn.reference.sparse_lstm_step`. With ``w_hr`` the projection is a second
    launch, of the block-sparse linear kernel."""
    h_next, c_next = _lstm_cell_op(
        xproj.contiguous(),
        h.contiguous(),
        c.contiguous(),
        w_hh.blocks,
        w_hh.col_indices,
        w_hh.row_offsets,
        w_hh.layout.rows_per_gate,
    )
    if w_hr is not None:
        h_next = block_sparse_linear(h_next, w_hr)
    return h_next, c_next


# Operators -----------------------------------------------------------------------------------


@triton_op("sparse_rnn::block_sparse_linear", mutates_args=())
def _linear_op(
    x: Tensor,
    blocks: Tensor,
    col_indices: Tensor,
    row_offsets: Tensor,
    bias: Tensor | None,
    num_gates: int,
    rows_per_gate: int,
    cols: int,
) -> Tensor:
    layout = BlockLayout(num_gates, rows_per_gate, cols, blocks.shape[-1])
    weight = BlockSparseWeight(blocks, col_indices, row_offsets, layout)
    return linear_kernel.block_sparse_linear(x, weight, bias)


@triton_op("sparse_rnn::lstm_cell", mutates_args=())
def _lstm_cell_op(
    xproj: Tensor,
    h: Tensor,
    c: Tensor,
    blocks: Tensor,
    col_indices: Tensor,
    row_offsets: Tensor,
    hidden_size: int,
) -> tuple[Tensor, Tensor]:
    layout = BlockLayout(4, hidden_size, h.shape[-1], blocks.shape[-1])
    weight = BlockSparseWeight(blocks, col_indices, row_offsets, layout)
    return step_kernel.lstm_cell(xproj, h, c, weight)


# Backward (PyTorch math on dense weights) ----------------------------------------------------


def _dense(layout: BlockLayout, blocks: Tensor, col_indices: Tensor, row_offsets: Tensor) -> Tensor:
    """The dense weight in fp32."""
    return layout.to_dense(blocks.float(), col_indices, row_offsets)


def _block_grad(layout: BlockLayout, grad_dense: Tensor, col_indices: Tensor, row_offsets: Tensor):
    """Gradient of the kept blocks from that of the dense weight (padding gets zero)."""
    grid = layout.to_block_grid(grad_dense)
    return grid[layout.row_indices(row_offsets), col_indices.long()]


def _linear_setup(ctx, inputs, output) -> None:
    x, blocks, col_indices, row_offsets, bias, num_gates, rows_per_gate, cols = inputs
    ctx.save_for_backward(x, blocks, col_indices, row_offsets)
    ctx.layout = BlockLayout(num_gates, rows_per_gate, cols, blocks.shape[-1])
    ctx.has_bias = bias is not None


def _linear_backward(ctx, grad_y: Tensor):
    x, blocks, col_indices, row_offsets = ctx.saved_tensors
    layout = ctx.layout
    n, k = layout.shape
    grad_y2d = grad_y.reshape(-1, n).float()
    x2d = x.reshape(-1, k).float()
    weight = _dense(layout, blocks, col_indices, row_offsets)
    grad_x = (grad_y2d @ weight).to(x.dtype).view(x.shape)
    grad_blocks = _block_grad(layout, grad_y2d.T @ x2d, col_indices, row_offsets)
    grad_bias = grad_y2d.sum(0).to(x.dtype) if ctx.has_bias else None
    return grad_x, grad_blocks.to(blocks.dtype), None, None, grad_bias, None, None, None


def _lstm_cell_setup(ctx, inputs, output) -> None:
    xproj, h, c, blocks, col_indices, row_offsets, hidden_size = inputs
    ctx.save_for_backward(xproj, h, c, blocks, col_indices, row_offsets)
    ctx.layout = BlockLayout(4, hidden_size, h.shape[-1], blocks.shape[-1])


def _lstm_cell_backward(ctx, grad_h: Tensor | None, grad_c: Tensor | None):
    xproj, h, c, blocks, col_indices, row_offsets = ctx.saved_tensors
    weight = _dense(ctx.layout, blocks, col_indices, row_offsets)  # (4H, P)

    # Recompute the gates in fp32 rather than keeping them from the forward pass.
    gates = xproj.float() + h.float() @ weight.T
    in_pre, forget_pre, cell_pre, out_pre = gates.chunk(4, dim=-1)
    in_gate, forget_gate = torch.sigmoid(in_pre), torch.sigmoid(forget_pre)
    cell_gate, out_gate = torch.tanh(cell_pre), torch.sigmoid(out_pre)
    c_float = c.float()
    tanh_c = torch.tanh(forget_gate * c_float + in_gate * cell_gate)

    grad_h = torch.zeros_like(tanh_c) if grad_h is None else grad_h.float()
    grad_c = torch.zeros_like(tanh_c) if grad_c is None else grad_c.float()
    grad_c_total = grad_c + grad_h * out_gate * (1 - tanh_c * tanh_c)
    grad_gates = torch.cat(
        [
            grad_c_total * cell_gate * in_gate * (1 - in_gate),
            grad_c_total * c_float * forget_gate * (1 - forget_gate),
            grad_c_total * in_gate * (1 - cell_gate * cell_gate),
            grad_h * tanh_c * out_gate * (1 - out_gate),
        ],
        dim=-1,
    )
    grad_xproj = grad_gates.to(xproj.dtype)
    grad_h_prev = (grad_gates @ weight).to(h.dtype)
    grad_c_prev = (grad_c_total * forget_gate).to(c.dtype)
    grad_blocks = _block_grad(ctx.layout, grad_gates.T @ h.float(), col_indices, row_offsets)
    return grad_xproj, grad_h_prev, grad_c_prev, grad_blocks.to(blocks.dtype), None, None, None


_linear_op.register_autograd(_linear_backward, setup_context=_linear_setup)
_lstm_cell_op.register_autograd(_lstm_cell_backward, setup_context=_lstm_cell_setup)
