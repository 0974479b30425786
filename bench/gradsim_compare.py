"""Gradient similarity (seed 004) against its baselines: the step-time overhead, and test accuracy over seeds.

    python bench/gradsim_compare.py timing --steps 300                  # median step time per method, as ratios
    python bench/gradsim_compare.py accuracy --epochs 10 --seeds 0 1 2  # final test accuracy, mean ± std

Both default to Fashion-MNIST, an MLP, batch 128, 40% symmetric noise, and the thesis's optimiser (Adam, lr 1e-3 × 0.85
per epoch); `--dataset`, `--model` and `--noise-rate` change that. The data is read from $NOISY_DATA_ROOT or
~/.cache/noisy-data.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any, Callable, Sequence

import torch

from trainers import Dataset, TrainConfig, Trainer, load_dataset

TIMED = {"cce": {}, "gradsim": {}, "gradsim (all layers)": {"layers": "all"}}
COMPARED = {"cce": {}, "gradsim": {}, "gradsim-random": {}, "gradsim-oracle": {}}


def base_config(args: argparse.Namespace) -> TrainConfig:
    """The thesis protocol on the chosen data set and model (seed 004 §3: Adam 1e-3, × 0.85 per epoch, batch 128)."""
    return TrainConfig(dataset=args.dataset, model=args.model, noise="symmetric", noise_rate=args.noise_rate,
                       optimizer="adam", lr=1e-3, weight_decay=0.0, schedule="exponential", gamma=0.85,
                       batch_size=128, device="cpu")


def timing(args: argparse.Namespace, data: Dataset) -> dict[str, Any]:
    """Median seconds per training step of each method on the same model and batches, the methods interleaved."""
    return interleaved_timing(base_config(args), TIMED, data, args.steps, args.warmup)


def interleaved_timing(config: TrainConfig, methods: dict[str, dict[str, Any]], data: Dataset, steps: int,
                       warmup: int) -> dict[str, Any]:
    """Median milliseconds per training step of each of `methods` (name: method_params; the method is the name's first
    word, "cce" among them) under `config`, the methods' steps interleaved in a rotating order, and their ratios to
    CCE's."""
    base = config.replace(epochs=None, iterations=10**6)
    trainers = {name: Trainer(base.replace(method=name.split()[0], method_params=params), data)
                for name, params in methods.items()}
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for step in range(warmup + steps):
        names = list(trainers)[step % len(trainers):] + list(trainers)[:step % len(trainers)]  # rotate the order
        for name in names:
            start = time.perf_counter()
            trainers[name]._train_step()  # one step exactly as training runs it; no evaluation
            if step >= warmup:
                times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    return {"median_step_ms": {n: 1000 * t for n, t in median.items()},
            "ratio_to_cce": {n: t / median["cce"] for n, t in median.items()}, "steps": steps}


def accuracy(args: argparse.Namespace, data: Dataset) -> dict[str, Any]:
    """Each method's final test accuracy (training on the whole noisy training set) per seed, and mean ± std."""
    base = base_config(args).replace(split="final", epochs=args.epochs)
    results: dict[str, Any] = {}
    for name, params in COMPARED.items():
        accs = []
        for seed in args.seeds:
            trainer = Trainer(base.replace(method=name, method_params=params, seed=seed), data)
            last = list(trainer)[-1]
            accs.append(last["test_acc"])
            print(json.dumps({"method": name, "seed": seed, **{k: last[k] for k in
                              ("test_acc", "intact_acc", "noisy_fit_acc", "noisy_top10", "noisy_bottom10", "time")
                              if k in last}}), flush=True)
        results[name] = {"test_acc": accs, "mean": statistics.mean(accs),
                         "std": statistics.stdev(accs) if len(accs) > 1 else 0.0}
    return results


def parser(description: str) -> argparse.ArgumentParser:
    """The command line of a comparison script: what to measure, the set-up and each measurement's lengths."""
    out = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    out.add_argument("what", choices=("timing", "accuracy"))
    out.add_argument("--dataset", default="fashion_mnist")
    out.add_argument("--model", default="mlp")
    out.add_argument("--noise-rate", type=float, default=0.4)
    out.add_argument("--data-root", default=None)
    out.add_argument("--steps", type=int, default=300, help="timing: timed steps per method")
    out.add_argument("--warmup", type=int, default=20, help="timing: untimed steps first")
    out.add_argument("--epochs", type=int, default=10, help="accuracy: epochs per run")
    out.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="accuracy: seeds per method")
    out.add_argument("--threads", type=int, default=None, help="torch's CPU threads (default: torch's choice)")
    return out


def run(args: argparse.Namespace, measures: dict[str, Callable[[argparse.Namespace, Dataset], dict[str, Any]]]) -> None:
    """Run the measurement `args.what` of `measures` on the chosen data set and print its result as JSON."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset, args.data_root)
    print(json.dumps(measures[args.what](args, data), indent=2, ensure_ascii=False))


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, run the chosen measurement and print its result as JSON."""
    run(parser(__doc__).parse_args(argv), {"timing": timing, "accuracy": accuracy})


if __name__ == "__main__":
    main()
