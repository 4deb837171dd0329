"""Time SparseLSTM against nn.LSTM, a masked dense loop and torch.sparse on this machine.

Every implementation is built from the same pruned LSTM and checked against the float64
reference path before it is timed. The table gives the median time per forward call (or
forward plus backward with --mode training), its spread, the speedup against nn.LSTM, the bytes
a time step moves, and the bandwidth that implies. --json saves the machine, library versions
and every row; --plot draws speedup against sparsity. Exit status: 0, or 1 if a provider
disagreed with the reference, or 2 for unusable arguments (a CUDA device without a GPU).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from sparse_rnn.bench import roofline, timing
from sparse_rnn.bench.plot import PlottingUnavailable, plot_speedup, require_matplotlib
from sparse_rnn.bench.providers import providers_for
from sparse_rnn.bench.record import build_record, cpu_model, load_average, write_record
from sparse_rnn.bench.sweep import MODES, Row, Settings, cases, dense_model, run_case

HELP = "time SparseLSTM against nn.LSTM and sparse baselines (tables, JSON, plot)"

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# Sweep values when neither the argument nor --quick gives them.
FULL_SWEEP = {
    "hidden": [256, 512, 1024],
    "batch": [1, 16],
    "seq": [50],
    "layers": [1],
    "sparsity": [0.0, 0.5, 0.8, 0.9, 0.95],
    "min_run_time": 1.0,
}
# About two minutes on 2 CPU cores.
QUICK_SWEEP = {
    "hidden": [256, 512],
    "batch": [8],
    "seq": [20],
    "layers": [1],
    "sparsity": [0.0, 0.5, 0.9],
    "min_run_time": 0.3,
}


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _sparsity(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"sparsity must be in [0, 1), got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    sweep = "(several values sweep; default: %s, with --quick: %s)"
    for name, kind in (
        ("hidden", _positive_int),
        ("batch", _positive_int),
        ("seq", _positive_int),
        ("layers", _positive_int),
        ("sparsity", _sparsity),
    ):
        parser.add_argument(
            f"--{name}",
            type=kind,
            nargs="+",
            help=sweep % (FULL_SWEEP[name], QUICK_SWEEP[name]),
        )
    parser.add_argument("--block", type=_positive_int, default=32, help="block size (default 32)")
    parser.add_argument("--mode", choices=MODES, default="inference")
    parser.add_argument("--quick", action="store_true", help="a small sweep (~2 min on 2 cores)")
    parser.add_argument(
        "--min-run-time",
        type=_positive_float,
        help=f"seconds of timed calls per row (default: {FULL_SWEEP['min_run_time']}, "
        f"with --quick: {QUICK_SWEEP['min_run_time']})",
    )
    parser.add_argument(
        "--threads", type=_positive_int, help="CPU threads for torch (default: torch's choice)"
    )
    parser.add_argument(
        "--roofline",
        action="store_true",
        help="print the bytes per step and the step-time floors they imply, then stop",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the JSON record here")
    parser.add_argument("--plot", type=Path, metavar="PATH", help="write a PNG plot here")


def run(args: argparse.Namespace) -> int:
    preset = QUICK_SWEEP if args.quick else FULL_SWEEP
    for name in ("hidden", "batch", "seq", "layers", "sparsity", "min_run_time"):
        if getattr(args, name) is None:
            setattr(args, name, preset[name])

    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "sparse-rnn bench: error: --device cuda, but torch sees no CUDA GPU "
            "(torch.cuda.is_available() is False); use --device cpu",
            file=sys.stderr,
        )
        return 2
    if args.plot is not None:
        try:
            require_matplotlib()
        except PlottingUnavailable as error:
            print(f"sparse-rnn bench: error: {error}", file=sys.stderr)
            return 2
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    settings = Settings(
        device=device,
        dtype=DTYPES[args.dtype],
        block=args.block,
        mode=args.mode,
        min_run_time_s=args.min_run_time,
        seed=args.seed,
    )
    copy_bytes_per_s = timing.copy_bandwidth(device)
    _print_header(args, device, copy_bytes_per_s)
    if args.roofline:
        _print_roofline(args, copy_bytes_per_s)
        return 0
    providers, notes = providers_for(device)

    rows: list[Row] = []
    work = cases(args.hidden, args.batch, args.seq, args.layers, args.sparsity)
    dense, dense_shape = None, None
    for shape, sparsity in tqdm(work, desc="bench", unit="case", file=sys.stderr, disable=None):
        if shape != dense_shape:
            dense, dense_shape = dense_model(shape, settings), shape
        rows += run_case(shape, sparsity, dense, providers, settings, copy_bytes_per_s)

    _print_table(rows, args.mode)
    _print_notes(rows, notes, args.mode)

    if args.json is not None:
        arguments = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        write_record(build_record(device, arguments, copy_bytes_per_s, rows), args.json)
        print(f"JSON record written to {args.json}")
    if args.plot is not None:
        title = f"{_describe_device(device)}, {args.dtype}, {args.mode}, block {args.block}"
        plot_speedup(rows, args.plot, title)
        print(f"plot written to {args.plot}")
    return 1 if any(row.status == "check failed" for row in rows) else 0


def _describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"{cpu_model()}, {threads} thread{'s' if threads != 1 else ''}"


def _print_header(args: argparse.Namespace, device: torch.device, copy_bytes_per_s: float) -> None:
    print(
        f"sparse-rnn bench on {_describe_device(device)}: {args.dtype}, {args.mode}, "
        f"block {args.block}, input size = hidden size"
    )
    print(f"measured copy bandwidth: {copy_bytes_per_s / 1e9:.1f} GB/s (read + write)")
    load = load_average()
    if load is not None and device.type == "cpu":
        print(f"load average before the run: {load:.2f} on {os.cpu_count()} CPUs", end="")
        print(" (other work is running: timings will be noisy)" if load > 0.5 else "")


NOISY_IQR = 0.25  # an IQR above this fraction of the median marks the row as noisy

COLUMNS = (
    ("provider", 24, "<"),
    ("H", 5, ">"),
    ("B", 4, ">"),
    ("T", 4, ">"),
    ("L", 2, ">"),
    ("sparsity", 8, ">"),
    ("median ms", 10, ">"),
    ("IQR ms", 9, ">"),
    ("min ms", 8, ">"),
    ("speedup", 8, ">"),
    ("KiB/step", 9, ">"),
    ("GB/s", 6, ">"),
    ("of copy", 7, ">"),
)


def _format_row(row: Row) -> list[str]:
    shape = [str(row.hidden), str(row.batch), str(row.seq), str(row.layers), f"{row.sparsity:.2f}"]
    if row.status != "ok":
        return [row.provider, *shape, row.status, "", "", "", "", "", ""]
    bandwidth = ["-", "-"]
    if row.achieved_gb_per_s is not None:
        bandwidth = [f"{row.achieved_gb_per_s:.1f}", f"{row.fraction_of_copy_bandwidth:.0%}"]
    return [
        row.provider,
        *shape,
        f"{row.median_ms:.3f}",
        f"{row.iqr_ms:.3f}" + ("*" if row.iqr_ms > NOISY_IQR * row.median_ms else " "),
        f"{row.min_ms:.3f}",
        f"{row.speedup_vs_nn_lstm:.2f}x" if row.speedup_vs_nn_lstm is not None else "-",
        f"{row.bytes_per_step / 1024:.1f}",
        *bandwidth,
    ]


def _print_table(rows: list[Row], mode: str) -> None:
    def line(cells: list[str]) -> str:
        return " ".join(
            f"{cell:{align}{width}}" for cell, (_, width, align) in zip(cells, COLUMNS, strict=True)
        )

    header = line([name for name, _, _ in COLUMNS])
    print()
    print(header)
    print("-" * len(header))
    previous_case = None
    for row in rows:
        case = (row.hidden, row.batch, row.seq, row.layers, row.sparsity)
        if previous_case is not None and case[:4] != previous_case[:4]:
            print()
        previous_case = case
        print(line(_format_row(row)))


def _print_notes(rows: list[Row], notes: list[str], mode: str) -> None:
    call = "forward" if mode == "inference" else "forward + backward of output.sum()"
    print()
    print(f"median ms: one {call} over all T steps; IQR, min: of the timed samples.")
    if any(r.status == "ok" and r.iqr_ms > NOISY_IQR * r.median_ms for r in rows):
        print(
            f"*: IQR above {NOISY_IQR:.0%} of the median, a noisy row (other work on the "
            "machine?); min ms is then the steadier figure."
        )
    print("speedup: nn.LSTM's median / this median, same shape and sparsity.")
    print("KiB/step: stored W_hh (in the provider's format) + the step's activations, all layers.")
    if mode == "inference":
        print(
            "GB/s: KiB/step x T / median; 'of copy': that over the measured copy bandwidth "
            "(above 100% when the weights stay in cache)."
        )
    else:
        print("GB/s: not given in training mode (the byte count covers the forward step only).")
    reasons = {}
    for row in rows:
        if row.status != "ok":
            reasons.setdefault(f"{row.provider} {row.status}: {row.reason}", None)
    for note in [*notes, *reasons]:
        print(f"note: {note}")


def _print_roofline(args: argparse.Namespace, copy_bytes_per_s: float) -> None:
    bandwidths = {
        "H200 nominal": roofline.H200_NOMINAL_HBM_BYTES_PER_S,
        "this copy": copy_bytes_per_s,
    }
    rows = roofline.floor_table(
        args.hidden, args.batch, args.sparsity, args.block, [4, 2], bandwidths
    )
    header = (
        f"{'H':>5} {'dtype':>6} {'B':>4} {'sparsity':>8} {'KiB/step':>9} {'vs dense':>8} "
        f"{'floor us, H200 nominal':>23} {'floor us, measured copy':>24}"
    )
    print()
    print("Bytes one layer moves per time step (W_hh kept blocks + activations) and the time")
    print("a step needs at least to move them. H200: nominal 4.8 TB/s spec, not a measurement.")
    print(header)
    print("-" * len(header))
    for row in rows:
        dtype = "fp32" if row.dtype_bytes == 4 else "bf16"
        fraction = row.bytes_per_step / row.dense_bytes_per_step
        print(
            f"{row.hidden:>5} {dtype:>6} {row.batch:>4} {row.sparsity:>8.2f} "
            f"{row.bytes_per_step / 1024:>9.1f} {fraction:>8.1%} "
            f"{row.floors_s['H200 nominal'] * 1e6:>23.3f} {row.floors_s['this copy'] * 1e6:>24.1f}"
        )
