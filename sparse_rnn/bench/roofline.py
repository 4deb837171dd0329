"""Bytes an LSTM time step must move, and the step time that memory bandwidth alone allows.

The recurrence of an LSTM cannot be batched over time: step ``t`` needs ``h_{t-1}``, so every
step reads the whole recurrent weight ``W_hh`` (4H, H) again. When that matrix does not stay in
cache, the bytes of ``W_hh`` per step divided by the memory bandwidth is a floor on the step
time, and storing fewer blocks lowers the floor in proportion. The input projection
``x @ W_ih.T`` is one large product over all steps at once, so it is left out of the per-step
count.

Bytes per step, per layer, as counted here:

- recurrent weight: the stored ``W_hh`` in the provider's format: ``4H * H`` elements when
  dense; kept blocks times ``block**2`` elements (edge padding included) plus int32 block column
  indices and row offsets for ``SparseLSTM``; values plus int64 indices for ``torch.sparse``;
- activations: the step's slice of the input projection read (``B * 4H``), ``h`` and ``c``
  read (``2 * B * H``) and written (``2 * B * H``), that is ``8 * B * H`` elements.
"""

from __future__ import annotations

from dataclasses import dataclass

INT32_BYTES = 4
INT64_BYTES = 8

# NOTE: nominal figure from NVIDIA's H200 specification sheet (HBM3e), not a measurement.
H200_NOMINAL_HBM_BYTES_PER_S = 4.8e12


@dataclass(frozen=True)
class StepTraffic:
    """Bytes one time step of one layer reads and writes."""

    weight_bytes: int
    activation_bytes: int

    @property
    def total(self) -> int:
        return self.weight_bytes + self.activation_bytes


def dense_weight_bytes(hidden: int, element_bytes: int) -> int:
    """Bytes of a dense ``W_hh`` (4H, H)."""
    return 4 * hidden * hidden * element_bytes


def block_sparse_weight_bytes(
    kept_blocks: int, block: int, block_rows: int, element_bytes: int
) -> int:
    """Bytes of ``W_hh`` stored as kept blocks with int32 block-CSR indices."""
    return (
        kept_blocks * block * block * element_bytes
        + kept_blocks * INT32_BYTES
        + (block_rows + 1) * INT32_BYTES
    )


def torch_sparse_weight_bytes(
    stored_values: int, stored_indices: int, rows: int, element_bytes: int
) -> int:
    """Bytes of a torch BSR or CSR tensor: values, int64 column indices and row pointers."""
    return stored_values * element_bytes + (stored_indices + rows + 1) * INT64_BYTES


def activation_bytes(hidden: int, batch: int, element_bytes: int) -> int:
    """Bytes of the step's activations: input projection and h, c read; h, c written."""
    return 8 * batch * hidden * element_bytes


def ideal_block_sparse_traffic(
    hidden: int, batch: int, density: float, block: int, element_bytes: int
) -> StepTraffic:
    """Traffic of a ``SparseLSTM`` step keeping ``density`` of the ``W_hh`` blocks of each gate.

    Assumes ``hidden`` is a multiple of ``block`` (no edge padding).
    """
    block_rows = 4 * hidden // block
    kept_blocks = round(density * block_rows * (hidden // block))
    return StepTraffic(
        block_sparse_weight_bytes(kept_blocks, block, block_rows, element_bytes),
        activation_bytes(hidden, batch, element_bytes),
    )


def step_time_floor_s(traffic: StepTraffic, bytes_per_s: float) -> float:
    """Seconds a step takes at least if it is limited by moving ``traffic`` at ``bytes_per_s``."""
    return traffic.total / bytes_per_s


@dataclass(frozen=True)
class FloorRow:
    """Bytes per step and the step-time floors of one case of the roofline table."""

    hidden: int
    batch: int
    sparsity: float
    dtype_bytes: int
    bytes_per_step: int
    dense_bytes_per_step: int
    floors_s: dict[str, float]  # bandwidth name -> seconds per step


def floor_table(
    hidden_sizes: list[int],
    batches: list[int],
    sparsities: list[float],
    block: int,
    dtype_bytes: list[int],
    bandwidths: dict[str, float],
) -> list[FloorRow]:
    """Bytes per step (one layer) and the floor each named bandwidth (bytes/s) implies."""
    rows = []
    for hidden in hidden_sizes:
        for element_bytes in dtype_bytes:
            for batch in batches:
                dense = StepTraffic(
                    dense_weight_bytes(hidden, element_bytes),
                    activation_bytes(hidden, batch, element_bytes),
                )
                for sparsity in sparsities:
                    traffic = ideal_block_sparse_traffic(
                        hidden, batch, 1.0 - sparsity, block, element_bytes
                    )
                    floors = {
                        name: step_time_floor_s(traffic, rate) for name, rate in bandwidths.items()
                    }
                    rows.append(
                        FloorRow(
                            hidden,
                            batch,
                            sparsity,
                            element_bytes,
                            traffic.total,
                            dense.total,
                            floors,
                        )
                    )
    return rows
