"""Figure 5, study overhead: the embedded default study through Ray Tune against the same trials one after another in
a plain process."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import ray
import torch
from ray.tune import ExperimentAnalysis

from bench._registry import Context, Result, Table, register_benchmark
from study.config import load_study_config
from study.driver import connect, run_study, study_folder, trial_slots
from study.tracking import client_for
from trainables import train_config
from trainers import load_dataset, train

TARGET = 1.2  # the study's wall time ÷ the plain process's, at most
ROUNDS, QUICK_ROUNDS = 2, 1
QUICK = ("train.epochs=1", "noise_rates=[0.4]", "search.num_samples=2", "final.n_seeds=0")
NOTES = (
    "The embedded default study (`study run` without a config{changes}) run by `study.driver.run_study` — Ray Tune, "
    "Optuna, a checkpoint per evaluation, MLflow runs in a SQLite store made beforehand — against the same trials "
    "(their configs read back from Tune's experiment folders) run one after another by `trainers.train` in this "
    "process with one data load and no tracking. Ray is started before the clock (its start is reported apart). "
    "{rounds} round(s), each a fresh study then its plain run; the figure is the median ratio of wall times. The "
    "study runs {concurrent} trials at once with {cpus:g} CPU each (Ray gives each one torch thread); the plain "
    "process runs one at a time with torch's {threads} thread(s)."
)


@register_benchmark("study_overhead", title="Study overhead", figure=5,
                    target=f"≤ {TARGET:g}× the same trials run one after another in a plain process")
def study_overhead(context: Context) -> Result:
    """Median over rounds of the study's wall time ÷ the plain process's on the same trials."""
    started = time.perf_counter()
    was_running = ray.is_initialized()
    connect(None)
    ray_start_s = None if was_running else time.perf_counter() - started
    overrides = QUICK if context.quick else ()
    rounds = QUICK_ROUNDS if context.quick else ROUNDS
    rows = []
    for r in range(rounds):
        study_s, configs = _study(context.work / f"round-{r}", r, overrides, context)
        context.echo(f"  round {r}: study {study_s:.1f} s, {len(configs)} trials; now the same trials in this process")
        plain_s = _plain(configs, context.data_root)
        rows.append((r, len(configs), study_s, plain_s, study_s / plain_s))
    ratio = statistics.median(r[4] for r in rows)
    config = load_study_config(None, overrides)
    concurrent = config.search.max_concurrent or trial_slots(config)
    table = Table("Wall time of the study and of its trials run plainly", ("round", "trials", "study s", "plain s",
                                                                         "ratio"), rows)
    details = {"rounds": [dict(zip(table.header, r)) for r in rows], "ray_start_s": ray_start_s,
               "overrides": list(overrides), "max_concurrent": concurrent,
               "cpus_per_trial": config.resources.cpus_per_trial, "plain_torch_threads": torch.get_num_threads()}
    changes = f", with --set {' '.join(overrides)}" if overrides else ""
    return Result(f"{ratio:.2f}× ({rows[0][1]} trials)", ratio <= TARGET, {"study ÷ plain": ratio}, [table], details,
                  NOTES.format(changes=changes, rounds=rounds, threads=torch.get_num_threads(),
                               concurrent=concurrent, cpus=config.resources.cpus_per_trial))


def _study(folder: Path, r: int, overrides: tuple[str, ...], context: Context) -> tuple[float, list[dict[str, Any]]]:
    """Run the default study in `folder`: its wall time and its trials' configs."""
    folder.mkdir(parents=True)
    config = load_study_config(None, [*overrides, f"name=bench-study-{r}", f"tracking_uri=sqlite:///{folder}/mlflow.db",
                                      f"storage={folder / 'ray_results'}"])
    client_for(config.tracking_uri).search_experiments()  # a new store's tables are made once, before the clock
    start = time.perf_counter()
    run_study(config, echo=lambda line: None)
    elapsed = time.perf_counter() - start
    experiments = sorted(p for p in study_folder(config).iterdir() if p.is_dir())
    return elapsed, [c for path in experiments for c in ExperimentAnalysis(str(path)).get_all_configs().values()]


def _plain(configs: list[dict[str, Any]], data_root: str | None) -> float:
    """Seconds to load the data once and train each of the trial configs in turn, in this process."""
    start = time.perf_counter()
    settings = [train_config(c) for c in configs]
    data = load_dataset(settings[0].dataset, data_root or settings[0].data_root)
    for setting in settings:
        train(setting, data=data)
    return time.perf_counter() - start
