"""GradualPruner: exact zero blocks per gate at every step, ranking modes, sparsify, errors."""

import io
import warnings

import pytest
import torch
from tiny_language_model import TinyCharLM, batches, language_model_loss, synthetic_characters
from torch import nn

from sparse_rnn import SparseLinear, SparseLSTM, sparsify
from sparse_rnn.pruning import GradualPruner, NarangSchedule, cubic

BLOCK_SIZE = 4


def kept_blocks_per_gate(pruner, name):
    """Kept blocks of each gate, counted from the weight itself (non-zero blocks)."""
    weight = pruner.weights[name]
    layout = weight.layout
    nonzero = layout.nonzero_block_mask(weight.parameter)
    return nonzero.view(layout.num_gates, layout.blocks_per_gate).sum(dim=1).tolist()


def train_steps(model, pruner, optimizer, data, steps, check=None):
    for step in range(steps):
        loss = language_model_loss(model, data[step % len(data)])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        pruner.step()
        if check is not None:
            check(step)


@pytest.fixture
def data():
    return batches(synthetic_characters(400, seed=0), seq_len=12, batch_size=4)


@pytest.mark.parametrize("proj_size", [0, 5])
def test_every_gate_has_the_scheduled_zero_blocks_at_every_step(data, proj_size):
    torch.manual_seed(0)
    # hidden 10 with blocks of 4: partial edge blocks in every gate.
    model = TinyCharLM(hidden_size=10, proj_size=proj_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    start, end, frequency, final = 2, 14, 3, 0.8
    pruner = GradualPruner(
        model,
        final,
        BLOCK_SIZE,
        start_step=start,
        end_step=end,
        frequency=frequency,
        optimizer=optimizer,
    )
    expected_names = {f"lstm.weight_{k}_l{i}" for k in ("ih", "hh") for i in (0, 1)}
    if proj_size:
        expected_names |= {"lstm.weight_hr_l0", "lstm.weight_hr_l1"}
    assert set(pruner.weights) == expected_names | {"output.weight"}

    last_update = {"step": -1}

    def check(step):
        if pruner.is_update_step(step):
            last_update["step"] = step
        scheduled = cubic(last_update["step"], start, end, final) if last_update["step"] >= 0 else 0
        for name, weight in pruner.weights.items():
            keep = round((1 - scheduled) * weight.layout.blocks_per_gate)
            assert kept_blocks_per_gate(pruner, name) == [keep] * weight.layout.num_gates, name
            assert torch.equal(
                weight.layout.nonzero_block_mask(weight.parameter), weight.block_mask
            )

    train_steps(model, pruner, optimizer, data, 20, check)
    assert pruner.step_count == 20
    assert all(v == pytest.approx(0.8, abs=0.07) for v in pruner.block_sparsity().values())


def test_pruned_blocks_never_come_back(data):
    torch.manual_seed(1)
    model = TinyCharLM()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    pruner = GradualPruner(model, 0.9, BLOCK_SIZE, end_step=12, frequency=2, optimizer=optimizer)
    previous = pruner.block_masks()
    for step in range(16):
        train_steps(model, pruner, optimizer, data[step:], 1)
        current = pruner.block_masks()
        for name in current:
            assert not bool((current[name] & ~previous[name]).any()), (step, name)
        previous = current


def test_balanced_mode_keeps_equal_blocks_per_block_row():
    torch.manual_seed(2)
    model = TinyCharLM(hidden_size=16)
    pruner = GradualPruner(model, 0.5, BLOCK_SIZE, end_step=0, schedule="one_shot", balanced=True)
    pruner.step()
    for name, weight in pruner.weights.items():
        keep = round(0.5 * weight.layout.num_block_cols)
        per_row = weight.block_mask.sum(dim=1)
        assert per_row.tolist() == [keep] * weight.layout.num_block_rows, name


@pytest.mark.filterwarnings("ignore:GradualPruner.*no kept block")  # expected here
def test_global_ranking_keeps_the_best_blocks_of_all_weights():
    torch.manual_seed(3)
    model = TinyCharLM(hidden_size=8)
    with torch.no_grad():
        model.output.weight.mul_(10)  # the output layer's blocks dominate a global ranking
    scores_before = {
        name: weight.layout.block_norms(weight.parameter)
        for name, weight in GradualPruner(model, 0.0, BLOCK_SIZE, end_step=0).weights.items()
    }
    pruner = GradualPruner(
        model, 0.7, BLOCK_SIZE, end_step=0, schedule="one_shot", ranking="global"
    )
    pruner.step()
    all_scores = torch.cat([s.flatten() for s in scores_before.values()])
    kept = torch.cat([m.flatten() for m in pruner.block_masks().values()])
    assert int(kept.sum()) == round(0.3 * all_scores.numel())
    assert all_scores[kept].min() >= all_scores[~kept].max()
    assert pruner.block_sparsity()["output.weight"] < 0.1


def test_per_parameter_sparsity_and_parameter_targets():
    model = TinyCharLM()
    targets = {"lstm.weight_hh_l0": 0.5, model.output.weight: 0.25}
    pruner = GradualPruner(model, 0.9, BLOCK_SIZE, end_step=0, schedule="one_shot", targets=targets)
    pruner.step()
    assert set(pruner.weights) == {"lstm.weight_hh_l0", "output.weight"}
    sparsity = pruner.block_sparsity()
    assert sparsity["lstm.weight_hh_l0"] == pytest.approx(1 - round(0.5 * 9) / 9)  # 3x3 blocks
    output_blocks = pruner.weights["output.weight"].layout.blocks_per_gate
    assert sparsity["output.weight"] == pytest.approx(
        1 - round(0.75 * output_blocks) / output_blocks
    )
    assert torch.count_nonzero(model.lstm.weight_ih_l0) == model.lstm.weight_ih_l0.numel()


def test_a_single_name_is_one_target():
    pruner = GradualPruner(TinyCharLM(), 0.5, BLOCK_SIZE, end_step=1, targets="output.weight")
    assert list(pruner.weights) == ["output.weight"]


def test_callable_schedule():
    model = TinyCharLM(hidden_size=8)
    half_then_final = lambda step, start, end, final: final / 2 if step < end else final
    pruner = GradualPruner(
        model, 0.5, BLOCK_SIZE, end_step=4, frequency=2, schedule=half_then_final
    )
    levels = []
    for _ in range(6):
        pruner.step()
        levels.append(pruner.block_sparsity()["lstm.weight_hh_l0"])
    assert levels == [0.25, 0.25, 0.25, 0.25, 0.5, 0.5]


def test_narang_schedule_reaches_the_target_on_fixed_weights():
    torch.manual_seed(4)
    model = TinyCharLM(hidden_size=16)
    pruner = GradualPruner(model, 0.75, BLOCK_SIZE, end_step=20, frequency=5, schedule="narang")
    levels = []
    for _ in range(21):
        pruner.step()
        levels.append(pruner.block_sparsity()["lstm.weight_hh_l0"])
    assert levels == sorted(levels) and levels[0] == 0.0
    for name, weight in pruner.weights.items():
        keep = round(0.25 * weight.layout.blocks_per_gate)
        assert kept_blocks_per_gate(pruner, name) == [keep] * weight.layout.num_gates, name


def test_sparsify_converts_a_pruned_model_losslessly(data):
    torch.manual_seed(5)
    model = TinyCharLM(hidden_size=10, proj_size=6)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    pruner = GradualPruner(model, 0.7, BLOCK_SIZE, end_step=6, frequency=2, optimizer=optimizer)
    train_steps(model, pruner, optimizer, data, 10)
    masks = pruner.block_masks()
    inputs = data[0][:-1]
    with torch.no_grad():
        expected = model(inputs)
        sparsify(model, block_size=BLOCK_SIZE, backend="reference")
        actual = model(inputs)
    assert isinstance(model.lstm, SparseLSTM) and isinstance(model.output, SparseLinear)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)
    for name, mask in masks.items():
        module_name, weight_name = name.split(".")
        sparse = getattr(model, module_name).sparse_weight(weight_name)
        assert torch.equal(
            sparse.layout.mask_from_pattern(sparse.col_indices, sparse.row_offsets), mask
        )


@pytest.mark.parametrize("schedule", ["cubic", "narang"])
def test_checkpoint_round_trip(data, schedule):
    def build(seed):
        torch.manual_seed(seed)
        model = TinyCharLM()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        pruner = GradualPruner(
            model,
            0.8,
            BLOCK_SIZE,
            end_step=12,
            frequency=3,
            schedule=schedule,
            optimizer=optimizer,
        )
        return model, optimizer, pruner

    model, optimizer, pruner = build(6)
    train_steps(model, pruner, optimizer, data, 7)
    buffer = io.BytesIO()
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "pruner": pruner.state_dict(),
        },
        buffer,
    )
    buffer.seek(0)
    checkpoint = torch.load(buffer)

    restored_model, restored_optimizer, restored_pruner = build(7)
    restored_model.load_state_dict(checkpoint["model"])
    restored_optimizer.load_state_dict(checkpoint["optimizer"])
    restored_pruner.load_state_dict(checkpoint["pruner"])
    assert restored_pruner.step_count == 7
    for name, mask in pruner.block_masks().items():
        assert torch.equal(restored_pruner.block_masks()[name], mask)

    # Both continue identically: same schedule position, same masks, same weights.
    train_steps(model, pruner, optimizer, data[7:], 8)
    train_steps(restored_model, restored_pruner, restored_optimizer, data[7:], 8)
    for name, mask in pruner.block_masks().items():
        assert torch.equal(restored_pruner.block_masks()[name], mask)
    for (name, a), (_, b) in zip(
        model.state_dict().items(), restored_model.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=name)


def test_load_state_dict_refuses_other_targets():
    model = TinyCharLM()
    state = GradualPruner(
        model, 0.5, BLOCK_SIZE, end_step=1, targets=["output.weight"]
    ).state_dict()
    other = GradualPruner(model, 0.5, BLOCK_SIZE, end_step=1, targets=["lstm.weight_hh_l0"])
    with pytest.raises(ValueError, match="output.weight"):
        other.load_state_dict(state)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sparsity": 1.0}, r"sparsity must be in \[0, 1\), got 1.0"),
        ({"sparsity": -0.1}, r"got -0.1"),
        ({"start_step": 10, "end_step": 5}, "start_step=10, end_step=5"),
        ({"frequency": 0}, "frequency must be a positive integer, got 0"),
        ({"schedule": "exponential"}, "'exponential'"),
        ({"targets": ["embedding.weight"]}, "'embedding.weight' is not a weight"),
        ({"targets": {"lstm.weight_hh_l0": 1.5}}, "got 1.5"),
        ({"score": "l3"}, "'l3'"),
        ({"ranking": "global", "balanced": True}, "balanced=True needs ranking='layer'"),
        (
            {"ranking": "global", "targets": {"output.weight": 0.5, "lstm.weight_hh_l0": 0.7}},
            "ranking='global' takes one sparsity",
        ),
        ({"schedule": NarangSchedule(), "ranking": "global"}, "narang"),
        ({"block_size": 0}, "block_size must be a positive integer, got 0"),
    ],
)
def test_bad_input_is_refused_with_the_value(kwargs, message):
    model = TinyCharLM()
    arguments = {"sparsity": 0.5, "end_step": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        GradualPruner(model, **arguments)


def test_a_foreign_parameter_is_refused():
    model = TinyCharLM()
    stranger = nn.Parameter(torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"a Parameter of shape \(3, 3\) is not a weight"):
        GradualPruner(model, 0.5, end_step=10, targets=[stranger])


def test_a_gate_left_without_blocks_is_warned_about_once():
    model = TinyCharLM(hidden_size=8)  # weight_hh: 2 x 2 = 4 blocks per gate
    pruner = GradualPruner(
        model, 0.9, BLOCK_SIZE, end_step=2, frequency=1, targets=["lstm.weight_hh_l0"]
    )
    pruner.step()  # cubic at step 0: nothing pruned, no warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(4):  # steps 1 (sparsity 0.79: one block per gate kept), 2, 3, 4
            pruner.step()
    messages = [str(w.message) for w in caught if "no kept block" in str(w.message)]
    assert len(messages) == 1
    assert messages[0].startswith("GradualPruner: lstm.weight_hh_l0 has gates with no kept block")
    assert pruner.block_sparsity() == {"lstm.weight_hh_l0": 1.0}


def test_set_block_masks_checks_names_and_shapes():
    pruner = GradualPruner(TinyCharLM(), 0.5, BLOCK_SIZE, end_step=1)
    with pytest.raises(ValueError, match=r"\['embedding.weight'\] are not targets"):
        pruner.set_block_masks({"embedding.weight": torch.ones(1, 1, dtype=torch.bool)})
    with pytest.raises(
        ValueError, match=r"lstm.weight_hh_l0 must have shape \(12, 3\).* got \(3, 3\)"
    ):
        pruner.set_block_masks({"lstm.weight_hh_l0": torch.ones(3, 3, dtype=torch.bool)})
