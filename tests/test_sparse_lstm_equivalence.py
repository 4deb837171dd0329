"""SparseLSTM against nn.LSTM: outputs, states and gradients on the reference path.

At sparsity 0 (and for any pattern, through ``to_dense``) SparseLSTM computes the same function
as ``nn.LSTM`` with the same weights. fp32 results may differ only by rounding: the reference
path sums in a different order than oneDNN, so outputs are compared at atol 1e-5 (values are
O(1), products have at most a few dozen terms). float64 gradients are checked by gradcheck.
"""

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.testing._internal.common_modules import module_db

from sparse_rnn import SparseLSTM

FP32 = dict(atol=1e-5, rtol=1e-5)


def _make_input(batch_first, unbatched, packed, seq=5, batch=3, features=6):
    if unbatched:
        return torch.randn(seq, features)
    x = torch.randn(batch, seq, features) if batch_first else torch.randn(seq, batch, features)
    if packed:
        # Unequal, unsorted lengths, one sequence as long as the batch.
        lengths = torch.tensor([3, seq, 1])
        return pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    return x


def _make_hx(num_states, unbatched, real_hidden, hidden, batch=3):
    lead = (num_states,) if unbatched else (num_states, batch)
    h0 = torch.randn(*lead, real_hidden, requires_grad=True)
    c0 = torch.randn(*lead, hidden, requires_grad=True)
    return h0, c0


def _data(output):
    return output.data if isinstance(output, nn.utils.rnn.PackedSequence) else output


CONFIGS = [
    (layers, bidir, batch_first, proj, bias, kind, with_hx)
    for layers, bidir, batch_first, proj, bias, kind, with_hx in itertools.product(
        [1, 2, 3],
        [False, True],
        [False, True],
        [0, 3],
        [True, False],
        ["batched", "unbatched", "packed"],
        [False, True],
    )
    # A deterministic third of the 288 combinations, spread over every axis, bounds run time.
    if (layers + bidir + batch_first + (proj > 0) + bias + len(kind) + with_hx) % 3 == 0
]


@pytest.mark.parametrize("layers,bidir,batch_first,proj,bias,kind,with_hx", CONFIGS)
def test_matches_nn_lstm_with_gradients(layers, bidir, batch_first, proj, bias, kind, with_hx):
    torch.manual_seed(0)
    hidden = 7  # not a multiple of the block size: partial edge blocks
    dense = nn.LSTM(6, hidden, layers, bias, batch_first, 0.0, bidir, proj)
    sparse = SparseLSTM.from_dense(dense, block_size=4)
    x = _make_input(batch_first, kind == "unbatched", kind == "packed")
    num_states = layers * (2 if bidir else 1)
    hx = _make_hx(num_states, kind == "unbatched", proj or hidden, hidden) if with_hx else None

    out_dense, (h_dense, c_dense) = dense(x, hx)
    out_sparse, (h_sparse, c_sparse) = sparse(x, hx)

    assert type(out_dense) is type(out_sparse)
    torch.testing.assert_close(_data(out_sparse), _data(out_dense), **FP32)
    torch.testing.assert_close(h_sparse, h_dense, **FP32)
    torch.testing.assert_close(c_sparse, c_dense, **FP32)
    if kind == "packed":
        torch.testing.assert_close(out_sparse.sorted_indices, out_dense.sorted_indices)
        torch.testing.assert_close(out_sparse.batch_sizes, out_dense.batch_sizes)

    # Gradients of one scalar through outputs and final states, for weights and hx.
    def loss(out, h, c):
        return (_data(out) * 1.3).sum() + (h**2).sum() + c.sum()

    dense_params = dict(dense.named_parameters())
    grads_dense = torch.autograd.grad(
        loss(out_dense, h_dense, c_dense), list(dense_params.values()) + list(hx or [])
    )
    sparse_params = dict(sparse.named_parameters())
    grads_sparse = torch.autograd.grad(
        loss(out_sparse, h_sparse, c_sparse), list(sparse_params.values()) + list(hx or [])
    )
    by_name = dict(zip(sparse_params, grads_sparse))
    for (name, _), grad in zip(dense_params.items(), grads_dense):
        if name.startswith("weight"):
            # At sparsity 0 every block is kept, so the block gradient is the dense one.
            layout = sparse._layouts[name]
            grad_sparse = layout.from_block_grid(
                by_name[name + "_blocks"].view(layout.num_block_rows, layout.num_block_cols, 4, 4)
            )
            torch.testing.assert_close(grad_sparse, grad, **FP32)
        else:
            torch.testing.assert_close(by_name[name], grad, **FP32)
    for g_sparse, g_dense in zip(
        grads_sparse[len(sparse_params) :], grads_dense[len(dense_params) :]
    ):
        torch.testing.assert_close(g_sparse, g_dense, **FP32)


@pytest.mark.parametrize(
    "bidir,proj,packed", [(False, 0, False), (True, 2, False), (True, 0, True)]
)
def test_gradcheck_float64(bidir, proj, packed):
    torch.manual_seed(0)
    sparse = SparseLSTM(
        3,
        5,
        2,
        bidirectional=bidir,
        proj_size=proj,
        dtype=torch.float64,
        block_size=2,
        sparsity=0.5,
    )
    names = [name for name, _ in sparse.named_parameters()]
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in sparse.parameters()]

    def run(x, *values):
        inp = pack_padded_sequence(x, torch.tensor([4, 2])) if packed else x
        out, (h, c) = torch.func.functional_call(sparse, dict(zip(names, values)), (inp,))
        return _data(out), h, c

    assert torch.autograd.gradcheck(run, (x, *params))


def test_dropout_between_layers_matches_nn_lstm_for_the_same_seed():
    dense = nn.LSTM(5, 7, 3, dropout=0.5).train()
    sparse = SparseLSTM.from_dense(dense, block_size=4).train()
    x = torch.randn(4, 2, 5)
    torch.manual_seed(1)
    expected, _ = dense(x)
    torch.manual_seed(1)
    got, _ = sparse(x)
    torch.testing.assert_close(got, expected, **FP32)

    # Dropout is active in training and off in eval mode.
    assert not torch.equal(sparse(x)[0], sparse(x)[0])
    sparse.eval()
    dense.eval()
    torch.testing.assert_close(sparse(x)[0], dense(x)[0], **FP32)


def test_empty_batch_like_nn_lstm():
    dense = nn.LSTM(3, 4)
    sparse = SparseLSTM.from_dense(dense, block_size=2)
    x = torch.randn(5, 0, 3)
    out, (h, c) = sparse(x)
    assert out.shape == dense(x)[0].shape == (5, 0, 4)
    assert h.shape == c.shape == (1, 0, 4)


@pytest.mark.parametrize("sample_index", range(0, 32, 3), ids=lambda i: f"sample{i}")
def test_torch_module_db_lstm_samples(sample_index):
    """The no-batch-dim samples that torch's own ModuleInfo for nn.LSTM ships."""
    info = next(m for m in module_db if m.module_cls is nn.LSTM)
    samples = info.module_inputs_func(
        info, device="cpu", dtype=torch.float32, requires_grad=False, training=False
    )
    sample = samples[sample_index % len(samples)]
    args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
    torch.manual_seed(0)
    dense = nn.LSTM(*args, **kwargs)
    sparse = SparseLSTM.from_dense(dense, block_size=2)
    inputs = sample.forward_input.args
    out_dense, (h_dense, c_dense) = dense(*inputs)
    out_sparse, (h_sparse, c_sparse) = sparse(*inputs)
    torch.testing.assert_close(out_sparse, out_dense, **FP32)
    torch.testing.assert_close(h_sparse, h_dense, **FP32)
    torch.testing.assert_close(c_sparse, c_dense, **FP32)


def test_torch_module_db_lstm_error_samples():
    """Construction and forward errors that torch's ModuleInfo expects of nn.LSTM."""
    info = next(m for m in module_db if m.module_cls is nn.LSTM)
    error_inputs = info.module_error_inputs_func(
        info, device="cpu", dtype=torch.float32, requires_grad=False, training=False
    )
    assert error_inputs
    for error_input in error_inputs:
        constructor = error_input.module_error_input.constructor_input
        forward = error_input.module_error_input.forward_input
        with pytest.raises(error_input.error_type, match=error_input.error_regex):
            module = SparseLSTM(*constructor.args, **constructor.kwargs)
            module(*forward.args, **forward.kwargs)
