"""SparseLinear against nn.Linear, and sparsify() on a small language model."""

import pytest
import torch
from torch import nn

import sparse_rnn
from sparse_rnn import SparseLinear, SparseLSTM

FP32 = dict(atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bias", [True, False])
def test_sparse_linear_matches_its_dense_twin(bias):
    torch.manual_seed(0)
    linear = nn.Linear(13, 10, bias=bias)
    exact = SparseLinear.from_dense(linear, block_size=4)
    x = torch.randn(3, 5, 13, requires_grad=True)
    torch.testing.assert_close(exact(x), linear(x), **FP32)

    pruned = SparseLinear.from_dense(linear, block_size=4, sparsity=0.5)
    assert pruned.weight_blocks.shape[0] == 6  # round(0.5 * 3 * 4) blocks
    torch.testing.assert_close(pruned(x), pruned.to_dense()(x), **FP32)
    grad_sparse = torch.autograd.grad(pruned(x).sum(), x)[0]
    grad_dense = torch.autograd.grad(pruned.to_dense()(x).sum(), x)[0]
    torch.testing.assert_close(grad_sparse, grad_dense, **FP32)


def test_sparse_linear_loads_nn_linear_state_dict():
    linear = nn.Linear(9, 7)
    sparse = SparseLinear(9, 7, block_size=4, sparsity=0.5)
    sparse.load_state_dict(linear.state_dict(), strict=True)
    x = torch.randn(2, 9)
    torch.testing.assert_close(sparse(x), linear(x), **FP32)
    assert "density=1.000" in repr(sparse)


class TinyLanguageModel(nn.Module):
    def __init__(self, vocab=20, embed=12, hidden=16, tie=False):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed if not tie else hidden)
        self.rnn = nn.LSTM(self.embedding.embedding_dim, hidden, 2, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, vocab))
        if tie:
            self.head[2].weight = self.embedding.weight

    def forward(self, tokens):
        out, _ = self.rnn(self.embedding(tokens))
        return self.head(out)


def _zero_some_blocks(model, block_size):
    """Prune the model elsewhere: zero every other block of each weight matrix."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.dim() == 2 and "embedding" not in name:
                for r in range(0, parameter.shape[0], block_size):
                    for c in range(0, parameter.shape[1], 2 * block_size):
                        parameter[r : r + block_size, c : c + block_size] = 0


def test_sparsify_converts_a_pruned_model_losslessly():
    torch.manual_seed(0)
    model = TinyLanguageModel()
    _zero_some_blocks(model, block_size=4)
    tokens = torch.randint(0, 20, (3, 9))
    expected = model(tokens)

    returned = sparse_rnn.sparsify(model, block_size=4)
    assert returned is model
    assert isinstance(model.rnn, SparseLSTM)
    assert isinstance(model.head[0], SparseLinear) and isinstance(model.head[2], SparseLinear)
    assert isinstance(model.embedding, nn.Embedding)
    assert 0.4 < model.rnn.density() < 0.6
    torch.testing.assert_close(model(tokens), expected, **FP32)


def test_sparsify_with_sparsity_and_a_bare_module():
    torch.manual_seed(0)
    model = sparse_rnn.sparsify(
        TinyLanguageModel(), sparsity={"weight_hh": 0.75, "linear": 0.5}, block_size=4
    )
    assert model.rnn.sparse_weight("weight_hh_l0").blocks.shape[0] == 4 * 4
    assert model.rnn.density() < 1.0
    assert model.head[2].density() == pytest.approx(0.5, abs=0.05)
    lstm = sparse_rnn.sparsify(nn.LSTM(4, 8), sparsity=0.5, block_size=4)
    assert isinstance(lstm, SparseLSTM)


def test_sparsify_warns_when_it_breaks_a_weight_tie():
    model = TinyLanguageModel(tie=True)
    with pytest.warns(UserWarning, match=r"head.2 is shared with \['embedding'\]"):
        sparse_rnn.sparsify(model, block_size=4)
