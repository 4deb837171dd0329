"""Two plain LSTMs set beside ``SparseLSTM`` in the benchmark: what users could write without it.

``MaskedDenseLSTM`` keeps the pruned weights as dense matrices times a fixed 0/1 mask (how
pruning is usually simulated); ``TorchSparseLSTM`` stores them as ``torch.sparse`` BSR or CSR
tensors and multiplies with those. Both run one Python loop over time, take time-major input
(L, N, H_in) and return the last layer's output (L, N, H). They cover unidirectional LSTMs
without projections, which is what the benchmark builds.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sparse_rnn.reference import lstm_gates_to_state
from sparse_rnn.sparse_lstm import SparseLSTM

TORCH_SPARSE_FORMATS = ("bsr", "csr")


def _check_supported(pruned: SparseLSTM) -> None:
    if pruned.bidirectional or pruned.proj_size or not pruned.bias:
        raise ValueError(
            "benchmark baselines cover unidirectional LSTMs with biases and without projections, "
            f"got {pruned!r}"
        )


def _time_loop(xproj: Tensor, recurrent: Callable[[Tensor], Tensor]) -> Tensor:
    """Run the LSTM cell over xproj (L, N, 4H), the input projections plus biases.

    ``recurrent(h)`` returns ``h @ W_hh.T`` (N, 4H) for h (N, H). Returns h of every step
    (L, N, H), starting from zero states.
    """
    steps, batch, four_hidden = xproj.shape
    h = xproj.new_zeros(batch, four_hidden // 4)
    c = xproj.new_zeros(batch, four_hidden // 4)
    outputs = []
    for t in range(steps):
        h, c = lstm_gates_to_state(xproj[t] + recurrent(h), c)
        outputs.append(h)
    return torch.stack(outputs)


class MaskedDenseLSTM(nn.Module):
    """The pruned weights of ``pruned`` as dense parameters, multiplied by their block mask."""

    def __init__(self, pruned: SparseLSTM) -> None:
        super().__init__()
        _check_supported(pruned)
        self.num_layers = pruned.num_layers
        for layer in range(self.num_layers):
            for kind in ("weight_ih", "weight_hh"):
                name = f"{kind}_l{layer}"
                dense = pruned.dense_weight(name).detach().clone()
                self.register_parameter(name, nn.Parameter(dense))
                self.register_buffer(name + "_mask", (dense != 0).to(dense.dtype))
            for kind in ("bias_ih", "bias_hh"):
                name = f"{kind}_l{layer}"
                self.register_parameter(name, nn.Parameter(getattr(pruned, name).detach().clone()))

    def forward(self, input: Tensor) -> Tensor:
        x = input
        for layer in range(self.num_layers):
            w_ih = getattr(self, f"weight_ih_l{layer}") * getattr(self, f"weight_ih_l{layer}_mask")
            w_hh = getattr(self, f"weight_hh_l{layer}") * getattr(self, f"weight_hh_l{layer}_mask")
            bias = getattr(self, f"bias_ih_l{layer}") + getattr(self, f"bias_hh_l{layer}")
            x = _time_loop(F.linear(x, w_ih, bias), lambda h, w=w_hh: h @ w.T)
        return x


class TorchSparseLSTM(nn.Module):
    """The pruned weights of ``pruned`` as ``torch.sparse`` tensors of the given format.

    ``"bsr"`` stores the blocks of ``pruned`` (its block size must divide both sides of every
    weight); ``"csr"`` stores the non-zero entries. The values are parameters, so the module
    trains where PyTorch implements the backward of the sparse product.
    """

    def __init__(self, pruned: SparseLSTM, sparse_format: str) -> None:
        super().__init__()
        _check_supported(pruned)
        if sparse_format not in TORCH_SPARSE_FORMATS:
            raise ValueError(
                f"sparse_format must be one of {TORCH_SPARSE_FORMATS}, got {sparse_format!r}"
            )
        self.sparse_format = sparse_format
        self.num_layers = pruned.num_layers
        self._shapes: dict[str, torch.Size] = {}
        for layer in range(self.num_layers):
            for kind in ("weight_ih", "weight_hh"):
                name = f"{kind}_l{layer}"
                dense = pruned.dense_weight(name).detach()
                with warnings.catch_warnings():
                    # PyTorch warns on every BSR tensor it makes that BSR support is in beta.
                    warnings.filterwarnings("ignore", message="Sparse BSR tensor support")
                    if sparse_format == "bsr":
                        block = pruned.block_size
                        sparse = dense.to_sparse_bsr((block, block))
                    else:
                        sparse = dense.to_sparse_csr()
                self._shapes[name] = dense.shape
                self.register_parameter(name + "_values", nn.Parameter(sparse.values().clone()))
                self.register_buffer(name + "_crow_indices", sparse.crow_indices().clone())
                self.register_buffer(name + "_col_indices", sparse.col_indices().clone())
            for kind in ("bias_ih", "bias_hh"):
                name = f"{kind}_l{layer}"
                self.register_parameter(name, nn.Parameter(getattr(pruned, name).detach().clone()))

    def sparse_weight(self, name: str) -> Tensor:
        """Weight ``name`` (for example ``"weight_hh_l0"``) as a sparse tensor on its values."""
        make = torch.sparse_bsr_tensor if self.sparse_format == "bsr" else torch.sparse_csr_tensor
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse BSR tensor support")
            # The indices came from PyTorch's own conversion, so they need no validation.
            return make(
                getattr(self, name + "_crow_indices"),
                getattr(self, name + "_col_indices"),
                getattr(self, name + "_values"),
                self._shapes[name],
                check_invariants=False,
            )

    def forward(self, input: Tensor) -> Tensor:
        x = input
        for layer in range(self.num_layers):
            w_ih = self.sparse_weight(f"weight_ih_l{layer}")
            w_hh = self.sparse_weight(f"weight_hh_l{layer}")
            bias = getattr(self, f"bias_ih_l{layer}") + getattr(self, f"bias_hh_l{layer}")
            steps, batch, features = x.shape
            # A sparse matrix multiplies from the left: x @ W.T is computed as (W @ x.T).T.
            xproj = (w_ih @ x.reshape(steps * batch, features).T).T + bias
            x = _time_loop(xproj.reshape(steps, batch, -1), lambda h, w=w_hh: (w @ h.T).T)
        return x
