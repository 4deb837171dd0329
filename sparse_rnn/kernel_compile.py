"""Compile every Triton kernel for a CUDA architecture on a machine without a GPU.

``triton.compile`` with a CUDA ``GPUTarget`` runs the whole pipeline down to a cubin using the
``ptxas`` that ships with triton; ``cuobjdump --dump-resource-usage`` (also shipped) then reads
the registers and stack frame of each kernel off the cubin. ptxas puts spilled registers in
the stack frame, and Triton kernels call no functions and keep no local arrays, so stack and
local bytes are spills (checked against ``ptxas -v``'s "spill stores" on the configurations
that spilled while the tile sizes were chosen). The tests and ``sparse-rnn verify
--compile-only`` both use :func:`compile_kernels`.

Under Triton's interpreter (``TRITON_INTERPRET=1``) ``@triton.jit`` gives interpreted functions,
which cannot be compiled; the variable is read when the kernels are defined, so in that case
the compilation runs in a fresh Python process without it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sparse_rnn.kernel_checks import TRITON_BLOCK_SIZES

ARCHS = ("sm_80", "sm_90")
DTYPES = ("fp32", "bf16", "fp16")


@dataclass
class CompileJob:
    """One kernel specialisation to compile: constexprs and launch options as the launcher
    would pass them."""

    kernel: str
    dtype: str
    block_size: int
    config: dict[str, int]
    constexprs: dict[str, Any] = field(default_factory=dict)


@dataclass
class CompileRecord:
    kernel: str
    arch: str
    dtype: str
    block_size: int
    config: str
    registers: int
    spills: int  # bytes of stack frame + local memory per thread
    shared_bytes: int


def compile_jobs(
    block_sizes: Sequence[int] = TRITON_BLOCK_SIZES, dtypes: Sequence[str] = DTYPES
) -> list[CompileJob]:
    """Every (kernel, dtype, block size, configuration) the launchers can run.

    All configurations, not only the largest tiles: the smallest step tile at block size 16
    was the one that spilled on sm_80 with 4 warps.
    """
    from sparse_rnn.kernels.block_sparse_linear import linear_configs
    from sparse_rnn.kernels.sparse_lstm_step import step_configs

    jobs = []
    for dtype in dtypes:
        for block_size in block_sizes:
            configs = linear_configs(block_size)
            for config in configs:
                jobs.append(
                    CompileJob(
                        "block_sparse_linear",
                        dtype,
                        block_size,
                        config._asdict(),
                        {"HAS_BIAS": True, "BLOCK_N": block_size},
                    )
                )
            configs = step_configs(block_size)
            for config in configs:
                jobs.append(
                    CompileJob(
                        "sparse_lstm_step",
                        dtype,
                        block_size,
                        config._asdict(),
                        {"BLOCK_H": block_size},
                    )
                )
    return jobs


def compile_kernels(
    archs: Sequence[str], jobs: Sequence[CompileJob], workers: int = 1
) -> list[CompileRecord]:
    """Compile every job for every architecture ("sm_80", "sm_90") and read its resources.

    With ``workers`` > 1 the compilations are spread over that many Python processes (each
    takes about a second, and ptxas runs on one core).
    """
    for arch in archs:
        _arch_number(arch)
    tasks = [(job, arch) for job in jobs for arch in archs]
    if workers > 1 or os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return _compile_in_subprocesses(tasks, workers)
    return [_compile_one(job, arch) for job, arch in tasks]


def cuobjdump_path() -> str:
    """The ``cuobjdump`` shipped in the triton wheel (NVIDIA backend)."""
    import triton

    path = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no cuobjdump at {path}; this triton wheel lacks the CUDA tools")
    return path


def resource_usage(cubin: bytes) -> dict[str, int]:
    """``REG``, ``STACK``, ``SHARED``, ``LOCAL`` of the one kernel in ``cubin``."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "kernel.cubin")
        with open(path, "wb") as file:
            file.write(cubin)
        result = subprocess.run(
            [cuobjdump_path(), "--dump-resource-usage", path],
            capture_output=True,
            text=True,
            check=True,
        )
    usage = dict(re.findall(r"\b(REG|STACK|SHARED|LOCAL):(\d+)", result.stdout))
    if "REG" not in usage:
        raise RuntimeError(f"could not read the resource usage from cuobjdump:\n{result.stdout}")
    return {key: int(value) for key, value in usage.items()}


# Compilation -------------------------------------------------------------------------------


def _arch_number(arch: str) -> int:
    match = re.fullmatch(r"sm_(\d+)a?", arch)
    if match is None:
        raise ValueError(f"arch must look like 'sm_90', got {arch!r}")
    return int(match.group(1))


def _kernel_and_signature(job: CompileJob) -> tuple[Any, dict[str, str], dict[str, Any]]:
    """The jit function, its argument types and its constexprs, as the launcher specialises."""
    from sparse_rnn.kernels.block_sparse_linear import block_sparse_linear_kernel
    from sparse_rnn.kernels.sparse_lstm_step import sparse_lstm_step_kernel

    kernel = {
        "block_sparse_linear": block_sparse_linear_kernel,
        "sparse_lstm_step": sparse_lstm_step_kernel,
    }[job.kernel]
    constexprs = {"INTERPRETER_BF16": False, **job.constexprs}
    constexprs.update({k: v for k, v in job.config.items() if k.isupper()})
    signature = {}
    for name in kernel.arg_names:
        if name in constexprs:
            signature[name] = "constexpr"
        elif name.endswith(("col_indices_ptr", "row_offsets_ptr")):
            signature[name] = "*i32"
        elif name.endswith("_ptr"):
            signature[name] = "*" + job.dtype
        else:
            signature[name] = "i32"
    return kernel, signature, constexprs


def _compile_one(job: CompileJob, arch: str) -> CompileRecord:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    kernel, signature, constexprs = _kernel_and_signature(job)
    # Torch allocations are 16-byte aligned and the launcher would specialise on that.
    pointers = [i for i, kind in enumerate(signature.values()) if kind.startswith("*")]
    attrs = {(i,): [["tt.divisibility", 16]] for i in pointers}
    source = ASTSource(kernel, signature, constexprs, attrs)
    options = {k: v for k, v in job.config.items() if not k.isupper()}
    compiled = triton.compile(
        source, target=GPUTarget("cuda", _arch_number(arch), 32), options=options
    )
    usage = resource_usage(compiled.asm["cubin"])
    return CompileRecord(
        kernel=job.kernel,
        arch=arch,
        dtype=job.dtype,
        block_size=job.block_size,
        config=",".join(f"{k}={v}" for k, v in job.config.items()),
        registers=usage["REG"],
        spills=usage.get("STACK", 0) + usage.get("LOCAL", 0),
        # Triton kernels take their shared memory dynamically; cuobjdump sees only static.
        shared_bytes=int(compiled.metadata.shared) + usage.get("SHARED", 0),
    )


def _compile_in_subprocesses(
    tasks: Sequence[tuple[CompileJob, str]], workers: int
) -> list[CompileRecord]:
    """Compile in fresh processes without the interpreter, ``workers`` of them at once."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    chunks = [tasks[w::workers] for w in range(max(1, workers)) if tasks[w::workers]]
    processes = []
    for chunk in chunks:
        request = json.dumps([{"job": asdict(job), "arch": arch} for job, arch in chunk])
        process = subprocess.Popen(
            [sys.executable, "-m", "sparse_rnn.kernel_compile"],
            # From the folder above this package, so that the child imports this very copy
            # of sparse_rnn and not one that happens to sit in the working directory.
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        processes.append((process, request))
    by_task = {}
    for (process, request), chunk in zip(processes, chunks, strict=True):
        stdout, stderr = process.communicate(request)
        if process.returncode != 0:
            raise RuntimeError(f"kernel compilation failed:\n{stderr[-4000:]}")
        for (job, arch), record in zip(chunk, json.loads(stdout), strict=True):
            by_task[id(job), arch] = CompileRecord(**record)
    return [by_task[id(job), arch] for job, arch in tasks]


def _serve() -> int:
    """Compile the (job, arch) list read as JSON on stdin; write the records to stdout."""
    request = json.load(sys.stdin)
    records = [_compile_one(CompileJob(**task["job"]), task["arch"]) for task in request]
    json.dump([asdict(record) for record in records], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(_serve())
