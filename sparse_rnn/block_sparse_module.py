"""Base class for modules whose weights are stored as kept blocks only.

A block-sparse weight called ``name`` is one parameter and two buffers:
``{name}_blocks`` (nnz, block_size, block_size), ``{name}_col_indices`` (nnz,) and
``{name}_row_offsets`` (num_block_rows + 1,), laid out as described in
:mod:`sparse_rnn.block_layout`. Everything else a module has (biases) is stored as in its dense
twin. ``load_state_dict`` takes either form of a weight: the block form, whose pattern replaces
the current one, or the dense tensor under the plain ``name`` that ``nn.LSTM`` and ``nn.Linear``
use, whose all-zero blocks become pruned blocks.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from sparse_rnn.block_layout import BlockLayout, BlockSparseWeight

SUFFIXES = ("_blocks", "_col_indices", "_row_offsets")


class BlockSparseModule(nn.Module):
    """Holds block-sparse weights; subclasses fill ``self._layouts`` (name -> layout)."""

    _layouts: dict[str, BlockLayout]

    def sparse_weight(self, name: str) -> BlockSparseWeight:
        """The kept blocks and pattern of weight ``name``, for example ``"weight_hh_l0"``."""
        return BlockSparseWeight(
            getattr(self, name + "_blocks"),
            getattr(self, name + "_col_indices"),
            getattr(self, name + "_row_offsets"),
            self._layouts[name],
        )

    def dense_weight(self, name: str) -> Tensor:
        """Weight ``name`` as a dense tensor with pruned blocks zero; differentiable."""
        return self.sparse_weight(name).to_dense()

    def dense_state_dict(self) -> dict[str, Tensor]:
        """The state_dict of the dense twin (``nn.LSTM`` or ``nn.Linear``), detached."""
        state = {}
        for key, value in self.state_dict().items():
            if not key.endswith(SUFFIXES):
                state[key] = value
        for name in self._layouts:
            state[name] = self.dense_weight(name).detach()
        return state

    def density(self) -> float:
        """Fraction of all blocks of all block-sparse weights that are kept."""
        kept = sum(self.sparse_weight(name).col_indices.numel() for name in self._layouts)
        total = sum(
            layout.num_block_rows * layout.num_block_cols for layout in self._layouts.values()
        )
        return kept / total

    def _set_sparse_weight(self, name: str, weight: BlockSparseWeight) -> None:
        """Register (or replace) the parameter and buffers of weight ``name``."""
        old = getattr(self, name + "_blocks", None)
        requires_grad = True if old is None else old.requires_grad
        self.register_parameter(name + "_blocks", nn.Parameter(weight.blocks, requires_grad))
        self.register_buffer(name + "_col_indices", weight.col_indices)
        self.register_buffer(name + "_row_offsets", weight.row_offsets)

    def _init_from_dense(self, dense: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> None:
        """Replace every block-sparse weight by the blocks of ``dense[name]`` kept by ``masks``."""
        for name, layout in self._layouts.items():
            reference = getattr(self, name + "_blocks")
            values = dense[name].detach().to(device=reference.device, dtype=reference.dtype)
            mask = masks[name].to(reference.device)
            self._set_sparse_weight(name, layout.compress(values, mask))

    def _zero_padding_(self) -> None:
        """Zero the entries of partial edge blocks that lie outside the matrix."""
        with torch.no_grad():
            for name, layout in self._layouts.items():
                weight = self.sparse_weight(name)
                padding = layout.padding_mask(weight.blocks.device)
                rows = layout.row_indices(weight.row_offsets)
                weight.blocks.masked_fill_(padding[rows, weight.col_indices.long()], 0)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        # Bring every weight into block form and give the parameters the incoming shapes, then
        # let nn.Module copy. All weights are checked before anything changes, so a bad entry
        # leaves the module as it was.
        converted: dict[str, BlockSparseWeight] = {}
        errors = []
        for name, layout in self._layouts.items():
            try:
                incoming = self._incoming_weight(state_dict, prefix + name, layout)
            except ValueError as error:
                errors.append(f"while loading {prefix}{name}: {error}")
                continue
            if incoming is not None:
                converted[name] = incoming
        if errors:
            error_msgs.extend(errors)
            return

        for name, incoming in converted.items():
            state_dict.pop(prefix + name, None)
            for suffix, tensor in zip(SUFFIXES, incoming[:3]):
                state_dict[prefix + name + suffix] = tensor
            current = getattr(self, name + "_blocks")
            if current.shape != incoming.blocks.shape:
                self._set_sparse_weight(
                    name,
                    BlockSparseWeight(
                        current.new_zeros(incoming.blocks.shape),
                        incoming.col_indices.to(current.device),
                        incoming.row_offsets.to(current.device),
                        incoming.layout,
                    ),
                )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    @staticmethod
    def _incoming_weight(
        state_dict: Mapping[str, Tensor], key: str, layout: BlockLayout
    ) -> BlockSparseWeight | None:
        """The weight under ``key`` in block form, validated; None if the state_dict lacks it."""
        if key in state_dict:
            dense = state_dict[key]
            if tuple(dense.shape) != layout.shape:
                raise ValueError(
                    f"dense weight has shape {tuple(dense.shape)}, expected {layout.shape}"
                )
            return layout.compress(dense, layout.nonzero_block_mask(dense))
        block_keys = [key + suffix for suffix in SUFFIXES]
        if not all(k in state_dict for k in block_keys):
            return None
        blocks, col_indices, row_offsets = (state_dict[k] for k in block_keys)
        layout.validate(blocks, col_indices, row_offsets)
        return BlockSparseWeight(blocks, col_indices, row_offsets, layout)
