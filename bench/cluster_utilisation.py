"""Cluster utilisation: how busy a study keeps the trial slots of a two-node Ray cluster, with one Tuner for the whole
study (this code) and with the design before it (commit 1ab4c1b: a Tuner per label set's search, then one for every
final retrain) side by side on the same cluster (issue 15)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from bench._registry import Context, Result, Table, register_benchmark
from study.config import load_study_config
from study.driver import connect, run_study, trial_slots
from study.local_cluster import local_cluster
from study.tracking import TRIAL_TAG, client_for

TARGET = 0.85  # the new design's utilisation, at least
OLD_DESIGN = "1ab4c1b"  # the last commit with a Tuner per stage
NODE_CPUS = (4, 4)  # the head's, then the worker's; a CPU per trial: 8 trial slots
CPUS_PER_TRIAL = 1
STUDY = ("noise_rates=[0.0,0.2,0.4,0.6]", "search.num_samples=6", "final.n_seeds=2", "train.epochs=20",
         f"resources.cpus_per_trial={CPUS_PER_TRIAL}")
QUICK = ("noise_rates=[0.4]", "search.num_samples=2", "final.n_seeds=1", "train.epochs=1",
         f"resources.cpus_per_trial={CPUS_PER_TRIAL}")
NEW, OLD = "one Tuner (this code)", f"a Tuner per stage ({OLD_DESIGN})"
ROOT = Path(__file__).resolve().parents[1]  # this code's checkout
NOTES = (
    "A study of {rates} ({samples} search trials each, {finals} final retrains, {epochs} epochs of the MLP on digits, "
    "{cpus:g} CPU per trial) {where}. Utilisation = the trials' busy time summed ÷ (trial slots × the time from "
    "the first trial's start to the last one's end); a trial is busy from its MLflow run's start_time to its "
    "end_time (the study's tracker makes the run when Tune has started the trial's actor and ends it when Tune has "
    "its last result), each design writing its own SQLite store. Wall time: the `study run` command's, "
    "Ray's start excluded (the cluster is up before)."
)
WHERE = ("run by `python -m study run --no-report --address` on a local two-node Ray cluster (`ray start --head` and "
         "`ray start --address`, {node_cpus} CPUs, {slots} trial slots), first with this code (search.max_concurrent "
         "null: every slot), then with commit {old} (a git worktree of it; search.max_concurrent={slots}, its default "
         "being 2), one after the other on the same cluster")
QUICK_WHERE = "run in this process on the local Ray ({slots} trial slots), this code only"


@register_benchmark("cluster_utilisation", title="Cluster utilisation", figure=None,
                    target=f"≥ {TARGET:.0%} of the trial slots busy (one Tuner, two-node cluster)")
def cluster_utilisation(context: Context) -> Result:
    """Each design's utilisation of the trial slots and its wall time; the target judged on this code's."""
    overrides = QUICK if context.quick else STUDY
    config = load_study_config(None, overrides)
    if context.quick:
        connect(None)
        slots = trial_slots(config)
        designs = [_measure(NEW, _in_process, context.work / "new", overrides, slots)]
        where = QUICK_WHERE.format(slots=slots)
    else:
        slots = sum(NODE_CPUS) // CPUS_PER_TRIAL
        with local_cluster(NODE_CPUS) as address, _checkout(OLD_DESIGN, context.work / "old") as old:
            context.echo(f"  cluster at {address}: {slots} trial slots; {NEW}")
            designs = [_measure(NEW, _command(ROOT, address), context.work / "new", overrides, slots)]
            context.echo(f"  {designs[0]['utilisation']:.1%}, {designs[0]['wall s']:.0f} s; now {OLD}")
            designs.append(_measure(OLD, _command(old, address), context.work / "old-run",
                                    (*overrides, f"search.max_concurrent={slots}"), slots))
        where = WHERE.format(node_cpus=" + ".join(map(str, NODE_CPUS)), slots=slots, old=OLD_DESIGN)
    header = ("design", "trials", "slots", "wall s", "span s", "busy s", "utilisation", "peak", "none running s")
    table = Table("The trial slots' utilisation, each design's study on the same cluster", header,
                  [tuple(d[k] for k in header) for d in designs])
    new = designs[0]["utilisation"]
    ratios = {f"{d['design']} utilisation": d["utilisation"] for d in designs}
    summary = " against ".join(f"{d['utilisation']:.0%} ({d['design']}, {d['wall s']:.0f} s)" for d in designs)
    if len(designs) > 1:
        ratios["wall time old ÷ new"] = designs[1]["wall s"] / designs[0]["wall s"]
    notes = NOTES.format(rates=f"{len(config.noise_rates)} noise rate(s)", samples=config.search.num_samples,
                         finals=config.final.n_seeds, epochs=config.train.epochs,
                         cpus=config.resources.cpus_per_trial, where=where)
    return Result(summary, new >= TARGET, ratios, [table], {"designs": designs, "overrides": list(overrides)}, notes)


def _measure(design: str, run: Callable[[list[str]], None], folder: Path, overrides: tuple[str, ...],
             slots: int) -> dict[str, Any]:
    """Run the study (`run` given its overrides) in `folder`: its wall time and its trials' occupancy of `slots`."""
    folder.mkdir(parents=True)
    uri = f"sqlite:///{folder}/mlflow.db"
    client_for(uri).search_experiments()  # a new store's tables are made once, before the clock
    start = time.perf_counter()
    run([*overrides, "name=utilisation", f"tracking_uri={uri}", f"storage={folder / 'ray_results'}"])
    wall = time.perf_counter() - start
    return {"design": design, "slots": slots, "wall s": wall, **occupancy(trial_spans(uri, "utilisation"), slots)}


def trial_spans(tracking_uri: str, name: str) -> list[tuple[float, float]]:
    """Each trial's (start, end) by its MLflow run in experiment `name`, in seconds from the first start."""
    client = client_for(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    runs = [r for r in client.search_runs([experiment.experiment_id], max_results=10_000) if TRIAL_TAG in r.data.tags]
    if any(r.info.end_time is None for r in runs):
        raise RuntimeError(f"a trial's MLflow run in {tracking_uri} has no end")
    first = min(r.info.start_time for r in runs)
    return sorted(((r.info.start_time - first) / 1000, (r.info.end_time - first) / 1000) for r in runs)


def occupancy(spans: list[tuple[float, float]], slots: int) -> dict[str, Any]:
    """The trials' busy time, the span from the first start to the last end, utilisation (busy ÷ (slots × span)),
    the most trials running at once, and the time within the span with none running."""
    start, end = spans[0][0], max(e for _, e in spans)
    busy = sum(e - s for s, e in spans)
    running = peak = 0
    idle, since = 0.0, start
    for moment, change in sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans]):  # ends first at a tie
        if running == 0:
            idle += moment - since
        running += change
        peak = max(peak, running)
        since = moment
    return {"trials": len(spans), "span s": end - start, "busy s": busy, "utilisation": busy / (slots * (end - start)),
            "peak": peak, "none running s": idle, "spans": spans}


def _in_process(overrides: list[str]) -> None:
    run_study(load_study_config(None, overrides), echo=lambda line: None)


def _command(checkout: Path, address: str) -> Callable[[list[str]], None]:
    """`python -m study run --no-report --address ADDRESS` of the code at `checkout` (its folder the driver's working
    directory, so that Ray's workers import that code too)."""

    def run(overrides: list[str]) -> None:
        command = [sys.executable, "-m", "study", "run", "--no-report", "--address", address,
                   *(arg for o in overrides for arg in ("--set", o))]
        done = subprocess.run(command, cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)},
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} in {checkout}: exit {done.returncode}\n{done.stderr[-3000:]}")

    return run


@contextlib.contextmanager
def _checkout(commit: str, path: Path) -> Iterator[Path]:
    """A git worktree of this repository at `commit` (detached) in `path`, removed afterwards."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit], check=True,
                   capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], capture_output=True)
