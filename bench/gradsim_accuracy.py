"""Gradient similarity (seed 004) against its baselines: each method's final test accuracy over seeds."""

from __future__ import annotations

import statistics

from bench._protocol import thesis_protocol
from bench._registry import Context, Result, Table, register_benchmark
from trainers import Trainer, load_dataset

METHODS = ("cce", "gradsim", "gradsim-random", "gradsim-oracle")
FULL = {"dataset": "fashion_mnist", "model": "mlp", "epochs": 10, "seeds": (0, 1, 2)}
QUICK = {"dataset": "digits", "model": "mlp", "epochs": 1, "seeds": (0,)}
SHOWN = ("test_acc", "intact_acc", "noisy_fit_acc", "noisy_top10", "noisy_bottom10")
NOTES = (
    "Final test accuracy of gradient similarity (last layer, a = 4, k = 4), its random-uniform and oracle baselines "
    "and CCE, training on the whole noisy training set ({dataset}, {model}, 40% symmetric noise, {epochs} epochs, "
    "seeds {seeds}) with the thesis's optimiser (Adam, lr 1e-3 × 0.85 per epoch, batch 128). The oracle reads the "
    "noise mask: an upper bound, not a method. Not one of issue 8's figures: run it by name."
)


@register_benchmark("gradsim_accuracy", title="Gradient similarity: accuracy against its baselines", figure=None,
                    target="none (a comparison)")
def gradsim_accuracy(context: Context) -> Result:
    """Each method's last test accuracy per seed, and mean ± std over the seeds."""
    s = QUICK if context.quick else FULL
    data = load_dataset(s["dataset"], context.data_root)
    base = thesis_protocol(s["dataset"], s["model"], data_root=context.data_root).replace(split="final",
                                                                                          epochs=s["epochs"])
    rows, per_method = [], {}
    for method in METHODS:
        accs = []
        for seed in s["seeds"]:
            last = list(Trainer(base.replace(method=method, seed=seed), data))[-1]
            accs.append(last["test_acc"])
            rows.append((method, seed, *(last.get(k) for k in SHOWN)))
            context.echo(f"  {method} seed {seed}: test_acc {last['test_acc']:.4f}")
        per_method[method] = {"test_acc": accs, "mean": statistics.mean(accs),
                              "std": statistics.stdev(accs) if len(accs) > 1 else 0.0}
    summary = ", ".join(f"{m} {r['mean']:.4f} ± {r['std']:.4f}" for m, r in per_method.items())
    tables = [Table("Test accuracy, mean ± std over the seeds", ("method", "mean", "std"),
                    [(m, r["mean"], r["std"]) for m, r in per_method.items()]),
              Table("Each run's last evaluation", ("method", "seed", *SHOWN), rows)]
    notes = NOTES.format(**{**s, "seeds": ", ".join(map(str, s["seeds"]))})
    return Result(summary, None, {}, tables, {"settings": {**s, "seeds": list(s["seeds"])}, "methods": per_method},
                  notes)
