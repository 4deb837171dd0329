"""Helpers shared by the kernel tests: random block-sparse weights and the accuracy rule.

Accuracy rule (per dtype, the same for every kernel; :func:`sparse_rnn.kernel_checks.accuracy`):
the kernel's largest absolute error against a float64 evaluation of the reference path may be
at most twice that of the reference path run in the kernel's own dtype, plus 4 units in the
last place of the output's largest magnitude (which covers outputs the reference happens to get
exactly). Fixed tolerances would be either loose for fp32 or flaky for bf16; this one scales
with the precision: measured relative errors are about 1e-7 (fp32), 3e-4 (fp16) and 5e-3 (bf16),
and the kernel, which rounds once at the store, beats the reference, which rounds after every
operation.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import Tensor

from sparse_rnn.block_layout import BlockLayout, BlockSparseWeight
from sparse_rnn.kernel_checks import accuracy, interpreter_problem

# Kernels run on CUDA where there is a GPU, else on the CPU through Triton's interpreter.
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# For tests that launch kernels: skipped where this triton's interpreter cannot run them.
needs_kernels = pytest.mark.skipif(
    interpreter_problem() is not None, reason=str(interpreter_problem())
)


def random_weight(
    num_gates: int,
    rows: int,
    cols: int,
    block_size: int,
    density: float,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
    empty_block_rows: tuple[int, ...] = (),
) -> BlockSparseWeight:
    """A block-sparse weight keeping a random ``density`` of blocks, none in
    ``empty_block_rows``; values ~ N(0, 1/cols) so that products stay O(1)."""
    layout = BlockLayout(num_gates, rows, cols, block_size)
    dense = torch.randn(layout.shape, generator=generator) / cols**0.5
    mask = torch.rand(layout.num_block_rows, layout.num_block_cols, generator=generator) < density
    mask[list(empty_block_rows)] = False
    weight = layout.compress(dense, mask)
    return BlockSparseWeight(
        weight.blocks.to(device=DEVICE, dtype=dtype),
        weight.col_indices.to(DEVICE),
        weight.row_offsets.to(DEVICE),
        layout,
    )


def with_dtype(weight: BlockSparseWeight | None, dtype: torch.dtype) -> BlockSparseWeight | None:
    return None if weight is None else weight._replace(blocks=weight.blocks.to(dtype))


def assert_matches_reference(actual: Tensor, exact: Tensor, same_precision: Tensor, what: str):
    """The accuracy rule of :func:`sparse_rnn.kernel_checks.accuracy`; ``exact`` is float64,
    ``same_precision`` is the reference path in ``actual``'s dtype."""
    assert actual.shape == exact.shape, f"{what}: shape {actual.shape} != {exact.shape}"
    assert actual.dtype == same_precision.dtype, f"{what}: dtype {actual.dtype}"
    result = accuracy(actual, exact, same_precision)
    assert result.ok, (
        f"{what} ({actual.dtype}): kernel error {result.error:.3e} exceeds twice the reference "
        f"path's {result.reference_error:.3e} + 4 ulp (bound {result.bound:.3e})"
    )


def cuda_tools_missing() -> str | None:
    """Why kernels cannot be compiled for CUDA here (no NVIDIA backend or tools), or None."""
    from sparse_rnn.kernel_compile import cuobjdump_path

    if importlib.util.find_spec("triton.backends.nvidia") is None:
        return "this triton has no NVIDIA backend"
    try:
        cuobjdump_path()
    except FileNotFoundError as error:
        return str(error)
    return None
