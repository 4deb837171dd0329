"""``sparsify``: swap the ``nn.LSTM`` and ``nn.Linear`` layers of a model for block-sparse ones."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from torch import nn

from sparse_rnn.sparse_linear import SparseLinear
from sparse_rnn.sparse_lstm import SparseLSTM, SparsityArg


def sparsify(
    model: nn.Module,
    *,
    sparsity: SparsityArg = None,
    block_size: int = 32,
    backend: str = "auto",
) -> nn.Module:
    """Replace every ``nn.LSTM`` and ``nn.Linear`` inside ``model`` in place; returns ``model``.

    With ``sparsity=None`` the existing all-zero blocks define the pattern, so a model pruned
    elsewhere (for example with :mod:`sparse_rnn.pruning`) converts with identical outputs.
    A float prunes each gate of each matrix to that sparsity by block L2 norm. A mapping gives
    the sparsity per LSTM weight kind (``"weight_ih"``, ``"weight_hh"``, ``"weight_hr"``) and,
    under ``"linear"``, for ``nn.Linear`` layers; a kind it leaves out is kept exactly.
    A ``Linear`` whose weight is shared with another module (tied embeddings) gets its own copy;
    a warning says so. ``model`` itself may be an ``nn.LSTM`` or ``nn.Linear``: then the
    sparse module is returned.
    """
    converted = _convert(model, sparsity, block_size, backend)
    if converted is not None:
        return converted

    owners: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        for parameter in module.parameters(recurse=False):
            owners.setdefault(id(parameter), []).append(name)

    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            sparse = _convert(child, sparsity, block_size, backend)
            if sparse is None:
                continue
            full_name = f"{parent_name}.{child_name}" if parent_name else child_name
            if isinstance(child, nn.Linear) and len(set(owners[id(child.weight)])) > 1:
                warnings.warn(
                    f"sparsify: the weight of {full_name} is shared with "
                    f"{sorted(set(owners[id(child.weight)]) - {full_name})}; the sparse layer "
                    "holds its own copy, so the tie is broken",
                    stacklevel=2,
                )
            setattr(parent, child_name, sparse)
    return model


def _convert(module: nn.Module, sparsity, block_size: int, backend: str) -> nn.Module | None:
    lstm_sparsity, linear_sparsity = sparsity, sparsity
    if isinstance(sparsity, Mapping):
        linear_sparsity = sparsity.get("linear")
        lstm_sparsity = {k: v for k, v in sparsity.items() if k != "linear"}
    if isinstance(module, nn.LSTM):
        return SparseLSTM.from_dense(
            module, block_size=block_size, sparsity=lstm_sparsity, backend=backend
        )
    if isinstance(module, nn.Linear):
        return SparseLinear.from_dense(
            module, block_size=block_size, sparsity=linear_sparsity, backend=backend
        )
    return None
