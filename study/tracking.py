"""MLflow tracking of a study: one Ray Tune callback on the driver writes every trial as a nested MLflow run, from a
thread of its own."""

from __future__ import annotations

import math
import numbers
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.store.tracking import SEARCH_MAX_RESULTS_THRESHOLD as MAX_RESULTS
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import MAX_ENTITIES_PER_BATCH, MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH
from ray.tune import Callback, Result
from ray.tune.experiment import Trial

from study.choice import fmt_setting
from study.searcher import label_set_key, stage_of
from study.outage import Outage, fail_fast
from trainables import TRAIN_KEY, own_values, train_config
from trainers.methods import checked_params

PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "ray_trial_id"
_NOT_METRICS = {"timestamp", "pid", "done", "training_iteration", "time_this_iter_s", "time_total_s",
                "time_since_restore", "iterations_since_restore", "step", "chance", "total_steps"}
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*")  # "ValueError: ..." in a traceback
_LABEL_SET_FIELDS = ("noise", "noise_rate", "split")  # a trial's label set and stage: the console names them
COLLAPSE_MARGIN = 1.5  # a trial whose last val_acc is at most this many times chance has collapsed
REST_S = 1.0  # the writer's pause after it wrote: a trial's results of meanwhile go in one request, and MLflow lags
_NEXT = ".+"  # a tag key's end: numbered when written (MlflowTracker.add_tag)


def client_for(tracking_uri: str) -> MlflowClient:
    """An MLflow client for `tracking_uri`."""
    return MlflowClient(tracking_uri=tracking_uri)


def trial_params(config: Mapping[str, Any]) -> dict[str, str]:
    """A trial's settings as flat MLflow params: the TrainConfig fields, every hyperparameter of the method (the
    method's defaults where the config sets none; a schedule as SHAPE:FROM:TO[:AT[:B]]) and search-space extras.

    A config without the base settings (TRAIN_KEY) gives just its own values (a grid cell's unpacked). probe_per_class
    is the number the trial used (a None resolved by its method).
    """
    params: dict[str, Any] = {}
    if TRAIN_KEY in config:
        resolved = train_config(config)
        train = resolved.to_dict() | {"probe_per_class": resolved.resolved_probe_per_class()}
        params = {k: v for k, v in train.items() if k != "method_params"}
        # the method's defaults and settings, a schedule in its compact form (linear:0.5:0.2); DM's lam and beta not
        # where psi and rho stand in for them
        params |= checked_params(resolved.method, resolved.method_params)
    params |= own_values(config)
    return {k: str(v) for k, v in params.items()}


def run_name(tags: Mapping[str, str], config: Mapping[str, Any], index: int) -> str:
    """The MLflow run name of a trial with `tags` (its stage and label set) and `config`, the `index`th (from 1) trial
    run of its stage under its parent: "search 0.4 #3", "final 0.4 seed 1"."""
    stage = " ".join(filter(None, (tags.get("stage", "trial"), tags.get("label_set"))))
    if tags.get("stage") == "final" and "seed" in config:
        return f"{stage} seed {config['seed']}"
    return f"{stage} #{index}"


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
    rewind: bool = False  # the trial goes on from another's state: its next steps are logged, whatever its run has


class MlflowTracker(Callback):
    """Logs each trial as an MLflow run under `parent_run_id`: params once, each evaluation's metrics at its step.

    Tune's callbacks queue their writes; a thread of the tracker's own writes them, oldest first, at most every
    REST_S seconds, a trial's writes that queued up meanwhile in one request; a trial's start (its run) and end are
    written at once, with every write queued before them, on Tune's thread. A trial keeps its run across a retry and
    across `Tuner.restore` (found again by its trial id), so a resumed study has one run per trial; a step that a
    trial restored from an older checkpoint reports again is logged once, the first time. While MLflow does not
    answer, writes wait in order and are retried at the outage's pace; `complete` then writes them, and whatever
    Tune recorded that MLflow lacks, before a stage ends.
    """

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str, tags: Mapping[str, str],
                 echo: Callable[[str], None] = print, outage: Outage | None = None, label: str = "") -> None:
        self.tracking_uri, self.experiment_id, self.parent_run_id = tracking_uri, experiment_id, parent_run_id
        self.tags, self.echo, self.label = dict(tags), echo, label  # label: the console's name of its label set
        self.outage = outage or Outage(tracking_uri, echo)
        self._client: MlflowClient | None = None
        self._runs: dict[str, str] = {}  # trial id → run id
        self._logged: dict[str, int] = {}  # run id → the last step logged
        self._with_params: set[str] = set()  # run ids
        self._configs: dict[str, Mapping[str, Any]] = {}  # trial id → its config, known from its start (for its name)
        self._created: set[str] = set()  # trial ids: their run created by this tracker
        self._restored: set[str] = set()  # trial ids: started from a checkpoint (what came before it is not seen here)
        self._ended: set[str] = set()  # trial ids: their end written by this tracker
        self._last: dict[str, dict] = {}  # trial id → its last result
        self._pending: deque[_Write] = deque()
        self._wake = threading.Condition()  # guards _pending, _writer, _closing and _error
        self._writer: threading.Thread | None = None
        self._closing = False
        self._rest_until = 0.0  # the writer's next try, not before (time.monotonic)
        self._error: Exception | None = None  # what stopped the writer: MLflow refused a write

    def __getstate__(self) -> dict[str, Any]:  # pickled into Tune's experiment state: the settings, nothing live
        return {"tracking_uri": self.tracking_uri, "experiment_id": self.experiment_id,
                "parent_run_id": self.parent_run_id, "tags": self.tags, "label": self.label}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = client_for(self.tracking_uri)
        return self._client

    def run_id(self, trial_id: str) -> str:
        """The MLflow run of trial `trial_id`, created with its tags the first time (not thread-safe: call it after
        `complete`)."""
        if trial_id not in self._runs:
            found = self.client.search_runs(
                [self.experiment_id],
                f"tags.{TRIAL_TAG} = '{trial_id}' and tags.`{PARENT_TAG}` = '{self.parent_run_id}'",
            )
            if found:
                self._runs[trial_id] = found[0].info.run_id
                self._logged[found[0].info.run_id] = _last_step(found[0])
                if found[0].data.params:
                    self._with_params.add(found[0].info.run_id)
            else:
                stage = f" and tags.stage = '{self.tags['stage']}'" if "stage" in self.tags else ""
                before = self.client.search_runs([self.experiment_id],
                                                 f"tags.`{PARENT_TAG}` = '{self.parent_run_id}'{stage}",
                                                 max_results=MAX_RESULTS)
                name = run_name(self.tags, self._configs.get(trial_id, {}), len(before) + 1)
                tags = {**self.tags, PARENT_TAG: self.parent_run_id, TRIAL_TAG: trial_id, "mlflow.runName": name}
                self._runs[trial_id] = self.client.create_run(self.experiment_id, tags=tags).info.run_id
                self._created.add(trial_id)
        return self._runs[trial_id]

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._configs[trial.trial_id] = trial.config
        if trial.checkpoint is not None:
            self._restored.add(trial.trial_id)
        self._write(_Write(trial.trial_id), now=True)

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any) -> None:
        now, step = int(time.time() * 1000), int(result.get("step", iteration))
        metrics = tuple(Metric(k, v, now, step) for k, v in metric_values(result).items())
        self._write(_Write(trial.trial_id, result.get("config") or trial.config, step, metrics))
        self._last[trial.trial_id] = result

    def add_tag(self, trial_id: str, prefix: str, value: str, *, rewind: bool = False) -> None:
        """Add the tag <prefix>.<n> to trial `trial_id`'s run (queued with its other writes), n one more than the
        run's last such tag when it is written: numbered from MLflow's record, so a resumed study numbers on.
        `rewind`: the trial now goes on from another trial's state (PBT), so its next steps are logged even where
        they are not past the last one logged (as steps replayed from its own older checkpoint are not)."""
        self._write(_Write(trial_id, tags=(RunTag(prefix + _NEXT, value[:5000]),), rewind=rewind))

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        reason = error_reason(trial.error_file)
        self._write(_Write(trial.trial_id, trial.config, tags=(RunTag("retries", str(trial.num_failures)),)))
        self.echo(f"  {self.tags.get('stage', 'trial')} {trial.trial_id} retried from its last checkpoint: {reason}")

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        result = self._last.get(trial.trial_id) or trial.last_result or {}
        tags = end_tags(result)
        shown = {k: v for k, v in own_values(trial.config).items() if k not in _LABEL_SET_FIELDS}
        scores = " ".join(f"{k} {result[k]:.4f}" for k in ("val_acc", "test_acc") if k in result)
        flags = "".join(f" [{t.key.replace('_', ' ')}]" for t in tags)
        label = f"{self.label}, " if self.label else ""
        self.echo(f"  {self.tags.get('stage', 'trial')} {trial.trial_id} {label}{fmt_setting(shown)}: {scores}{flags}")
        self._write(_Write(trial.trial_id, result.get("config") or trial.config, tags=tags, status="FINISHED"),
                    now=True)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        reason = error_reason(trial.error_file)
        self.echo(f"  {self.tags.get('stage', 'trial')} {trial.trial_id} failed: {reason}")
        self._write(_Write(trial.trial_id, trial.config, tags=(RunTag("error", reason[:5000]),), status="FAILED"),
                    now=True)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Stop the writer thread and try once to write what waits, so that nothing is written after Tune's `fit`
        returns: what is left waits for `complete` (in a tracker that Tune restored, which the driver does not
        complete, Tune's record of it is written by the stage's `complete`)."""
        self._write_now()

    def complete(self, results: Iterable[Result]) -> None:
        """Stop the writer thread, then write the writes that wait, and what Tune recorded of `results`' trials that
        MLflow lacks (trials this tracker did not see whole: of an earlier session that stopped, or was killed),
        retrying for up to the outage's patience while MLflow does not answer; TrackingUnavailable after."""
        results = list(results)
        self._stop_writer()
        self.outage.patiently(lambda: (self._flush(), self._fill(results)), writes=0)

    def _stop_writer(self) -> None:
        """Stop the writer thread, if one runs, once its current try ends; the writes that wait stay queued."""
        with self._wake:
            self._closing, self._error, writer = True, None, self._writer
            self._wake.notify()
        if writer is not None:
            writer.join()
        self._closing = False

    def _write(self, write: _Write, *, now: bool = False) -> None:
        """Queue `write` for the writer thread, started if none runs; `now` (a trial's start or end, which a study
        resumed after the driver was killed must find in MLflow as Tune saw it): first write it, and every write
        queued before it, on this thread. Raise what MLflow refused, if it refused a write."""
        with self._wake:
            self._pending.append(write)
            if self._error is not None:
                error, self._error = self._error, None
                raise error
        if now:
            self._write_now()
        with self._wake:
            if self._writer is None and self._pending:
                self._writer = threading.Thread(target=self._drain, name="MlflowTracker", daemon=True)
                self._writer.start()

    def _write_now(self) -> None:
        """Stop the writer thread and write the writes that wait on this thread, in one quick try unless MLflow failed
        to answer moments ago; what is not written stays queued."""
        self._stop_writer()
        if self._pending and time.monotonic() >= self.outage.retry_at:
            self._try()

    def _drain(self) -> None:
        """The writer thread: write what is queued, then rest REST_S seconds (while MLflow does not answer: until the
        outage's retry time), until nothing was queued meanwhile or `complete` takes over."""
        while True:
            with self._wake:
                while not self._closing and time.monotonic() < (until := max(self._rest_until, self.outage.retry_at)):
                    self._wake.wait(until - time.monotonic())
                if not self._pending or self._closing:
                    self._writer = None
                    return
            try:
                self._try()
            except Exception as error:  # MLflow refused a write: raised by the next callback, and by `complete`
                with self._wake:
                    self._error, self._writer = error, None
                return
            self._rest_until = time.monotonic() + REST_S

    def _try(self) -> None:
        """One quick try at writing the writes that wait: a failure because MLflow did not answer is noted (the
        outage says when to try again), any other raised."""
        try:
            with fail_fast():
                self._flush()
        except Exception as error:
            self.outage.failure(error)

    def _flush(self) -> None:
        """Write the writes that wait, oldest first, a trial's in as few requests as MLflow's limits allow; they leave
        the queue once all that were taken together are written."""
        written = 0
        while True:
            with self._wake:
                taken = list(self._pending)
            if not taken:
                break
            for writes in _by_trial(taken):
                self._apply(writes)
            with self._wake:
                for _ in taken:
                    self._pending.popleft()
            written += len(taken)
        if self.outage.since is not None:
            self.outage.waited += written
        self.outage.success()

    def _apply(self, writes: Sequence[_Write]) -> None:
        """Write one trial's `writes` (in order; an end only last): its run, its params once, the metrics of each step
        after the last logged, the tags, and the end."""
        run_id = self.run_id(writes[0].trial_id)
        last, metrics = self._logged.get(run_id, -1), []
        for write in writes:
            last = -1 if write.rewind else last
            if write.metrics and write.step > last:  # else a replay (from an older checkpoint)
                metrics += write.metrics
                last = write.step
        config = next((write.config for write in writes if write.config is not None), None)
        self._log(run_id, config, metrics, self._numbered(run_id, [tag for write in writes for tag in write.tags]))
        self._logged[run_id] = last
        if writes[-1].status is not None:
            self.client.set_terminated(run_id, writes[-1].status)
            self._ended.add(writes[0].trial_id)

    def _numbered(self, run_id: str, tags: list[RunTag]) -> list[RunTag]:
        """`tags` with each <prefix>.+ (`add_tag`'s) given the number after the run's last <prefix>.<n>."""
        if not any(tag.key.endswith(_NEXT) for tag in tags):
            return tags
        last: dict[str, int] = {}
        for key in self.client.get_run(run_id).data.tags:
            prefix, _, n = key.rpartition(".")
            if n.isdigit():
                last[prefix] = max(last.get(prefix, 0), int(n))
        numbered = []
        for tag in tags:
            if tag.key.endswith(_NEXT):
                prefix = tag.key.removesuffix(_NEXT)
                last[prefix] = last.get(prefix, 0) + 1
                tag = RunTag(f"{prefix}.{last[prefix]}", tag.value)
            numbered.append(tag)
        return numbered

    def _log(self, run_id: str, config: Mapping[str, Any] | None, metrics: list[Metric], tags: list[RunTag]) -> None:
        """Log `metrics` and `tags` (the last of a key) to run `run_id`, and the params of `config` (and its seed as
        a tag) if the run has none yet, in as few log_batch requests as MLflow's limits allow."""
        params: list[Param] = []
        if config is not None and run_id not in self._with_params:
            values = trial_params(config)
            params = [Param(k, v[:6000]) for k, v in values.items()]
            tags = [*([RunTag("seed", values["seed"])] if "seed" in values else []), *tags]
        tags = list({tag.key: tag for tag in tags}.values())
        for batch in _batches(metrics, params, tags):
            self.client.log_batch(run_id, *batch)
        if config is not None:
            self._with_params.add(run_id)

    def _fill(self, results: list[Result]) -> None:
        """Write what Tune recorded of each trial in `results` that this tracker did not write whole itself (a trial
        it did not start, or restored from a checkpoint, or did not see end): its run and params, each reported step's
        metrics that its run lacks (a replayed step's first values), and its end, where its run has not ended."""
        for result in results:
            trial_id = result.metrics["trial_id"]
            if trial_id in self._created and trial_id in self._ended and trial_id not in self._restored:
                continue
            self._configs.setdefault(trial_id, result.config)
            rows = _rows(result)
            run_id = self.run_id(trial_id)
            have = {key: {m.step for m in self.client.get_metric_history(run_id, key)}
                    for key in {key for row in rows for key in row["metrics"]}}
            missing = [Metric(key, value, row["timestamp"], row["step"]) for row in rows
                       for key, value in row["metrics"].items() if row["step"] not in have[key]]
            self._log(run_id, result.config, missing, [])
            self._logged[run_id] = max([self._logged.get(run_id, -1), *(row["step"] for row in rows)])
            if self.client.get_run(run_id).info.status not in ("FINISHED", "FAILED", "KILLED"):
                if result.error is not None:
                    end = _Write(trial_id, tags=(RunTag("error", _exception_line(str(result.error))[:5000]),),
                                 status="FAILED")
                else:
                    end = _Write(trial_id, tags=end_tags(result.metrics), status="FINISHED")
                self._apply([end])
            self._ended.add(trial_id)


def _by_trial(writes: Iterable[_Write]) -> list[list[_Write]]:
    """`writes` in groups of one trial's, each in order and closed by an end (a status): a trial's groups, and the
    writes in each, in the order they came."""
    groups: list[list[_Write]] = []
    open_groups: dict[str, list[_Write]] = {}
    for write in writes:
        if write.trial_id not in open_groups:
            groups.append(open_groups.setdefault(write.trial_id, []))
        open_groups[write.trial_id].append(write)
        if write.status is not None:
            del open_groups[write.trial_id]
    return groups


def _batches(metrics: list[Metric], params: list[Param], tags: list[RunTag]
             ) -> Iterator[tuple[list[Metric], list[Param], list[RunTag]]]:
    """`metrics`, `params` and `tags` cut into the fewest log_batch requests within MLflow's limits per request."""
    while metrics or params or tags:
        batch_params, batch_tags = params[:MAX_PARAMS_TAGS_PER_BATCH], tags[:MAX_PARAMS_TAGS_PER_BATCH]
        batch_metrics = metrics[:min(MAX_METRICS_PER_BATCH,
                                     MAX_ENTITIES_PER_BATCH - len(batch_params) - len(batch_tags))]
        yield batch_metrics, batch_params, batch_tags
        metrics, params, tags = metrics[len(batch_metrics):], params[len(batch_params):], tags[len(batch_tags):]


def _last_step(run: Run) -> int:
    """The last step at which `run` has a metric (-1: none): MLflow keeps each metric's value at its last step with
    the run."""
    return max((metric.step for metric in run.data.to_proto().metrics), default=-1)


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


class ByLabelSet(Callback):
    """Passes each trial's events to the tracker of the trial's label set and stage, and the other events to every
    tracker: the study's one Tuner's trials logged under their own label set's run."""

    HOOKS = ("setup", "on_step_begin", "on_step_end", "on_trial_start", "on_trial_restore", "on_trial_save",
             "on_trial_result", "on_trial_complete", "on_trial_recover", "on_trial_error", "on_checkpoint",
             "on_experiment_end")

    def __init__(self, trackers: Mapping[tuple[str, str], MlflowTracker], several: bool = False) -> None:
        self.trackers = dict(trackers)  # by (LabelSet.key, stage)
        self.several = several  # the study has several noise kinds

    def key(self, config: Mapping[str, Any]) -> str:
        """The label set of a trial's config (its base settings overridden by its own values), as LabelSet.key."""
        return label_set_key(config, self.several)

    def _forward(self, hook: str, info: dict[str, Any]) -> None:
        trial = info.get("trial")
        if trial is None:
            trackers = self.trackers.values()
        else:
            trackers = [self.trackers[self.key(trial.config), stage_of(trial.config)]]
        for tracker in trackers:
            getattr(tracker, hook)(**info)


for _hook in ByLabelSet.HOOKS:
    setattr(ByLabelSet, _hook, lambda self, _hook=_hook, **info: self._forward(_hook, info))
