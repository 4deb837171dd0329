"""Triton kernels of sparse_rnn, installed as ``sparse_rnn.kernels``; each file is one kernel family
with its launch wrapper. Importing a kernel module imports triton."""
