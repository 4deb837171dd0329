"""The LSTM implementations the benchmark times, each built from the same pruned ``SparseLSTM``.

A provider turns a pruned ``SparseLSTM`` (the shared dense ``nn.LSTM`` after block pruning)
into a module that maps time-major input (L, N, H) to the output (L, N, H), and says how many
bytes of recurrent weight that module reads per time step. :func:`check_against_reference`
compares a built module with the float64 reference path before anything is timed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sparse_rnn.backends import triton_available
from sparse_rnn.bench import roofline
from sparse_rnn.bench.baselines import TORCH_SPARSE_FORMATS, MaskedDenseLSTM, TorchSparseLSTM
from sparse_rnn.sparse_lstm import SparseLSTM

NN_LSTM = "nn.LSTM"

# Largest accepted error, as max |out - ref| / max(1, max |ref|), against the float64
# reference. LSTM outputs lie in (-1, 1), so for outputs this is an absolute error.
TOLERANCES = {
    torch.float64: 1e-9,
    torch.float32: 1e-4,
    torch.float16: 1e-2,
    torch.bfloat16: 5e-2,
}
# On CUDA, float32 products may run in TF32 (10-bit mantissa): cuDNN's LSTM does by default
# (torch.backends.cudnn.allow_tf32) and so does Triton's tl.dot, so float32 gets the float16
# tolerance there.
CUDA_FLOAT32_TOLERANCE = TOLERANCES[torch.float16]


def tolerance_for(dtype: torch.dtype, device: torch.device) -> float:
    if dtype == torch.float32 and device.type == "cuda":
        return CUDA_FLOAT32_TOLERANCE
    return TOLERANCES[dtype]


class ProviderUnavailable(RuntimeError):
    """The provider cannot run this device, dtype, shape or mode; the message says why."""


class CheckFailed(RuntimeError):
    """A provider's result is further from the reference than the tolerance allows."""


@dataclass
class Built:
    """A provider's module for one case, ready to time."""

    label: str  # the provider name, with the storage format where there is a choice
    model: nn.Module
    weight_bytes_per_step: int  # recurrent weight bytes read per step, all layers


@dataclass(frozen=True)
class Provider:
    name: str
    build: Callable[[SparseLSTM, str], Built]  # (pruned model, mode) -> Built


class _TimeMajorLSTM(nn.Module):
    """Drops the final states of an ``nn.LSTM``-like module: input (L, N, H) -> output."""

    def __init__(self, lstm: nn.Module) -> None:
        super().__init__()
        self.lstm = lstm

    def forward(self, input: Tensor) -> Tensor:
        return self.lstm(input)[0]


def _dense_weight_bytes(pruned: SparseLSTM) -> int:
    element_bytes = pruned.weight_hh_l0_blocks.element_size()
    return pruned.num_layers * roofline.dense_weight_bytes(pruned.hidden_size, element_bytes)


def _stored_bytes(*tensors: Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _build_nn_lstm(pruned: SparseLSTM, mode: str) -> Built:
    return Built(NN_LSTM, _TimeMajorLSTM(pruned.to_dense()), _dense_weight_bytes(pruned))


def _build_masked_dense(pruned: SparseLSTM, mode: str) -> Built:
    return Built("masked-dense", MaskedDenseLSTM(pruned), _dense_weight_bytes(pruned))


def _build_torch_sparse(pruned: SparseLSTM, mode: str) -> Built:
    """The first format, BSR then CSR, whose product (and backward, in training) runs here."""
    failures = []
    for sparse_format in TORCH_SPARSE_FORMATS:
        try:
            model = TorchSparseLSTM(pruned, sparse_format)
            _probe(model, pruned, mode)
        except (RuntimeError, NotImplementedError, ValueError) as error:
            failures.append(f"{sparse_format}: {str(error).splitlines()[0]}")
            continue
        stored = _stored_bytes(
            *(
                getattr(model, f"weight_hh_l{layer}{suffix}")
                for layer in range(pruned.num_layers)
                for suffix in ("_values", "_crow_indices", "_col_indices")
            )
        )
        return Built(f"torch.sparse ({sparse_format})", model, stored)
    raise ProviderUnavailable("; ".join(failures))


def _probe(model: nn.Module, pruned: SparseLSTM, mode: str) -> None:
    """Run one short forward (and backward in training mode) to find unsupported operations."""
    weight = pruned.weight_ih_l0_blocks
    x = torch.randn(2, 1, pruned.input_size, dtype=weight.dtype, device=weight.device)
    if mode == "training":
        model(x).sum().backward()
        model.zero_grad(set_to_none=True)
    else:
        with torch.no_grad():
            model(x)


def _sparse_lstm_builder(backend: str) -> Callable[[SparseLSTM, str], Built]:
    def build(pruned: SparseLSTM, mode: str) -> Built:
        model = copy.deepcopy(pruned)
        model.backend = backend
        stored = _stored_bytes(
            *(
                tensor
                for layer in range(pruned.num_layers)
                for tensor in model.sparse_weight(f"weight_hh_l{layer}")[:3]
            )
        )
        return Built(f"SparseLSTM[{backend}]", _TimeMajorLSTM(model), stored)

    return build


def providers_for(device: torch.device) -> tuple[list[Provider], list[str]]:
    """The providers that can run on ``device``, ``nn.LSTM`` first, and notes on those left out."""
    providers = [
        Provider(NN_LSTM, _build_nn_lstm),
        Provider("masked-dense", _build_masked_dense),
        Provider("torch.sparse", _build_torch_sparse),
        Provider("SparseLSTM[reference]", _sparse_lstm_builder("reference")),
    ]
    notes = []
    if device.type == "cuda" and triton_available():
        providers.append(Provider("SparseLSTM[triton]", _sparse_lstm_builder("triton")))
    elif device.type == "cuda":
        notes.append("SparseLSTM[triton] left out: the triton package is not installed")
    else:
        notes.append(
            "SparseLSTM[triton] left out: its kernels need a CUDA GPU (Triton's CPU interpreter "
            "is for testing and far too slow to time)"
        )
    return providers, notes


def check_against_reference(
    model: nn.Module, truth: nn.Module, x: Tensor, mode: str
) -> tuple[float, float]:
    """Compare ``model`` with ``truth`` (the float64 reference) on input x (L, N, H).

    Checks the output and, in training mode, also the gradient of ``output.sum()`` with respect
    to the input. Returns ``(error, tolerance)``; raises :class:`CheckFailed` if error exceeds
    tolerance.
    """
    tolerance = tolerance_for(x.dtype, x.device)
    x64 = x.detach().to(torch.float64)
    if mode == "training":
        x = x.detach().clone().requires_grad_()
        x64.requires_grad_()
        output, expected = model(x), truth(x64)
        output.sum().backward()
        expected.sum().backward()
        pairs = [(output, expected), (x.grad, x64.grad)]
        model.zero_grad(set_to_none=True)
        truth.zero_grad(set_to_none=True)
    else:
        with torch.no_grad():
            pairs = [(model(x), truth(x64))]

    error = max(_scaled_error(got.detach(), want.detach()) for got, want in pairs)
    if not error <= tolerance:
        raise CheckFailed(
            f"differs from the float64 reference by {error:.3g} (tolerance {tolerance:g} "
            f"for {x.dtype})"
        )
    return error, tolerance


def _scaled_error(got: Tensor, want: Tensor) -> float:
    scale = max(1.0, want.abs().max().item())
    return (got.to(torch.float64) - want).abs().max().item() / scale


def reference_model(pruned: SparseLSTM) -> nn.Module:
    """The float64 reference path of ``pruned``: the ground truth of every check."""
    truth = copy.deepcopy(pruned).to(torch.float64)
    truth.backend = "reference"
    return _TimeMajorLSTM(truth)
