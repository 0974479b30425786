"""MLflow tracking of a study: one Ray Tune callback on the driver writes every trial as a nested MLflow run."""

from __future__ import annotations

import math
import numbers
import re
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.tracking import MlflowClient
from ray.tune import Callback, Result
from ray.tune.experiment import Trial

from study.outage import Outage, fail_fast
from trainables import TRAIN_KEY, own_values, train_config

PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "ray_trial_id"
_NOT_METRICS = {"timestamp", "pid", "done", "training_iteration", "time_this_iter_s", "time_total_s",
                "time_since_restore", "iterations_since_restore", "step", "chance", "total_steps"}
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*")  # "ValueError: ..." in a traceback
COLLAPSE_MARGIN = 1.5  # a trial whose last val_acc is at most this many times chance has collapsed
_BATCH = 1000  # metrics in one log_batch: MLflow's limit


def client_for(tracking_uri: str) -> MlflowClient:
    """An MLflow client for `tracking_uri`."""
    return MlflowClient(tracking_uri=tracking_uri)


def trial_params(config: Mapping[str, Any]) -> dict[str, str]:
    """A trial's settings as flat MLflow params: the TrainConfig fields, method hyperparameters and search-space extras.

    A config without the base settings (TRAIN_KEY) gives just its own values (a grid cell's unpacked). probe_per_class
    is the number the trial used (a None resolved by its method).
    """
    params: dict[str, Any] = {}
    if TRAIN_KEY in config:
        resolved = train_config(config)
        train = resolved.to_dict() | {"probe_per_class": resolved.resolved_probe_per_class()}
        params = {k: v for k, v in train.items() if k != "method_params"} | train["method_params"]
    params |= own_values(config)
    return {k: str(v) for k, v in params.items()}


@dataclass(frozen=True)
class _Write:
    """One write of a trial's to MLflow: its run (created if new; params once `config` is known), then its metrics at
    `step`, its `tags`, and its end (a `status`)."""

    trial_id: str
    config: Mapping[str, Any] | None = None
    step: int | None = None
    metrics: tuple[Metric, ...] = ()
    tags: tuple[RunTag, ...] = ()
    status: str | None = None  # FINISHED or FAILED: the trial's end


class MlflowTracker(Callback):
    """Logs each trial as an MLflow run under `parent_run_id`: params once, each evaluation's metrics in one batch.

    A trial keeps its run across a retry and across `Tuner.restore` (found again by its trial id), so a resumed study
    has one run per trial; a step that a trial restored from an older checkpoint reports again is logged once, the
    first time. While MLflow does not answer, writes wait in order in a buffer and are retried (never blocking Tune for
    long); `complete` then writes them, and whatever Tune recorded that MLflow lacks, before a stage ends.
    """

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str, tags: Mapping[str, str],
                 echo: Callable[[str], None] = print, outage: Outage | None = None) -> None:
        self.tracking_uri, self.experiment_id, self.parent_run_id = tracking_uri, experiment_id, parent_run_id
        self.tags, self.echo = dict(tags), echo
        self.__dict__.update(_unsaved())
        self._outage = outage

    def __getstate__(self) -> dict[str, Any]:  # pickled into Tune's experiment state: no client, caches or buffer
        return {**self.__dict__, **_unsaved(), "echo": print}

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = client_for(self.tracking_uri)
        return self._client

    @property
    def outage(self) -> Outage:
        if self._outage is None:
            self._outage = Outage(self.tracking_uri, self.echo)
        return self._outage

    def run_id(self, trial_id: str, config: Mapping[str, Any] | None = None) -> str:
        """The MLflow run of trial `trial_id`, created with its tags the first time; params are logged from the first
        result's config (what the trial ran with), or from the trial's config when it ends without a result."""
        if trial_id not in self._runs:
            found = self.client.search_runs(
                [self.experiment_id],
                f"tags.{TRIAL_TAG} = '{trial_id}' and tags.`{PARENT_TAG}` = '{self.parent_run_id}'",
            )
            if found:
                self._runs[trial_id] = found[0].info.run_id
                self._logged[found[0].info.run_id] = self._last_step(found[0])
            else:
                tags = {**self.tags, PARENT_TAG: self.parent_run_id, TRIAL_TAG: trial_id,
                        "mlflow.runName": f"{self.tags.get('stage', 'trial')}-{trial_id}"}
                self._runs[trial_id] = self.client.create_run(self.experiment_id, tags=tags).info.run_id
                self._created.add(trial_id)
        run_id = self._runs[trial_id]
        if config is not None and run_id not in self._with_params:
            self._log_params(run_id, config)
        return run_id

    def _last_step(self, run: Run) -> int:
        """The last step at which `run` has a metric (-1: none)."""
        return max((m.step for key in run.data.metrics for m in self.client.get_metric_history(run.info.run_id, key)),
                   default=-1)

    def _log_params(self, run_id: str, config: Mapping[str, Any]) -> None:
        if not self.client.get_run(run_id).data.params:  # a resumed trial's run has them already
            params = trial_params(config)
            tags = [RunTag("seed", params["seed"])] if "seed" in params else []
            self.client.log_batch(run_id, params=[Param(k, v[:6000]) for k, v in params.items()], tags=tags)
        self._with_params.add(run_id)

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._write(_Write(trial.trial_id))

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any) -> None:
        now, step = int(time.time() * 1000), int(result.get("step", iteration))
        metrics = tuple(Metric(k, v, now, step) for k, v in metric_values(result).items())
        self._write(_Write(trial.trial_id, result.get("config") or trial.config, step, metrics))
        self._last[trial.trial_id] = result

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        reason = error_reason(trial.error_file)
        self._write(_Write(trial.trial_id, trial.config, tags=(RunTag("retries", str(trial.num_failures)),)))
        self.echo(f"  {self.tags.get('stage', 'trial')} {trial.trial_id} retried from its last checkpoint: {reason}")

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        result = self._last.get(trial.trial_id) or trial.last_result or {}
        tags = end_tags(result)
        self._write(_Write(trial.trial_id, result.get("config") or trial.config, tags=tags, status="FINISHED"))
        shown = own_values(trial.config)
        scores = " ".join(f"{k} {result[k]:.4f}" for k in ("val_acc", "test_acc") if k in result)
        flags = "".join(f" [{t.key.replace('_', ' ')}]" for t in tags)
        self.echo(f"  {self.tags.get('stage', 'trial')} {trial.trial_id} {_fmt(shown)}: {scores}{flags}")

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        reason = error_reason(trial.error_file)
        self._write(_Write(trial.trial_id, trial.config, tags=(RunTag("error", reason[:5000]),), status="FAILED"))
        self.echo(f"  {self.tags.get('stage', 'trial')} {trial.trial_id} failed: {reason}")

    def complete(self, results: Iterable[Result]) -> None:
        """Write the writes that wait, then what Tune recorded of `results`' trials that MLflow lacks (trials this
        tracker did not see whole: of an earlier session that stopped, or was killed), retrying for up to the
        outage's patience while MLflow does not answer; TrackingUnavailable after."""
        results = list(results)
        self.outage.patiently(lambda: (self._flush(), self._fill(results)), writes=0)

    def _write(self, write: _Write) -> None:
        """Queue `write` behind the writes that wait, and write them all unless MLflow failed to answer moments ago."""
        self._pending.append(write)
        if time.monotonic() >= self.outage.retry_at:
            try:
                with fail_fast():
                    self._flush()
            except Exception as error:
                self.outage.failure(error)
        if self._pending and self._pending[-1] is write:
            self.outage.waited += 1

    def _flush(self) -> None:
        """Write the writes that wait, oldest first; stop at the first that fails, which stays first."""
        while self._pending:
            self._apply(self._pending[0])
            self._pending.popleft()
        self.outage.success()

    def _apply(self, write: _Write) -> None:
        run_id = self.run_id(write.trial_id, write.config)
        if write.metrics and write.step > self._logged.get(run_id, -1):  # else a replay (from an older checkpoint)
            self.client.log_batch(run_id, metrics=list(write.metrics))
            self._logged[run_id] = write.step
        if write.tags:
            self.client.log_batch(run_id, tags=list(write.tags))
        if write.status is not None:
            self.client.set_terminated(run_id, write.status)
            self._ended.add(write.trial_id)

    def _fill(self, results: list[Result]) -> None:
        """Write what Tune recorded of each trial in `results` that this tracker did not write whole itself (a trial
        it did not start, or did not see end): its run and params, each reported step's metrics that its run lacks
        (a replayed step's first values), and its end, where its run has not ended."""
        for result in results:
            trial_id = result.metrics["trial_id"]
            if trial_id in self._created and trial_id in self._ended:
                continue
            rows = _rows(result)
            run_id = self.run_id(trial_id, result.config)
            have = {key: {m.step for m in self.client.get_metric_history(run_id, key)}
                    for key in {key for row in rows for key in row["metrics"]}}
            missing = [Metric(key, value, row["timestamp"], row["step"]) for row in rows
                       for key, value in row["metrics"].items() if row["step"] not in have[key]]
            for start in range(0, len(missing), _BATCH):
                self.client.log_batch(run_id, metrics=missing[start:start + _BATCH])
            self._logged[run_id] = max([self._logged.get(run_id, -1), *(row["step"] for row in rows)])
            if self.client.get_run(run_id).info.status not in ("FINISHED", "FAILED", "KILLED"):
                if result.error is not None:
                    end = _Write(trial_id, tags=(RunTag("error", _exception_line(str(result.error))[:5000]),),
                                 status="FAILED")
                else:
                    end = _Write(trial_id, tags=end_tags(result.metrics), status="FINISHED")
                self._apply(end)
            self._ended.add(trial_id)


def _unsaved() -> dict[str, Any]:
    """A tracker's attributes that are not pickled with it: its client, caches, outage and the writes that wait.
    `_logged`: run id → the last step logged; `_created`, `_ended`: the trials whose run it created, ended."""
    return {"_client": None, "_outage": None, "_runs": {}, "_with_params": set(), "_last": {}, "_pending": deque(),
            "_logged": {}, "_created": set(), "_ended": set()}


def metric_values(result: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of a Tune result (or a row of its dataframe) that are metrics: not Tune's bookkeeping, not
    the config."""
    return {k: float(v) for k, v in result.items()
            if k not in _NOT_METRICS and not k.startswith("config/") and isinstance(v, numbers.Real)
            and not isinstance(v, (bool, np.bool_)) and math.isfinite(v)}


def end_tags(result: Mapping[str, Any]) -> tuple[RunTag, ...]:
    """The tags of a trial that ended with `result`: early_stopped (before its last step), collapsed (near chance)."""
    tags = []
    if result.get("step", 0) < result.get("total_steps", 0):
        tags.append(RunTag("early_stopped", "true"))
    accuracy = result.get("val_acc", result.get("test_acc"))
    if accuracy is not None and accuracy <= COLLAPSE_MARGIN * result.get("chance", 0):
        tags.append(RunTag("collapsed", "true"))
    return tuple(tags)


def _rows(result: Result) -> list[dict[str, Any]]:
    """What a trial reported, as Tune recorded it: each result's step, time (ms) and metrics, a step once."""
    frame = result.metrics_dataframe
    rows: dict[int, dict[str, Any]] = {}
    for record in ([] if frame is None else frame.to_dict("records")):
        step = int(record.get("step", record["training_iteration"]))
        rows.setdefault(step, {"step": step, "timestamp": int(record["timestamp"]) * 1000,
                               "metrics": metric_values(record)})
    return list(rows.values())


def error_reason(error_file: str | None) -> str:
    """The exception line of the last failure in a Tune trial's error file ("FloatingPointError: ..."), else its last
    line, or what is known."""
    try:
        return _exception_line(Path(error_file).read_text(errors="replace")) or "unknown (empty error file)"
    except (OSError, TypeError):
        return f"unknown (error file {error_file!r} unreadable)"


def _exception_line(text: str) -> str:
    """The exception line of the last failure in Tune's error `text` (or a traceback), else its last line ("" if it
    has none)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if line.startswith("Failure # ")]  # Tune appends each failure
    lines = lines[starts[-1] + 1:] if starts else lines
    found = [line for line in lines if _EXCEPTION.match(line)]
    return (found or lines or [""])[-1]


def _fmt(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


class ByNoiseRate(Callback):
    """Passes each trial's events to the tracker of the trial's noise rate, and the other events to every tracker: one
    Tuner's trials (the final retrains of every rate) logged under their own rate's run."""

    HOOKS = ("setup", "on_step_begin", "on_step_end", "on_trial_start", "on_trial_restore", "on_trial_save",
             "on_trial_result", "on_trial_complete", "on_trial_recover", "on_trial_error", "on_checkpoint",
             "on_experiment_end")

    def __init__(self, trackers: Mapping[str, MlflowTracker]) -> None:
        self.trackers = dict(trackers)  # by noise rate, formatted as `key` gives it

    @staticmethod
    def key(config: Mapping[str, Any]) -> str:
        """The noise rate of a trial's config (its base settings overridden by its own values), as "0.2"."""
        return f"{train_config(config).noise_rate:g}"

    def _forward(self, hook: str, info: dict[str, Any]) -> None:
        trial = info.get("trial")
        for tracker in [self.trackers[self.key(trial.config)]] if trial is not None else self.trackers.values():
            getattr(tracker, hook)(**info)


for _hook in ByNoiseRate.HOOKS:
    setattr(ByNoiseRate, _hook, lambda self, _hook=_hook, **info: self._forward(_hook, info))
