"""The time loop of a multi-layer, optionally bidirectional LSTM over packed sequences.

Every input is handled in packed, time-major form: ``data`` (N, features) holds the rows of
step 0, then those of step 1 and so on, and ``batch_sizes[t]`` rows are active at step ``t``
(sequences sorted by decreasing length). A padded batch of T steps and B sequences is the
special case ``batch_sizes = [B] * T``. The products themselves come from a backend, so the
same loop drives the reference path and the Triton kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from sparse_rnn.block_layout import BlockSparseWeight

# step(xproj (n, 4H), h (n, P), c (n, H)) -> (h (n, P), c (n, H))
StepFn = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


class LayerWeights:
    """The weights of one direction of one layer; ``w_hr`` is None without projections."""

    def __init__(
        self,
        w_ih: BlockSparseWeight,
        w_hh: BlockSparseWeight,
        bias_ih: Tensor | None,
        bias_hh: Tensor | None,
        w_hr: BlockSparseWeight | None,
    ) -> None:
        self.w_ih = w_ih
        self.w_hh = w_hh
        self.bias = None if bias_ih is None else bias_ih + bias_hh
        self.w_hr = w_hr


def run_direction(
    xproj: Tensor,
    batch_sizes: Sequence[int],
    h0: Tensor,
    c0: Tensor,
    step: StepFn,
    reverse: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run one direction over packed input projections.

    xproj (N, 4H) in packed order; h0 (B, P), c0 (B, H) with B = batch_sizes[0]. A sequence
    that has ended keeps its state, so after the loop ``h`` holds every sequence's final state.
    Returns the packed outputs (N, P) and the final (h, c).
    """
    offsets = [0]
    for n in batch_sizes:
        offsets.append(offsets[-1] + n)
    steps = range(len(batch_sizes) - 1, -1, -1) if reverse else range(len(batch_sizes))

    h, c = h0, c0
    outputs: list[Tensor] = [h0.new_empty(0)] * len(batch_sizes)
    for t in steps:
        n = batch_sizes[t]
        h_t, c_t = step(xproj[offsets[t] : offsets[t] + n], h[:n], c[:n])
        outputs[t] = h_t
        if n == h.shape[0]:
            h, c = h_t, c_t
        else:
            h, c = torch.cat([h_t, h[n:]]), torch.cat([c_t, c[n:]])

    return torch.cat(outputs), h, c


def run_lstm(
    data: Tensor,
    batch_sizes: Sequence[int],
    h0: Tensor,
    c0: Tensor,
    layers: Sequence[Sequence[LayerWeights]],
    linear: Callable[[Tensor, BlockSparseWeight, Tensor | None], Tensor],
    make_step: Callable[[LayerWeights], StepFn],
    dropout: float,
    training: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run every layer and direction.

    data (N, input_size) packed; h0 (L * D, B, P) and c0 (L * D, B, H) ordered as in
    ``nn.LSTM`` (layer-major, forward direction first); ``layers[l][d]`` holds the weights.
    ``linear`` computes the input projection of all steps at once and ``make_step`` gives the
    recurrent step of one direction. Returns packed outputs (N, D * P) and (h_n, c_n).
    """
    h_finals, c_finals = [], []
    layer_input = data
    for layer_index, directions in enumerate(layers):
        outputs = []
        for direction, weights in enumerate(directions):
            state_index = layer_index * len(directions) + direction
            xproj = linear(layer_input, weights.w_ih, weights.bias)
            out, h_n, c_n = run_direction(
                xproj,
                batch_sizes,
                h0[state_index],
                c0[state_index],
                make_step(weights),
                reverse=direction == 1,
            )
            outputs.append(out)
            h_finals.append(h_n)
            c_finals.append(c_n)
        layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)
        if dropout > 0 and training and layer_index < len(layers) - 1:
            layer_input = F.dropout(layer_input, p=dropout, training=True)

    return layer_input, torch.stack(h_finals), torch.stack(c_finals)
