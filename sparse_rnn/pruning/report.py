"""A sparsity report: per weight and in total, what a block-sparse model stores and computes.

Works on a model pruned in place (ordinary ``nn.LSTM`` / ``nn.Linear`` with zero blocks, cut
into blocks of ``block_size`` as ``sparsify`` would) and on a model already converted to
``SparseLSTM`` / ``SparseLinear``. Bytes count the kept blocks (padding of partial blocks
included) plus the int32 block indices; FLOPs per token are 2 per stored block entry, the work
of a block-sparse matrix-vector product for one token through that weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sparse_rnn.block_layout import INDEX_DTYPE, BlockLayout
from sparse_rnn.block_sparse_module import BlockSparseModule
from sparse_rnn.pruning.targets import prunable_weights

_INDEX_BYTES = torch.empty((), dtype=INDEX_DTYPE).element_size()


@dataclass(frozen=True)
class WeightReport:
    """Storage and work of one weight (or, named ``"total"``, of all of them)."""

    name: str
    kept_blocks: int
    total_blocks: int
    nonzero_params: int
    dense_params: int
    sparse_bytes: int
    dense_bytes: int
    flops_per_token: int
    dense_flops_per_token: int

    @property
    def block_sparsity(self) -> float:
        return 1.0 - self.kept_blocks / self.total_blocks if self.total_blocks else 0.0

    @property
    def param_sparsity(self) -> float:
        return 1.0 - self.nonzero_params / self.dense_params if self.dense_params else 0.0


def weight_report(
    name: str, layout: BlockLayout, kept_blocks: int, nonzero: int, element_size: int
) -> WeightReport:
    """Report of one weight with ``kept_blocks`` blocks holding ``nonzero`` non-zero entries."""
    rows, cols = layout.shape
    block_entries = layout.block_size**2
    return WeightReport(
        name=name,
        kept_blocks=kept_blocks,
        total_blocks=layout.num_block_rows * layout.num_block_cols,
        nonzero_params=nonzero,
        dense_params=rows * cols,
        sparse_bytes=kept_blocks * (block_entries * element_size + _INDEX_BYTES)
        + (layout.num_block_rows + 1) * _INDEX_BYTES,
        dense_bytes=rows * cols * element_size,
        flops_per_token=2 * kept_blocks * block_entries,
        dense_flops_per_token=2 * rows * cols,
    )


def pruning_report(model: nn.Module, block_size: int = 32) -> list[WeightReport]:
    """One row per LSTM / Linear weight (dense or block-sparse) of ``model``, then ``"total"``.

    ``block_size`` is used for dense weights; converted modules report their own blocks.
    """
    rows = [
        _dense_weight_report(t.name, t.parameter, t.layout)
        for t in prunable_weights(model, block_size).values()
    ]
    for module_name, module in model.named_modules():
        if isinstance(module, BlockSparseModule):
            rows.extend(_sparse_module_reports(module_name, module))
    return [*rows, _total(rows)]


def format_report(rows: Sequence[WeightReport]) -> str:
    """The report as an aligned text table."""
    width = max(len("weight"), *(len(row.name) for row in rows))
    header = (
        f"{'weight':<{width}}  {'blocks kept':>15}  {'sparsity':>8}  {'non-zero':>10}  "
        f"{'bytes':>10}  {'dense bytes':>11}  {'FLOPs/token':>11}  {'dense FLOPs':>11}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        blocks = f"{row.kept_blocks}/{row.total_blocks}"
        lines.append(
            f"{row.name:<{width}}  {blocks:>15}  {row.block_sparsity:>8.3f}  "
            f"{row.nonzero_params:>10}  {row.sparse_bytes:>10}  {row.dense_bytes:>11}  "
            f"{row.flops_per_token:>11}  {row.dense_flops_per_token:>11}"
        )
    return "\n".join(lines)


def _dense_weight_report(name: str, weight: Tensor, layout: BlockLayout) -> WeightReport:
    kept = int(layout.nonzero_block_mask(weight).sum())
    nonzero = int(torch.count_nonzero(weight.detach()))
    return weight_report(name, layout, kept, nonzero, weight.element_size())


def _sparse_module_reports(module_name: str, module: BlockSparseModule) -> list[WeightReport]:
    reports = []
    for parameter_name, blocks in module.named_parameters(recurse=False):
        if not parameter_name.endswith("_blocks"):
            continue
        name = parameter_name.removesuffix("_blocks")
        weight = module.sparse_weight(name)
        full_name = f"{module_name}.{name}" if module_name else name
        nonzero = int(torch.count_nonzero(blocks.detach()))
        reports.append(
            weight_report(full_name, weight.layout, blocks.shape[0], nonzero, blocks.element_size())
        )
    return reports


def _total(rows: Sequence[WeightReport]) -> WeightReport:
    fields = [
        "kept_blocks",
        "total_blocks",
        "nonzero_params",
        "dense_params",
        "sparse_bytes",
        "dense_bytes",
        "flops_per_token",
        "dense_flops_per_token",
    ]
    return WeightReport("total", **{f: sum(getattr(row, f) for row in rows) for f in fields})
