"""Timing side by side: the compared functions called in turn, so that a busy machine slows them all alike."""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable, Mapping

import torch


def interleaved(calls: Mapping[str, Callable[[], object]], *, rounds: int, warmup: int,
                every: Mapping[str, int] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each of `calls`, over `rounds` timed rounds after `warmup` untimed ones.

    Each round calls every function once, the order rotated from round to round so that none always goes first;
    a name in `every` is called only every that many rounds, the first timed round included (for a slow one
    shown for comparison).
    """
    every = every or {}
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(warmup + rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            if (r - warmup) % every.get(name, 1):
                continue
            start = time.perf_counter()
            calls[name]()
            if r >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU), so that a timer sees it done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(seconds: list[float]) -> float:
    """The median, in milliseconds."""
    return 1000 * statistics.median(seconds)


def p95_ms(seconds: list[float]) -> float:
    """The 95th percentile (nearest rank), in milliseconds."""
    ordered = sorted(seconds)
    return 1000 * ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
