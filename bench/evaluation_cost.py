"""Evaluation cost: an evaluation's time as a share of an epoch's training, the whole training set predicted against
the training-set metrics' subsample (issue 15)."""

from __future__ import annotations

import functools
from typing import Callable

from bench._markdown import yes_no
from bench._protocol import thesis_protocol
from bench._registry import Context, Result, Table, register_benchmark
from bench._timing import interleaved, median_ms, synchronize
from trainers import Dataset, TrainConfig, Trainer, load_dataset

TARGET = 0.10  # an evaluation ÷ an epoch's training, at most, on CIFAR
TARGET_CASE = "lenet/cifar10"
CASES = (("lenet", "cifar10"), ("mlp", "fashion_mnist"))
QUICK_CASES = (("mlp", "digits"), ("lenet", "digits"))
OPTIONS = {"whole training set": 0, "subsample": TrainConfig().diag_subsample}  # before, after
STEPS, WARMUP, EVALS = 200, 10, 5  # timed steps per option, untimed ones first, evaluations per option among them
QUICK_STEPS, QUICK_WARMUP, QUICK_EVALS = 4, 1, 2
NOTES = (
    "One evaluation (`Trainer._evaluate`: the training-set metrics, the validation and test accuracies) against one "
    "epoch of training steps (`Trainer._train_step` × steps per epoch), with the training-set metrics from the whole "
    "training part (diag_subsample 0, as before) and from the default subsample of {size} examples; the two "
    "trainers' steps and evaluations interleaved ({steps} timed steps each after {warmup} untimed, {evals} evaluations "
    "each among them), medians. Settings: gradient similarity's protocol (CCE, Adam, lr 1e-3, batch 128, 40% "
    "symmetric noise, the search split: 80% training, 20% validation), as configs/cifar10_lenet_gradsim.yaml, which "
    "evaluates once per epoch. A run's last evaluation predicts the whole training part either way: over a run of E "
    "epochs it adds (whole − subsample)/E to the subsample's share."
)


@register_benchmark("evaluation_cost", title="Evaluation cost", figure=None,
                    target="an evaluation ≤ 10% of an epoch's training (LeNet, CIFAR-10)")
def evaluation_cost(context: Context) -> Result:
    """An evaluation's median time over an epoch's training time, before (whole training set) and after (subsample)."""
    steps, warmup, evals = (QUICK_STEPS, QUICK_WARMUP, QUICK_EVALS) if context.quick else (STEPS, WARMUP, EVALS)
    rows, ratios, summary, met = [], {}, [], None
    for model, dataset in QUICK_CASES if context.quick else CASES:
        case = f"{model}/{dataset}"
        context.echo(f"  {case}: {', '.join(OPTIONS)}")
        data = load_dataset(dataset, context.data_root)
        base = thesis_protocol(dataset, model, data_root=context.data_root).replace(epochs=None, iterations=10**9)
        shares = _shares(base, data, steps, warmup, evals)
        for option, (step_ms, eval_ms, epoch_steps) in shares.items():
            share = eval_ms / (epoch_steps * step_ms)
            rows.append((case, option, step_ms, epoch_steps, eval_ms, share))
            ratios[f"{case} {option}"] = share
        before, after = (ratios[f"{case} {option}"] for option in OPTIONS)
        summary.append(f"{case}: {before:.0%} → {after:.0%} of an epoch")
        if case == TARGET_CASE and not context.quick:
            met = after <= TARGET
    table = Table("An evaluation's median time against an epoch's training", ("model/data", "training-set metrics",
                                                                              "step ms", "steps per epoch",
                                                                              "evaluation ms", "÷ epoch"), rows)
    summary.append(f"target ≤ {TARGET:.0%} ({TARGET_CASE}): {yes_no(met)}")
    return Result("; ".join(summary), met, ratios, [table], {"steps": steps, "warmup": warmup, "evaluations": evals},
                  NOTES.format(size=OPTIONS["subsample"], steps=steps, warmup=warmup, evals=evals))


def _shares(base: TrainConfig, data: Dataset, steps: int, warmup: int,
            evals: int) -> dict[str, tuple[float, float, int]]:
    """(median step ms, median evaluation ms, steps per epoch) of each of OPTIONS, steps and evaluations interleaved."""
    trainers = {option: Trainer(base.replace(diag_subsample=size), data) for option, size in OPTIONS.items()}
    calls: dict[str, Callable[[], None]] = {}
    for option, trainer in trainers.items():
        calls[f"step {option}"] = functools.partial(_timed, trainer, trainer._train_step)
        calls[f"eval {option}"] = functools.partial(_timed, trainer, trainer._evaluate)
    every = {name: max(1, steps // evals) for name in calls if name.startswith("eval")}
    times = interleaved(calls, rounds=steps, warmup=warmup, every=every)
    return {option: (median_ms(times[f"step {option}"]), median_ms(times[f"eval {option}"]), trainer.steps_per_epoch)
            for option, trainer in trainers.items()}


def _timed(trainer: Trainer, call: Callable[[], object]) -> None:
    call()  # a step or an evaluation exactly as training runs it
    synchronize(trainer.device)
