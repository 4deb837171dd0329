"""Bad arguments and inputs get the errors of nn.LSTM, or a clear ValueError naming the value."""

import pytest
import torch
from torch import nn

from sparse_rnn import SparseLinear, SparseLSTM


def _error_of(fn):
    try:
        fn()
    except Exception as error:  # noqa: BLE001 - the point is to capture whatever is raised
        return type(error), str(error)
    return None


@pytest.mark.parametrize(
    "make_input,make_hx",
    [
        (lambda: torch.randn(4, 2, 5), None),  # wrong feature size
        (lambda: torch.randn(6), None),  # 1-D
        (lambda: torch.randn(2, 3, 4, 6), None),  # 4-D
        (lambda: torch.randn(4, 2, 6, dtype=torch.float64), None),  # dtype mismatch
        (lambda: torch.randn(0, 2, 6), None),  # sequence length 0
        (lambda: torch.randn(4, 2, 6), lambda: (torch.zeros(1, 2, 7), torch.zeros(1, 2, 7))),
        (lambda: torch.randn(4, 2, 6), lambda: (torch.zeros(1, 3, 8), torch.zeros(1, 3, 8))),
        (lambda: torch.randn(4, 2, 6), lambda: (torch.zeros(1, 2, 8), torch.zeros(2, 2, 8))),
        (lambda: torch.randn(4, 2, 6), lambda: (torch.zeros(2, 8), torch.zeros(2, 8))),
        (lambda: torch.randn(4, 6), lambda: (torch.zeros(1, 1, 8), torch.zeros(1, 1, 8))),
    ],
    ids=[
        "feature-size",
        "1d",
        "4d",
        "dtype",
        "seq-len-0",
        "h-size",
        "batch",
        "c-layers",
        "hx-2d-for-3d",
        "hx-3d-for-2d",
    ],
)
def test_forward_errors_match_nn_lstm(make_input, make_hx):
    torch.manual_seed(0)
    dense = nn.LSTM(6, 8)
    sparse = SparseLSTM.from_dense(dense, block_size=4)
    x = make_input()
    hx = make_hx() if make_hx else None
    expected = _error_of(lambda: dense(x, hx))
    assert expected is not None
    assert _error_of(lambda: sparse(x, hx)) == expected


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"block_size": 0}, "block_size must be a positive integer, got 0"),
        ({"block_size": -4}, "block_size must be a positive integer, got -4"),
        ({"block_size": 2.5}, "block_size must be a positive integer, got 2.5"),
        ({"sparsity": 1.0}, r"sparsity must be in \[0, 1\), got 1.0"),
        ({"sparsity": -0.1}, r"sparsity must be in \[0, 1\), got -0.1"),
        ({"sparsity": {"weight_hh": 1.5}}, r"sparsity must be in \[0, 1\), got 1.5"),
        ({"sparsity": {"weight_xx": 0.5}}, r"sparsity keys must be among .* got \['weight_xx'\]"),
        ({"backend": "cuda"}, r"backend must be one of \('auto', 'reference', 'triton'\)"),
    ],
)
def test_constructor_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SparseLSTM(4, 8, **kwargs)


@pytest.mark.parametrize(
    "args,kwargs,error,match",
    [
        ((4, 0), {}, ValueError, "hidden_size must be greater than zero"),
        ((4, 8, 0), {}, ValueError, "num_layers must be greater than zero"),
        ((4, 8), {"proj_size": 8}, ValueError, "proj_size has to be smaller than hidden_size"),
        ((4, 8), {"dropout": 1.5}, ValueError, "dropout should be a number in range"),
        ((4, 8), {"batch_first": 1}, TypeError, "batch_first should be of type bool, got: int"),
        ((4.0, 8), {}, TypeError, "input_size should be of type int, got: float"),
    ],
)
def test_constructor_errors_match_nn_lstm(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        nn.LSTM(*args, **kwargs)
    with pytest.raises(error, match=match):
        SparseLSTM(*args, **kwargs)


def test_triton_backend_without_gpu_or_interpreter_says_what_to_do(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: backend='triton' is valid here")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="backend='triton' needs .*use backend='reference'"):
        SparseLSTM(4, 8, backend="triton")
    with pytest.raises(ValueError, match="backend='triton' needs"):
        SparseLinear(4, 8, backend="triton")


def test_triton_backend_without_triton_installed(monkeypatch):
    monkeypatch.setattr("sparse_rnn.backends.triton_available", lambda: False)
    with pytest.raises(ValueError, match="needs the triton package.*pip install triton"):
        SparseLSTM(4, 8, backend="triton")


def test_from_dense_rejects_other_modules():
    with pytest.raises(TypeError, match="from_dense expects an nn.LSTM, got GRU"):
        SparseLSTM.from_dense(nn.GRU(3, 4))
    with pytest.raises(TypeError, match="from_dense expects an nn.Linear, got LSTM"):
        SparseLinear.from_dense(nn.LSTM(3, 4))
