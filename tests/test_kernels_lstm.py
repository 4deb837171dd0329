"""SparseLSTM and SparseLinear with backend="triton" against backend="reference".

The whole module path runs through the kernels: input projections of all steps at once, the
fused step, projections, packed sequences, several layers and both directions; outputs and
every gradient are compared with the accuracy rule of ``kernel_testing`` (float64 reference
modules as the exact values).
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from kernel_testing import DEVICE, assert_matches_reference, needs_kernels
from torch.nn.utils.rnn import pack_padded_sequence

from sparse_rnn import SparseLinear, SparseLSTM, backends
from sparse_rnn.backends import resolve_backend


def lstm_pair(dtype=torch.float32, **kwargs):
    torch.manual_seed(0)
    reference = SparseLSTM(backend="reference", device=DEVICE, **kwargs)
    triton = copy.deepcopy(reference)
    triton.backend = "triton"
    return reference.to(dtype), triton.to(dtype), copy.deepcopy(reference).double()


def run(module, x, dtype):
    output, (h_n, c_n) = module(x)
    if hasattr(output, "data"):  # PackedSequence
        output = output.data
    (output.float().sum() + h_n.float().sum() + c_n.float().square().sum()).backward()
    grads = {name: p.grad for name, p in module.named_parameters()}
    return [output, h_n, c_n], grads


def compare(reference, triton, exact, make_input, dtype):
    results, grads = run(triton, make_input(dtype), dtype)
    same, same_grads = run(reference, make_input(dtype), dtype)
    exact_results, exact_grads = run(exact, make_input(torch.float64), torch.float64)
    names = ("output", "h_n", "c_n")
    for name, actual, e, s in zip(names, results, exact_results, same, strict=True):
        assert_matches_reference(actual, e, s, name)
    for name, grad in grads.items():
        assert_matches_reference(grad, exact_grads[name], same_grads[name], f"grad of {name}")


@needs_kernels
@pytest.mark.parametrize(
    "kwargs, dtype",
    [
        (dict(input_size=20, hidden_size=37, block_size=16, sparsity=0.5), torch.float32),
        (
            dict(
                input_size=20,
                hidden_size=30,
                num_layers=2,
                bidirectional=True,
                proj_size=17,
                block_size=16,
                sparsity={"weight_hh": 0.95, "weight_ih": 0.0, "weight_hr": 0.5},
            ),
            torch.float32,
        ),
        (
            dict(input_size=16, hidden_size=32, bias=False, block_size=32, sparsity=0.5),
            torch.bfloat16,
        ),
    ],
)
def test_sparse_lstm_triton_matches_reference(kwargs, dtype):
    reference, triton, exact = lstm_pair(dtype, **kwargs)
    x = torch.randn(4, 3, kwargs["input_size"], device=DEVICE)
    compare(reference, triton, exact, lambda d: x.to(d), dtype)


@needs_kernels
def test_sparse_lstm_packed_one_step_batch_one():
    reference, triton, exact = lstm_pair(
        input_size=18, hidden_size=20, num_layers=2, bidirectional=True, block_size=16, sparsity=0.3
    )
    x = torch.randn(3, 3, 18, device=DEVICE)
    lengths = torch.tensor([3, 1, 2])

    def packed(dtype):
        return pack_padded_sequence(x.to(dtype), lengths, enforce_sorted=False)

    compare(reference, triton, exact, packed, torch.float32)
    # One time step of a single sequence.
    compare(reference, triton, exact, lambda d: x[:1, :1].to(d), torch.float32)


@needs_kernels
def test_sparse_linear_triton_matches_reference():
    torch.manual_seed(0)
    reference = SparseLinear(40, 27, block_size=16, sparsity=0.5, backend="reference")
    reference = reference.to(DEVICE)
    triton = copy.deepcopy(reference)
    triton.backend = "triton"
    exact = copy.deepcopy(reference).double()
    x = torch.randn(2, 5, 40, device=DEVICE)
    outputs = [m(x.to(p.dtype)) for m, p in ((triton, x), (reference, x), (exact, x.double()))]
    assert_matches_reference(outputs[0], outputs[2], outputs[1], "SparseLinear")


def test_auto_falls_back_for_what_the_kernels_lack(monkeypatch):
    monkeypatch.setattr(backends, "_warned", set())
    cuda = torch.device("cuda")  # only compared by type: no GPU needed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve_backend("auto", cuda, 8, torch.float32) == "reference"
        assert resolve_backend("auto", cuda, 8, torch.float32) == "reference"
        assert resolve_backend("auto", cuda, 32, torch.float64) == "reference"
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2, "one warning per reason, once"
    assert "block_size must be one of (16, 32, 64)" in messages[0]
    assert "dtypes float32, bfloat16, float16" in messages[1]
    assert resolve_backend("auto", cuda, 32, torch.bfloat16) == "triton"


def test_triton_backend_rejects_unsupported_block_size_and_dtype():
    # The block size is known when the module is built, the dtype only at the forward.
    with pytest.raises(ValueError, match=r"block_size must be one of \(16, 32, 64\).*got block_"):
        SparseLSTM(16, 16, block_size=8, backend="triton", device=DEVICE)
    lstm = SparseLSTM(16, 16, block_size=16, backend="triton", device=DEVICE, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"support the dtypes float32, bfloat16, float16"):
        lstm(torch.randn(2, 1, 16, device=DEVICE, dtype=torch.float64))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the Triton path compiles on CUDA only")
def test_compile_triton_path_without_graph_breaks():
    _, triton, _ = lstm_pair(input_size=32, hidden_size=64, block_size=32, sparsity=0.5)
    x = torch.randn(5, 4, 32, device=DEVICE)
    compiled = torch.compile(triton, fullgraph=True)
    torch.testing.assert_close(compiled(x)[0], triton(x)[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_cuda_graph_captures_a_forward_pass():
    _, triton, _ = lstm_pair(input_size=32, hidden_size=64, block_size=32, sparsity=0.5)
    static_x = torch.randn(5, 4, 32, device=DEVICE)
    with torch.no_grad():
        triton(static_x)  # compiles the kernels before capture
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out, _ = triton(static_x)
        static_x.copy_(torch.randn_like(static_x))
        graph.replay()
        torch.testing.assert_close(static_out, triton(static_x)[0])


def test_compile_reference_path_without_graph_breaks():
    # NOTE: under the interpreter torch.compile of a triton_op fails while tracing with fake
    # tensors, so on the CPU only the reference path is compiled. aot_eager traces the full
    # graph (forward and backward) without Inductor's slow C++ build.
    reference, _, _ = lstm_pair(input_size=16, hidden_size=20, block_size=16, sparsity=0.5)
    reference = reference.cpu()
    x = torch.randn(3, 2, 16)
    compiled = torch.compile(reference, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x)[0], reference(x)[0])
