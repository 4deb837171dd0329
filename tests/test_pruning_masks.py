"""Pruned weights stay exactly zero through optimizer steps; optimizer state is cleared."""

import pytest
import torch
from tiny_language_model import TinyCharLM, batches, language_model_loss, synthetic_characters

from sparse_rnn.block_layout import BlockLayout
from sparse_rnn.pruning import GradualPruner, element_mask

OPTIMIZERS = {
    "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
    "sgd_nesterov": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=1e-3),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
}


def test_element_mask_covers_whole_blocks_of_each_gate():
    layout = BlockLayout(num_gates=2, rows_per_gate=3, cols=5, block_size=2)
    block_mask = torch.tensor(
        [[True, False, True], [False, False, True], [False, True, False], [True, False, False]]
    )
    expected = torch.tensor(
        [
            [1, 1, 0, 0, 1],
            [1, 1, 0, 0, 1],
            [0, 0, 0, 0, 1],  # gate 0, block row 1 (partial: one row)
            [0, 0, 1, 1, 0],  # gate 1 starts here, block row 0
            [0, 0, 1, 1, 0],
            [1, 1, 0, 0, 0],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(element_mask(layout, block_mask), expected)


@pytest.mark.parametrize("optimizer_name", sorted(OPTIMIZERS))
def test_pruned_weights_stay_exactly_zero_after_every_optimizer_step(optimizer_name):
    torch.manual_seed(0)
    model = TinyCharLM(hidden_size=10)
    optimizer = OPTIMIZERS[optimizer_name](model.parameters())
    data = batches(synthetic_characters(300, seed=1), seq_len=10, batch_size=4)
    pruner = GradualPruner(model, 0.75, 4, start_step=2, end_step=6, frequency=2)
    pruner.attach_optimizer(optimizer)

    for step in range(9):
        loss = language_model_loss(model, data[step % len(data)])
        optimizer.zero_grad()
        loss.backward()
        for weight in pruner.weights.values():
            # The gradient hook already zeroed the gradient of pruned entries.
            assert not bool(weight.parameter.grad[~weight.mask].any())
        optimizer.step()
        for name, weight in pruner.weights.items():
            pruned = ~weight.mask
            assert bool((weight.parameter[pruned] == 0).all()), (step, name)
            for key, state in optimizer.state[weight.parameter].items():
                if torch.is_tensor(state) and state.shape == weight.parameter.shape:
                    assert bool((state[pruned] == 0).all()), (step, name, key)
        pruner.step()
    assert min(pruner.block_sparsity().values()) > 0.6  # 0.75 rounded to whole blocks per gate


def test_optimizer_state_of_newly_pruned_blocks_is_cleared():
    torch.manual_seed(1)
    model = TinyCharLM()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    pruner = GradualPruner(model, 0.5, 4, start_step=1, end_step=1, optimizer=optimizer)
    data = batches(synthetic_characters(100, seed=2), seq_len=10, batch_size=2)
    language_model_loss(model, data[0]).backward()
    optimizer.step()
    weight = pruner.weights["lstm.weight_hh_l0"]
    assert bool(optimizer.state[weight.parameter]["exp_avg_sq"].ne(0).all())
    pruner.step()  # step 0: nothing yet
    pruner.step()  # step 1: prune half
    state = optimizer.state[weight.parameter]
    for key in ("exp_avg", "exp_avg_sq"):
        assert torch.equal(state[key].ne(0), weight.mask), key


def test_remove_detaches_the_gradient_hook():
    model = TinyCharLM()
    pruner = GradualPruner(model, 0.5, 4, end_step=0, schedule="one_shot")
    pruner.step()
    pruner.remove()
    data = batches(synthetic_characters(100, seed=3), seq_len=10, batch_size=2)
    language_model_loss(model, data[0]).backward()
    weight = pruner.weights["lstm.weight_hh_l0"]
    assert bool(weight.parameter.grad[~weight.mask].ne(0).any())
