"""A benchmark's record: its result with the machine, the versions, the command and the date, as JSON."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import time
from pathlib import Path
from typing import Any, Iterable

import torch

from bench._registry import Benchmark, Context, figure_order
from study.provenance import git_commit

PACKAGES = ("torch", "torchvision", "ray", "optuna", "mlflow", "numpy")
REQUIRED = ("name", "title", "figure", "target", "measured", "met", "machine", "versions", "command", "date")


def machine() -> dict[str, Any]:
    """What this runs on: CPU model and cores, torch's threads, memory, the GPU (or None)."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "platform": platform.platform(),
    }


def versions() -> dict[str, str]:
    """Python's and the packages' versions, and the git commit of this code."""
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found | {"git_commit": git_commit()}


def run_benchmark(benchmark: Benchmark, context: Context, command: str) -> dict[str, Any]:
    """Run `benchmark` and return its record (the JSON of one figure)."""
    load_start, start = os.getloadavg(), time.perf_counter()
    result = benchmark.run(context)
    return {
        "name": benchmark.name, "title": benchmark.title, "figure": benchmark.figure, "target": benchmark.target,
        **dataclasses.asdict(result),
        "met": None if context.quick else result.met,  # quick sizes measure nothing worth judging
        "machine": machine(), "versions": versions(), "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": context.quick, "wall_s": round(time.perf_counter() - start, 1),
        "load_average": {"start": [round(x, 2) for x in load_start], "end": [round(x, 2) for x in os.getloadavg()]},
    }


def write_record(record: dict[str, Any], out: Path) -> Path:
    """Write `record` as <out>/<name>.json; returns the path."""
    path = out / f"{record['name']}.json"
    path.write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")
    return path


def read_records(out: Path, names: Iterable[str]) -> list[dict[str, Any]]:
    """The records of the benchmarks `names` found in `out`, in figure order (see figure_order)."""
    records = [json.loads((out / f"{name}.json").read_text()) for name in names if (out / f"{name}.json").is_file()]
    return sorted(records, key=lambda r: figure_order(r["figure"], r["name"]))


def command_line(argv: list[str]) -> str:
    """The command as a user would type it."""
    return shlex.join(["python", "-m", "bench", *argv])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

