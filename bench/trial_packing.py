"""Figure 4, trial packing: aggregate training throughput of 1, 2, 4 and 8 trials sharing one GPU through Ray's
fractional resources."""

from __future__ import annotations

import time
from typing import Any

import ray
import torch

from bench._packing import Sizes, Span, aggregate, timed_steps
from bench._registry import NO_GPU, Context, Result, Table, register_benchmark
from study.driver import connect
from trainables import TRAIN_KEY, cached_dataset, train_config
from trainers import Trainer

TARGET_IMAGES_S = 100_000  # aggregate, ResNet-56 on one H100

GPU = Sizes("resnet56", "cifar10", counts=(1, 2, 4, 8), warmup=50, steps=300)
CHECK = Sizes("mlp", "digits", counts=(1, 2), warmup=1, steps=3)
NOTES = (
    "n trials ({model}/{dataset}, batch 128, bf16 autocast on a GPU, CCE, SGD: the trainers' own step) run at once "
    "as Ray tasks, each asking for 1/n of the GPU (on the CPU check: 1/n of a CPU). Each loads its data (once per "
    "worker process), runs {warmup} untimed step(s), waits at a barrier until all n are ready, then times {steps} "
    "steps ending with a device synchronisation. Aggregate images/s = all trials' images ÷ (the last end − the first "
    "start)."
)


@ray.remote(num_cpus=0)
class _Barrier:
    """Counts the trials that are ready; all start timing once every one is."""

    def __init__(self, n: int) -> None:
        self.n, self.arrived = n, 0

    def arrive(self) -> None:
        self.arrived += 1

    def all_arrived(self) -> bool:
        return self.arrived >= self.n


def _trial(config: dict[str, Any], warmup: int, steps: int, barrier: Any) -> Span:
    """One packed trial (a Ray task): its timed span and images."""
    train = train_config({TRAIN_KEY: config})
    return timed_steps(Trainer(train, cached_dataset(train.dataset, train.data_root)), warmup, steps,
                       lambda: _wait(barrier))


def _wait(barrier: Any) -> None:
    ray.get(barrier.arrive.remote())
    while not ray.get(barrier.all_arrived.remote()):
        time.sleep(0.005)


@register_benchmark("trial_packing", title="Trial packing", figure=4,
                    target=f"≥ {TARGET_IMAGES_S:,} images/s aggregate for ResNet-56 on one H100")
def trial_packing(context: Context) -> Result:
    """Aggregate images/s per number of packed trials on the GPU; without one, NO_GPU and a check on the CPU."""
    gpu = torch.cuda.is_available()
    sizes = GPU if gpu and not context.quick else CHECK
    connect(None)
    rows = []
    for n in sizes.counts:
        context.echo(f"  {n} trial(s) of {sizes.model}/{sizes.dataset} sharing the {'GPU' if gpu else 'CPU'}")
        spans = _pack(n, sizes, gpu, context.data_root)
        per_trial = [i / (e - s) for s, e, i in spans]
        rows.append((n, aggregate(spans), min(per_trial), max(per_trial)))
    rows = [(*r, r[1] / rows[0][1]) for r in rows]
    header = ("trials", "aggregate images/s", "slowest trial images/s", "fastest trial images/s", "× one trial")
    if not gpu:
        table = Table("Code-path check on the CPU, 1/n of a CPU each (tiny sizes; not a figure)", header, rows)
        return Result(NO_GPU, None, {}, [table], {"gpu": NO_GPU, "cpu_check": [list(r) for r in rows]},
                      NOTES.format(**vars(CHECK)))
    name = torch.cuda.get_device_name()
    best = max(rows, key=lambda r: r[1])
    met = best[1] >= TARGET_IMAGES_S if "H100" in name and not context.quick else None
    table = Table(f"Packed trials on one {name}", header, rows)
    return Result(f"{best[1]:,.0f} images/s with {best[0]} trials ({name})", met,
                  {f"{r[0]} trials ÷ 1": r[4] for r in rows[1:]}, [table], {"gpu": name},
                  NOTES.format(**vars(sizes)))


def _pack(n: int, sizes: Sizes, gpu: bool, data_root: str | None) -> list[Span]:
    """Run n trials at once as Ray tasks, each with 1/n of the GPU (or of a CPU); their timed spans and images."""
    config = sizes.config(gpu, data_root).to_dict()
    barrier = _Barrier.remote(n)
    task = ray.remote(_trial).options(num_cpus=1 if gpu else 1 / n, num_gpus=1 / n if gpu else 0)
    try:
        return ray.get([task.remote(config, sizes.warmup, sizes.steps, barrier) for _ in range(n)])
    finally:
        ray.kill(barrier)
