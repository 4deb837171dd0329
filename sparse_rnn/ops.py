"""The block-sparse products a module needs, for the backend that runs them.

Each function takes an already resolved backend name (see :mod:`sparse_rnn.backends`) and calls
either the reference path or the Triton kernels (as the differentiable ``torch.library``
operators of :mod:`sparse_rnn.kernel_ops`), which are imported only when used.
"""

from __future__ import annotations

from torch import Tensor

from sparse_rnn import reference
from sparse_rnn.block_layout import BlockSparseWeight
from sparse_rnn.recurrence import LayerWeights, StepFn


def block_sparse_linear(
    x: Tensor, weight: BlockSparseWeight, bias: Tensor | None, backend: str
) -> Tensor:
    """``x @ W.T + bias`` for x (..., K), W block-sparse (N, K); returns (..., N)."""
    if backend == "triton":
        from sparse_rnn.kernel_ops import block_sparse_linear as kernel

        return kernel(x, weight, bias)
    return reference.block_sparse_linear(x, weight, bias)


def make_lstm_step(weights: LayerWeights, backend: str) -> StepFn:
    """The recurrent step of one direction of one layer."""
    if backend == "triton":
        from sparse_rnn.kernel_ops import sparse_lstm_step as kernel

        return lambda xproj, h, c: kernel(xproj, h, c, weights.w_hh, weights.w_hr)

    # Densify once per sequence, not once per step.
    w_hh = weights.w_hh.to_dense()
    w_hr = None if weights.w_hr is None else weights.w_hr.to_dense()
    return lambda xproj, h, c: reference.lstm_step(xproj, h, c, w_hh, w_hr)
