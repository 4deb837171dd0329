"""Checks around the Triton kernels: their inputs before a launch, their accuracy after.

A kernel that is handed a tensor it cannot read (wrong dtype, strided, on another device, a
block size ``tl.dot`` cannot tile) would crash or, worse, return garbage, so every wrapper runs
:func:`check_kernel_inputs` before it launches anything. :func:`accuracy` is the rule by which
the tests and ``sparse-rnn verify`` accept a kernel's output. This module does not import triton.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
from collections.abc import Mapping
from typing import NamedTuple

import torch
from torch import Tensor

# tl.dot needs every tile dimension >= 16; above 64 the four fp32 gate accumulators of the
# LSTM step no longer fit in registers.
TRITON_BLOCK_SIZES = (16, 32, 64)
TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def unsupported_reason(block_size: int, dtype: torch.dtype) -> str | None:
    """Why the kernels cannot run this block size and dtype, or None when they can."""
    if block_size not in TRITON_BLOCK_SIZES:
        return f"block_size must be one of {TRITON_BLOCK_SIZES} for the Triton kernels"
    if dtype not in TRITON_DTYPES:
        names = ", ".join(str(d).removeprefix("torch.") for d in TRITON_DTYPES)
        return f"the Triton kernels support the dtypes {names}"
    return None


def check_kernel_inputs(
    op: str,
    floats: Mapping[str, Tensor | None],
    indices: Mapping[str, Tensor],
    block_size: int,
) -> None:
    """Raise ``ValueError`` unless the tensors can be handed to a kernel as they are.

    ``floats`` share one floating dtype (the first one's); ``indices`` are int32; all are
    contiguous and on one device. None entries (an absent bias) are skipped.
    """
    present = {name: t for name, t in floats.items() if t is not None}
    first_name, first = next(iter(present.items()))
    reason = unsupported_reason(block_size, first.dtype)
    if reason is not None:
        raise ValueError(f"{op}: {reason}, got block_size={block_size}, dtype={first.dtype}")
    for name, tensor in present.items():
        if tensor.dtype != first.dtype:
            raise ValueError(
                f"{op}: {name} has dtype {tensor.dtype} but {first_name} has {first.dtype}; "
                "all floating inputs must share one dtype"
            )
    for name, tensor in indices.items():
        if tensor.dtype != torch.int32:
            raise ValueError(f"{op}: {name} must be int32, got {tensor.dtype}")
    everything = {**present, **indices}
    for name, tensor in everything.items():
        if tensor.device != first.device:
            raise ValueError(
                f"{op}: {name} is on {tensor.device} but {first_name} is on {first.device}; "
                "move all inputs to one device"
            )
        if not tensor.is_contiguous():
            raise ValueError(f"{op}: {name} must be contiguous; call .contiguous() first")


def check_launchable(op: str) -> None:
    """Raise ``RuntimeError`` when the kernels cannot be launched here at all."""
    problem = interpreter_problem()
    if problem is not None:
        raise RuntimeError(f"{op}: {problem}")


@functools.cache
def interpreter_problem() -> str | None:
    """Why Triton's interpreter cannot run the kernels in this environment, or None.

    Triton 3.6's interpreter (and, we assume, older ones) holds program ids as one-element
    arrays and turns them into Python ints for loop bounds, which NumPy 2.4 refuses; Triton
    3.9 is fine. Found with torch 2.11 / triton 3.6, where every kernel test passes with
    numpy 2.3.
    """
    if os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        return None
    try:
        triton_version = _major_minor(importlib.metadata.version("triton"))
        numpy_version = _major_minor(importlib.metadata.version("numpy"))
    except importlib.metadata.PackageNotFoundError:
        return None
    if triton_version <= (3, 6) and numpy_version >= (2, 4):
        return (
            "Triton's interpreter in this triton release cannot run the kernels with "
            "numpy >= 2.4 (it converts one-element arrays to Python ints); install "
            "'numpy<2.4' or a newer triton (3.9 works)"
        )
    return None


def _major_minor(version: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def interpreter_bf16(dtype: torch.dtype) -> bool:
    """Whether the kernels must work around two bf16 faults of Triton's interpreter (seen in
    3.9): its ``tl.dot`` multiplies the uint16 bit patterns it stores bf16 in as integers, and
    its fp32 -> bf16 cast truncates instead of rounding to nearest.

    The kernels then convert bf16 tiles to fp32 before ``tl.dot`` (a bf16 x bf16 product is
    exact in fp32, so the result is the tensor-core one) and round by hand before the cast, so
    that CPU checks see the numbers a GPU gives. Compiled kernels never take this path.
    """
    return dtype == torch.bfloat16 and os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


class Accuracy(NamedTuple):
    error: float  # largest absolute error of the kernel against the float64 values
    reference_error: float  # the same for the reference path in the kernel's dtype
    bound: float  # 2 * reference_error + 4 ulp of the largest magnitude
    relative_error: float  # Frobenius norm of the kernel's error over that of the values
    reference_relative_error: float  # the same for the reference path in the kernel's dtype

    @property
    def ok(self) -> bool:
        return self.error <= self.bound


def accuracy(actual: Tensor, exact: Tensor, same_precision: Tensor) -> Accuracy:
    """How close a kernel's output is to the float64 ``exact`` values, next to the reference
    path in the same dtype (``same_precision``).

    The rule (after flash-attention's tests): the kernel may err at most twice as much as the
    reference path at its own precision, plus 4 units in the last place of the largest
    magnitude, which covers outputs that the reference happens to get exactly. It scales with
    the dtype, so it is neither loose for fp32 nor flaky for bf16.
    """
    if exact.numel() == 0:
        return Accuracy(0.0, 0.0, 0.0, 0.0, 0.0)
    exact = exact.double().to(actual.device)
    difference = actual.double() - exact
    reference_difference = same_precision.double().to(actual.device) - exact
    reference_error = reference_difference.abs().max().item()
    scale = max(exact.abs().max().item(), 1.0)
    bound = 2 * reference_error + 4 * torch.finfo(actual.dtype).eps * scale
    norm = exact.norm().clamp_min(1e-30)
    return Accuracy(
        error=difference.abs().max().item(),
        reference_error=reference_error,
        bound=bound,
        relative_error=(difference.norm() / norm).item(),
        reference_relative_error=(reference_difference.norm() / norm).item(),
    )
