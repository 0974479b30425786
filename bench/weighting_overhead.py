"""Figure 1, weighting overhead: each method's training step time against plain CCE's, same model and batches."""

from __future__ import annotations

import functools

import torch

from bench._markdown import yes_no
from bench._protocol import thesis_protocol
from bench._registry import NO_GPU, Context, Result, Table, register_benchmark
from bench._timing import interleaved, median_ms, synchronize
from trainers import Dataset, TrainConfig, Trainer, list_losses, load_dataset

TARGETS = {"dm": 1.03, "gradsim": 1.10, "l2r": 2.5, "ieg": 4.0}  # × CCE's step time
# label → (method, its parameters, timed every that many steps); gradsim over all layers is shown for comparison
METHODS: dict[str, tuple[str, dict[str, object], int]] = {
    "dm": ("dm", {}, 1),
    "gradsim": ("gradsim", {}, 1),
    "gradsim (all layers)": ("gradsim", {"layers": "all"}, 10),
    "l2r": ("l2r", {}, 1),
    "ieg": ("ieg", {}, 1),
}
CPU_CASES = (("mlp", "fashion_mnist"), ("lenet", "cifar10"))  # the thesis's models and data sets
QUICK_CASES = (("mlp", "digits"), ("lenet", "digits"))
GPU_CASE = ("resnet56", "cifar10")
STEPS, WARMUP = 300, 20  # timed and untimed steps per method
QUICK_STEPS, QUICK_WARMUP = 3, 1
NOTES = (
    "Each method's median time of one training step (`Trainer._train_step`: the step exactly as training runs it, "
    "with its per-step metric sums, no evaluation) against plain CCE's, on the same model, batch size 128 and the same "
    "batches (one seed: the same split, noise and batch order). The methods take their steps in turn, the order "
    "rotated each step, so that the machine's load falls on all alike; {warmup} untimed step(s) first, then {steps} "
    "timed (gradsim over all layers, shown for comparison: every 10th step). Settings: gradient similarity's protocol "
    "(Adam, lr 1e-3 × 0.85 per epoch, 40% symmetric noise); each method's default hyperparameters."
)


@register_benchmark("weighting_overhead", title="Weighting overhead", figure=1,
                    target="dm ≤ 1.03×, gradsim ≤ 1.10×, l2r ≤ 2.5×, ieg ≤ 4× CCE's step time")
def weighting_overhead(context: Context) -> Result:
    """Median step time of each registered method as a multiple of CCE's, on the CPU cases and the GPU's if any."""
    present = {label: spec for label, spec in METHODS.items() if spec[0] in list_losses()}
    missing = [label for label in METHODS if label not in present]
    steps, warmup = (QUICK_STEPS, QUICK_WARMUP) if context.quick else (STEPS, WARMUP)
    cases = [(model, dataset, "cpu") for model, dataset in (QUICK_CASES if context.quick else CPU_CASES)]
    cases += [(*GPU_CASE, "cuda")] if torch.cuda.is_available() else []
    data: dict[str, Dataset] = {}
    rows, ratios, met, summary = [], {}, True, []
    for model, dataset, device in cases:
        if dataset not in data:
            data[dataset] = load_dataset(dataset, context.data_root)
        context.echo(f"  {model}/{dataset} on {device}: {', '.join(['cce', *present])}")
        base = thesis_protocol(dataset, model, data_root=context.data_root, device=device)
        medians = _median_step_ms(base, data[dataset], present, steps, warmup)
        shown = []
        for label, ms in medians.items():
            ratio = ms / medians["cce"]
            target = TARGETS.get(label)
            ok = None if target is None else ratio <= target
            met = met and ok is not False
            rows.append((f"{model}/{dataset}", device, label, ms, ratio, target, yes_no(ok)))
            if label != "cce":
                ratios[f"{model}/{dataset} {device} {label}"] = ratio
                shown.append(f"{label} {ratio:.2f}×")
        summary.append(f"{model}/{dataset} ({device}): {', '.join(shown)}")
    if not torch.cuda.is_available():
        rows.append((f"{GPU_CASE[0]}/{GPU_CASE[1]}", "cuda", NO_GPU, None, None, None, "—"))
        summary.append(f"GPU: {NO_GPU}")
    rows += [("—", "—", label, "not implemented yet", None, TARGETS.get(label), "—") for label in missing]
    summary += [f"{', '.join(missing)}: not implemented yet"] if missing else []
    table = Table("Median step time and its ratio to CCE's", ("model/data", "device", "method", "median ms",
                                                              "× CCE", "target", "met"), rows)
    return Result("; ".join(summary), met, ratios, [table],
                  {"steps": steps, "warmup": warmup, "not_implemented": missing,
                   "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else NO_GPU},
                  NOTES.format(steps=steps, warmup=warmup))


def _median_step_ms(base: TrainConfig, data: Dataset, methods: dict[str, tuple[str, dict[str, object], int]],
                    steps: int, warmup: int) -> dict[str, float]:
    """Median ms per step of CCE and of each of `methods` on `base`'s model and batches, the steps interleaved."""
    base = base.replace(epochs=None, iterations=10**9)
    trainers = {"cce": Trainer(base, data)}
    trainers |= {label: Trainer(base.replace(method=method, method_params=params), data)
                 for label, (method, params, _) in methods.items()}
    times = interleaved({label: functools.partial(_step, t) for label, t in trainers.items()}, rounds=steps,
                        warmup=warmup, every={label: every for label, (_, _, every) in methods.items()})
    return {label: median_ms(t) for label, t in times.items()}


def _step(trainer: Trainer) -> None:
    trainer._train_step()  # one step exactly as training runs it; no evaluation
    synchronize(trainer.device)
