"""Timing callables on the CPU or a CUDA GPU, and measuring the device's copy bandwidth.

Every timing warms up first, feeds the callable a different input on each call (a rotation of
copies big enough together that the inputs do not sit in cache), and reports the median and
quartiles of many samples. Several callables are timed interleaved, one sample of each in turn.
The CPU uses ``torch.utils.benchmark`` with all of torch's threads; a GPU uses CUDA events
around each call, with the L2 cache overwritten before each one so that no call finds the
previous call's weights there.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils import benchmark

WARMUP_CALLS = 3
ROTATION_BYTES = 64 * 2**20  # inputs of one rotation together, at least, unless MAX_ROTATION
MAX_ROTATION = 16
L2_FLUSH_BYTES = 256 * 2**20  # larger than the L2 of any current GPU
MIN_SAMPLES = 10
MAX_SAMPLES = 1000
CPU_BLOCK_S = 0.01


@dataclass(frozen=True)
class Timing:
    """Seconds per call: median, quartiles and extremes of ``runs`` measurements."""

    median_s: float
    q1_s: float
    q3_s: float
    min_s: float
    max_s: float
    runs: int

    @property
    def iqr_s(self) -> float:
        return self.q3_s - self.q1_s

    @classmethod
    def from_samples(cls, samples: Sequence[float]) -> Timing:
        samples = sorted(samples)
        if len(samples) >= 2:
            q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
        else:
            q1 = q3 = samples[0]
        return cls(statistics.median(samples), q1, q3, samples[0], samples[-1], len(samples))


def rotation_size(input_bytes: int) -> int:
    """How many distinct inputs to cycle through so they do not all stay in cache."""
    return max(2, min(MAX_ROTATION, -(-ROTATION_BYTES // max(1, input_bytes))))


def time_callable(
    fn: Callable[[Tensor], object], inputs: Sequence[Tensor], min_run_time_s: float
) -> Timing:
    """Time ``fn(x)`` with x cycling through ``inputs``, on the device of the inputs."""
    return time_interleaved([fn], inputs, min_run_time_s)[0]


def time_interleaved(
    fns: Sequence[Callable[[Tensor], object]], inputs: Sequence[Tensor], min_run_time_s: float
) -> list[Timing]:
    """Time every ``fn(x)``, taking one sample of each in turn, x cycling through ``inputs``.

    Interleaving spreads a burst of other work on the machine over all callables alike, so
    their ratios stay fair even when the absolute times are noisy. The slowest callable gets
    about ``min_run_time_s`` of samples, and each at least ``MIN_SAMPLES``.
    """
    calls = []
    for fn in fns:
        rotation = itertools.cycle(inputs)
        calls.append(lambda fn=fn, rotation=rotation: fn(next(rotation)))
    if inputs[0].device.type == "cuda":
        return _time_cuda(calls, inputs[0].device, min_run_time_s)
    return _time_cpu(calls, min_run_time_s)


def _sample_count(slowest_sample_s: float, min_run_time_s: float) -> int:
    return int(min(MAX_SAMPLES, max(MIN_SAMPLES, min_run_time_s / slowest_sample_s)))


def _time_cpu(calls: Sequence[Callable[[], object]], min_run_time_s: float) -> list[Timing]:
    timers = [
        benchmark.Timer(stmt="call()", globals={"call": call}, num_threads=torch.get_num_threads())
        for call in calls
    ]
    # Each sample is the mean time per call over a block of calls lasting about CPU_BLOCK_S, so
    # that fast calls are not dominated by the timer's own overhead.
    calls_per_block, block_estimates_s = [], []
    for call, timer in zip(calls, timers, strict=True):
        for _ in range(WARMUP_CALLS):
            call()
        estimate_s = max(timer.timeit(1).median, 1e-7)
        calls_per_block.append(max(1, round(CPU_BLOCK_S / estimate_s)))
        block_estimates_s.append(calls_per_block[-1] * estimate_s)

    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(_sample_count(max(block_estimates_s), min_run_time_s)):
        for index, timer in enumerate(timers):
            samples[index].append(timer.timeit(calls_per_block[index]).median)
    return [Timing.from_samples(s) for s in samples]


def _time_cuda(
    calls: Sequence[Callable[[], object]], device: torch.device, min_run_time_s: float
) -> list[Timing]:
    flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.int8, device=device)

    def timed(call: Callable[[], object]) -> tuple[torch.cuda.Event, torch.cuda.Event]:
        flush.zero_()  # outside the events: the call starts with a cold L2
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        end.record()
        return start, end

    estimates_s = []
    for call in calls:
        for _ in range(WARMUP_CALLS):
            call()
        start, end = timed(call)
        torch.cuda.synchronize(device)
        estimates_s.append(max(start.elapsed_time(end) / 1e3, 1e-6))

    events: list[list[tuple[torch.cuda.Event, torch.cuda.Event]]] = [[] for _ in calls]
    for _ in range(_sample_count(max(estimates_s), min_run_time_s)):
        for index, call in enumerate(calls):
            events[index].append(timed(call))
    torch.cuda.synchronize(device)
    return [
        Timing.from_samples([start.elapsed_time(end) / 1e3 for start, end in pairs])
        for pairs in events
    ]


def copy_bandwidth(device: torch.device, nbytes: int = 256 * 2**20) -> float:
    """Bytes per second of a large device-to-same-device tensor copy (read plus write)."""
    source = torch.empty(nbytes, dtype=torch.uint8, device=device).fill_(1)
    destination = torch.empty_like(source)
    timing = time_callable(destination.copy_, [source], min_run_time_s=1.0)
    return 2 * nbytes / timing.median_s
