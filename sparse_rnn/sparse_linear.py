"""``SparseLinear``: ``nn.Linear`` with a block-sparse weight, for the output layer of a model."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sparse_rnn import ops
from sparse_rnn.backends import check_backend, resolve_backend
from sparse_rnn.block_layout import BlockLayout, check_block_size, check_sparsity
from sparse_rnn.block_sparse_module import BlockSparseModule


class SparseLinear(BlockSparseModule):
    """``y = x @ W.T + b`` with W (out_features, in_features) stored as kept blocks only.

    The weight is ``weight_blocks`` (nnz, block_size, block_size) with the buffers
    ``weight_col_indices`` and ``weight_row_offsets``; ``bias`` is dense. ``sparsity`` prunes
    the smallest blocks (L2 norm) of a freshly initialised weight. ``load_state_dict`` accepts
    the state_dict of an ``nn.Linear`` of the same shape.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        block_size: int = 32,
        sparsity: float = 0.0,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        check_block_size(block_size)
        check_sparsity(sparsity)
        check_backend(backend, block_size)

        self.in_features = in_features
        self.out_features = out_features
        self.block_size = block_size
        self.sparsity = sparsity
        self.backend = backend
        self._layouts = {"weight": BlockLayout(1, out_features, in_features, block_size)}

        # Initialise like nn.Linear (kaiming-uniform weight, fan-in bias), then prune.
        factory = {"device": device, "dtype": dtype}
        layout = self._layouts["weight"]
        dense = torch.empty(layout.shape, **factory)
        nn.init.kaiming_uniform_(dense, a=math.sqrt(5))
        mask = layout.top_blocks_mask(layout.block_norms(dense), sparsity).to(dense.device)
        self._set_sparse_weight("weight", layout.compress(dense, mask))
        if bias:
            bound = 1.0 / math.sqrt(in_features)
            self.bias = nn.Parameter(torch.empty(out_features, **factory).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)

    @classmethod
    def from_dense(
        cls,
        linear: nn.Linear,
        *,
        block_size: int = 32,
        sparsity: float | None = None,
        backend: str = "auto",
    ) -> SparseLinear:
        """Convert an ``nn.Linear``; ``sparsity`` works as in :meth:`SparseLSTM.from_dense`."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"from_dense expects an nn.Linear, got {type(linear).__name__}")
        weight = linear.weight.detach()
        sparse = cls(
            linear.in_features,
            linear.out_features,
            linear.bias is not None,
            device=weight.device,
            dtype=weight.dtype,
            block_size=block_size,
            backend=backend,
        )
        layout = sparse._layouts["weight"]
        if sparsity is None:
            mask = layout.nonzero_block_mask(weight)
        else:
            mask = layout.top_blocks_mask(layout.block_norms(weight), sparsity)
        sparse._init_from_dense({"weight": weight}, {"weight": mask})
        if linear.bias is not None:
            with torch.no_grad():
                sparse.bias.copy_(linear.bias)
        sparse.sparsity = sparsity
        sparse.train(linear.training)
        return sparse

    def to_dense(self) -> nn.Linear:
        """An ``nn.Linear`` with the same weight (pruned blocks as zeros)."""
        blocks = self.weight_blocks
        linear = nn.Linear(
            self.in_features,
            self.out_features,
            self.bias is not None,
            device=blocks.device,
            dtype=blocks.dtype,
        )
        linear.load_state_dict(self.dense_state_dict())
        linear.train(self.training)
        return linear

    def forward(self, input: Tensor) -> Tensor:
        backend = resolve_backend(self.backend, input.device, self.block_size, input.dtype)
        return ops.block_sparse_linear(input, self.sparse_weight("weight"), self.bias, backend)

    def extra_repr(self) -> str:
        s = f"in_features={self.in_features}, out_features={self.out_features}, "
        s += f"bias={self.bias is not None}, block_size={self.block_size}, "
        s += f"density={self.density():.3f}"
        if self.backend != "auto":
            s += f", backend={self.backend!r}"
        return s
