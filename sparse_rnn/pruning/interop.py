"""Bring masks from ``torch.nn.utils.prune`` and ``torch.ao.pruning`` into block form.

Both APIs store an element mask per weight. A mask is accepted only if it is made of whole
blocks of the layout ``sparsify`` uses (each gate blocked on its own); otherwise a
``ValueError`` lists the blocks that are partly kept. The returned block masks (true = kept)
can be imposed with :meth:`GradualPruner.set_block_masks`; create the pruner after importing,
since removing the reparametrization replaces the weight parameters.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils import prune

from sparse_rnn.block_layout import BlockLayout
from sparse_rnn.pruning.targets import module_layouts

_MAX_LISTED_BLOCKS = 8


def block_mask_from_element_mask(mask: Tensor, layout: BlockLayout, name: str = "weight") -> Tensor:
    """Block mask (num_block_rows, num_block_cols) of an element mask of shape ``layout.shape``.

    Raises ``ValueError`` naming the mixed blocks (some entries kept, some pruned) as
    (gate, block row in the gate, block column).
    """
    if tuple(mask.shape) != layout.shape:
        raise ValueError(
            f"{name}: expected a mask of shape {layout.shape}, got {tuple(mask.shape)}"
        )
    kept = layout.to_block_grid(mask.detach().ne(0)).flatten(2)
    inside = ~layout.padding_mask(mask.device).flatten(2)
    any_kept = kept.any(dim=2)
    all_kept = (kept | ~inside).all(dim=2)
    mixed = (any_kept & ~all_kept).nonzero().tolist()
    if mixed:
        rows_per_gate = layout.block_rows_per_gate
        listed = [(r // rows_per_gate, r % rows_per_gate, c) for r, c in mixed[:_MAX_LISTED_BLOCKS]]
        more = (
            f" and {len(mixed) - _MAX_LISTED_BLOCKS} more"
            if len(mixed) > _MAX_LISTED_BLOCKS
            else ""
        )
        raise ValueError(
            f"{name}: the mask is not made of whole {layout.block_size}x{layout.block_size} blocks "
            f"(each gate blocked on its own); partly kept blocks, as (gate, block row, block "
            f"column): {listed}{more}"
        )
    return any_kept


def masks_from_torch_prune(
    model: nn.Module, block_size: int, *, remove: bool = True
) -> dict[str, Tensor]:
    """Block masks of every ``nn.LSTM`` / ``nn.Linear`` weight pruned with ``torch.nn.utils.prune``.

    Reads the ``<name>_mask`` buffers. All masks are checked before anything changes; then, with
    ``remove=True``, ``prune.remove`` turns each weight back into a plain parameter holding the
    masked values. Returns ``{parameter name: block mask}``.
    """
    found = []
    for module_name, module in model.named_modules():
        layouts = module_layouts(module, block_size)
        for buffer_name, buffer in module.named_buffers(recurse=False):
            local_name = buffer_name.removesuffix("_mask")
            if local_name == buffer_name or local_name not in layouts:
                continue
            full_name = f"{module_name}.{local_name}" if module_name else local_name
            block_mask = block_mask_from_element_mask(buffer, layouts[local_name], full_name)
            found.append((module, local_name, full_name, block_mask))
    if remove:
        for module, local_name, _, _ in found:
            prune.remove(module, local_name)
    return {full_name: block_mask for _, _, full_name, block_mask in found}


def masks_from_ao_sparsifier(
    sparsifier, block_size: int, *, squash: bool = True
) -> dict[str, Tensor]:
    """Block masks from a prepared ``torch.ao.pruning`` sparsifier (after ``step()``).

    Works with any ``BaseSparsifier``, for example
    ``WeightNormSparsifier(sparse_block_shape=(block_size, block_size))``. Every configured
    tensor must be an ``nn.LSTM`` or ``nn.Linear`` weight. All masks are checked first; then,
    with ``squash=True``, ``sparsifier.squash_mask()`` leaves plain parameters holding the
    masked values. Returns ``{tensor_fqn: block mask}``, the parameter names in
    ``sparsifier.model``.
    """
    masks = {}
    for group in sparsifier.groups:
        module, tensor_name, fqn = group["module"], group["tensor_name"], group["tensor_fqn"]
        layouts = module_layouts(module, block_size)
        if tensor_name not in layouts:
            raise ValueError(
                f"{fqn}: only nn.LSTM and nn.Linear weights convert to blocks, got "
                f"{type(module).__name__}.{tensor_name}"
            )
        mask = module.parametrizations[tensor_name][0].mask
        masks[fqn] = block_mask_from_element_mask(mask, layouts[tensor_name], fqn)
    if squash:
        sparsifier.squash_mask()
    return masks
