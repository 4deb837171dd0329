"""Block-sparse storage of SparseLSTM: patterns, state_dicts, conversion and training."""

import pytest
import torch
from torch import nn

from sparse_rnn import SparseLSTM

FP32 = dict(atol=1e-5, rtol=1e-5)


def _dense_floats(lstm: nn.LSTM) -> int:
    return sum(p.numel() for p in lstm.parameters() if p.dim() == 2)


def _stored_weight_floats(sparse: SparseLSTM) -> int:
    return sum(t.numel() for name, t in sparse.state_dict().items() if name.endswith("_blocks"))


def test_ninety_percent_sparse_layer_stores_a_tenth_of_the_floats():
    # Kept blocks per gate are rounded to whole blocks, so "a tenth" holds within 10%.
    sparse = SparseLSTM(256, 512, num_layers=2, proj_size=128, block_size=32, sparsity=0.9)
    dense_floats = _dense_floats(sparse.to_dense())
    assert _stored_weight_floats(sparse) == pytest.approx(0.1 * dense_floats, rel=0.1)
    in_parameters = sum(p.numel() for n, p in sparse.named_parameters() if n.endswith("_blocks"))
    assert in_parameters == _stored_weight_floats(sparse)
    # Index buffers are one int32 per block plus one per block row: negligible next to blocks.
    index_entries = sum(b.numel() for b in sparse.buffers())
    assert index_entries < 0.002 * dense_floats


def test_each_gate_is_pruned_on_its_own():
    sparse = SparseLSTM(64, 64, block_size=16, sparsity={"weight_hh": 0.75, "weight_ih": 0.5})
    for name, kept_per_gate in (("weight_hh_l0", 4), ("weight_ih_l0", 8)):
        weight = sparse.sparse_weight(name)
        layout = weight.layout
        mask = layout.mask_from_pattern(weight.col_indices, weight.row_offsets)
        per_gate = mask.view(4, -1).sum(dim=1)
        assert per_gate.tolist() == [kept_per_gate] * 4
        # No block straddles two gates: gate g's rows are exactly block rows 4g..4g+3.
        dense = weight.to_dense()
        for gate in range(4):
            rows = dense[gate * 64 : (gate + 1) * 64]
            assert (rows.abs().sum(dim=1) > 0).any()


def test_from_dense_keeps_largest_blocks_per_gate_by_l2_norm():
    torch.manual_seed(0)
    dense = nn.LSTM(8, 8)
    with torch.no_grad():
        # Gate f of weight_hh: one block much larger than the others.
        dense.weight_hh_l0[8:12, 4:8] = 10.0
    sparse = SparseLSTM.from_dense(dense, block_size=4, sparsity=0.75)
    kept = sparse.dense_weight("weight_hh_l0")
    torch.testing.assert_close(kept[8:12, 4:8], torch.full((4, 4), 10.0))
    assert (kept[8:16] != 0).sum() == 16  # exactly one of the four blocks of gate f


def test_from_dense_without_sparsity_keeps_weights_exactly_and_drops_zero_blocks():
    torch.manual_seed(0)
    dense = nn.LSTM(10, 9, num_layers=2, bidirectional=True, proj_size=5)
    with torch.no_grad():
        dense.weight_hh_l1_reverse[:4, :4] = 0.0  # one whole block of gate i
        dense.weight_ih_l0[0, 0] = 0.0  # a zero entry inside a kept block
    sparse = SparseLSTM.from_dense(dense, block_size=4)
    for name, parameter in dense.named_parameters():
        expected = parameter.detach()
        got = sparse.dense_weight(name) if name.startswith("weight") else getattr(sparse, name)
        assert torch.equal(got, expected), name
    full = sparse._layouts["weight_hh_l1_reverse"]
    assert (
        sparse.weight_hh_l1_reverse_blocks.shape[0] == full.num_block_rows * full.num_block_cols - 1
    )

    x = torch.randn(6, 2, 10)
    torch.testing.assert_close(sparse(x)[0], dense(x)[0], **FP32)


@pytest.mark.parametrize("bidirectional,proj_size", [(False, 0), (True, 3)])
def test_pruned_outputs_equal_to_dense(bidirectional, proj_size):
    torch.manual_seed(0)
    sparse = SparseLSTM(
        9, 11, 2, bidirectional=bidirectional, proj_size=proj_size, block_size=4, sparsity=0.8
    )
    dense = sparse.to_dense()
    assert isinstance(dense, nn.LSTM)
    x = torch.randn(2, 7, 9)
    out_sparse, (h_sparse, c_sparse) = sparse(x)
    out_dense, (h_dense, c_dense) = dense(x)
    torch.testing.assert_close(out_sparse, out_dense, **FP32)
    torch.testing.assert_close(h_sparse, h_dense, **FP32)
    torch.testing.assert_close(c_sparse, c_dense, **FP32)


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3),
        lambda params: torch.optim.Adam(params, lr=0.01, weight_decay=1e-3),
    ],
    ids=["sgd-momentum", "adam"],
)
def test_pruned_blocks_and_padding_stay_zero_through_optimizer_steps(make_optimizer):
    torch.manual_seed(0)
    sparse = SparseLSTM(6, 7, 2, block_size=4, sparsity=0.7)
    pruned = {n: sparse.dense_weight(n).detach() == 0 for n in sparse._layouts}
    optimizer = make_optimizer(sparse.parameters())
    for _ in range(5):
        optimizer.zero_grad()
        out, _ = sparse(torch.randn(5, 3, 6))
        out.pow(2).sum().backward()
        optimizer.step()

    for name, layout in sparse._layouts.items():
        weight = sparse.dense_weight(name).detach()
        assert (weight[pruned[name]] == 0).all(), name
        assert (weight[~pruned[name]] != 0).any(), name
        # The zero padding of partial edge blocks never receives a gradient.
        blocks = sparse.sparse_weight(name)
        padding = layout.padding_mask()[layout.row_indices(blocks.row_offsets), blocks.col_indices]
        assert (blocks.blocks.detach()[padding] == 0).all(), name


def test_loads_a_plain_nn_lstm_state_dict_strictly():
    torch.manual_seed(0)
    dense = nn.LSTM(5, 6, 2, bidirectional=True, proj_size=2)
    sparse = SparseLSTM(5, 6, 2, bidirectional=True, proj_size=2, block_size=4, sparsity=0.5)
    result = sparse.load_state_dict(dense.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(3, 2, 5)
    torch.testing.assert_close(sparse(x)[0], dense(x)[0], **FP32)
    # And back: the dense twin's state_dict round-trips through nn.LSTM.
    round_trip = nn.LSTM(5, 6, 2, bidirectional=True, proj_size=2)
    round_trip.load_state_dict(sparse.dense_state_dict(), strict=True)
    torch.testing.assert_close(round_trip(x)[0], dense(x)[0], **FP32)


def test_pruned_state_dict_loads_into_a_fresh_module_with_its_pattern(tmp_path):
    torch.manual_seed(0)
    pruned = SparseLSTM(5, 9, 2, block_size=4, sparsity=0.8)
    path = tmp_path / "lstm.pt"
    torch.save(pruned.state_dict(), path)

    fresh = SparseLSTM(5, 9, 2, block_size=4)
    fresh.load_state_dict(torch.load(path), strict=True)
    for name in pruned._layouts:
        for kept, loaded in zip(pruned.sparse_weight(name)[:3], fresh.sparse_weight(name)[:3]):
            assert torch.equal(kept, loaded), name
    x = torch.randn(4, 3, 5)
    torch.testing.assert_close(fresh(x)[0], pruned(x)[0], rtol=0, atol=0)
    # The fresh module trains with its new parameters.
    fresh(x)[0].sum().backward()
    assert fresh.weight_hh_l0_blocks.grad is not None


def test_bad_state_dict_leaves_the_module_unchanged():
    torch.manual_seed(0)
    sparse = SparseLSTM(5, 9, 2, block_size=4, sparsity=0.5)
    before = {k: v.clone() for k, v in sparse.state_dict().items()}
    state = SparseLSTM(5, 9, 2, block_size=4, sparsity=0.8).state_dict()
    state["weight_hh_l1_col_indices"] = state["weight_hh_l1_col_indices"].flip(0)  # unsorted
    with pytest.raises(RuntimeError, match="weight_hh_l1"):
        sparse.load_state_dict(state)
    after = sparse.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)

    wrong_shape = nn.LSTM(5, 8, 2).state_dict()
    with pytest.raises(RuntimeError, match="shape"):
        sparse.load_state_dict(wrong_shape)
    assert all(torch.equal(before[k], sparse.state_dict()[k]) for k in before)


def test_module_api_of_nn_lstm():
    sparse = SparseLSTM(4, 8, 2, batch_first=True, dropout=0.25, block_size=4, sparsity=0.5)
    sparse.flatten_parameters()
    text = repr(sparse)
    assert text.startswith("SparseLSTM(4, 8, num_layers=2, batch_first=True, dropout=0.25")
    assert "block_size=4" in text and "density=0.500" in text
    assert not isinstance(sparse, nn.LSTM)
    dense_keys = nn.LSTM(4, 8, 2).state_dict().keys()
    expected = {k for k in dense_keys if k.startswith("bias")}
    for key in dense_keys - expected:
        expected |= {key + "_blocks", key + "_col_indices", key + "_row_offsets"}
    assert set(sparse.state_dict()) == expected


def test_a_model_with_sparse_lstm_trains():
    torch.manual_seed(0)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = SparseLSTM(3, 32, batch_first=True, block_size=8, sparsity=0.5)
            self.head = nn.Linear(32, 1)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out[:, -1])

    # Learn the sum of a short sequence.
    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(64, 6, 3)
    y = x.sum(dim=(1, 2)).unsqueeze(1)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
