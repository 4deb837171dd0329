"""The JSON record of a benchmark run: the machine, library versions, arguments and every row.

Fields (``SCHEMA_VERSION`` 1): ``schema_version``, ``created_utc`` (ISO 8601), ``command`` (the
command line), ``machine`` (``platform``, ``cpu_model``, ``cpu_count``, ``torch_threads``,
``gpu_name``, null without a GPU), ``versions`` (``python``, ``torch``, ``triton``, ``numpy``,
``sparse_rnn``; null when a package is missing), ``arguments`` (the parsed arguments),
``copy_bandwidth_gb_per_s`` (the measured device copy bandwidth) and ``rows``, one object per
provider and case with the fields of :class:`sparse_rnn.bench.sweep.Row`.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Iterable
from pathlib import Path

import torch

from sparse_rnn.bench.sweep import Row

SCHEMA_VERSION = 1
RECORD_FIELDS = (
    "schema_version",
    "created_utc",
    "command",
    "machine",
    "versions",
    "arguments",
    "copy_bandwidth_gb_per_s",
    "rows",
)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or what ``platform`` knows elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    """The 1-minute load average, to tell whether other work shared the CPU; None if unknown."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def machine_info(device: torch.device) -> dict:
    gpu_name = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": load_average(),
        "gpu_name": gpu_name,
    }


def library_versions() -> dict:
    versions = {"python": platform.python_version()}
    for package in ("torch", "triton", "numpy", "sparse_rnn"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def build_record(
    device: torch.device, arguments: dict, copy_bytes_per_s: float, rows: Iterable[Row]
) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["sparse-rnn"] + sys.argv[1:]),
        "machine": machine_info(device),
        "versions": library_versions(),
        "arguments": arguments,
        "copy_bandwidth_gb_per_s": copy_bytes_per_s / 1e9,
        "rows": [row.as_dict() for row in rows],
    }


def write_record(record: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
