"""Input checks shared by the launch wrappers of the Triton kernels.

A kernel that is handed a tensor it cannot read (wrong dtype, strided, on another device, a
block size ``tl.dot`` cannot tile) would crash or, worse, return garbage, so every wrapper runs
these checks before it launches anything. This module does not import triton.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

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


def dot_in_fp32(dtype: torch.dtype) -> bool:
    """Whether the kernels must convert bf16 tiles to fp32 before ``tl.dot``.

    NOTE: Triton's interpreter (seen in 3.9) keeps bf16 as uint16 and its ``tl.dot`` multiplies
    those bit patterns as integers. A bf16 x bf16 product is exact in fp32, so converting first
    gives the tensor-core result; it is done only under the interpreter, where speed is moot.
    """
    return dtype == torch.bfloat16 and os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
