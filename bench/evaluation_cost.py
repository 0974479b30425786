"""Evaluation cost: the time the CIFAR configs spend evaluating against their training time, before issue 15 (the
whole training set predicted at every epoch, in chunks of 1,024) and as the configs run it now."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Callable

import torch

from bench._markdown import yes_no
from bench._protocol import thesis_protocol
from bench._registry import Context, Result, Table, register_benchmark
from bench._timing import interleaved, median_ms, synchronize
from study.config import load_study_config
from trainers import Dataset, TrainConfig, Trainer, load_dataset

TARGET = 0.10  # the evaluations' time ÷ the training's, at most, in each CIFAR config
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# each CIFAR config and the model its cost is measured with: its own (LeNet), else ResNet-20, the deeper ResNets' and
# the WRN's stand-in on the CPU (the same kind of blocks), with CCE steps (IEG's cost several times more)
CIFAR_CONFIGS = {"cifar10_lenet_gradsim.yaml": "lenet", "cifar10_resnet56_table3.yaml": "resnet20",
                 "cifar100_resnet44_table7.yaml": "resnet20", "cifar10_wrn28_ieg.yaml": "resnet20",
                 "cifar100_resnet29_ieg_table7.yaml": "resnet20"}
# per model: timed steps per trainer, untimed steps first, evaluations per trainer among the timed steps
SIZES = {"lenet": (200, 10, 5), "resnet20": (12, 1, 2)}
QUICK_SIZES = {"lenet": (4, 1, 2), "resnet20": (4, 1, 2)}
# how each trainer evaluates: training-set metrics from (0: the whole training part; None: the default subsample),
# images per inference chunk (None: the trainer's own) and the inputs' memory format
OPTIONS = {
    "before": (0, 1024, torch.contiguous_format),  # every evaluation before issue 15
    "now": (None, None, torch.channels_last),  # every evaluation but a run's last
    "now, last": (0, None, torch.channels_last),  # a run's last evaluation: the whole training part
}
NOTES = (
    "Per model, three trainers of the same run (gradient similarity's protocol: CCE, Adam, lr 1e-3, batch 128, 40% "
    "symmetric noise, the search split's {train:,} training and {val:,} validation images, {test:,} test images) that "
    "differ only in how they evaluate: before (the training-set metrics from the whole training part, inference in "
    "chunks of 1,024 in the default memory format), now (from the {diag:,}-example subsample, chunks of {chunk} on the "
    "CPU, channels-last inputs, inference mode) and now, last (now's inference over the whole training part: a run's "
    "last evaluation); their steps (`Trainer._train_step`) and evaluations (`Trainer._evaluate`) interleaved, medians "
    "({sizes}). Each config's share: before = one evaluation per epoch as before issue 15; every epoch = now's "
    "evaluation once per epoch; as configured = (E − 1) of now's evaluations and one of now, last over the config's "
    "run of S steps, E = ⌈S ÷ eval_every⌉, ÷ S steps of its batch size (a step's time taken as the measured step's "
    "× batch ÷ 128), on the search split. LeNet is the LeNet config's own model; ResNet-20 stands in for the ResNets "
    "and the WRN, and its CCE steps for IEG's, which cost several times more: those shares are upper bounds."
)


@register_benchmark("evaluation_cost", title="Evaluation cost", figure=None,
                    target="evaluations ≤ 10% of the training time in each CIFAR config (CPU, one thread)")
def evaluation_cost(context: Context) -> Result:
    """Each model's median step and evaluation times by OPTIONS, then each CIFAR config's evaluation share from them."""
    dataset = "digits" if context.quick else "cifar10"
    data = load_dataset(dataset, context.data_root)
    sizes = QUICK_SIZES if context.quick else SIZES
    measured, rows, info = {}, [], {}
    for model, (steps, warmup, evals) in sizes.items():
        context.echo(f"  {model}/{dataset}: {', '.join(OPTIONS)}")
        base = thesis_protocol(dataset, model, data_root=context.data_root).replace(epochs=None, iterations=10**9)
        step_ms, eval_ms, info[model] = _times(base, data, steps, warmup, evals)
        measured[model] = step_ms, eval_ms
        for option, ms in eval_ms.items():
            images = info[model]["images"][option]
            rows.append((f"{model}/{dataset}", option, step_ms, ms, images, ms / (info[model]["steps"] * step_ms)))
    config_rows, ratios, summary = [], {}, []
    for name, model in CIFAR_CONFIGS.items():
        row = _config_share(name, model, *measured[model], info[model]["train"])
        config_rows.append(row)
        stem, before, after = name.removesuffix(".yaml"), row[5], row[7]
        ratios |= {f"{stem} before": before, f"{stem} every epoch": row[6], f"{stem} as configured": after}
        summary.append(f"{stem}: {before:.0%} → {after:.1%}")
    met = None if context.quick else all(row[7] <= TARGET for row in config_rows)
    summary.append(f"target ≤ {TARGET:.0%} in every CIFAR config: {yes_no(met)}")
    tables = [
        Table("Each model's median step and evaluation (÷ epoch: one evaluation against an epoch of steps)",
              ("model/data", "evaluation", "step ms", "evaluation ms", "images predicted", "÷ epoch"), rows),
        Table("Each CIFAR config's evaluation time ÷ training time",
              ("config", "measured with", "batch", "eval_every", "evaluations", "before", "every epoch",
               "as configured", "≤ 10%"), config_rows),
    ]
    first = info[next(iter(sizes))]
    notes = NOTES.format(train=first["train"], val=first["val"], test=first["test"], diag=TrainConfig().diag_subsample,
                         chunk=first["chunk"], sizes="; ".join(
                             f"{m}: {s} timed steps each after {w} untimed, {e} evaluations each among them"
                             for m, (s, w, e) in sizes.items()))
    return Result("; ".join(summary), met, ratios, tables, {"sizes": sizes, "info": info}, notes)


def _times(base: TrainConfig, data: Dataset, steps: int, warmup: int,
           evals: int) -> tuple[float, dict[str, float], dict[str, object]]:
    """(median step ms, median evaluation ms by option, sizes) of trainers of `base` that evaluate as OPTIONS say."""
    trainers = {}
    for option, (diag, chunk, memory_format) in OPTIONS.items():
        trainer = Trainer(base if diag is None else base.replace(diag_subsample=diag), data)
        trainer.eval_batch, trainer.eval_format = chunk or trainer.eval_batch, memory_format
        trainers[option] = trainer
    calls: dict[str, Callable[[], None]] = {}
    for option, trainer in trainers.items():
        calls[f"step {option}"] = functools.partial(_timed, trainer, trainer._train_step)
        calls[f"eval {option}"] = functools.partial(_timed, trainer, trainer._evaluate)
    every = {name: max(1, steps // evals) for name in calls if name.startswith("eval")}
    times = interleaved(calls, rounds=steps, warmup=warmup, every=every)
    step_ms = median_ms([t for name, ts in times.items() if name.startswith("step") for t in ts])
    now = trainers["now"].info
    info = {"train": now["train_size"], "val": now["val_size"], "test": now["test_size"],
            "steps": now["steps_per_epoch"], "chunk": trainers["now"].eval_batch,
            "images": {option: t.info["diag_size"] + now["val_size"] + now["test_size"]
                       for option, t in trainers.items()}}
    return step_ms, {option: median_ms(times[f"eval {option}"]) for option in OPTIONS}, info


def _config_share(name: str, model: str, step_ms: float, eval_ms: dict[str, float],
                  train_size: int) -> tuple[object, ...]:
    """The row of config `name`: its batch, eval_every, evaluations per run and evaluation ÷ training time, before,
    every epoch and as configured, and whether that meets TARGET."""
    train = load_study_config(CONFIGS / name, allow_missing_gpu=True).train
    b = train.batch_size
    per_epoch = train_size // b + (train_size % b > 1)
    total = train.iterations or train.epochs * per_epoch
    every = train.eval_every or per_epoch
    evaluations = math.ceil(total / every)
    step = step_ms * b / 128  # a step of b images
    before, each = (eval_ms[option] / (per_epoch * step) for option in ("before", "now"))
    configured = ((evaluations - 1) * eval_ms["now"] + eval_ms["now, last"]) / (total * step)
    return name, model, b, every, evaluations, before, each, configured, yes_no(configured <= TARGET)


def _timed(trainer: Trainer, call: Callable[[], object]) -> None:
    call()  # a step or an evaluation exactly as training runs it
    synchronize(trainer.device)
