"""Keeping pruned blocks of ordinary ``nn.LSTM`` / ``nn.Linear`` weights exactly zero.

No parametrization is used (a parametrized ``nn.LSTM`` weight no longer trains, since the
module reads its flat weights directly). Instead, for every masked weight:

- the weight is zeroed in place under ``no_grad`` whenever the mask changes, and again after
  every step of an attached optimizer;
- a gradient hook zeroes the gradient of pruned entries, so momentum, weight decay and Adam's
  moments never see them;
- optimizer state of pruned entries (``momentum_buffer``, ``exp_avg``, ``exp_avg_sq``, ...:
  every state tensor shaped like the weight) is zeroed when the mask changes.

With zero gradient and zero state, SGD (with momentum, Nesterov, weight decay) and Adam/AdamW
leave the zeros exactly zero; the post-step re-application covers any other optimizer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sparse_rnn.block_layout import BlockLayout


def element_mask(layout: BlockLayout, block_mask: Tensor) -> Tensor:
    """Bool mask of shape ``layout.shape`` that is true inside the kept blocks."""
    bs = layout.block_size
    expected = (layout.num_block_rows, layout.num_block_cols)
    if tuple(block_mask.shape) != expected:
        raise ValueError(
            f"expected a block mask of shape {expected}, got {tuple(block_mask.shape)}"
        )
    grid = block_mask.to(torch.bool)[:, :, None, None].expand(*expected, bs, bs)
    return layout.from_block_grid(grid.contiguous())


@torch.no_grad()
def apply_mask_(weight: Tensor, mask: Tensor) -> None:
    """Set the entries of ``weight`` where ``mask`` (same shape, bool) is false to exactly 0."""
    weight.masked_fill_(~mask, 0)


@torch.no_grad()
def clear_optimizer_state_(
    optimizer: torch.optim.Optimizer, parameter: nn.Parameter, mask: Tensor
) -> None:
    """Zero every state tensor of ``parameter`` shaped like it, where ``mask`` is false."""
    state = optimizer.state.get(parameter, {})
    for value in state.values():
        if isinstance(value, Tensor) and value.shape == parameter.shape:
            value.masked_fill_(~mask, 0)


class MaskedWeight:
    """A weight with a mask that its gradient hook reads; the mask tensor is updated in place.

    ``mask`` is a bool tensor shaped like ``parameter`` on the parameter's device.
    """

    def __init__(self, parameter: nn.Parameter, layout: BlockLayout) -> None:
        self.parameter = parameter
        self.layout = layout
        self.block_mask = torch.ones(
            layout.num_block_rows, layout.num_block_cols, dtype=torch.bool, device=parameter.device
        )
        self.mask = torch.ones(parameter.shape, dtype=torch.bool, device=parameter.device)
        self._hook = parameter.register_hook(self._mask_gradient)

    def _mask_gradient(self, grad: Tensor) -> Tensor:
        return grad.masked_fill(~self._mask_on(grad.device), 0)

    def _mask_on(self, device: torch.device) -> Tensor:
        """The mask, following the parameter when the model was moved after masking."""
        if self.mask.device != device:
            self.mask = self.mask.to(device)
            self.block_mask = self.block_mask.to(device)
        return self.mask

    def set_block_mask(self, block_mask: Tensor) -> None:
        """Replace the mask and zero the pruned entries of the weight."""
        self._mask_on(self.parameter.device)
        block_mask = block_mask.to(device=self.block_mask.device, dtype=torch.bool)
        self.mask.copy_(element_mask(self.layout, block_mask))
        self.block_mask.copy_(block_mask)
        self.apply()

    def apply(self) -> None:
        mask = self._mask_on(self.parameter.device)
        apply_mask_(self.parameter, mask)
        if self.parameter.grad is not None:
            apply_mask_(self.parameter.grad, mask)

    def clear_optimizer_state(self, optimizer: torch.optim.Optimizer) -> None:
        clear_optimizer_state_(optimizer, self.parameter, self._mask_on(self.parameter.device))

    def remove(self) -> None:
        """Remove the gradient hook; the weight keeps its zeros but is no longer held there."""
        self._hook.remove()
