"""Prune an LSTM to several sparsities and compare each SparseLSTM with the dense nn.LSTM.

For each sparsity the table shows how much of the weights is stored, how far the outputs move
from the dense model's, that they equal those of the pruned model written back as an nn.LSTM,
and the forward time of both. Runs on the CPU in seconds; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from sparse_rnn import SparseLSTM

HELP = "prune an LSTM and compare it with nn.LSTM (a quick look at what the library does)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=50)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--sparsity", type=float, nargs="+", default=[0.0, 0.5, 0.8, 0.9, 0.95])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)


def _time_forward(module: nn.Module, x: torch.Tensor, repeats: int = 3) -> float:
    """Median wall time of a forward pass in milliseconds."""
    times = []
    with torch.no_grad():
        module(x)
        for _ in range(repeats):
            if x.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            module(x)
            if x.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1e3


def run(args: argparse.Namespace) -> int:
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    dense = nn.LSTM(args.input_size, args.hidden, args.layers, device=device).eval()
    x = torch.randn(args.seq, args.batch, args.input_size, device=device)
    with torch.no_grad():
        dense_out, _ = dense(x)
    dense_ms = _time_forward(dense, x)
    dense_floats = sum(p.numel() for p in dense.parameters())

    print(
        f"nn.LSTM({args.input_size}, {args.hidden}, num_layers={args.layers}) on {device}, "
        f"input (seq={args.seq}, batch={args.batch}), block {args.block}x{args.block}"
    )
    header = (
        f"{'sparsity':>8} {'density':>8} {'stored floats':>14} {'vs dense':>9} "
        f"{'rel. change':>12} {'max |sparse - to_dense()|':>26} {'ms':>8} {'nn.LSTM ms':>11}"
    )
    print(header)
    print("-" * len(header))
    for sparsity in args.sparsity:
        sparse = SparseLSTM.from_dense(dense, block_size=args.block, sparsity=sparsity).eval()
        with torch.no_grad():
            sparse_out, _ = sparse(x)
            rewritten_out, _ = sparse.to_dense()(x)
        stored = sum(
            t.numel()
            for name, t in sparse.state_dict().items()
            if "indices" not in name and "offsets" not in name
        )
        change = (sparse_out - dense_out).norm() / dense_out.norm()
        exact = (sparse_out - rewritten_out).abs().max()
        print(
            f"{sparsity:>8.2f} {sparse.density():>8.3f} {stored:>14,} "
            f"{stored / dense_floats:>8.1%} {change:>12.2e} {exact:>26.2e} "
            f"{_time_forward(sparse, x):>8.1f} {dense_ms:>11.1f}"
        )
    print(
        "\nrel. change: how far pruning (without retraining) moves the outputs; "
        "ms: the reference path on this device (the Triton kernels need a GPU)."
    )
    return 0
