"""Choosing between the pure-PyTorch reference path and the Triton kernels.

``"reference"`` runs anywhere and is differentiable. ``"triton"`` runs the kernels in
``sparse_rnn.kernels``: on CUDA tensors, or on CPU tensors through Triton's interpreter when
``TRITON_INTERPRET=1`` was set before triton was imported. ``"auto"`` picks the kernels for
CUDA tensors when triton is installed and the kernels support the block size and dtype
(see :mod:`sparse_rnn.kernel_checks`), and the reference path otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from typing import Literal

import torch

from sparse_rnn.kernel_checks import unsupported_reason

BACKENDS = ("auto", "reference", "triton")
Backend = Literal["auto", "reference", "triton"]


def check_backend(backend: str, block_size: int | None = None) -> None:
    """Raise ``ValueError`` for an unknown name, or a ``"triton"`` request that this machine or
    this ``block_size`` cannot run."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "triton":
        if not triton_available():
            raise ValueError(
                "backend='triton' needs the triton package, which is not installed: "
                "`pip install triton` (Linux), or use backend='reference'"
            )
        if not (torch.cuda.is_available() or triton_interpreted()):
            raise ValueError(
                "backend='triton' needs a CUDA GPU, or TRITON_INTERPRET=1 set before triton is "
                "imported to run the kernels on the CPU (slow); use backend='reference' or "
                "backend='auto' on this machine"
            )
        if block_size is not None:
            reason = unsupported_reason(block_size, torch.float32)
            if reason is not None:
                raise ValueError(
                    f"backend='triton': {reason}, got block_size={block_size}; use "
                    "backend='reference' or 'auto' (which falls back to the reference path)"
                )


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def resolve_backend(
    backend: str,
    device: torch.device,
    block_size: int | None = None,
    dtype: torch.dtype | None = None,
) -> Literal["reference", "triton"]:
    """The backend that actually runs for tensors on ``device``.

    With ``block_size`` and ``dtype`` given, ``"triton"`` raises ``ValueError`` when the kernels
    cannot run them, and ``"auto"`` falls back to the reference path with a one-time warning.
    """
    reason = None if block_size is None or dtype is None else unsupported_reason(block_size, dtype)
    if backend == "reference":
        return "reference"
    if backend == "triton":
        if device.type != "cuda" and not triton_interpreted():
            raise ValueError(
                f"backend='triton' got tensors on {device}; move the module and inputs to a CUDA "
                "device, or set TRITON_INTERPRET=1 before importing triton to run on the CPU"
            )
        if reason is not None:
            raise ValueError(
                f"backend='triton': {reason}, got block_size={block_size}, dtype={dtype}; "
                "use backend='reference' or 'auto'"
            )
        return "triton"
    if device.type == "cuda":
        if not triton_available():
            _warn_once(
                "sparse_rnn: triton is not installed, so backend='auto' runs the slow reference "
                "path on CUDA; `pip install triton` to use the block-sparse kernels"
            )
        elif reason is not None:
            _warn_once(
                f"sparse_rnn: {reason}, got block_size={block_size}, dtype={dtype}, so "
                "backend='auto' runs the slow reference path"
            )
        else:
            return "triton"
    return "reference"


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, stacklevel=3)
