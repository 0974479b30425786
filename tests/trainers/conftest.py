"""Fixtures of the trainer tests: a run stopped and resumed from its saved state."""

from __future__ import annotations

import io
from typing import Callable

import pytest
import torch

import trainers
from trainers import TrainConfig, Trainer

Resumed = tuple[list[dict], list[dict], Trainer]


def without_time(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "time"}


@pytest.fixture
def resumed() -> Callable[[TrainConfig, trainers.Dataset, int], Resumed]:
    """A function (config, data, n) → (an uninterrupted run's metrics, the same run's metrics when stopped after n
    evaluations, saved through torch.save/torch.load(weights_only=True) and continued in a new Trainer, that Trainer).
    The caller's generator moves on in between: the restore must not depend on it."""

    def run(config: TrainConfig, data: trainers.Dataset, evaluations: int) -> Resumed:
        whole = [without_time(m) for m in Trainer(config, data)]
        first = Trainer(config, data)
        stream = iter(first)
        head = [without_time(next(stream)) for _ in range(evaluations)]
        buffer = io.BytesIO()
        torch.save(first.state_dict(), buffer)
        buffer.seek(0)
        torch.rand(5)
        second = Trainer(config, data)
        second.load_state_dict(torch.load(buffer, weights_only=True))
        return whole, head + [without_time(m) for m in second], second

    return run
