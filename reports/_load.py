"""A study's runs read back from MLflow into pandas: the one place reports touch MLflow's read side."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from study.label_sets import LabelSet, label_sets, noise_kinds
from trainers.errors import ConfigError

T = TypeVar("T")
# Per-epoch metrics a report may plot, as the trainers log them.
HISTORY_METRICS = ("fit_acc", "intact_acc", "noisy_fit_acc", "test_acc", "val_acc", "p_clean", "p_noisy",
                   "emphasis_var", "noise_auroc_p", "noise_auroc_weight", "epoch")


@dataclass
class StudyData:
    """One study as MLflow holds it.

    `trials` has one row per trial run (search and final): run_id, stage ("search" | "final"), status, label_set (its
    label set's key, e.g. "0.4" or "cifar10n-worst"), noise (its noise kind), noise_rate (float), seed (int), collapsed
    and early_stopped (bool), every param as its own column (numbers as floats where they parse, e.g. lam, beta) and
    every metric's last value as its own column (val_acc, test_acc, fit_acc, ...). `rates` has one row per label set:
    run_id, label_set, noise, noise_rate, best_val_acc, final_test_acc_mean, final_test_acc_std, trials, and
    best.<param> columns. Both are sorted in the study's label-set order (`ordered_keys`). `config` is the study's
    config as logged (study_config.json).
    """

    name: str
    tracking_uri: str
    experiment_id: str
    study_run_id: str
    config: dict[str, Any]
    study_tags: dict[str, str]
    trials: pd.DataFrame
    rates: pd.DataFrame
    _histories: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    _derived: dict[str, Any] = field(default_factory=dict, repr=False, init=False)  # not carried by replace()

    def derived(self, key: str, make: Callable[[], T]) -> T:
        """`make()`, computed once per StudyData: what several tables and figures share (e.g. a replayed search)."""
        if key not in self._derived:
            self._derived[key] = make()
        return self._derived[key]

    @property
    def grid_search(self) -> bool | None:
        """Whether the study ran a grid (search.mode grid), or None where its config does not say."""
        mode = self.config.get("search", {}).get("mode") if isinstance(self.config, dict) else None
        return None if mode is None else mode == "grid"

    def history(self, run_id: str) -> pd.DataFrame:
        """A trial's per-evaluation metrics: one row per logged step, columns step and HISTORY_METRICS (where logged)."""
        if run_id not in self._histories:
            client = MlflowClient(self.tracking_uri)
            columns: dict[str, pd.Series] = {}
            for key in HISTORY_METRICS:
                points = client.get_metric_history(run_id, key)
                if points:
                    series = pd.Series({p.step: p.value for p in points}, name=key)
                    columns[key] = series[~series.index.duplicated(keep="last")]
            frame = pd.DataFrame(columns).sort_index()
            frame.index.name = "step"
            self._histories[run_id] = frame.reset_index()
        return self._histories[run_id]


def load_study(tracking_uri: str, study: str | None = None) -> StudyData:
    """The study named `study` (its MLflow experiment), or the most recent study in the store."""
    client = MlflowClient(tracking_uri)
    query = "tags.stage = 'study'"
    if study is None:
        found = client.search_runs([e.experiment_id for e in client.search_experiments()], query,
                                   order_by=["attributes.start_time DESC"], max_results=1)
        if not found:
            raise ConfigError("study", None, f"a study in {tracking_uri}: none found (run `study run` first)")
        study_run = found[0]
        experiment = client.get_experiment(study_run.info.experiment_id)
    else:
        experiment = client.get_experiment_by_name(study)
        names = sorted(e.name for e in client.search_experiments() if e.name != "Default")  # MLflow's own
        if experiment is None:
            raise ConfigError("study", study, "one of: " + (", ".join(names) or f"none in {tracking_uri}"))
        runs = client.search_runs([experiment.experiment_id], query, order_by=["attributes.start_time DESC"],
                                  max_results=1)
        if not runs:
            raise ConfigError("study", study, f"an experiment holding a study run; {study!r} holds none")
        study_run = runs[0]
    config = _logged_json(client, study_run.info.run_id, "study_config.json")
    rows = [_row(run) for run in client.search_runs([experiment.experiment_id], max_results=50_000)]
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["label_set"] = label_set_column(frame, config)
    return StudyData(experiment.name, tracking_uri, experiment.experiment_id, study_run.info.run_id, config,
                     dict(study_run.data.tags), _stage(frame, ("search", "final"), config),
                     _stage(frame, ("noise_rate",), config))


def config_label_sets(config: dict[str, Any]) -> tuple[LabelSet, ...]:
    """The label sets a logged study config lists, in its order; () where it names no noise."""
    noise = config.get("noise") if isinstance(config, dict) else None
    return label_sets(noise, config.get("noise_rates") or []) if noise else ()


def label_set_column(frame: pd.DataFrame, config: dict[str, Any] | None = None) -> pd.Series:
    """Each run's label-set key: its label_set tag, or for a run logged without one the key the driver gives
    (`LabelSet(noise, noise_rate, several).key`: noise the run's kind, else symmetric; several where `config` lists
    more than one kind); None for a run without a noise rate."""
    logged = _column(frame, "label_set")
    if logged.notna().all():
        return logged
    noise = config.get("noise") if isinstance(config, dict) else None
    several = noise is not None and len(noise_kinds(noise)) > 1
    derived = [None if pd.isna(rate) else LabelSet(kind if isinstance(kind, str) else "symmetric", rate, several).key
               for kind, rate in zip(_column(frame, "noise"), _rates(frame))]
    return logged.where(logged.notna(), pd.Series(derived, index=frame.index, dtype=object))


def ordered_keys(config: dict[str, Any], *frames: pd.DataFrame) -> list[str]:
    """The label-set keys that hold runs in `frames`, in the study's order: the label sets of `config` as it lists
    them, then any other by noise rate (and key)."""
    known = {ls.key: i for i, ls in enumerate(config_label_sets(config))}
    rates: dict[str, float] = {}
    for frame in frames:
        for key, rate in zip(label_set_column(frame, config), _rates(frame)):
            if isinstance(key, str):
                rates.setdefault(key, math.inf if pd.isna(rate) else rate)
    return sorted(rates, key=lambda key: (known.get(key, len(known)), rates[key], key))


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """`frame[name]`, or None for every row where it has no such column."""
    return frame[name] if name in frame else pd.Series(None, index=frame.index, dtype=object)


def _rates(frame: pd.DataFrame) -> pd.Series:
    """Each run's noise rate as a float (NaN where it has none)."""
    return pd.to_numeric(_column(frame, "noise_rate"), errors="coerce").astype(float)


def _logged_json(client: MlflowClient, run_id: str, path: str) -> dict[str, Any]:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        return json.loads(Path(client.download_artifacts(run_id, path)).read_text())
    except (OSError, mlflow.exceptions.MlflowException, ValueError):
        return {}


def _row(run: Any) -> dict[str, Any]:
    """One run as a flat row: run_id, status, tags that reports use, every param (a float where it is a number) and
    every metric's last value."""
    tags = run.data.tags
    row: dict[str, Any] = {"run_id": run.info.run_id, "status": run.info.status, "start_time": run.info.start_time,
                           "stage": tags.get("stage"), "label_set": tags.get("label_set"),
                           "noise": tags.get("noise", run.data.params.get("noise")),
                           "noise_rate": _number(tags.get("noise_rate")),
                           "collapsed": tags.get("collapsed") == "true",
                           "early_stopped": tags.get("early_stopped") == "true",
                           "parent": tags.get("mlflow.parentRunId")}
    row |= {k: _number(v) for k, v in run.data.params.items() if k not in row}
    row |= {k: v for k, v in run.data.metrics.items() if k not in row}
    return row


def _number(value: str | None) -> Any:
    try:
        return float(value) if value is not None and value not in ("None", "True", "False") else value
    except ValueError:
        return value


def _stage(frame: pd.DataFrame, stages: tuple[str, ...], config: dict[str, Any]) -> pd.DataFrame:
    """The runs of `stages`, sorted (label set in the study's order, stage, run id) so that reports come out the same
    each time."""
    if frame.empty:
        return frame
    part = frame[frame["stage"].isin(stages)].dropna(axis=1, how="all")
    position = {key: i for i, key in enumerate(ordered_keys(config, part))}
    part = part.assign(_order=part["label_set"].map(position) if "label_set" in part else 0)
    return part.sort_values(["_order", "stage", "run_id"], kind="stable").drop(columns="_order").reset_index(drop=True)
