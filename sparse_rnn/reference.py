"""Pure-PyTorch reference operations: the ground truth that every Triton kernel is checked against.

Each function here has a kernel twin with the same arguments. They densify the kept blocks and
use ordinary PyTorch products, so they run on any device, in any floating dtype, and are
differentiable with respect to the blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sparse_rnn.block_layout import BlockSparseWeight


def block_sparse_linear(x: Tensor, weight: BlockSparseWeight, bias: Tensor | None = None) -> Tensor:
    """``x @ W.T + bias`` for x (..., K) and a block-sparse W (N, K); returns (..., N)."""
    return F.linear(x, weight.to_dense(), bias)


def lstm_step(
    xproj: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, w_hr: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """One LSTM time step with dense recurrent weights.

    xproj (B, 4H) is ``x_t @ W_ih.T + b_ih + b_hh``; h (B, P) and c (B, H) are the previous
    states, where P is ``proj_size`` when ``w_hr`` (P, H) is given and H otherwise; w_hh is
    (4H, P). Gates are stacked in PyTorch's order (input, forget, cell, output). Returns the new
    (h, c).
    """
    h_next, c_next = lstm_gates_to_state(xproj + h @ w_hh.T, c)
    if w_hr is not None:
        h_next = h_next @ w_hr.T
    return h_next, c_next


def lstm_gates_to_state(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """The cell update from gate pre-activations (B, 4H), stacked in PyTorch's order (input,
    forget, cell, output), and the previous cell state c (B, H). Returns (h, c), both (B, H)."""
    in_gate, forget_gate, cell_gate, out_gate = gates.chunk(4, dim=-1)
    c_next = torch.sigmoid(forget_gate) * c + torch.sigmoid(in_gate) * torch.tanh(cell_gate)
    h_next = torch.sigmoid(out_gate) * torch.tanh(c_next)
    return h_next, c_next


def sparse_lstm_step(
    xproj: Tensor,
    h: Tensor,
    c: Tensor,
    w_hh: BlockSparseWeight,
    w_hr: BlockSparseWeight | None = None,
) -> tuple[Tensor, Tensor]:
    """:func:`lstm_step` with block-sparse weights: the twin of the fused Triton step kernel."""
    return lstm_step(xproj, h, c, w_hh.to_dense(), None if w_hr is None else w_hr.to_dense())
