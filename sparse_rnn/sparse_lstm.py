"""``SparseLSTM``: a drop-in replacement for ``torch.nn.LSTM`` with block-sparse weights."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from sparse_rnn import ops
from sparse_rnn.backends import check_backend, resolve_backend
from sparse_rnn.block_layout import BlockLayout, check_block_size, check_sparsity
from sparse_rnn.block_sparse_module import BlockSparseModule
from sparse_rnn.recurrence import LayerWeights, run_lstm

WEIGHT_KINDS = ("weight_ih", "weight_hh", "weight_hr")
# The positional arguments shared with nn.LSTM, which are also attributes of both modules.
LSTM_ARGS = (
    "input_size",
    "hidden_size",
    "num_layers",
    "bias",
    "batch_first",
    "dropout",
    "bidirectional",
    "proj_size",
)

SparsityArg = float | Mapping[str, float] | None


class SparseLSTM(BlockSparseModule):
    r"""A multi-layer LSTM whose weight matrices keep only some of their blocks.

    The constructor and ``forward`` are those of :class:`torch.nn.LSTM`, so replacing
    ``nn.LSTM(...)`` by ``SparseLSTM(...)`` changes nothing else in a model. The keyword-only
    arguments add:

    Args:
        block_size: side of the square blocks. Each gate (i, f, g, o) of ``weight_ih`` and
            ``weight_hh``, and ``weight_hr``, is cut into blocks on its own; edge blocks of
            sizes that are not multiples of ``block_size`` are partial. Default: 32.
        sparsity: fraction of blocks pruned at initialisation, a float in [0, 1) or a mapping
            from ``"weight_ih"``, ``"weight_hh"``, ``"weight_hr"`` to one (missing kinds are
            dense). Each gate of each matrix keeps its largest blocks by L2 norm. Default: 0.
        backend: ``"auto"`` (Triton kernels for CUDA tensors, the reference path otherwise),
            ``"reference"`` (pure PyTorch, differentiable) or ``"triton"``.

    Weights are stored as kept blocks only: for each ``weight_hh_l0`` of ``nn.LSTM`` there are
    ``weight_hh_l0_blocks`` (nnz, block_size, block_size), a parameter, and the buffers
    ``weight_hh_l0_col_indices`` and ``weight_hh_l0_row_offsets`` (see
    :mod:`sparse_rnn.block_layout`). Biases are dense and named as in ``nn.LSTM``.
    ``load_state_dict`` accepts the state_dict of an ``nn.LSTM`` of the same shape.

    Inputs and outputs are those of ``nn.LSTM``: input (L, N, H_in), (N, L, H_in) with
    ``batch_first``, (L, H_in) unbatched, or a ``PackedSequence``; ``hx = (h_0, c_0)`` of shapes
    (D * num_layers, N, H_out) and (D * num_layers, N, H_cell); returns
    ``output, (h_n, c_n)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        *,
        block_size: int = 32,
        sparsity: SparsityArg = 0.0,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        _check_lstm_args(input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size)
        check_block_size(block_size)
        sparsity_per_kind = _sparsity_per_kind(sparsity if sparsity is not None else 0.0)
        check_backend(backend, block_size)

        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.block_size = block_size
        self.sparsity = sparsity
        self.backend = backend

        self._layouts = lstm_layouts(
            input_size, hidden_size, num_layers, bidirectional, proj_size, block_size
        )
        factory = {"device": device, "dtype": dtype}
        for name, layout in self._layouts.items():
            dense = torch.empty(layout.shape, **factory)
            full = torch.ones(layout.num_block_rows, layout.num_block_cols, dtype=torch.bool)
            self._set_sparse_weight(name, layout.compress(dense, full.to(dense.device)))
        if bias:
            for suffix in self._direction_suffixes():
                for kind in ("bias_ih", "bias_hh"):
                    self.register_parameter(
                        kind + suffix, nn.Parameter(torch.empty(4 * hidden_size, **factory))
                    )

        self.reset_parameters()
        if any(sparsity_per_kind.values()):
            self._prune_by_magnitude(sparsity_per_kind)

    # Construction ---------------------------------------------------------------------------

    def _direction_suffixes(self) -> list[str]:
        directions = ["", "_reverse"] if self.bidirectional else [""]
        return [f"_l{layer}{d}" for layer in range(self.num_layers) for d in directions]

    def reset_parameters(self) -> None:
        """Draw every kept weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.uniform_(-bound, bound)
        self._zero_padding_()

    def _prune_by_magnitude(self, sparsity_per_kind: Mapping[str, float]) -> None:
        """Keep each gate's largest blocks by L2 norm, at the sparsity of the weight's kind."""
        dense = {name: self.dense_weight(name).detach() for name in self._layouts}
        self._init_from_dense(dense, self._block_masks(dense, sparsity_per_kind))

    def _block_masks(
        self, dense: Mapping[str, Tensor], sparsity_per_kind: Mapping[str, float] | None
    ) -> dict[str, Tensor]:
        """Per weight, its non-zero blocks (no sparsity given) or each gate's largest blocks."""
        masks = {}
        for name, layout in self._layouts.items():
            if sparsity_per_kind is None:
                masks[name] = layout.nonzero_block_mask(dense[name])
            else:
                scores = layout.block_norms(dense[name])
                masks[name] = layout.top_blocks_mask(scores, sparsity_per_kind[_kind(name)])
        return masks

    @classmethod
    def from_dense(
        cls,
        lstm: nn.LSTM,
        *,
        block_size: int = 32,
        sparsity: SparsityArg = None,
        backend: str = "auto",
    ) -> SparseLSTM:
        """Convert an ``nn.LSTM``.

        With ``sparsity=None`` every weight is kept exactly and its all-zero blocks become
        pruned blocks, so outputs are unchanged. With a float (or a mapping per weight kind),
        each gate of each matrix keeps its largest blocks by L2 norm.
        """
        if not isinstance(lstm, nn.LSTM):
            raise TypeError(f"from_dense expects an nn.LSTM, got {type(lstm).__name__}")
        reference = lstm.weight_ih_l0
        sparse = cls(
            *(getattr(lstm, name) for name in LSTM_ARGS),
            device=reference.device,
            dtype=reference.dtype,
            block_size=block_size,
            sparsity=0.0,
            backend=backend,
        )
        sparsity_per_kind = None if sparsity is None else _sparsity_per_kind(sparsity)
        dense = {name: getattr(lstm, name).detach() for name in sparse._layouts}
        sparse._init_from_dense(dense, sparse._block_masks(dense, sparsity_per_kind))
        with torch.no_grad():
            for name, parameter in sparse.named_parameters():
                if name.startswith("bias"):
                    parameter.copy_(getattr(lstm, name))
        sparse.sparsity = sparsity
        sparse.train(lstm.training)
        return sparse

    def to_dense(self) -> nn.LSTM:
        """An ``nn.LSTM`` with the same weights (pruned blocks as zeros) and identical outputs."""
        reference = next(self.parameters())
        lstm = nn.LSTM(
            *(getattr(self, name) for name in LSTM_ARGS),
            device=reference.device,
            dtype=reference.dtype,
        )
        lstm.load_state_dict(self.dense_state_dict())
        lstm.train(self.training)
        return lstm

    def flatten_parameters(self) -> None:
        """No-op, for code written for ``nn.LSTM`` (cuDNN's flat weight buffer)."""

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        s += f", block_size={self.block_size}, density={self.density():.3f}"
        if self.backend != "auto":
            s += f", backend={self.backend!r}"
        return s

    # Forward --------------------------------------------------------------------------------

    def forward(self, input, hx=None):
        num_directions = 2 if self.bidirectional else 1
        real_hidden_size = self.proj_size if self.proj_size > 0 else self.hidden_size
        is_packed = isinstance(input, PackedSequence)
        is_batched = True

        if is_packed:
            data, batch_sizes, sorted_indices, unsorted_indices = input
            self._check_input(data, batch_sizes)
            batch_size_list = batch_sizes.tolist()
        else:
            if input.dim() not in (2, 3):
                raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {input.dim()}D instead")
            is_batched = input.dim() == 3
            batch_dim = 0 if self.batch_first else 1
            if not is_batched:
                input = input.unsqueeze(batch_dim)
            self._check_input(input, None)
            if self.batch_first:
                input = input.transpose(0, 1)
            seq_len, batch = input.shape[:2]
            if seq_len == 0:
                raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
            data = input.reshape(seq_len * batch, self.input_size)
            batch_size_list = [batch] * seq_len
            sorted_indices = unsorted_indices = None

        max_batch = batch_size_list[0]
        if hx is None:
            state_count = self.num_layers * num_directions
            zeros = dict(dtype=data.dtype, device=data.device)
            h0 = torch.zeros(state_count, max_batch, real_hidden_size, **zeros)
            c0 = torch.zeros(state_count, max_batch, self.hidden_size, **zeros)
        else:
            h0, c0 = hx
            if not is_packed:
                expected_dim = 3 if is_batched else 2
                if h0.dim() != expected_dim or c0.dim() != expected_dim:
                    kind = "batched 3-D" if is_batched else "unbatched 2-D"
                    raise RuntimeError(
                        f"For {kind} input, hx and cx should also be {expected_dim}-D but got "
                        f"({h0.dim()}-D, {c0.dim()}-D) tensors"
                    )
                if not is_batched:
                    h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
            self._check_hidden(h0, c0, max_batch, data.dtype)
            if sorted_indices is not None:
                h0 = h0.index_select(1, sorted_indices)
                c0 = c0.index_select(1, sorted_indices)

        backend = resolve_backend(self.backend, data.device, self.block_size, data.dtype)
        suffixes = self._direction_suffixes()
        layers = [
            [self._layer_weights(s) for s in suffixes[i : i + num_directions]]
            for i in range(0, len(suffixes), num_directions)
        ]
        output, h_n, c_n = run_lstm(
            data,
            batch_size_list,
            h0,
            c0,
            layers,
            linear=lambda x, w, b: ops.block_sparse_linear(x, w, b, backend),
            make_step=lambda weights: ops.make_lstm_step(weights, backend),
            dropout=self.dropout,
            training=self.training,
        )

        if is_packed:
            if unsorted_indices is not None:
                h_n = h_n.index_select(1, unsorted_indices)
                c_n = c_n.index_select(1, unsorted_indices)
            return PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices), (h_n, c_n)

        output = output.view(len(batch_size_list), max_batch, output.shape[-1])
        if self.batch_first:
            output = output.transpose(0, 1)
        if not is_batched:
            output = output.squeeze(0 if self.batch_first else 1)
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        return output, (h_n, c_n)

    def _layer_weights(self, suffix: str) -> LayerWeights:
        return LayerWeights(
            self.sparse_weight("weight_ih" + suffix),
            self.sparse_weight("weight_hh" + suffix),
            getattr(self, "bias_ih" + suffix) if self.bias else None,
            getattr(self, "bias_hh" + suffix) if self.bias else None,
            self.sparse_weight("weight_hr" + suffix) if self.proj_size > 0 else None,
        )

    def _check_input(self, input: Tensor, batch_sizes: Tensor | None) -> None:
        weight_dtype = self.weight_ih_l0_blocks.dtype
        if input.dtype != weight_dtype and not torch.is_autocast_enabled(input.device.type):
            raise ValueError(
                f"RNN input dtype ({input.dtype}) does not match weight dtype ({weight_dtype}). "
                f"Convert input: input.to({weight_dtype}), or convert model: "
                f"model.to({input.dtype})"
            )
        expected_input_dim = 2 if batch_sizes is not None else 3
        if input.dim() != expected_input_dim:
            raise RuntimeError(
                f"input must have {expected_input_dim} dimensions, got {input.dim()}"
            )
        if self.input_size != input.size(-1):
            raise RuntimeError(
                "input.size(-1) must be equal to input_size. "
                f"Expected {self.input_size}, got {input.size(-1)}"
            )

    def _check_hidden(self, h0: Tensor, c0: Tensor, batch: int, dtype: torch.dtype) -> None:
        states = self.num_layers * (2 if self.bidirectional else 1)
        real_hidden_size = self.proj_size if self.proj_size > 0 else self.hidden_size
        expected_h = (states, batch, real_hidden_size)
        expected_c = (states, batch, self.hidden_size)
        if h0.shape != expected_h:
            raise RuntimeError(f"Expected hidden[0] size {expected_h}, got {list(h0.shape)}")
        if c0.shape != expected_c:
            raise RuntimeError(f"Expected hidden[1] size {expected_c}, got {list(c0.shape)}")
        if h0.dtype != dtype or c0.dtype != dtype:
            raise ValueError(
                f"hx dtypes ({h0.dtype}, {c0.dtype}) do not match the input dtype ({dtype})"
            )


def lstm_layouts(
    input_size: int,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    proj_size: int,
    block_size: int,
) -> dict[str, BlockLayout]:
    """Layouts of all weights, in ``nn.LSTM``'s parameter order."""
    num_directions = 2 if bidirectional else 1
    real_hidden_size = proj_size if proj_size > 0 else hidden_size
    layouts = {}
    for layer in range(num_layers):
        layer_input = input_size if layer == 0 else real_hidden_size * num_directions
        for direction in range(num_directions):
            suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
            layouts["weight_ih" + suffix] = BlockLayout(4, hidden_size, layer_input, block_size)
            layouts["weight_hh" + suffix] = BlockLayout(
                4, hidden_size, real_hidden_size, block_size
            )
            if proj_size > 0:
                layouts["weight_hr" + suffix] = BlockLayout(1, proj_size, hidden_size, block_size)
    return layouts


def _kind(name: str) -> str:
    return name[: len("weight_xx")]


def _sparsity_per_kind(sparsity: float | Mapping[str, float]) -> dict[str, float]:
    """``{"weight_ih": s, "weight_hh": s, "weight_hr": s}`` from a float or a partial mapping."""
    if isinstance(sparsity, Mapping):
        unknown = set(sparsity) - set(WEIGHT_KINDS)
        if unknown:
            raise ValueError(f"sparsity keys must be among {WEIGHT_KINDS}, got {sorted(unknown)}")
        per_kind = {kind: sparsity.get(kind, 0.0) for kind in WEIGHT_KINDS}
    else:
        per_kind = dict.fromkeys(WEIGHT_KINDS, sparsity)
    for value in per_kind.values():
        check_sparsity(value)
    return per_kind


def _check_lstm_args(input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size):
    """The constructor checks of ``nn.LSTM``, with its error types and messages."""
    if (
        not isinstance(dropout, numbers.Number)
        or not 0 <= dropout <= 1
        or isinstance(dropout, bool)
    ):
        raise ValueError(
            "dropout should be a number in range [0, 1] representing the probability of an "
            "element being zeroed"
        )
    if dropout > 0 and num_layers == 1:
        warnings.warn(
            "dropout option adds dropout after all but last recurrent layer, so non-zero "
            f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
            f"num_layers={num_layers}",
            stacklevel=3,
        )
    for name, value in (("bias", bias), ("batch_first", batch_first)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int):
            raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name} must be greater than zero")
    if num_layers <= 0:
        raise ValueError("num_layers must be greater than zero")
    if proj_size < 0:
        raise ValueError("proj_size should be a positive integer or zero to disable projections")
    if proj_size >= hidden_size:
        raise ValueError("proj_size has to be smaller than hidden_size")
