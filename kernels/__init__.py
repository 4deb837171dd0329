"""Triton kernels of sparse_rnn, installed as ``sparse_rnn.kernels``; each file is one kernel family
with its launch wrapper. Importing a kernel module imports triton."""

import os
from collections.abc import Sequence
from typing import NamedTuple, TypeVar

from triton.runtime.jit import JITFunction

Config = TypeVar("Config", bound=NamedTuple)


def traceable(kernel):
    """``kernel`` ready to launch from a ``torch.library.triton_op``.

    A compiled kernel goes through ``torch.library.wrap_triton`` so that torch.compile can
    trace it. Under the interpreter ``@triton.jit`` gives an interpreted function, which torch
    2.11's wrap_triton refuses (2.13 passes it through; it is eager-only anyway), so it
    launches as is.
    """
    if isinstance(kernel, JITFunction):
        from torch.library import wrap_triton

        return wrap_triton(kernel)
    return kernel


def pick_config(configs: Sequence[Config], rows: int, pin_env: str) -> Config:
    """The smallest configuration whose tile (its first field) covers ``rows``, else the largest.

    ``configs`` are ordered smallest tile first. The environment variable ``pin_env``, set to
    ``"TILE,num_warps,num_stages"``, pins one configuration instead (for CI and debugging).
    """
    pinned = os.environ.get(pin_env)
    if pinned:
        return type(configs[0])(*(int(v) for v in pinned.split(",")))
    for config in configs:
        if config[0] >= rows:
            return config
    return configs[-1]
