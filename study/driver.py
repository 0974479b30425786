"""The study driver: one Tuner for every label set's search and final retrains (see study.searcher), MLflow runs
nested study → label set → trial."""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import ray
from mlflow.entities import Metric, Param
from ray import tune
from ray._private import ray_constants
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter

import search_spaces
from study import choice
from study.config import StudyConfig, study_config_from_dict
from study.outage import DEFAULT_PATIENCE_S, Outage, check_answers
from study.provenance import git_commit
from study.recovery import (KeepStateCopy, SchedulerState, StopOnStorageError, ended_trials, fit,
                            repair_checkpoints, restore_state_copy)
from study.console import Console, Echo
from study.experiment import experiment_tags
from study.retries import retrying_crashes_only
from study.population import LabelSetPBT
from study.scheduler import PerLabelSet
from study.searcher import FINAL, METRIC, SEARCH, Plan, StudySearcher, choose, label_set_key, stage_of, within
from study.stage_ends import Outcomes, StageEnds
from study.label_sets import LabelSet, label_sets, noise_kinds
from study.tracking import PARENT_TAG, TRIAL_TAG, ByLabelSet, MlflowTracker, client_for
from reports import default_tracking_uri
from trainables import TRAIN_KEY, StorageError, cached_dataset, train_trial
from trainers import Dataset, default_data_root
from trainers.datasets import is_own_data
from trainers.splits import check_val_labels
from trainers.errors import ConfigError, DataError
from trainers.human_noise import HUMAN_NOISE_KINDS, paired_labels

STATE_FILE = "study.json"
TRIALS = "trials"  # the Tune experiment of all the study's trials, in its folder


@dataclass
class RateState:
    """What a study knows of one label set (a noise rate): its MLflow run, its best setting and the final
    retrains."""

    run_id: str
    search_done: bool = False
    best: dict[str, Any] = field(default_factory=dict)
    best_val_acc: float = math.nan
    trials: int = 0
    final_test: list[float] = field(default_factory=list)
    final_done: bool = False


@dataclass
class StudyState:
    """The study's own record (study.json in its folder): enough to resume it and to find it in MLflow."""

    config: dict[str, Any]
    tracking_uri: str
    experiment_id: str
    study_run_id: str
    rates: dict[str, RateState] = field(default_factory=dict)  # by LabelSet.key
    finished: bool = False  # every trial run and the MLflow runs closed

    def save(self, folder: Path) -> None:
        """Write study.json in `folder` whole or not at all; a StorageError where it cannot be written."""
        tmp = folder / (STATE_FILE + ".tmp")
        try:
            tmp.write_text(json.dumps({**self.__dict__, "rates": {k: v.__dict__ for k, v in self.rates.items()}},
                                      indent=1))
            tmp.replace(folder / STATE_FILE)
        except OSError as error:
            raise StorageError.of(folder, error) from None

    @classmethod
    def load(cls, folder: Path) -> "StudyState":
        data = json.loads((folder / STATE_FILE).read_text())
        return cls(**{**data, "rates": {k: RateState(**v) for k, v in data["rates"].items()}})


def artifact_location(tracking_uri: str, name: str) -> str | None:
    """Beside a SQLite store, <its folder>/mlartifacts/<name> (MLflow's default is ./mlruns under whatever the cwd
    is); for a server, None: the server's own artifact root."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return (Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts" / name).as_uri()


def study_folder(config: StudyConfig, storage: str | None = None) -> Path:
    """Where a study keeps its state and its Tune experiments: <storage>/<name>."""
    return Path(storage or config.storage or Path.cwd() / "ray_results").expanduser().resolve() / config.name


def connect(address: str | None, *, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at `address`, or start a local Ray bound to 127.0.0.1 without a dashboard, offering
    `num_cpus` CPUs to trials (None: all of this machine's)."""
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")  # we checkpoint each epoch
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's compact status table (CLIReporter), not a box per result
    os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")  # no traceback: MlflowTracker says each in one line
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")  # nor Ray's, of the trials a stopped study let go
    if ray.is_initialized():
        return
    level = logging.getLogger("ray").getEffectiveLevel()  # Ray's logger keeps its level (ray.init would set INFO)
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=level)
    else:
        # ray.init turns _node_ip_address 127.0.0.1 into this machine's outward IP (services.resolve_ip_for_localhost),
        # and its servers then listen there, unless multi-node clusters are off (Ray's own switch, read at import):
        # off while this single-node Ray starts, so its node IP and every server it starts are the loopback.
        cluster = ray_constants.ENABLE_RAY_CLUSTER
        ray_constants.ENABLE_RAY_CLUSTER = False
        try:
            ray.init(address="local", include_dashboard=False, log_to_driver=False, num_cpus=num_cpus,
                     _node_ip_address="127.0.0.1", logging_level=level)
        finally:
            ray_constants.ENABLE_RAY_CLUSTER = cluster


def check_data(config: StudyConfig, *, download: bool = False) -> None:
    """Load the study's data set once on this machine, so a missing or corrupt file stops it before Ray starts.

    Nothing is fetched from the network unless `download` (`study run --download`); the trials then find the files.
    """
    root = config.train.data_root
    where = "train.data_root" + ("" if root is not None else " (unset: $NOISY_DATA_ROOT or ~/.cache/noisy-data)")
    try:
        data = study_data(config, download=download)  # kept: run_study hands it to the trials
    except DataError as error:
        if is_own_data(config.train.dataset):
            raise DataError(f"train.dataset: {error}") from None
        fetch = "" if download else "; or let `study run --download` fetch them"
        raise DataError(f"{where}: {error}{fetch}") from None
    for kind in noise_kinds(config.noise):
        if kind in HUMAN_NOISE_KINDS:
            try:
                paired_labels(kind, data, default_data_root() if root is None else root)
            except DataError as error:
                raise DataError(f"{where}: {error}") from None


def study_data(config: StudyConfig, *, download: bool = False) -> Dataset:
    """The study's data set, loaded once per process; a ConfigError on train.val_labels where it lacks what they need
    (true labels for clean, trusted examples for trusted)."""
    data = cached_dataset(config.train.dataset, config.train.data_root, download=download)
    try:
        check_val_labels(data, config.train.val_labels)
    except ConfigError as error:
        raise ConfigError(f"train.{error.field}", error.value, error.allowed) from None
    return data


def check_destinations(config: StudyConfig, storage: str | None = None) -> None:
    """A ConfigError unless the MLflow store and the storage folder can be written (a tracking server: answers),
    checked without writing."""
    uri = default_tracking_uri(config.tracking_uri)
    key = "tracking_uri" if config.tracking_uri or "MLFLOW_TRACKING_URI" not in os.environ else "$MLFLOW_TRACKING_URI"
    scheme = uri.partition(":")[0].split("+")[0] if "://" in uri else ""
    if scheme not in ("", "file", "sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks"):
        raise ConfigError(key, uri, "an MLflow tracking URI: sqlite:///PATH, http(s)://HOST, postgresql://, mysql://, "
                          "mssql://, databricks, or a folder")
    if scheme == "sqlite":
        parent = Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent
        if not parent.is_dir():
            raise ConfigError(key, uri, f"sqlite:///PATH in a folder that exists: {parent} does not")
        _check_writable(key, uri, parent)
    elif scheme in ("", "file"):
        _check_writable(key, uri, Path(uri.removeprefix("file://")).expanduser().resolve())
    check_tracking(uri, key)
    folder = storage or config.storage
    if folder is None or "://" not in folder:  # a URI (s3://, gs://) is Ray Tune's to check
        _check_writable("--storage" if storage else "storage", folder or "./ray_results", study_folder(config, storage))


def check_tracking(uri: str, key: str = "tracking_uri") -> None:
    """A ConfigError unless MLflow at `uri` answers, where it is a server (http, https); checked within seconds."""
    if uri.partition(":")[0] in ("http", "https"):
        check_answers(key, uri)


def _check_writable(key: str, value: str, path: Path) -> None:
    """A ConfigError unless `path` is a writable folder, or could be made in the nearest folder that exists."""
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(key, value, f"a folder that can be written: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK) or os.statvfs(existing).f_flag & os.ST_RDONLY:
        raise ConfigError(key, value, f"a folder that can be written: {existing} is not writable")


def check_resumable(folder: Path, *, allow_missing_gpu: bool = False) -> StudyConfig:
    """The config of the study whose state `folder` holds; a ConfigError unless it is a study's own, readable folder."""
    if not (folder / STATE_FILE).is_file():
        raise ConfigError("path", str(folder), f"a study folder holding {STATE_FILE} (see: study list)")
    try:
        config = study_config_from_dict(StudyState.load(folder).config, allow_missing_gpu=allow_missing_gpu)
    except ConfigError as error:
        raise ConfigError("path", str(folder), f"its {STATE_FILE} cannot be resumed here: {error}") from None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        raise ConfigError("path", str(folder), f"a study folder; its {STATE_FILE} is no study's ({reason})") from None
    if config.name != folder.name:  # a study writes only under <storage>/<its name>: resume must not leave `folder`
        raise ConfigError("path", str(folder), f"the folder of study {config.name!r}, named after it: "
                          f"rename the folder back to {config.name}")
    return config


def check_same_study(config: StudyConfig, folder: Path) -> None:
    """A ConfigError if `folder` holds a study of the same name with other settings (the same settings continue it)."""
    if (folder / STATE_FILE).is_file():
        saved = check_resumable(folder, allow_missing_gpu=True)
        if saved.config_hash() != config.config_hash():
            raise ConfigError("name", config.name, f"a study of this name with other settings is in {folder}: "
                              "continue it with `study resume`, or give this one another name")


def run_study(config: StudyConfig, *, address: str | None = None, storage: str | None = None, echo: Echo = print,
              tracking_patience: float = DEFAULT_PATIENCE_S, verbose: bool = False, bar: bool = False) -> StudyState:
    """Run (or continue) the study `config`: search each label set, retrain the best, log everything to MLflow.

    The console (`echo`) has a line per stage and per finished trial, and where `bar` a progress bar of all the study's
    trials on stderr (else a line at each stage's end); `verbose` adds Tune's status tables and Ray's, Optuna's and
    MLflow's routine lines. A finished study is left as it is: one line says so, nothing starts.

    While MLflow does not answer, trials go on and their writes wait; where a write must be done before the study goes
    on (a stage's end), the study waits up to `tracking_patience` seconds for MLflow, then stops (TrackingUnavailable)
    with its state saved: `resume_study` then writes what MLflow lacks. Where its folder cannot be written (a full
    disk), it stops at the first failed write (StorageError), to be resumed once it can.
    """
    folder = study_folder(config, storage)
    check_same_study(config, folder)
    saved = StudyState.load(folder) if (folder / STATE_FILE).exists() else None
    if saved is not None and saved.finished:
        echo(f"study {config.name} is finished: nothing to run")
        return saved
    data = study_data(config)  # a data set that cannot serve this study stops it before anything is written
    done = ended_trials(folder / TRIALS)
    with Console(_trial_count(config), done, echo, bar=bar, verbose=verbose) as console:
        connect(address)  # before anything is written: a cluster that does not answer leaves no study behind
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageError.of(folder, error) from None
        uri = saved.tracking_uri if saved else default_tracking_uri(config.tracking_uri)
        outage = Outage(uri, console.echo, tracking_patience)
        state = saved or _new_state(config, outage)
        state.save(folder)
        trainable = _trainable(config, data)
        for label_set in config.label_sets:
            if label_set.key not in state.rates:
                state.rates[label_set.key] = RateState(_rate_run(state, config, label_set, outage))
                state.save(folder)
        if not all(rs.search_done and rs.final_done for rs in state.rates.values()):
            for label_set in config.label_sets:
                if not state.rates[label_set.key].search_done:
                    console.echo(f"{label_set.name()}: {_searching(config)}")
            _run_trials(config, state, folder, outage, trainable, console)
        outage.patiently(lambda: _close_study(state))
    state.finished = True
    state.save(folder)
    return state


def resume_study(path: str | Path, *, address: str | None = None, echo: Echo = print,
                 tracking_patience: float = DEFAULT_PATIENCE_S, verbose: bool = False, bar: bool = False) -> StudyState:
    """Continue the study whose folder is `path`: finished trials are kept, unfinished ones resume."""
    folder = Path(path).expanduser().resolve()
    config = study_config_from_dict(StudyState.load(folder).config, allow_missing_gpu=address is not None)
    return run_study(config, address=address, storage=str(folder.parent), echo=echo,
                     tracking_patience=tracking_patience, verbose=verbose, bar=bar)


def is_finished(folder: Path) -> bool:
    """Whether `folder` holds a finished study: all its trials run, its MLflow runs closed."""
    return (folder / STATE_FILE).is_file() and StudyState.load(folder).finished


def summary_table(state: StudyState) -> str:
    """One line per label set (noise rate): best setting, its validation accuracy, final test accuracy mean ± std,
    trials run."""
    config = state.config
    named = {ls.key: ls for ls in label_sets(config.get("noise", "symmetric"), config.get("noise_rates") or [])}
    rated = all(key in named and not named[key].human and not named[key].several for key in state.rates)
    rows = [f"{'noise rate' if rated else 'label set'} | best setting | val_acc | final test_acc | trials",
            "---|---|---|---|---"]
    for key, rs in state.rates.items():
        final = choice.fmt_mean_std(rs.final_test)
        name = named[key].name("{rate:g}") if key in named else key
        rows.append(f"{name} | {_fmt(rs.best)} | {rs.best_val_acc:.4f} | {final} | {rs.trials}")
    return "\n".join(rows)


def _new_state(config: StudyConfig, outage: Outage) -> StudyState:
    uri = outage.uri
    client = client_for(uri)

    def find_or_create() -> str:
        experiment = client.get_experiment_by_name(config.name)
        return experiment.experiment_id if experiment else client.create_experiment(
            config.name, artifact_location=artifact_location(uri, config.name))

    experiment_id = outage.patiently(find_or_create)

    def describe() -> None:
        for key, value in experiment_tags(config, uri, _varied(config)).items():
            client.set_experiment_tag(experiment_id, key, value)

    outage.patiently(describe)
    tags = {"mlflow.runName": f"study {config.name}", "stage": "study", "config_hash": config.config_hash(),
            "method": config.method, "dataset": config.train.dataset, "noise": ",".join(noise_kinds(config.noise)),
            "git_commit": git_commit()}
    run_id = outage.patiently(lambda: client.create_run(experiment_id, tags=tags).info.run_id)
    outage.patiently(lambda: client.log_dict(run_id, config.to_dict(), "study_config.json"))
    return StudyState(config.to_dict(), uri, experiment_id, run_id)


def _rate_run(state: StudyState, config: StudyConfig, label_set: LabelSet, outage: Outage) -> str:
    """The label set's run under the study's: the one a driver killed before it saved its state made, or a new one."""
    tags = {**_common_tags(config, label_set), "mlflow.runName": f"noise {label_set.key}", "stage": "noise_rate",
            PARENT_TAG: state.study_run_id}
    query = (f"tags.`{PARENT_TAG}` = '{state.study_run_id}' and tags.stage = 'noise_rate' "
             f"and tags.label_set = '{label_set.key}'")
    client = client_for(state.tracking_uri)

    def find_or_create() -> str:
        found = client.search_runs([state.experiment_id], query)
        return found[0].info.run_id if found else client.create_run(state.experiment_id, tags=tags).info.run_id

    return outage.patiently(find_or_create)


def _common_tags(config: StudyConfig, label_set: LabelSet) -> dict[str, str]:
    return {"method": config.method, "dataset": config.train.dataset, "noise": label_set.noise,
            "noise_rate": f"{label_set.rate:g}", "label_set": label_set.key, "config_hash": config.config_hash(),
            "git_commit": git_commit()}


def _base(config: StudyConfig, label_set: LabelSet, split: str) -> dict[str, Any]:
    """A trial's TrainConfig as a dict; search trials use search.seed (final retrains set their own seeds)."""
    train = config.train.replace(method=config.method, method_params=dict(config.method_params),
                                 noise=label_set.noise, noise_rate=label_set.rate, split=split,
                                 seed=config.search.seed)
    return train.to_dict()


def _trainable(config: StudyConfig, data: Dataset) -> Any:
    """The study's trainable: `train_trial` with the data set put once in Ray's object store (each trial process gets
    it from there instead of loading it), the config's checkpoint interval and (mode pbt) the names PBT changes,
    reserving the config's resources."""
    resources = {"cpu": config.resources.cpus_per_trial, "gpu": config.resources.gpus_per_trial}
    population = _searched(config) if config.search.mode == "pbt" else []
    trainable = tune.with_parameters(train_trial, data=data, checkpoint_every_s=config.checkpoint_every_s,
                                     population=population)
    return tune.with_resources(trainable, resources)


def _search_size(config: StudyConfig) -> int:
    """Trials per label set: the grid's cells × repeats, else num_samples, or 1 where a method has nothing to search
    (CCE with fixed lr and weight decay: every trial would be the same run)."""
    s = config.search
    if s.mode == "grid":
        return len(s.grid_cells()) * s.repeats
    return s.num_samples if _searched(config) else 1


def _searching(config: StudyConfig) -> str:
    """The console's line of a label set's search as it starts."""
    if config.search.mode == "pbt":
        return (f"Population Based Training of {config.method}, a population of {config.search.num_samples} "
                f"({', '.join(_searched(config))} perturbed every {config.search.pbt.perturbation_interval} "
                "evaluations)")
    return f"searching {config.method} ({_search_size(config)} trials)"


def _trial_count(config: StudyConfig) -> int:
    """The trials of a study: each label set's search trials and final retrains."""
    return len(config.label_sets) * (_search_size(config) + config.final.n_seeds)


def _searched(config: StudyConfig, parametrization: str | None = None) -> list[str]:
    """The names an optuna-mode search varies, in its parametrization (or in `parametrization`: "lam_beta" gives the
    trainer's names, those a warm-start point has)."""
    s = config.search
    return [*search_spaces.default_ranges(config.method, parametrization or s.parametrization),
            *(["lr"] if s.tune_lr else []), *(["weight_decay"] if s.tune_weight_decay else [])]


def _varied(config: StudyConfig) -> list[str]:
    """The parameters that a study's trials vary, by their MLflow param names."""
    if config.search.mode == "grid":
        return list(dict.fromkeys(name for cell in config.search.grid_cells() for name in cell))
    return _searched(config)


def _fit(trainable: Any, folder: Path, name: str, param_space: dict[str, Any], tune_config: tune.TuneConfig,
         callbacks: list[tune.Callback], shown: list[str], console: Console) -> tune.ResultGrid:
    """Run the Tuner `name` (restored if started before), its trials counted on the console (the study's one stage:
    the trials that the console counts as done were its); a failed trial is retried unless a retry would fail alike. A
    StorageError where the study's folder cannot be written."""
    callbacks = [console.stage(before=console.done), *callbacks]  # first: the count is up to date for the others
    with retrying_crashes_only():
        results = fit(_tuner(trainable, folder, name, param_space, tune_config, callbacks, shown, console.verbose),
                      folder)
    console.end_stage(len(results))
    return results


def _tuner(trainable: Any, folder: Path, name: str, param_space: dict[str, Any], tune_config: tune.TuneConfig,
           callbacks: list[tune.Callback], shown: list[str], verbose: bool) -> tune.Tuner:
    """The Tuner `name`, restored if started before: Tune's status tables of the `shown` parameters where `verbose`."""
    path = folder / name
    reporter = tune.CLIReporter(parameter_columns=shown, metric_columns=["epoch", "val_acc", "test_acc"],
                                max_report_frequency=30) if verbose else None
    if not tune.Tuner.can_restore(str(path)):
        run_config = tune.RunConfig(name=name, storage_path=str(folder), callbacks=callbacks, verbose=int(verbose),
                                    progress_reporter=reporter,
                                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                                    failure_config=tune.FailureConfig(max_failures=2))
        return tune.Tuner(trainable, param_space=param_space, tune_config=tune_config, run_config=run_config)
    restore_state_copy(path)
    repair_checkpoints(path)
    tuner = tune.Tuner.restore(str(path), trainable, resume_unfinished=True, resume_errored=True,
                               param_space=param_space)
    local = getattr(tuner, "_local_tuner", None)  # None under Ray Client, where the Tuner runs on the cluster
    if local is not None:
        # Tune restores the RunConfig it saved: this run's console and callbacks instead, but the SchedulerState that
        # holds the restored Tuner's scheduler (Tune restores callback states by their place in the list)
        run_config = local.get_run_config()
        schedulers = [c for c in run_config.callbacks if isinstance(c, SchedulerState)]
        for new in (c for c in callbacks if isinstance(c, SchedulerState)):
            schedulers[0].scheduler.adopt(new.scheduler)
        run_config.callbacks = [schedulers[0] if isinstance(c, SchedulerState) else c for c in callbacks]
        run_config.verbose, run_config.progress_reporter = int(verbose), reporter
    return tuner


def _run_trials(config: StudyConfig, state: StudyState, folder: Path, outage: Outage, trainable: Any,
                console: Console) -> None:
    """Run every label set's search and final retrains in one Tuner (TRIALS): the searcher hands out the trials of
    all label sets at once, and a label set's retrains as soon as its search has ended. Each trial is logged under its
    label set's run; a label set's best setting and final scores are written as its stages end."""
    s, sets = config.search, config.label_sets
    several = len(noise_kinds(config.noise)) > 1
    new = not tune.Tuner.can_restore(str(folder / TRIALS))  # a restored Tuner keeps its own searcher and plans
    searcher = StudySearcher(_plans(config, console.echo if new else lambda line: None), console.echo)
    scheduler = _scheduler(config, searcher, several)
    # the limiter also sets how many trials Tune starts at once (with a bare searcher: one after another); PBT's
    # populations are handed out whole (Tune shares the slots among them)
    limit = s.max_concurrent or trial_slots(config)
    limited = ConcurrencyLimiter(searcher, max_concurrent=max(limit, len(sets) * s.num_samples if s.pbt else 0))
    tune_config = tune.TuneConfig(search_alg=limited, scheduler=scheduler, num_samples=_trial_count(config),
                                  reuse_actors=True, trial_dirname_creator=trial_folder)
    label = len(sets) > 1
    trackers = {(ls.key, stage): MlflowTracker(state.tracking_uri, state.experiment_id, state.rates[ls.key].run_id,
                                               {**_common_tags(config, ls), "stage": stage}, console.echo, outage,
                                               label=ls.name() if label else "")
                for ls in sets for stage in (SEARCH, FINAL)}
    by_label_set = ByLabelSet(trackers, several)
    named = {ls.key: ls for ls in sets}
    if scheduler is not None:
        scheduler.on_exploit = lambda key, record: _exploited(trackers[key, SEARCH], named[key], record, console)
    expected = {(ls.key, stage): n for ls in sets for stage, n in ((SEARCH, _search_size(config)),
                                                                   (FINAL, config.final.n_seeds))}

    def ended(key: str, stage: str, outcomes: Outcomes) -> None:
        trackers[key, stage].complete([])  # the stage's trials' own writes first (while MLflow is away: they waited)
        _stage_ended(config, state, named[key], stage, outcomes, folder, outage, console, running=True)

    callbacks = [StopOnStorageError(), by_label_set, StageEnds(expected, several, ended), KeepStateCopy(),
                 *([SchedulerState(scheduler)] if scheduler else [])]
    shown = ["noise_rate", *(["cell", *(["seed"] if s.repeats > 1 else [])] if s.mode == "grid" else _searched(config))]
    results = _fit(trainable, folder, TRIALS, {TRAIN_KEY: _base(config, sets[0], "search")}, tune_config, callbacks,
                   shown, console)
    mine: dict[tuple[str, str], list[tune.Result]] = {stage: [] for stage in trackers}
    for result in results:
        mine[label_set_key(result.config, several), stage_of(result.config)].append(result)
    for (key, stage), tracker in trackers.items():
        tracker.complete(mine[key, stage])
        outage.patiently(lambda: _drop_orphans(state, state.rates[key].run_id, stage, mine[key, stage]))
    for ls in sets:
        for stage in (SEARCH, FINAL):
            outcomes = [(r.config, r.metrics or {}, r.error is not None) for r in mine[ls.key, stage]]
            _stage_ended(config, state, ls, stage, outcomes, folder, outage, console, running=False)


def _scheduler(config: StudyConfig, searcher: StudySearcher, several: bool) -> PerLabelSet | None:
    """The study's scheduler: ASHA (search.asha) or PBT (mode pbt) within each label set; None: neither."""
    s, keys = config.search, [ls.key for ls in config.label_sets]
    if s.pbt is not None:
        pbt = s.pbt

        def make_pbt(key: str) -> LabelSetPBT:
            return LabelSetPBT(metric=METRIC, perturbation_interval=pbt.perturbation_interval,
                               bounds=search_spaces.space_bounds(searcher.plans[key].space),
                               quantile_fraction=pbt.quantile_fraction, resample_probability=pbt.resample_probability)

        return PerLabelSet(make_pbt, keys, several)
    if s.asha is None:
        return None
    evaluations, asha = _evaluations(config), s.asha

    def make_asha(key: str) -> ASHAScheduler:
        return ASHAScheduler(metric=METRIC, mode="max", time_attr="training_iteration", max_t=evaluations,
                             grace_period=min(asha.grace_period, evaluations), reduction_factor=asha.reduction_factor)

    return PerLabelSet(make_asha, keys, several)


def _exploited(tracker: MlflowTracker, label_set: LabelSet, record: dict[str, Any], console: Console) -> None:
    """Say an exploitation (study.population's record) on the console and as a tag of the exploiting trial's run:
    exploit.<n> = "step S of trial T: psi=0.31, rho=4.2" (its n-th; the values it goes on with); its run then logs
    the steps it goes on with from step S."""
    line = f"step {record['step']} of trial {record['source']}: {choice.fmt_setting(record['values'])}"
    tracker.add_tag(record["trial"], "exploit", line, rewind=True)
    console.echo(f"  pbt {label_set.name()}: trial {record['trial']} goes on from {line}")


def trial_slots(config: StudyConfig) -> int:
    """How many of the study's trials the Ray cluster it is connected to can run at once: its CPUs ÷ cpus_per_trial,
    its GPUs ÷ gpus_per_trial (the fewer; at least 1)."""
    cluster, r = ray.cluster_resources(), config.resources
    slots = [math.floor(cluster.get(name, 0) / need + 1e-9) for name, need in (("CPU", r.cpus_per_trial),
                                                                              ("GPU", r.gpus_per_trial)) if need > 0]
    return max(1, min(slots, default=1))  # 1e-9: 7 CPUs ÷ 0.07 is 99.99999999999999


def trial_folder(trial: Trial) -> str:
    """A trial's folder in the study's Tune experiment: train_trial_<id>_<n>_<stage>-<noise>-<rate>, n counting the
    trials from 1 in the order the searcher handed them out."""
    number = trial.experiment_tag.split("_")[0]
    config = trial.config
    return (f"{trial.trainable_name}_{trial.trial_id}_{int(number):05d}_{stage_of(config)}-{config['noise']}-"
            f"{config['noise_rate']:g}")


def _plans(config: StudyConfig, echo: Echo) -> list[Plan]:
    """What the study does for each label set (see `StudySearcher`): its search, warm starts and retrains; `echo`
    says each warm-start point clipped into the ranges."""
    s = config.search
    keys = [ls.key for ls in config.label_sets]
    names = _searched(config, "lam_beta") if s.warm_start else []
    plans = []
    for index, ls in enumerate(config.label_sets):
        plan = Plan(ls, _search_size(config), config.final.n_seeds, seed=s.seed + index,
                    parametrization=s.parametrization)
        if s.mode == "grid":
            plan.cells = [{"cell": cell, **({"seed": s.seed + i} if s.repeats > 1 else {})}
                          for cell in s.grid_cells() for i in range(s.repeats)]
        else:
            plan.space = search_spaces.make_space(config.method, ranges=s.ranges_for(None if ls.human else ls.rate),
                                                  parametrization=s.parametrization, tune_lr=s.tune_lr,
                                                  tune_weight_decay=s.tune_weight_decay,
                                                  batch_size=config.train.batch_size)
            plan.points = within(plan.space, [search_spaces.as_point(p, s.parametrization)
                                              for p in _warm_points(config, ls, names)],
                                 lambda line, ls=ls: echo(f"{ls.name()}: {line}"))
            plan.warm_names, plan.neighbour = names, keys[index - 1] if index else None
            plan.population = s.mode == "pbt"
        plans.append(plan)
    return plans


def _stage_ended(config: StudyConfig, state: StudyState, label_set: LabelSet, stage: str, outcomes: Outcomes,
                 folder: Path, outage: Outage, console: Console, *, running: bool) -> None:
    """Record what a label set's ended `stage` found (its best setting; its final test accuracies) in study.json and
    in its MLflow run, unless recorded already, waiting for MLflow as a stage's end does (TrackingUnavailable after
    the outage's patience). `running`: while the Tuner runs (its console says so, and a search without a score is
    left to the Tuner's end, which says so)."""
    rs = state.rates[label_set.key]
    if rs.search_done if stage == SEARCH else rs.final_done:
        return
    client = client_for(state.tracking_uri)
    now = int(time.time() * 1000)  # one time for every try: a repeated try of a batch that was written adds nothing
    if stage == SEARCH:
        best = choose(outcomes)
        if best is None and running:
            return
        if best is None:
            raise RuntimeError(f"{label_set.name()}: no search trial reported val_acc")
        rs.best, rs.best_val_acc, rs.trials = best.setting, best.score, len(outcomes)
        params = [Param(f"best.{k}", str(v)) for k, v in best.setting.items()]
        metrics = [Metric("best_val_acc", best.score, now, 0), Metric("trials", rs.trials, now, 0)]
        outage.patiently(lambda: (client.log_dict(rs.run_id, best.setting, "best_setting.json"),
                                  client.log_batch(rs.run_id, metrics=metrics, params=params)))
        rs.search_done = True
        if config.final.n_seeds and running:
            n = config.final.n_seeds
            console.echo(f"{label_set.name()}: search done, best {_fmt(rs.best)} (val_acc {rs.best_val_acc:.4f}); "
                         f"retraining it on the whole training set, {n} seed{'s' if n > 1 else ''}")
    else:
        rs.final_test = sorted(float(m["test_acc"]) for _, m, _ in outcomes if "test_acc" in m)
        if rs.final_test:
            metrics = [Metric("final_test_acc_mean", statistics.mean(rs.final_test), now, 0),
                       Metric("final_test_acc_std", _std(rs.final_test), now, 0)]
            outage.patiently(lambda: client.log_batch(rs.run_id, metrics=metrics))
        rs.final_done = True
        if rs.final_test and running:
            console.echo(f"{label_set.name()}: final test_acc {choice.fmt_mean_std(rs.final_test)}")
    state.save(folder)
    if running:
        console.progress()


def _drop_orphans(state: StudyState, parent_run_id: str, stage: str, results: Iterable[tune.Result]) -> None:
    """Delete runs of trials that a killed driver started but Tune never recorded, so each trial has one run."""
    kept = {r.metrics.get("trial_id") for r in results if r.metrics}
    client = client_for(state.tracking_uri)
    query = f"tags.`{PARENT_TAG}` = '{parent_run_id}' and tags.stage = '{stage}'"
    for run in client.search_runs([state.experiment_id], query, max_results=10_000):
        if run.data.tags.get(TRIAL_TAG) not in kept:
            client.delete_run(run.info.run_id)


def _close_study(state: StudyState) -> None:
    client = client_for(state.tracking_uri)
    for key, rs in state.rates.items():
        client.set_terminated(rs.run_id, "FINISHED")
    client.log_text(state.study_run_id, summary_table(state), "summary.md")
    client.set_terminated(state.study_run_id, "FINISHED")


def _warm_points(config: StudyConfig, label_set: LabelSet, names: list[str]) -> list[dict[str, Any]]:
    """The points a label set's search tries first, projected on `names` (none where that is empty): the paper's
    best DM setting at a synthetic label set's rate. (The label set before it warms it as it runs: see
    `StudySearcher`.)"""
    paper = (search_spaces.paper_best(config.train.dataset, label_set.rate)
             if config.method == "dm" and not label_set.human else None)
    if not paper or not names or not set(names) <= set(paper):
        return []
    return [{k: paper[k] for k in names}]


def _evaluations(config: StudyConfig) -> int:
    """How many times a trial reports (ASHA's max_t), where the config alone says; else a generous bound."""
    train = config.train
    if train.eval_every is None and train.epochs is not None:
        return train.epochs
    if train.iterations is not None and train.eval_every is not None:
        return math.ceil(train.iterations / train.eval_every)
    return 100


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _fmt(setting: dict[str, Any]) -> str:
    return choice.fmt_setting(setting) or "(defaults)"
