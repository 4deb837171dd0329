"""pytest-benchmark suite: every provider of ``sparse_rnn.bench`` on a few shapes and sparsities.

Run with ``pytest benchmarks/ --benchmark-enable --benchmark-json=PATH`` (the project's pytest
settings disable benchmarks by default, so that the test suite never times anything). Each
provider is checked against the float64 reference before it is timed; shape, dtype, sparsity,
device and mode are stored in ``extra_info``. Timing is pytest-benchmark's wall clock, with
a CUDA synchronize inside each timed call on a GPU and inputs rotated between calls; for
CUDA-event timing with the L2 cache flushed between calls, and for more control over the
sweep, use ``sparse-rnn bench``.
"""

import itertools

import pytest
import torch

from sparse_rnn.bench.providers import (
    ProviderUnavailable,
    check_against_reference,
    providers_for,
    reference_model,
)
from sparse_rnn.bench.sweep import Settings, Shape, dense_model, make_inputs
from sparse_rnn.sparse_lstm import SparseLSTM

SHAPES = [Shape(hidden, batch=8, seq=20, layers=1) for hidden in (256, 512)]
SPARSITIES = [0.0, 0.5, 0.9]
BLOCK = 32
MODES = ["inference", "training"]
PROVIDERS = [
    "nn.LSTM",
    "masked-dense",
    "torch.sparse",
    "SparseLSTM[reference]",
    "SparseLSTM[triton]",
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"H{s.hidden}-B{s.batch}-T{s.seq}")
@pytest.mark.parametrize("provider_name", PROVIDERS)
def test_lstm_speed(benchmark, device, dtype, provider_name, shape, sparsity, mode):
    providers, notes = providers_for(device)
    provider = next((p for p in providers if p.name == provider_name), None)
    if provider is None:
        pytest.skip("; ".join(n for n in notes if provider_name in n) or "not on this device")

    settings = Settings(device=device, dtype=dtype, block=BLOCK, mode=mode)
    dense = dense_model(shape, settings)
    pruned = SparseLSTM.from_dense(dense, block_size=BLOCK, sparsity=sparsity, backend="reference")
    truth = reference_model(pruned)
    pruned = pruned.to(dtype)
    try:
        built = provider.build(pruned, mode)
    except ProviderUnavailable as error:
        pytest.skip(str(error))
    model = built.model.train(mode == "training")
    inputs = make_inputs(shape, settings)
    check_against_reference(model, truth, inputs[0], mode)

    rotation = itertools.cycle(inputs)

    def call() -> None:
        x = next(rotation)
        if mode == "training":
            model.zero_grad(set_to_none=True)
            model(x).sum().backward()
        else:
            with torch.no_grad():
                model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    benchmark.extra_info.update(
        provider=built.label,
        hidden=shape.hidden,
        batch=shape.batch,
        seq=shape.seq,
        layers=shape.layers,
        input_size=shape.hidden,
        block=BLOCK,
        sparsity=sparsity,
        density=pruned.density(),
        dtype=str(dtype).removeprefix("torch."),
        device=str(device),
        gpu_name=torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        mode=mode,
        torch_threads=torch.get_num_threads(),
        weight_bytes_per_step=built.weight_bytes_per_step,
    )
    benchmark.pedantic(call, rounds=20, warmup_rounds=3)
