"""The package carries the top-level kernels/ folder as sparse_rnn.kernels, installed or built."""

import subprocess
import sys
import zipfile
from pathlib import Path

import sparse_rnn

ROOT = Path(__file__).resolve().parents[1]


def test_kernels_import_from_the_installed_package():
    import sparse_rnn.kernels as kernels

    assert Path(kernels.__file__).resolve().parent == ROOT / "kernels"
    assert Path(sparse_rnn.__file__).resolve().parent == ROOT / "sparse_rnn"


def test_built_wheel_carries_the_kernels(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("sparse_rnn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    kernel_sources = {f"sparse_rnn/kernels/{p.name}" for p in (ROOT / "kernels").glob("*.py")}
    assert kernel_sources and kernel_sources <= names
    assert "sparse_rnn/sparse_lstm.py" in names
    assert not any(name.startswith("kernels/") for name in names)


def test_console_script_runs_the_demo():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparse_rnn",
            "demo",
            "--hidden",
            "32",
            "--input-size",
            "16",
            "--seq",
            "4",
            "--batch",
            "2",
            "--block",
            "16",
            "--sparsity",
            "0",
            "0.5",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    lines = result.stdout.splitlines()
    rows = [line.split() for line in lines if line.strip().startswith(("0.00", "0.50"))]
    assert [row[0] for row in rows] == ["0.00", "0.50"]
    assert [float(row[1]) for row in rows] == [1.0, 0.5]
    # The sparse model equals its dense rewrite to fp32 rounding.
    assert all(float(row[5]) < 1e-5 for row in rows)
