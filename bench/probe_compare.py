"""L2R and IEG (seed 003) beside CCE and DM: the step-time cost, and test accuracy at 40% and 80% symmetric noise.

    python bench/probe_compare.py timing --threads 1 --steps 100      # median step time per method, as ratios to CCE
    python bench/probe_compare.py accuracy --epochs 5 --seeds 0       # final test accuracy per method and noise rate

Both default to Fashion-MNIST, an MLP, batch 128, and configs/fashion_mnist_ieg.yaml's optimiser (SGD 0.01, momentum
0.9, cosine learning rate with warm restarts every 500 iterations × 1.5, peaks × 0.9); `--dataset`, `--model` change
that. The probe methods hold out 10 images per class; CCE and DM train on those too. The data is read from
$NOISY_DATA_ROOT or ~/.cache/noisy-data (or --data-root).
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any, Sequence

from gradsim_compare import interleaved_timing, parser, run  # bench/ is the script's folder

from search_spaces import paper_best
from trainers import Dataset, TrainConfig, Trainer

TIMED = {"cce": {}, "l2r": {}, "l2r (last layer)": {"layers": "last"}, "ieg": {},
         "ieg (last layer)": {"layers": "last"}}
# IEG with the paper's coefficients, and with a meta step and loss weights for an MLP (measured in 3-epoch runs at 40%
# noise: configs/fashion_mnist_ieg.yaml).
IEG_MLP = {"meta_lr": 0.01, "p": 1.0, "k": 1.0}
DM_BETA = 8.0  # the paper's β (12–16 at 40–80%) collapses an MLP; 8 is the largest the DM search space calls stable


def base_config(args: argparse.Namespace) -> TrainConfig:
    """configs/fashion_mnist_ieg.yaml's training on the chosen data set and model, on the CPU."""
    return TrainConfig(dataset=args.dataset, model=args.model, noise="symmetric", noise_rate=args.noise_rate,
                       optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=0.0, batch_size=128, schedule="cosine",
                       schedule_unit="iteration", cosine_period=500, cosine_mult=1.5, cosine_decay=0.9, device="cpu",
                       data_root=args.data_root)


def compared(dataset: str, rate: float) -> dict[str, tuple[str, dict[str, Any]]]:
    """Name → (method, method_params): CCE, DM with the paper's λ for the rate, L2R, IEG as published and for an MLP."""
    lam = (paper_best(dataset, rate) or {"lam": 1.0})["lam"]
    return {"cce": ("cce", {}), f"dm (λ={lam:g}, β={DM_BETA:g})": ("dm", {"lam": lam, "beta": DM_BETA, "eps": 1e-8}),
            "l2r": ("l2r", {}), "ieg": ("ieg", {}), "ieg (mlp: meta_lr 0.01, p = k = 1)": ("ieg", IEG_MLP)}


def timing(args: argparse.Namespace, data: Dataset) -> dict[str, Any]:
    """Median milliseconds per training step of each method on the same model and batches, the methods interleaved."""
    return interleaved_timing(base_config(args), TIMED, data, args.steps, args.warmup)


def accuracy(args: argparse.Namespace, data: Dataset) -> dict[str, Any]:
    """Each method's final test accuracy (the whole noisy training set, less the probe) per noise rate and seed."""
    results: dict[str, Any] = {}
    for rate in args.noise_rates:
        base = base_config(args).replace(split="final", epochs=args.epochs, noise_rate=rate, probe_per_class=10)
        for name, (method, params) in compared(args.dataset, rate).items():
            accs = []
            for seed in args.seeds:
                last = list(Trainer(base.replace(method=method, method_params=params, seed=seed), data))[-1]
                accs.append(last["test_acc"])
                shown = ("test_acc", "intact_acc", "noisy_fit_acc", "weight_clean", "weight_noisy",
                         "noisy_zero_weight", "relabel_clean", "relabel_noisy", "time")
                print(json.dumps({"noise_rate": rate, "method": name, "seed": seed,
                                  **{k: last[k] for k in shown if k in last}}, ensure_ascii=False), flush=True)
            results[f"{rate:g} {name}"] = {"test_acc": accs, "mean": statistics.mean(accs),
                                           "std": statistics.stdev(accs) if len(accs) > 1 else 0.0}
    return results


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, run the chosen measurement and print its result as JSON."""
    command = parser(__doc__)
    command.add_argument("--noise-rates", type=float, nargs="+", default=[0.4, 0.8], help="accuracy: the noise rates")
    command.set_defaults(steps=100, warmup=10, epochs=5, seeds=[0])
    run(command.parse_args(argv), {"timing": timing, "accuracy": accuracy})


if __name__ == "__main__":
    main()
