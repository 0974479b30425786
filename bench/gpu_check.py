"""The GPU check: in one command of at most 8 minutes on one H100/H200, everything the project must know about its GPU
path, from a CIFAR-10 subset of at most 64 MiB (an .npz of uint8 images that travels to the device machine).

Parts, each with its time budget on an H100 (ResNet-56 runs at about 30k images/s there): ResNet-56 images/s for one
trial, bf16 autocast and channels-last, eager and compiled (gpu_throughput's measurement, ~2.5 min with compiling);
1 and 4 trials packed on the GPU, one process each (trial_packing's measurement without Ray, ~1 min); each weighting
method's step time against CCE's on ResNet-56 (weighting_overhead's, ~1 min); CCE against DM at 40% symmetric noise,
ResNet-20, their steps taken in turn for two minutes, then each one's test accuracy. Without a GPU, or with --quick,
each part runs on the CPU at tiny sizes (seconds each) on a slice of the subset: a check of the code paths, not a
figure. It needs torch, torchvision and numpy only: `python -m bench gpu_check` imports nothing of ray, optuna or
mlflow, which the device machine lacks.

The subset is built from --data-root's cifar-10-batches-py where --subset names no file yet, and read where it does;
so one command here builds it and checks the code, and the device machine only reads it. With the `run` tool, which
copies the working tree (tracked and untracked files, not the git-ignored ones that `carry` does not name):

    python -m bench gpu_check --quick --subset .gpu/cifar10_subset.npz --out /tmp/gpu_quick   # here: builds it, 53 MiB
    run(command="PYTHONUNBUFFERED=1 python3 -m bench gpu_check --subset .gpu/cifar10_subset.npz --out $OUT/bench",
        carry=[".gpu"], timeout_s=570)
    cp <files_at>/bench/gpu_check.json docs/benchmarks/ && \\
        python -m bench --report-only --out docs/benchmarks --markdown docs/BENCHMARKS.md
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench import _packing, gpu_throughput
from bench._packing import aggregate, pack_processes
from bench._protocol import thesis_protocol
from bench._registry import NO_GPU, Context, Result, Table, register_benchmark
from bench.weighting_overhead import METHODS, _median_step_ms
from trainers import Dataset, TrainConfig, Trainer, list_losses, load_dataset
from trainers.datasets import _open, default_data_root

SUBSET_NAME = "cifar10_subset.npz"
TRAIN_PER_CLASS, TEST_PER_CLASS = 1500, 300  # 18,000 images × 3,072 bytes: 52.7 MiB
TARGET_S = 480  # the whole check on one H100/H200


@dataclass(frozen=True)
class Sizes:
    """Each part's size: the throughput's and packing's settings, the weighting and noise runs' models and lengths."""

    throughput: gpu_throughput.Sizes
    packing: _packing.Sizes
    weighting_model: str
    weighting_steps: int
    weighting_warmup: int
    noise_model: str
    noise_budget_s: float  # both trainers' steps together
    slice: int | None  # training images taken from the subset (None: all; the test set: a quarter of that)


# bf16 + channels-last, eager and compiled
VARIANTS = tuple(v for v in gpu_throughput.VARIANTS if v.bf16 and v.compile_mode != "reduce-overhead")
GPU = Sizes(gpu_throughput.Sizes("resnet56", "", batches=(512,), steps=50, rounds=3, compile_backend="inductor",
                                 warmup_epoch=True, augment=True),
            _packing.Sizes("resnet56", "", counts=(1, 4), warmup=30, steps=200, augment=True),
            "resnet56", 100, 10, "resnet20", 120.0, None)
CHECK = Sizes(gpu_throughput.Sizes("resnet20", "", batches=(16,), steps=2, rounds=1, compile_backend="eager",
                                   warmup_epoch=False, augment=True),
              _packing.Sizes("lenet", "", counts=(1, 4), warmup=1, steps=3, augment=True),
              "lenet", 3, 1, "lenet", 2.0, 256)


@register_benchmark("gpu_check", title="GPU check", figure=None,
                    target=f"every part run within {TARGET_S // 60} minutes on one H100/H200")
def gpu_check(context: Context) -> Result:
    """Run the four parts on the GPU (or their check on the CPU) and gather their tables."""
    gpu = torch.cuda.is_available() and not context.quick
    sizes = GPU if gpu else CHECK
    subset = context.subset or context.work / SUBSET_NAME
    if not subset.is_file():
        context.echo(f"  building {subset} from {context.data_root or default_data_root()}")
        make_subset(subset, context.data_root)
    dataset = f"npz:{_sliced(subset, sizes.slice, context.work).resolve()}"
    device = torch.device("cuda" if gpu else "cpu")
    start, walls, tables, ratios = time.perf_counter(), {}, [], {}

    context.echo("  part 1: one trial's images/s")
    throughput = gpu_throughput.Sizes(**{**vars(sizes.throughput), "dataset": dataset})
    rows, flags = gpu_throughput._measure(throughput, device, context, VARIANTS)
    tables.append(Table(f"One trial, {throughput.model}: training images/s", _THROUGHPUT_HEADER, rows))
    ratios |= {f"{r[1]} ÷ {rows[0][1]}": r[3] for r in rows[1:] if isinstance(r[3], float)}
    walls["throughput"] = time.perf_counter() - start

    context.echo("  part 2: packed trials, one process each")
    packing = _packing.Sizes(**{**vars(sizes.packing), "dataset": dataset})
    config = packing.config(gpu, None)
    packed = [(n, aggregate(pack_processes(n, config, packing.warmup, packing.steps))) for n in packing.counts]
    packed = [(n, rate, rate / packed[0][1]) for n, rate in packed]
    tables.append(Table(f"Packed trials, {packing.model}, one process each on the {device.type}",
                        ("trials", "aggregate images/s", "× one trial"), packed))
    ratios |= {f"{n} packed trials ÷ 1": x for n, _, x in packed[1:]}
    walls["packing"] = time.perf_counter() - start - sum(walls.values())

    context.echo("  part 3: weighting methods' step time")
    data = load_dataset(dataset)
    base = thesis_protocol(dataset, sizes.weighting_model, data_root=None, device=device.type).replace(
        split="final", augment=True, bf16=gpu)
    present = {label: spec for label, spec in METHODS.items() if spec[0] in list_losses()}
    medians = _median_step_ms(base, data, present, sizes.weighting_steps, sizes.weighting_warmup)
    tables.append(Table(f"Step time against CCE's, {sizes.weighting_model}", ("method", "median ms", "× CCE"),
                        [(label, ms, ms / medians["cce"]) for label, ms in medians.items()]))
    ratios |= {f"{label} ÷ cce step": ms / medians["cce"] for label, ms in medians.items() if label != "cce"}
    walls["weighting"] = time.perf_counter() - start - sum(walls.values())

    context.echo(f"  part 4: CCE against DM at 40% symmetric noise, {sizes.noise_budget_s:g} s")
    accuracy, steps = _noise_run(base.replace(model=sizes.noise_model), data, sizes.noise_budget_s)
    tables.append(Table(f"{sizes.noise_model}, 40% symmetric noise, {steps} steps each in "
                        f"{sizes.noise_budget_s:g} s together", ("method", "test accuracy"), list(accuracy.items())))
    walls["noise run"] = time.perf_counter() - start - sum(walls.values())

    total = time.perf_counter() - start
    tables.append(Table("Wall time per part", ("part", "seconds"), [*walls.items(), ("total", total)]))
    name = torch.cuda.get_device_name() if gpu else NO_GPU
    details = {"gpu": name, "subset": str(subset), "subset_mib": subset.stat().st_size / 2**20,
               "wall_s": walls, "total_s": total, "test_accuracy": accuracy, "noise_run_steps": steps,
               "variants": flags, "step_ms": medians, "packed_images_s": {n: rate for n, rate, _ in packed}}
    if not gpu:
        return Result(NO_GPU, None, ratios, tables, details, NOTES.format(**_note_sizes(sizes)))
    best = max(r[2] for r in rows if isinstance(r[2], float))
    measured = (f"{best:,.0f} images/s one trial, {packed[-1][1]:,.0f} with {packed[-1][0]} packed; "
                f"dm {ratios.get('dm ÷ cce step', float('nan')):.2f}× CCE's step; test accuracy CCE "
                f"{accuracy['cce']:.3f}, DM {accuracy['dm']:.3f}; {total:.0f} s ({name})")
    return Result(measured, total <= TARGET_S, ratios, tables, details, NOTES.format(**_note_sizes(sizes)))


_THROUGHPUT_HEADER = ("batch", "variant", "images/s", "× eager", "share of bf16 peak", "GFLOP per image")
NOTES = (
    "On the CIFAR-10 subset ({slice}): (1) gpu_throughput's measurement of {tp_model}, batch {tp_batch}, bf16 autocast "
    "and channels-last, eager and torch.compile; (2) trial_packing's measurement without Ray: {pk_counts} trials of "
    "{pk_model} at once, a spawned process (one torch thread) each on the same device, timed from one barrier; (3) "
    "weighting_overhead's, each method's median step time on {w_model} against CCE's ({w_steps} steps); (4) CCE and DM "
    "on {n_model} at 40% symmetric noise (gradient similarity's protocol, all training images), their steps in turn "
    "for {n_budget:g} s together, then each one's accuracy on the subset's test images."
)


def _note_sizes(sizes: Sizes) -> dict[str, object]:
    return {"slice": f"the first {sizes.slice} training images" if sizes.slice else "all of it",
            "tp_model": sizes.throughput.model, "tp_batch": sizes.throughput.batches[0],
            "pk_counts": " and ".join(map(str, sizes.packing.counts)), "pk_model": sizes.packing.model,
            "w_model": sizes.weighting_model, "w_steps": sizes.weighting_steps, "n_model": sizes.noise_model,
            "n_budget": sizes.noise_budget_s}


def make_subset(path: Path, data_root: str | None) -> Path:
    """Write the first TRAIN_PER_CLASS and TEST_PER_CLASS images of each class of CIFAR-10 under `data_root` as an
    .npz that `npz:PATH` loads (uint8 N×32×32×3, with the true training labels)."""
    import torchvision.datasets

    root = default_data_root() if data_root is None else Path(data_root).expanduser()
    arrays = {}
    for split, per_class in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        ds = _open("cifar10", torchvision.datasets.CIFAR10, root, split == "train", download=False)
        y = np.asarray(ds.targets)
        keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(10)]))
        arrays[f"x_{split}"], arrays[f"y_{split}"] = ds.data[keep], y[keep]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays, y_train_true=arrays["y_train"])
    return path


def _sliced(subset: Path, n: int | None, work: Path) -> Path:
    """`subset` itself, or its first n training and n/4 test images written to `work`."""
    if n is None:
        return subset
    with np.load(subset) as arrays:
        cut = {k: v[: n // 4 if k.endswith("_test") else n] for k, v in arrays.items()}
    np.savez(work / f"slice{n}.npz", **cut)
    return work / f"slice{n}.npz"


def _noise_run(base: TrainConfig, data: Dataset, budget_s: float) -> tuple[dict[str, float], int]:
    """CCE and DM trained in turn, a step each, until `budget_s` has passed; their test accuracies and steps."""
    trainers = {"cce": Trainer(base.replace(epochs=None, iterations=10**9), data),
                "dm": Trainer(base.replace(epochs=None, iterations=10**9, method="dm"), data)}
    end = time.perf_counter() + budget_s
    while time.perf_counter() < end:
        for trainer in trainers.values():
            trainer._train_step()
    accuracy = {}
    for label, trainer in trainers.items():
        x, y = trainer.test
        accuracy[label] = (trainer.predict(x).argmax(1) == y).float().mean().item()
    return accuracy, trainers["cce"].step
