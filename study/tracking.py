"""MLflow tracking of a study: one Ray Tune callback on the driver writes every trial as a nested MLflow run."""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray.tune import Callback
from ray.tune.experiment import Trial

from trainables import TRAIN_KEY, train_config

PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "ray_trial_id"
_NOT_METRICS = {"timestamp", "pid", "done", "training_iteration", "time_this_iter_s", "time_total_s",
                "time_since_restore", "iterations_since_restore", "step", "chance", "total_steps"}
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*")  # "ValueError: ..." in a traceback
COLLAPSE_MARGIN = 1.5  # a trial whose last val_acc is at most this many times chance has collapsed


def client_for(tracking_uri: str) -> MlflowClient:
    """An MLflow client for `tracking_uri`."""
    return MlflowClient(tracking_uri=tracking_uri)


def trial_params(config: Mapping[str, Any]) -> dict[str, str]:
    """A trial's settings as flat MLflow params: the TrainConfig fields, method hyperparameters and search-space extras.

    A config without the base settings (TRAIN_KEY) gives just its own top-level values. probe_per_class is the number
    the trial used (a None resolved by its method).
    """
    params: dict[str, Any] = {}
    if TRAIN_KEY in config:
        resolved = train_config(config)
        train = resolved.to_dict() | {"probe_per_class": resolved.resolved_probe_per_class()}
        params = {k: v for k, v in train.items() if k != "method_params"} | train["method_params"]
    params |= {k: v for k, v in config.items() if k != TRAIN_KEY and not isinstance(v, Mapping)}
    return {k: str(v) for k, v in params.items()}


class MlflowTracker(Callback):
    """Logs each trial as an MLflow run under `parent_run_id`: params once, each evaluation's metrics in one batch.

    A trial keeps its run across `Tuner.restore` (found again by its trial id), so a resumed study has one run per trial.
    """

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str, tags: Mapping[str, str],
                 echo: Callable[[str], None] = print) -> None:
        self.tracking_uri, self.experiment_id, self.parent_run_id = tracking_uri, experiment_id, parent_run_id
        self.tags, self.echo = dict(tags), echo
        self._runs: dict[str, str] = {}
        self._with_params: set[str] = set()
        self._last: dict[str, dict[str, Any]] = {}
        self._client: MlflowClient | None = None

    def __getstate__(self) -> dict[str, Any]:  # pickled into Tune's experiment state: no client, no caches
        return {**self.__dict__, "_client": None, "_runs": {}, "_with_params": set(), "_last": {}, "echo": print}

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = client_for(self.tracking_uri)
        return self._client

    def run_id(self, trial: Trial, config: Mapping[str, Any] | None = None) -> str:
        """The MLflow run of `trial`, created with its tags the first time; params are logged from the first result's
        config (what the trial ran with), or from `trial.config` when a trial ends without a result."""
        if trial.trial_id not in self._runs:
            found = self.client.search_runs(
                [self.experiment_id],
                f"tags.{TRIAL_TAG} = '{trial.trial_id}' and tags.`{PARENT_TAG}` = '{self.parent_run_id}'",
            )
            if found:
                self._runs[trial.trial_id] = found[0].info.run_id
            else:
                tags = {**self.tags, PARENT_TAG: self.parent_run_id, TRIAL_TAG: trial.trial_id,
                        "mlflow.runName": f"{self.tags.get('stage', 'trial')}-{trial.trial_id}"}
                self._runs[trial.trial_id] = self.client.create_run(self.experiment_id, tags=tags).info.run_id
        run_id = self._runs[trial.trial_id]
        if config is not None and run_id not in self._with_params:
            self._log_params(run_id, config)
        return run_id

    def _log_params(self, run_id: str, config: Mapping[str, Any]) -> None:
        if not self.client.get_run(run_id).data.params:  # a resumed trial's run has them already
            params = trial_params(config)
            tags = [RunTag("seed", params["seed"])] if "seed" in params else []
            self.client.log_batch(run_id, params=[Param(k, v[:6000]) for k, v in params.items()], tags=tags)
        self._with_params.add(run_id)

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.run_id(trial)

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any) -> None:
        now, step = int(time.time() * 1000), int(result.get("step", iteration))
        metrics = [Metric(k, float(v), now, step) for k, v in result.items()
                   if k not in _NOT_METRICS and isinstance(v, (int, float)) and not isinstance(v, bool)
                   and math.isfinite(v)]
        self.client.log_batch(self.run_id(trial, result.get("config") or trial.config), metrics=metrics)
        self._last[trial.trial_id] = result

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        result = self._last.get(trial.trial_id) or trial.last_result or {}
        tags = []
        if result.get("step", 0) < result.get("total_steps", 0):
            tags.append(RunTag("early_stopped", "true"))
        accuracy = result.get("val_acc", result.get("test_acc"))
        if accuracy is not None and accuracy <= COLLAPSE_MARGIN * result.get("chance", 0):
            tags.append(RunTag("collapsed", "true"))
        run_id = self.run_id(trial, result.get("config") or trial.config)
        self.client.log_batch(run_id, tags=tags)
        self.client.set_terminated(run_id, "FINISHED")
        shown = {k: v for k, v in trial.config.items() if k != "train"}
        scores = " ".join(f"{k} {result[k]:.4f}" for k in ("val_acc", "test_acc") if k in result)
        flags = "".join(f" [{t.key.replace('_', ' ')}]" for t in tags)
        self.echo(f"  {self.tags.get('stage', 'trial')} {trial.trial_id} {_fmt(shown)}: {scores}{flags}")

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        run_id = self.run_id(trial, trial.config)
        reason = error_reason(trial.error_file)
        self.client.log_batch(run_id, tags=[RunTag("error", reason[:5000])])
        self.client.set_terminated(run_id, "FAILED")
        self.echo(f"  {self.tags.get('stage', 'trial')} {trial.trial_id} failed: {reason}")


def error_reason(error_file: str | None) -> str:
    """The exception line of a Tune trial's error file ("FloatingPointError: ..."), else what is known."""
    try:
        lines = [line.strip() for line in Path(error_file).read_text(errors="replace").splitlines() if line.strip()]
    except (OSError, TypeError):
        return f"unknown (error file {error_file!r} unreadable)"
    found = [line for line in lines if _EXCEPTION.match(line)]
    return (found or lines or ["unknown (empty error file)"])[-1]


def _fmt(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
