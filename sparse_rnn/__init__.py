"""sparse_rnn: block-sparse LSTMs that are drop-in replacements for ``torch.nn.LSTM``."""

from sparse_rnn.block_layout import BlockLayout, BlockSparseWeight
from sparse_rnn.sparse_linear import SparseLinear
from sparse_rnn.sparse_lstm import SparseLSTM
from sparse_rnn.sparsify import sparsify

__all__ = ["BlockLayout", "BlockSparseWeight", "SparseLSTM", "SparseLinear", "sparsify"]
__version__ = "0.1.0"
