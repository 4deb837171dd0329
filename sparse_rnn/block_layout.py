"""Block geometry of gate-stacked weight matrices and conversion between dense and kept blocks.

A weight such as ``weight_hh`` of an LSTM is ``num_gates`` matrices of ``rows_per_gate`` rows
stacked on top of each other. Each gate is cut into square blocks of ``block_size`` on its own,
so no block straddles two gates; the last block row of a gate and the last block column may be
partial, in which case the block is stored padded with zeros. Kept blocks are stored in block
compressed sparse row (BSR) order:

- ``blocks``      (nnz, block_size, block_size): the kept blocks, sorted by (block row, column)
- ``col_indices`` (nnz,) int32: the block column of each kept block
- ``row_offsets`` (num_block_rows + 1,) int32: kept blocks of block row ``r`` are
  ``blocks[row_offsets[r]:row_offsets[r + 1]]``

Block row ``gate * block_rows_per_gate + r`` holds rows ``r * block_size ...`` of that gate, so
a kernel that owns hidden-unit block ``r`` finds its four gates at four known block rows. The
transposed (column-major) order that a backward pass needs is a permutation of the same blocks
(:meth:`BlockLayout.transposed_order`), and balanced rows are simply equal row lengths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

INDEX_DTYPE = torch.int32


class BlockSparseWeight(NamedTuple):
    """The three tensors that hold one block-sparse matrix, plus its geometry."""

    blocks: Tensor  # (nnz, block_size, block_size)
    col_indices: Tensor  # (nnz,) int32
    row_offsets: Tensor  # (num_block_rows + 1,) int32
    layout: BlockLayout

    def to_dense(self) -> Tensor:
        return self.layout.to_dense(self.blocks, self.col_indices, self.row_offsets)


@dataclass(frozen=True)
class BlockLayout:
    """Geometry of a ``(num_gates * rows_per_gate, cols)`` matrix cut into square blocks."""

    num_gates: int
    rows_per_gate: int
    cols: int
    block_size: int

    def __post_init__(self) -> None:
        check_block_size(self.block_size)
        for name in ("num_gates", "rows_per_gate", "cols"):
            if getattr(self, name) <= 0:
                raise ValueError(f"BlockLayout: {name} must be positive, got {getattr(self, name)}")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.num_gates * self.rows_per_gate, self.cols)

    @property
    def block_rows_per_gate(self) -> int:
        return math.ceil(self.rows_per_gate / self.block_size)

    @property
    def num_block_rows(self) -> int:
        return self.num_gates * self.block_rows_per_gate

    @property
    def num_block_cols(self) -> int:
        return math.ceil(self.cols / self.block_size)

    @property
    def blocks_per_gate(self) -> int:
        return self.block_rows_per_gate * self.num_block_cols

    # Dense <-> block grid -------------------------------------------------------------------

    def to_block_grid(self, dense: Tensor) -> Tensor:
        """Cut ``dense`` (shape :attr:`shape`) into a zero-padded grid of blocks.

        Returns a tensor of shape (num_block_rows, num_block_cols, block_size, block_size).
        """
        if tuple(dense.shape) != self.shape:
            raise ValueError(f"expected a weight of shape {self.shape}, got {tuple(dense.shape)}")
        bs = self.block_size
        padded = dense.new_zeros(
            self.num_gates, self.block_rows_per_gate * bs, self.num_block_cols * bs
        )
        padded[:, : self.rows_per_gate, : self.cols] = dense.view(
            self.num_gates, self.rows_per_gate, self.cols
        )
        grid = padded.view(self.num_gates, self.block_rows_per_gate, bs, self.num_block_cols, bs)
        return grid.permute(0, 1, 3, 2, 4).reshape(self.num_block_rows, self.num_block_cols, bs, bs)

    def from_block_grid(self, grid: Tensor) -> Tensor:
        """Inverse of :meth:`to_block_grid`: drop the padding and stack the gates again."""
        bs = self.block_size
        grid = grid.view(self.num_gates, self.block_rows_per_gate, self.num_block_cols, bs, bs)
        padded = grid.permute(0, 1, 3, 2, 4).reshape(
            self.num_gates, self.block_rows_per_gate * bs, self.num_block_cols * bs
        )
        return padded[:, : self.rows_per_gate, : self.cols].reshape(self.shape)

    def block_norms(self, dense: Tensor, ord: float = 2) -> Tensor:
        """Norm of every block, shape (num_block_rows, num_block_cols); padding counts as zero.

        ``ord`` is 1, 2 or ``float("inf")`` (the largest magnitude).
        """
        grid = self.to_block_grid(dense.detach()).flatten(2)
        return torch.linalg.vector_norm(grid.float(), ord=ord, dim=2)

    # Patterns ---------------------------------------------------------------------------------

    def nonzero_block_mask(self, dense: Tensor) -> Tensor:
        """Bool mask (num_block_rows, num_block_cols) of blocks holding any non-zero entry."""
        return self.to_block_grid(dense.detach()).ne(0).flatten(2).any(dim=2)

    def top_blocks_mask(self, scores: Tensor, sparsity: float) -> Tensor:
        """Keep the highest-scoring ``round((1 - sparsity) * blocks_per_gate)`` blocks per gate.

        ``scores`` has shape (num_block_rows, num_block_cols); ties go to the lower index.
        """
        check_sparsity(sparsity)
        keep = round((1.0 - sparsity) * self.blocks_per_gate)
        per_gate = scores.reshape(self.num_gates, self.blocks_per_gate)
        order = torch.sort(per_gate, dim=1, descending=True, stable=True).indices
        mask = torch.zeros_like(per_gate, dtype=torch.bool)
        mask.scatter_(1, order[:, :keep], True)
        return mask.view(self.num_block_rows, self.num_block_cols)

    def pattern_from_mask(self, mask: Tensor) -> tuple[Tensor, Tensor]:
        """BSR indices ``(col_indices, row_offsets)`` of the blocks that ``mask`` keeps."""
        if tuple(mask.shape) != (self.num_block_rows, self.num_block_cols):
            raise ValueError(
                f"expected a block mask of shape {(self.num_block_rows, self.num_block_cols)}, "
                f"got {tuple(mask.shape)}"
            )
        mask = mask.to(torch.bool)
        col_indices = mask.nonzero()[:, 1].to(INDEX_DTYPE)
        row_offsets = torch.zeros(self.num_block_rows + 1, dtype=INDEX_DTYPE, device=mask.device)
        row_offsets[1:] = mask.sum(dim=1).cumsum(0)
        return col_indices, row_offsets

    def mask_from_pattern(self, col_indices: Tensor, row_offsets: Tensor) -> Tensor:
        """Bool mask (num_block_rows, num_block_cols) of the kept blocks."""
        mask = torch.zeros(
            self.num_block_rows, self.num_block_cols, dtype=torch.bool, device=col_indices.device
        )
        mask[self.row_indices(row_offsets), col_indices.long()] = True
        return mask

    def row_indices(self, row_offsets: Tensor) -> Tensor:
        """Block row of every kept block, shape (nnz,) int64."""
        rows = torch.arange(self.num_block_rows, device=row_offsets.device)
        return torch.repeat_interleave(rows, row_offsets.diff().long())

    def transposed_order(self, col_indices: Tensor, row_offsets: Tensor) -> tuple[Tensor, Tensor]:
        """Column-major view of a pattern, for products with the transposed matrix.

        Returns ``(order, col_offsets)``: ``blocks[order]`` lists the kept blocks sorted by
        (column, row); those of block column ``k`` are ``order[col_offsets[k]:col_offsets[k + 1]]``
        and their block rows are ``row_indices(row_offsets)[order]``.
        """
        key = col_indices.long() * self.num_block_rows + self.row_indices(row_offsets)
        order = torch.argsort(key)
        counts = torch.bincount(col_indices.long(), minlength=self.num_block_cols)
        col_offsets = torch.zeros(self.num_block_cols + 1, dtype=INDEX_DTYPE, device=key.device)
        col_offsets[1:] = counts.cumsum(0)
        return order.to(INDEX_DTYPE), col_offsets

    def validate(self, blocks: Tensor, col_indices: Tensor, row_offsets: Tensor) -> None:
        """Raise ``ValueError`` unless the tensors form a well-formed pattern of this layout."""
        bs = self.block_size
        if row_offsets.dim() != 1 or row_offsets.numel() != self.num_block_rows + 1:
            raise ValueError(
                f"row_offsets must have shape ({self.num_block_rows + 1},), "
                f"got {tuple(row_offsets.shape)}"
            )
        nnz = col_indices.numel()
        if col_indices.dim() != 1 or tuple(blocks.shape) != (nnz, bs, bs):
            raise ValueError(
                f"expected blocks of shape ({nnz}, {bs}, {bs}) for {nnz} column indices, "
                f"got {tuple(blocks.shape)}"
            )
        offsets = row_offsets.long()
        lengths = offsets.diff()
        if offsets[0] != 0 or offsets[-1] != nnz or bool((lengths < 0).any()):
            raise ValueError("row_offsets must rise from 0 to the number of kept blocks")
        cols = col_indices.long()
        if nnz and (cols.min() < 0 or cols.max() >= self.num_block_cols):
            raise ValueError(f"col_indices must lie in [0, {self.num_block_cols})")
        rows = self.row_indices(row_offsets)
        key = rows * self.num_block_cols + cols
        if nnz > 1 and bool((key.diff() <= 0).any()):
            raise ValueError("kept blocks must be sorted by (row, column) without repeats")

    # Compression ------------------------------------------------------------------------------

    def compress(self, dense: Tensor, mask: Tensor) -> BlockSparseWeight:
        """Kept blocks of ``dense`` where ``mask`` (num_block_rows, num_block_cols) is true."""
        col_indices, row_offsets = self.pattern_from_mask(mask)
        grid = self.to_block_grid(dense)
        blocks = grid[mask.to(torch.bool)].contiguous()
        return BlockSparseWeight(blocks, col_indices, row_offsets, self)

    def to_dense(self, blocks: Tensor, col_indices: Tensor, row_offsets: Tensor) -> Tensor:
        """Dense matrix of shape :attr:`shape`; differentiable with respect to ``blocks``."""
        bs = self.block_size
        flat_index = self.row_indices(row_offsets) * self.num_block_cols + col_indices.long()
        grid = blocks.new_zeros(self.num_block_rows * self.num_block_cols, bs, bs)
        grid = grid.index_copy(0, flat_index, blocks)
        return self.from_block_grid(grid)

    def padding_mask(self, device: torch.device | None = None) -> Tensor:
        """Bool grid (num_block_rows, num_block_cols, bs, bs): true where an entry is padding."""
        inside = torch.ones(self.shape, dtype=torch.bool, device=device)
        return ~self.to_block_grid(inside)


def check_block_size(block_size: int) -> None:
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size <= 0:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")


def check_sparsity(sparsity: float) -> None:
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)):
        raise ValueError(f"sparsity must be a number in [0, 1), got {sparsity!r}")
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")
