"""One benchmark case: prune a shared ``nn.LSTM``, check every provider, time it, make table rows.

A case is one shape (hidden size, batch, sequence length, layers) at one sparsity. The dense
``nn.LSTM`` of a shape is drawn once from a fixed seed (input size = hidden size), pruned by block
L2 norm to the case's sparsity, and every provider is built from that one pruned model and
checked against the float64 reference path. Then the providers that passed are timed together,
interleaved.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from sparse_rnn.bench import roofline
from sparse_rnn.bench.providers import (
    NN_LSTM,
    Built,
    CheckFailed,
    Provider,
    check_against_reference,
    reference_model,
)
from sparse_rnn.bench.timing import Timing, rotation_size, time_interleaved
from sparse_rnn.sparse_lstm import SparseLSTM

MODES = ("inference", "training")


@dataclass(frozen=True)
class Shape:
    hidden: int
    batch: int
    seq: int
    layers: int


@dataclass(frozen=True)
class Settings:
    """What stays the same across the cases of a sweep."""

    device: torch.device
    dtype: torch.dtype
    block: int
    mode: str
    min_run_time_s: float = 1.0
    seed: int = 0


@dataclass
class Row:
    """One provider on one case; timing fields are None unless ``status`` is ``"ok"``."""

    provider: str
    hidden: int
    batch: int
    seq: int
    layers: int
    sparsity: float
    density: float
    block: int
    dtype: str
    device: str
    mode: str
    status: str  # "ok", "unavailable" or "check failed"
    reason: str = ""
    max_error: float | None = None
    tolerance: float | None = None
    median_ms: float | None = None
    iqr_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    runs: int | None = None
    speedup_vs_nn_lstm: float | None = None
    weight_bytes_per_step: int | None = None
    activation_bytes_per_step: int | None = None
    bytes_per_step: int | None = None
    achieved_gb_per_s: float | None = None
    fraction_of_copy_bandwidth: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def cases(
    hidden: list[int], batch: list[int], seq: list[int], layers: list[int], sparsity: list[float]
) -> list[tuple[Shape, float]]:
    """Every combination, grouped by shape so that each dense model is built once."""
    shapes = [Shape(*values) for values in itertools.product(hidden, batch, seq, layers)]
    return [(shape, s) for shape in shapes for s in sparsity]


def dense_model(shape: Shape, settings: Settings) -> nn.LSTM:
    """The shared dense LSTM of a shape, float32 and drawn from ``settings.seed``."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(settings.seed)
    lstm = nn.LSTM(shape.hidden, shape.hidden, shape.layers, device=settings.device)
    torch.random.set_rng_state(generator_state)
    return lstm


def run_case(
    shape: Shape,
    sparsity: float,
    dense: nn.LSTM,
    providers: list[Provider],
    settings: Settings,
    copy_bytes_per_s: float,
) -> list[Row]:
    """Rows of every provider for one case, ``nn.LSTM`` (if it ran) giving the speedups."""
    pruned = SparseLSTM.from_dense(
        dense, block_size=settings.block, sparsity=sparsity, backend="reference"
    )
    truth = reference_model(pruned)
    pruned = pruned.to(settings.dtype)
    pruned.train(settings.mode == "training")
    inputs = make_inputs(shape, settings)

    rows, ready = [], []
    for provider in providers:
        row = Row(
            provider=provider.name,
            hidden=shape.hidden,
            batch=shape.batch,
            seq=shape.seq,
            layers=shape.layers,
            sparsity=sparsity,
            density=pruned.density(),
            block=settings.block,
            dtype=str(settings.dtype).removeprefix("torch."),
            device=str(settings.device),
            mode=settings.mode,
            status="ok",
        )
        built = _build_and_check(row, provider, pruned, truth, inputs[0], settings.mode)
        if built is not None:
            ready.append((row, built))
        rows.append(row)

    calls = [_call(built.model, settings.mode) for _, built in ready]
    timings = time_interleaved(calls, inputs, settings.min_run_time_s)
    for (row, built), timing in zip(ready, timings, strict=True):
        _fill_timing(row, built, timing, settings, copy_bytes_per_s)

    baseline = next((r for r in rows if r.provider == NN_LSTM and r.status == "ok"), None)
    if baseline is not None:
        for row in rows:
            if row.status == "ok":
                row.speedup_vs_nn_lstm = baseline.median_ms / row.median_ms
    return rows


def _build_and_check(
    row: Row, provider: Provider, pruned: SparseLSTM, truth: nn.Module, x: Tensor, mode: str
) -> Built | None:
    """The provider's module if it builds and matches the reference; else None, noted in row."""
    try:
        built = provider.build(pruned, mode)
        built.model.train(mode == "training")
        row.provider = built.label
        row.max_error, row.tolerance = check_against_reference(built.model, truth, x, mode)
    except CheckFailed as error:
        row.status, row.reason = "check failed", str(error)
        return None
    except (RuntimeError, ImportError) as error:
        # ProviderUnavailable, an operation PyTorch lacks for this dtype on this device, or
        # kernels that this installation does not have.
        row.status, row.reason = "unavailable", str(error).splitlines()[0]
        return None
    return built


def _fill_timing(
    row: Row, built: Built, timing: Timing, settings: Settings, copy_bytes_per_s: float
) -> None:
    element_bytes = torch.finfo(settings.dtype).bits // 8
    row.weight_bytes_per_step = built.weight_bytes_per_step
    row.activation_bytes_per_step = row.layers * roofline.activation_bytes(
        row.hidden, row.batch, element_bytes
    )
    row.bytes_per_step = row.weight_bytes_per_step + row.activation_bytes_per_step
    row.median_ms, row.iqr_ms = timing.median_s * 1e3, timing.iqr_s * 1e3
    row.min_ms, row.max_ms, row.runs = timing.min_s * 1e3, timing.max_s * 1e3, timing.runs
    if settings.mode == "inference":
        # Only the recurrence's bytes are counted, over the whole call, so this is a lower bound
        # on the bandwidth the recurrence achieves; see sparse_rnn.bench.roofline.
        bytes_per_s = row.bytes_per_step * row.seq / timing.median_s
        row.achieved_gb_per_s = bytes_per_s / 1e9
        row.fraction_of_copy_bandwidth = bytes_per_s / copy_bytes_per_s


def make_inputs(shape: Shape, settings: Settings) -> list[Tensor]:
    """Inputs (seq, batch, hidden) to rotate through while timing, enough to leave the cache."""
    generator = torch.Generator().manual_seed(settings.seed + 1)
    size = (shape.seq, shape.batch, shape.hidden)
    element_bytes = torch.finfo(settings.dtype).bits // 8
    count = rotation_size(shape.seq * shape.batch * shape.hidden * element_bytes)
    return [
        torch.randn(size, generator=generator).to(settings.device, settings.dtype)
        for _ in range(count)
    ]


def _call(model: nn.Module, mode: str) -> Callable[[Tensor], object]:
    """What one timed call does: a forward without autograd, or forward and backward."""
    if mode == "training":

        def train_step(x: Tensor) -> None:
            model.zero_grad(set_to_none=True)
            model(x).sum().backward()

        return train_step

    def infer(x: Tensor) -> Tensor:
        with torch.no_grad():
            return model(x)

    return infer
