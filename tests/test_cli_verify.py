"""``sparse-rnn verify`` in both modes, on tiny shapes and one configuration each."""

from __future__ import annotations

import json

import pytest
from kernel_testing import cuda_tools_missing, needs_kernels

from sparse_rnn.cli import main


@needs_kernels
def test_verify_against_reference(capsys):
    status = main(["verify", "--dtype", "fp32", "bf16", "--block-size", "16", "--max-dim", "24"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "block_sparse_linear" in out and "sparse_lstm_step (h)" in out
    rows = [line for line in out.splitlines() if line.startswith(("block_sparse", "sparse_lstm"))]
    assert len(rows) == 2 * 3 and all(row.rstrip().endswith("yes") for row in rows)


@pytest.mark.skipif(cuda_tools_missing() is not None, reason=str(cuda_tools_missing()))
def test_verify_compile_only_writes_records(tmp_path, capsys):
    path = tmp_path / "kernels.json"
    argv = ["verify", "--compile-only", "--arch", "sm_90", "--dtype", "fp16", "--block-size", "32"]
    status = main([*argv, "--json", str(path), "--workers", "1"])
    out = capsys.readouterr().out
    assert status == 0, out
    records = json.loads(path.read_text())
    assert {r["kernel"] for r in records} == {"block_sparse_linear", "sparse_lstm_step"}
    for record in records:
        assert {"kernel", "arch", "registers", "spills", "shared_bytes"} <= record.keys()
        assert record["arch"] == "sm_90" and record["spills"] == 0
    assert "registers" in out
