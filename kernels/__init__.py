"""Triton kernels of sparse_rnn, installed as ``sparse_rnn.kernels``; each file is one kernel family
with its launch wrapper. Importing a kernel module imports triton."""

from triton.runtime.jit import JITFunction


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
