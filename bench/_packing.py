"""Trials packed on one device: the timed steps each takes, its aggregate images/s, and n trials run at once as
processes (no Ray: gpu_check's way, where Ray is not installed; trial_packing packs them as Ray tasks)."""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import torch

from bench._timing import synchronize
from trainers import TrainConfig, Trainer, load_dataset

Span = tuple[float, float, int]  # a trial's timed steps: start and end (seconds since the epoch), images trained


@dataclass(frozen=True)
class Sizes:
    """What each trial trains, how many trials share the device, and the untimed and timed steps of each."""

    model: str
    dataset: str
    counts: tuple[int, ...]
    warmup: int
    steps: int
    augment: bool | None = None  # None: the data set's own (crop and flip for CIFAR-10; own data: none)

    def config(self, gpu: bool, data_root: str | None) -> TrainConfig:
        """What each trial trains: CCE, bf16 autocast on a GPU, no end (steps are taken one by one)."""
        return TrainConfig(dataset=self.dataset, data_root=data_root, model=self.model, split="final", epochs=None,
                           iterations=10**9, device="cuda" if gpu else "cpu", bf16=gpu, augment=self.augment)


def timed_steps(trainer: Trainer, warmup: int, steps: int, wait_for_all: Callable[[], object]) -> Span:
    """`warmup` untimed steps, then wait until every packed trial is ready, then `steps` timed ones."""
    for _ in range(warmup):
        trainer._train_step()
    synchronize(trainer.device)
    wait_for_all()
    start = time.time()
    for _ in range(steps):
        trainer._train_step()
    synchronize(trainer.device)
    return start, time.time(), steps * trainer.config.batch_size


def aggregate(spans: list[Span]) -> float:
    """All trials' images ÷ (the last end − the first start)."""
    return sum(i for _, _, i in spans) / (max(e for _, e, _ in spans) - min(s for s, _, _ in spans))


def pack_processes(n: int, config: TrainConfig, warmup: int, steps: int) -> list[Span]:
    """Run n trials of `config` at once, one spawned process each (one torch thread), all on the same device."""
    context = torch.multiprocessing.get_context("spawn")  # CUDA cannot be used in a forked child
    with ProcessPoolExecutor(n, mp_context=context, initializer=_join, initargs=(context.Barrier(n),)) as pool:
        return list(pool.map(_process_trial, [config] * n, [warmup] * n, [steps] * n))


_barrier: Any = None  # in each pack_processes worker: the barrier that all n trials wait at


def _join(barrier: Any) -> None:
    """Keep `barrier` (the pool's initializer: a barrier reaches a process only as it starts)."""
    global _barrier
    _barrier = barrier


def _process_trial(config: TrainConfig, warmup: int, steps: int) -> Span:
    """One trial in a pack_processes worker; on an error the others stop waiting for it."""
    torch.set_num_threads(1)
    try:
        return timed_steps(Trainer(config, load_dataset(config.dataset, config.data_root)), warmup, steps,
                           _barrier.wait)
    except BaseException:
        _barrier.abort()
        raise
