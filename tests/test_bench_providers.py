"""The benchmark's building blocks: providers agree with the reference, byte counts, timing."""

import pytest
import torch
from torch import nn

from sparse_rnn import SparseLSTM
from sparse_rnn.bench import roofline
from sparse_rnn.bench.providers import (
    CheckFailed,
    Provider,
    check_against_reference,
    providers_for,
    reference_model,
)
from sparse_rnn.bench.sweep import Settings, Shape, dense_model, run_case
from sparse_rnn.bench.timing import (
    MIN_SAMPLES,
    Timing,
    rotation_size,
    time_callable,
    time_interleaved,
)

CPU = torch.device("cpu")


def pruned_lstm(hidden: int, layers: int = 1, sparsity: float = 0.5, block: int = 16):
    torch.manual_seed(0)
    dense = nn.LSTM(hidden, hidden, layers)
    return SparseLSTM.from_dense(dense, block_size=block, sparsity=sparsity, backend="reference")


@pytest.mark.parametrize("mode", ["inference", "training"])
@pytest.mark.parametrize("hidden, layers", [(48, 1), (40, 2)])  # 40: partial edge blocks
def test_every_cpu_provider_matches_the_float64_reference(hidden, layers, mode):
    pruned = pruned_lstm(hidden, layers)
    truth = reference_model(pruned)
    x = torch.randn(6, 3, hidden)
    providers, _ = providers_for(CPU)
    assert [p.name for p in providers] == [
        "nn.LSTM",
        "masked-dense",
        "torch.sparse",
        "SparseLSTM[reference]",
    ]
    for provider in providers:
        built = provider.build(pruned, mode)
        built.model.train(mode == "training")
        error, tolerance = check_against_reference(built.model, truth, x, mode)
        assert error <= tolerance == 1e-4, built.label


def test_torch_sparse_falls_back_to_csr_when_blocks_do_not_tile_the_matrix():
    providers = {p.name: p for p in providers_for(CPU)[0]}
    assert providers["torch.sparse"].build(pruned_lstm(48), "inference").label.endswith("(bsr)")
    # BSR needs the block size to divide both sides; 40 is not a multiple of 16.
    assert providers["torch.sparse"].build(pruned_lstm(40), "inference").label.endswith("(csr)")


def test_triton_is_left_out_on_the_cpu_with_a_reason():
    providers, notes = providers_for(CPU)
    assert "SparseLSTM[triton]" not in [p.name for p in providers]
    assert any("SparseLSTM[triton]" in note and "CUDA" in note for note in notes)


def test_check_rejects_a_model_that_differs_from_the_reference():
    pruned = pruned_lstm(32)
    truth = reference_model(pruned)
    wrong = pruned_lstm(32, sparsity=0.0)
    wrong_model = {p.name: p for p in providers_for(CPU)[0]}["nn.LSTM"].build(wrong, "inference")
    with pytest.raises(CheckFailed, match="float64 reference"):
        check_against_reference(wrong_model.model, truth, torch.randn(4, 2, 32), "inference")


def test_weight_bytes_count_the_stored_format():
    hidden, block = 64, 16
    pruned = pruned_lstm(hidden, sparsity=0.75, block=block)
    providers = {p.name: p for p in providers_for(CPU)[0]}
    dense_bytes = 4 * hidden * hidden * 4
    assert providers["nn.LSTM"].build(pruned, "inference").weight_bytes_per_step == dense_bytes

    kept = pruned.sparse_weight("weight_hh_l0").col_indices.numel()
    block_rows = 4 * hidden // block
    assert kept == 4 * 4  # each of the 4 gates keeps a quarter of its 16 blocks
    expected = kept * block * block * 4 + kept * 4 + (block_rows + 1) * 4
    built = providers["SparseLSTM[reference]"].build(pruned, "inference")
    assert built.weight_bytes_per_step == expected
    ideal = roofline.ideal_block_sparse_traffic(hidden, 1, 0.25, block, 4)
    assert ideal.weight_bytes == expected


def test_roofline_floor_scales_with_kept_blocks():
    dense = roofline.ideal_block_sparse_traffic(1024, 1, 1.0, 32, 4)
    sparse = roofline.ideal_block_sparse_traffic(1024, 1, 0.1, 32, 4)
    assert dense.weight_bytes == pytest.approx(roofline.dense_weight_bytes(1024, 4), rel=0.01)
    assert sparse.weight_bytes == pytest.approx(0.1 * dense.weight_bytes, rel=0.02)
    assert roofline.step_time_floor_s(dense, 1e12) == pytest.approx(dense.total / 1e12)


def test_timing_statistics_and_rotation():
    timing = Timing.from_samples([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (timing.median_s, timing.min_s, timing.max_s, timing.runs) == (3.0, 1.0, 5.0, 5)
    assert timing.iqr_s == pytest.approx(2.0)
    assert rotation_size(1) == 16 and rotation_size(2**40) == 2

    seen = []
    inputs = [torch.zeros(1), torch.ones(1), torch.full((1,), 2.0)]
    result = time_callable(lambda x: seen.append(int(x.item())), inputs, min_run_time_s=0.001)
    assert result.runs >= MIN_SAMPLES and result.median_s > 0
    assert set(seen) == {0, 1, 2}


def test_interleaved_timing_gives_each_callable_the_same_number_of_samples():
    calls = {"fast": 0, "slow": 0}

    def fast(x):
        calls["fast"] += 1

    def slow(x):
        calls["slow"] += 1
        torch.mm(torch.ones(64, 64), torch.ones(64, 64))

    fast_timing, slow_timing = time_interleaved([fast, slow], [torch.zeros(1)], 0.001)
    assert fast_timing.runs == slow_timing.runs >= MIN_SAMPLES
    assert calls["fast"] > 0 and calls["slow"] > 0


def test_a_case_reports_providers_that_cannot_run_or_disagree_without_timing_them():
    def missing_kernels(pruned, mode):
        raise ImportError("No module named 'sparse_rnn.kernels.sparse_lstm_step'")

    def wrong_weights(pruned, mode):
        built = nn_lstm.build(pruned, mode)
        with torch.no_grad():
            built.model.lstm.weight_hh_l0.add_(0.1)
        return built

    nn_lstm = providers_for(CPU)[0][0]
    providers = [nn_lstm, Provider("kernels", missing_kernels), Provider("wrong", wrong_weights)]
    settings = Settings(CPU, torch.float32, block=16, mode="inference", min_run_time_s=0.001)
    shape = Shape(hidden=32, batch=2, seq=3, layers=1)
    rows = run_case(shape, 0.5, dense_model(shape, settings), providers, settings, 1e10)

    assert [(r.provider, r.status) for r in rows] == [
        ("nn.LSTM", "ok"),
        ("kernels", "unavailable"),
        ("nn.LSTM", "check failed"),
    ]
    assert "sparse_lstm_step" in rows[1].reason and "float64 reference" in rows[2].reason
    assert rows[0].median_ms > 0 and rows[1].median_ms is None and rows[2].median_ms is None
