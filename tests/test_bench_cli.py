"""``sparse-rnn bench`` end to end on a tiny sweep: table, JSON record, plot and errors."""

import json
import sys

import pytest
import torch

from sparse_rnn.bench import timing
from sparse_rnn.bench.record import RECORD_FIELDS
from sparse_rnn.bench.sweep import Row
from sparse_rnn.cli import main

TINY = ["--hidden", "32", "--batch", "2", "--seq", "3", "--block", "16", "--min-run-time", "0.005"]
TINY += ["--threads", "1"]  # the suite may share the CPU with other work


@pytest.fixture(autouse=True)
def fast_and_contained(monkeypatch):
    """Skip the real copy measurement (256 MiB for a second) and undo ``--threads``."""
    monkeypatch.setattr(timing, "copy_bandwidth", lambda device: 10e9)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_bench_prints_a_table_and_writes_json_and_plot(tmp_path, capsys):
    record_path, plot_path = tmp_path / "out" / "run.json", tmp_path / "run.png"
    argv = ["bench", *TINY, "--sparsity", "0", "0.5", "--json", str(record_path)]
    assert main([*argv, "--plot", str(plot_path)]) == 0

    printed = capsys.readouterr().out
    for expected in ("nn.LSTM", "masked-dense", "torch.sparse (bsr)", "SparseLSTM[reference]"):
        assert expected in printed
    assert "SparseLSTM[triton] left out" in printed

    record = json.loads(record_path.read_text())
    assert tuple(record) == RECORD_FIELDS
    assert record["machine"]["cpu_count"] >= 1 and record["machine"]["gpu_name"] is None
    assert set(record["versions"]) == {"python", "torch", "triton", "numpy", "sparse_rnn"}
    assert torch.__version__.startswith(record["versions"]["torch"].split("+")[0])
    assert record["arguments"]["sparsity"] == [0.0, 0.5]
    assert record["copy_bandwidth_gb_per_s"] == pytest.approx(10.0)

    rows = record["rows"]
    assert len(rows) == 2 * 4
    assert set(rows[0]) == set(Row.__dataclass_fields__)
    for row in rows:
        assert row["status"] == "ok", row
        assert row["max_error"] <= row["tolerance"]
        assert row["median_ms"] > 0 and row["runs"] >= 10
        assert (
            row["bytes_per_step"] == row["weight_bytes_per_step"] + row["activation_bytes_per_step"]
        )
        assert row["achieved_gb_per_s"] > 0
    baseline = [r for r in rows if r["provider"] == "nn.LSTM"]
    assert [r["speedup_vs_nn_lstm"] for r in baseline] == [1.0, 1.0]
    sparse = [r for r in rows if r["provider"] == "SparseLSTM[reference]"]
    assert sparse[1]["weight_bytes_per_step"] < sparse[0]["weight_bytes_per_step"]

    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_training_mode_times_forward_and_backward(tmp_path):
    record_path = tmp_path / "train.json"
    argv = ["bench", *TINY, "--sparsity", "0.5", "--mode", "training", "--json", str(record_path)]
    assert main(argv) == 0
    rows = json.loads(record_path.read_text())["rows"]
    assert {r["mode"] for r in rows} == {"training"}
    assert all(r["status"] == "ok" and r["achieved_gb_per_s"] is None for r in rows)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(capsys):
    assert main(["bench", "--device", "cuda", *TINY]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad, message",
    [
        (["--sparsity", "1.0"], "sparsity must be in [0, 1)"),
        (["--hidden", "0"], "must be a positive integer"),
        (["--mode", "serving"], "invalid choice"),
        (["--dtype", "int8"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_with_a_message(bad, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", *bad])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_plot_without_matplotlib_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    argv = ["bench", *TINY, "--sparsity", "0", "--plot", str(tmp_path / "p.png")]
    assert main(argv) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err


def test_roofline_prints_floors_without_timing(capsys):
    argv = ["bench", "--roofline", "--hidden", "1024", "--batch", "1", "--sparsity", "0", "0.9"]
    assert main(argv) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    rows = [cells for cells in lines if cells[:1] == ["1024"]]
    assert [(cells[1], cells[3]) for cells in rows] == [
        ("fp32", "0.00"),
        ("fp32", "0.90"),
        ("bf16", "0.00"),
        ("bf16", "0.90"),
    ]
    # fp32, all 4096 blocks kept: 16 MiB of W_hh, int32 indices of 4096 blocks and 129 row
    # offsets, and 8 * 1024 * 4 bytes of activations, at 4.8 TB/s.
    step_bytes = 16 * 2**20 + (4096 + 129) * 4 + 32 * 2**10
    assert float(rows[0][6]) == pytest.approx(step_bytes / 4.8e12 * 1e6, rel=1e-3)
