"""Group lasso over blocks: value and gradient against an explicit per-block formula."""

import pytest
import torch
from tiny_language_model import TinyCharLM

from sparse_rnn.block_layout import BlockLayout
from sparse_rnn.pruning import GroupLasso, group_lasso_penalty


def explicit_penalty(weight, num_gates, rows_per_gate, block_size):
    """sum of ||block||_2 over blocks cut gate by gate with Python slicing."""
    total = weight.new_zeros(())
    rows, cols = weight.shape
    for gate in range(num_gates):
        gate_rows = weight[gate * rows_per_gate : (gate + 1) * rows_per_gate]
        for r in range(0, rows_per_gate, block_size):
            for c in range(0, cols, block_size):
                block = gate_rows[r : r + block_size, c : c + block_size]
                total = total + block.pow(2).sum().sqrt()
    return total


@pytest.mark.parametrize("rows_per_gate, cols, block_size", [(6, 5, 4), (8, 8, 4), (3, 7, 2)])
def test_penalty_and_gradient_match_the_explicit_formula(rows_per_gate, cols, block_size):
    torch.manual_seed(0)
    layout = BlockLayout(4, rows_per_gate, cols, block_size)
    weight = torch.randn(layout.shape, dtype=torch.float64, requires_grad=True)
    explicit_weight = weight.detach().clone().requires_grad_(True)

    value = group_lasso_penalty(weight, layout)
    expected = explicit_penalty(explicit_weight, 4, rows_per_gate, block_size)
    torch.testing.assert_close(value, expected, atol=1e-12, rtol=1e-12)

    value.backward()
    expected.backward()
    torch.testing.assert_close(weight.grad, explicit_weight.grad, atol=1e-12, rtol=1e-12)


def test_gradient_is_the_normalised_block_and_zero_on_a_zero_block():
    layout = BlockLayout(1, 4, 4, 2)
    weight = torch.zeros(4, 4, dtype=torch.float64)
    weight[:2, :2] = torch.tensor([[3.0, 0.0], [0.0, 4.0]])  # norm 5
    weight.requires_grad_(True)
    group_lasso_penalty(weight, layout).backward()
    expected = torch.zeros(4, 4, dtype=torch.float64)
    expected[:2, :2] = torch.tensor([[0.6, 0.0], [0.0, 0.8]], dtype=torch.float64)
    torch.testing.assert_close(weight.grad, expected, atol=1e-15, rtol=0)


def test_group_lasso_gradcheck():
    layout = BlockLayout(4, 3, 5, 2)
    weight = torch.randn(layout.shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w: group_lasso_penalty(w, layout), (weight,))


def test_group_lasso_over_a_model_sums_its_targets_with_factors():
    torch.manual_seed(1)
    model = TinyCharLM(hidden_size=10)
    regularizer = GroupLasso(
        model, 0.01, 4, targets={"lstm.weight_hh_l0": 2.0, model.output.weight: 1.0}
    )
    expected = 0.01 * (
        2.0 * explicit_penalty(model.lstm.weight_hh_l0, 4, 10, 4)
        + explicit_penalty(model.output.weight, 1, model.output.out_features, 4)
    )
    torch.testing.assert_close(regularizer(), expected, atol=1e-6, rtol=1e-6)

    everything = GroupLasso(model, 1.0, 4)
    assert len(everything.targets) == 5  # 2 layers x (ih, hh) + output
    with pytest.raises(ValueError, match="strength must be a non-negative number, got -1"):
        GroupLasso(model, -1, 4)
