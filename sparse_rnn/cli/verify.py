"""Check the Triton kernels on this machine: against the reference path, or compiled for a GPU.

Without options, every kernel runs on random shapes (partial blocks, random patterns, with and
without projection) for each dtype and block size, on the GPU or, without one, on the CPU
through Triton's interpreter, and a table shows its relative error next to the reference
path's at the same precision; a row fails when the kernel errs more than twice as much as the
reference plus 4 ulp. With ``--compile-only`` every kernel configuration is compiled for the
given architectures (no GPU needed) and the table shows registers, spills and shared memory;
``--json PATH`` writes those records. The exit status is 1 when a row fails or a kernel spills.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from dataclasses import asdict

import torch

from sparse_rnn.kernel_checks import TRITON_BLOCK_SIZES, interpreter_problem
from sparse_rnn.kernel_compile import ARCHS

HELP = "check the Triton kernels against the reference path, or compile them for sm_80/sm_90"

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compile-only", action="store_true", help="compile for --arch instead of running"
    )
    parser.add_argument("--arch", nargs="+", default=list(ARCHS), help="with --compile-only")
    parser.add_argument("--json", metavar="PATH", help="with --compile-only: write the records")
    parser.add_argument("--dtype", nargs="+", choices=list(DTYPES), default=list(DTYPES))
    parser.add_argument(
        "--block-size", nargs="+", type=int, choices=TRITON_BLOCK_SIZES, default=TRITON_BLOCK_SIZES
    )
    parser.add_argument("--max-dim", type=int, default=96, help="largest random dimension")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workers", type=int, default=min(4, os.cpu_count() or 1), help="compile processes"
    )


def run(args: argparse.Namespace) -> int:
    if args.compile_only:
        return _compile(args)
    return _check(args)


# Compile-only ------------------------------------------------------------------------------


def _compile(args: argparse.Namespace) -> int:
    from sparse_rnn.kernel_compile import compile_jobs, compile_kernels

    jobs = compile_jobs(args.block_size, args.dtype)
    print(f"compiling {len(jobs)} kernel configurations for {', '.join(args.arch)}")
    records = compile_kernels(args.arch, jobs, workers=args.workers)
    rows = [
        [r.kernel, r.arch, r.dtype, str(r.block_size), r.config, str(r.registers), str(r.spills),
         str(r.shared_bytes)]
        for r in records
    ]  # fmt: skip
    header = ["kernel", "arch", "dtype", "block", "config", "registers", "spills", "shared bytes"]
    _print_table(header, rows)
    if args.json:
        with open(args.json, "w") as file:
            json.dump([asdict(record) for record in records], file, indent=1)
        print(f"wrote {len(records)} records to {args.json}")
    spilling = [r for r in records if r.spills]
    if spilling:
        print(f"{len(spilling)} configurations spill registers", file=sys.stderr)
        return 1
    return 0


# Against the reference ---------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        if "triton" in sys.modules:
            print("triton was imported before TRITON_INTERPRET could be set", file=sys.stderr)
            return 2
        # Must precede the first import of triton, which reads it.
        os.environ["TRITON_INTERPRET"] = "1"
    if interpreter_problem() is not None:
        print(interpreter_problem(), file=sys.stderr)
        return 2
    where = "CUDA" if device.type == "cuda" else "the CPU through Triton's interpreter"
    print(f"checking the kernels on {where} against the reference path (seed {args.seed})")

    rng = random.Random(args.seed)
    header = ["kernel", "dtype", "block", "shape", "rel. error", "reference", "ok"]
    rows, failures = [], 0
    for dtype_name in args.dtype:
        for block_size in args.block_size:
            for kernel, shape, result in _cases(rng, DTYPES[dtype_name], block_size, args, device):
                failures += not result.ok
                rows.append(
                    [kernel, dtype_name, str(block_size), shape, f"{result.relative_error:.2e}",
                     f"{result.reference_relative_error:.2e}", "yes" if result.ok else "NO"]
                )  # fmt: skip
    _print_table(header, rows)
    print(
        "\nrel. error: |kernel - exact| / |exact| (Frobenius norms), exact = the reference path "
        "in float64;\nreference: the same for the reference path in the row's dtype;\n"
        "ok: the kernel's largest error <= 2 x the reference path's + 4 ulp"
    )
    if failures:
        print(f"{failures} of {len(rows)} checks failed", file=sys.stderr)
        return 1
    return 0


def _cases(rng: random.Random, dtype: torch.dtype, block_size: int, args, device):
    """Yield (kernel name, shape text, Accuracy) for one random case of each kernel."""
    from sparse_rnn import reference
    from sparse_rnn.block_layout import BlockLayout, BlockSparseWeight
    from sparse_rnn.kernel_checks import accuracy
    from sparse_rnn.kernel_ops import block_sparse_linear, sparse_lstm_step

    generator = torch.Generator().manual_seed(rng.randrange(2**31))

    def randn(*shape):
        return torch.randn(*shape, generator=generator).to(device=device, dtype=dtype)

    def weight(num_gates, rows, cols):
        layout = BlockLayout(num_gates, rows, cols, block_size)
        dense = torch.randn(layout.shape, generator=generator) / cols**0.5
        grid = (layout.num_block_rows, layout.num_block_cols)
        mask = torch.rand(grid, generator=generator) < rng.choice([0.05, 0.3, 0.7, 1.0])
        sparse = layout.compress(dense, mask)
        blocks = sparse.blocks.to(device=device, dtype=dtype)
        return BlockSparseWeight(blocks, *(t.to(device) for t in sparse[1:3]), layout)

    def double(w):
        return None if w is None else w._replace(blocks=w.blocks.double())

    top = args.max_dim
    m, n, k = rng.randint(1, top), rng.randint(1, top), rng.randint(1, top)
    w, x, bias = weight(4, n, k), randn(m, k), randn(4 * n)
    exact = reference.block_sparse_linear(x.double(), double(w), bias.double())
    same = reference.block_sparse_linear(x, w, bias)
    yield (
        "block_sparse_linear",
        f"M={m} N=4x{n} K={k}",
        accuracy(block_sparse_linear(x, w, bias), exact, same),
    )

    batch, hidden = rng.randint(1, top), rng.randint(1, top)
    proj = rng.choice([0, rng.randint(1, top)])
    p = proj or hidden
    w_hh, w_hr = weight(4, hidden, p), (weight(1, proj, hidden) if proj else None)
    xproj, h, c = randn(batch, 4 * hidden), randn(batch, p), randn(batch, hidden)
    h_exact, c_exact = reference.sparse_lstm_step(
        xproj.double(), h.double(), c.double(), double(w_hh), double(w_hr)
    )
    h_same, c_same = reference.sparse_lstm_step(xproj, h, c, w_hh, w_hr)
    h_next, c_next = sparse_lstm_step(xproj, h, c, w_hh, w_hr)
    shape = f"B={batch} H={hidden} P={proj}"
    yield "sparse_lstm_step (h)", shape, accuracy(h_next, h_exact, h_same)
    yield "sparse_lstm_step (c)", shape, accuracy(c_next, c_exact, c_same)


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
