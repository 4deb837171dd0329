"""Settings of the pytest-benchmark suite, chosen by environment variables.

SPARSE_RNN_BENCH_DEVICE (default: cuda when a GPU is visible, else cpu) and
SPARSE_RNN_BENCH_DTYPE (float32, bfloat16 or float16; default float32).
"""

import os

import pytest
import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@pytest.fixture(scope="session")
def device() -> torch.device:
    default = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(os.environ.get("SPARSE_RNN_BENCH_DEVICE", default))
    if device.type == "cuda" and not torch.cuda.is_available():
        pytest.exit("SPARSE_RNN_BENCH_DEVICE=cuda, but torch sees no CUDA GPU", returncode=2)
    return device


@pytest.fixture(scope="session")
def dtype() -> torch.dtype:
    name = os.environ.get("SPARSE_RNN_BENCH_DTYPE", "float32")
    if name not in DTYPES:
        pytest.exit(f"SPARSE_RNN_BENCH_DTYPE must be one of {tuple(DTYPES)}, got {name!r}", 2)
    return DTYPES[name]
