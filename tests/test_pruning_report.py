"""The pruning report: per weight and total counts, for pruned dense and converted models."""

import pytest
import torch
from tiny_language_model import TinyCharLM

from sparse_rnn import sparsify
from sparse_rnn.pruning import GradualPruner, format_report, pruning_report


def test_report_of_a_single_linear_by_hand():
    linear = torch.nn.Linear(8, 6)  # blocks of 4: 2 x 2 blocks, the last block row partial
    with torch.no_grad():
        linear.weight[:4, 4:] = 0  # block (0, 1) pruned
        linear.weight[4:, :4] = 0  # block (1, 0) pruned
        linear.weight[0, 0] = 0  # a zero inside a kept block
    rows = pruning_report(linear, block_size=4)
    assert [row.name for row in rows] == ["weight", "total"]
    row = rows[0]
    assert (row.kept_blocks, row.total_blocks) == (2, 4)
    assert row.nonzero_params == 16 + 8 - 1
    assert row.dense_params == 48
    # two 4x4 fp32 blocks + one int32 column index each + 3 int32 row offsets
    assert row.sparse_bytes == 2 * (16 * 4 + 4) + 3 * 4
    assert row.dense_bytes == 48 * 4
    assert row.flops_per_token == 2 * 2 * 16
    assert row.dense_flops_per_token == 2 * 48
    assert row.block_sparsity == 0.5
    assert rows[1] == type(row)("total", **{k: v for k, v in vars(row).items() if k != "name"})


def test_report_is_the_same_before_and_after_sparsify():
    torch.manual_seed(0)
    model = TinyCharLM(hidden_size=10, proj_size=6)
    pruner = GradualPruner(model, 0.6, 4, end_step=0, schedule="one_shot")
    pruner.step()
    dense_rows = pruning_report(model, block_size=4)
    sparsify(model, block_size=4, backend="reference")
    sparse_rows = pruning_report(model)
    assert [r.name for r in dense_rows] == [r.name for r in sparse_rows]
    assert dense_rows == sparse_rows

    total = dense_rows[-1]
    assert total.name == "total"
    assert total.kept_blocks == sum(r.kept_blocks for r in dense_rows[:-1])
    assert total.nonzero_params == sum(r.nonzero_params for r in dense_rows[:-1])
    for row in dense_rows[:-1]:
        mask = pruner.block_masks()[row.name]
        assert row.kept_blocks == int(mask.sum())
        assert row.block_sparsity == pytest.approx(pruner.block_sparsity()[row.name])

    table = format_report(dense_rows).splitlines()
    assert table[0].split()[:3] == ["weight", "blocks", "kept"]
    assert table[-1].split()[0] == "total"
    assert table[-1].split()[1] == f"{total.kept_blocks}/{total.total_blocks}"
