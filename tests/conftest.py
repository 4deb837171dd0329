"""Test set-up: without a GPU, Triton kernels run through Triton's interpreter.

TRITON_INTERPRET must be set before triton is first imported, so it is set here, before any
test module imports sparse_rnn's kernels.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
