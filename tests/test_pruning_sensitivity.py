"""Sensitivity analysis on a tiny character LM: rows against direct pruning, table, plot."""

import pytest
import torch
from tiny_language_model import (
    TinyCharLM,
    batches,
    held_out_loss,
    language_model_loss,
    synthetic_characters,
)

from sparse_rnn.block_layout import BlockLayout
from sparse_rnn.pruning import (
    block_scores,
    element_mask,
    format_sensitivity_table,
    plot_sensitivity,
    sensitivity_analysis,
)

SPARSITIES = (0.0, 0.5, 0.9)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = TinyCharLM(hidden_size=8)
    train = batches(synthetic_characters(300, seed=0), seq_len=12, batch_size=4)
    held_out = batches(synthetic_characters(60, seed=1), seq_len=12, batch_size=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    for window in train:
        optimizer.zero_grad()
        language_model_loss(model, window).backward()
        optimizer.step()
    return model, held_out


def test_rows_match_pruning_each_weight_by_hand(trained):
    model, held_out = trained
    before = {name: value.clone() for name, value in model.state_dict().items()}
    evaluate = lambda m: held_out_loss(m, held_out)
    rows = sensitivity_analysis(model, evaluate, SPARSITIES, 4)

    names = ["lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.weight_ih_l1", "lstm.weight_hh_l1"]
    assert [row.name for row in rows] == [n for n in [*names, "output.weight"] for _ in SPARSITIES]
    baseline = evaluate(model)
    for row in rows:
        assert row.baseline == baseline
        if row.sparsity == 0.0:
            assert row.loss == baseline
    # Weights are restored exactly.
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name

    # Reference: prune lstm.weight_hh_l0 to 90% by hand and evaluate.
    layout = BlockLayout(4, 8, 8, 4)
    weight = model.lstm.weight_hh_l0
    kept = layout.top_blocks_mask(block_scores(weight, layout), 0.9)
    with torch.no_grad():
        weight.mul_(element_mask(layout, kept))
    expected = evaluate(model)
    model.load_state_dict(before)
    row = next(r for r in rows if r.name == "lstm.weight_hh_l0" and r.sparsity == 0.9)
    assert row.loss == pytest.approx(expected, rel=1e-6)
    assert row.loss_increase == pytest.approx(expected - baseline, rel=1e-5)
    assert max(r.loss_increase for r in rows if r.sparsity == 0.9) > 0


def test_table_and_plot(trained, tmp_path):
    model, held_out = trained
    rows = sensitivity_analysis(
        model, lambda m: held_out_loss(m, held_out), (0.0, 0.5), 4, targets=["output.weight"]
    )
    table = format_sensitivity_table(rows)
    lines = table.splitlines()
    assert lines[0] == f"held-out loss, dense baseline {rows[0].baseline:.4f}"
    assert "s=0.00" in lines[1] and "s=0.50" in lines[1]
    assert lines[3].split() == ["output.weight", f"{rows[0].loss:.4f}", f"{rows[1].loss:.4f}"]

    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    ax = plot_sensitivity(rows)
    assert len(ax.lines) == 2  # one weight plus the dense baseline
    assert list(ax.lines[0].get_xdata()) == [0.0, 0.5]
    ax.figure.savefig(tmp_path / "sensitivity.png")
    assert (tmp_path / "sensitivity.png").stat().st_size > 0


def test_bad_sparsity_in_the_sweep_is_refused(trained):
    model, held_out = trained
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\), got 1.0"):
        sensitivity_analysis(model, lambda m: 0.0, (0.5, 1.0), 4)
