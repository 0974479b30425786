"""Faults a Tune experiment survives: a driver killed (Tune's saved state whole, the checkpoints it names, and its
scheduler's memory, ASHA's rungs, as they were when that state was saved) and storage that cannot be written (the
experiment stops, resumable)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune import Callback
from ray.tune.error import TuneError
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler
from ray.tune.utils.serialization import TuneFunctionDecoder

from study.outage import TrackingUnavailable
from study.tracking import error_reason
from trainables import REPORTED_FILE, StorageError


COPY = ".study-state"  # in a Tune experiment's folder: the copy of Tune's saved state that KeepStateCopy keeps


def restore_state_copy(experiment: Path) -> None:
    """Put Tune's saved state back from the copy that KeepStateCopy made last, where there is one that loads (it is
    never older than Tune's own, and whole where Tune's may be cut short); a StorageError where it cannot."""
    for copy in (experiment / COPY, experiment / (COPY + ".tmp")):  # .tmp: written whole, not yet renamed
        if _loads(copy):
            try:
                for path in copy.iterdir():
                    shutil.copy2(path, experiment)
            except OSError as error:
                raise StorageError.of(experiment, error) from None
            return


def ended_trials(experiment: Path) -> int:
    """How many trials Tune's saved state of `experiment` (or the copy that KeepStateCopy made) records as ended
    (terminated or failed); 0 where there is none."""
    counts = [0]
    for folder in (experiment, experiment / COPY):
        for path in folder.glob("experiment_state-*.json"):
            try:
                trials = [json.loads(trial) for trial, _ in json.loads(path.read_text())["trial_data"]]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            counts.append(sum(trial["status"] in ("TERMINATED", "ERROR") for trial in trials))
    return max(counts)


def _loads(folder: Path) -> bool:
    states = list(folder.glob("experiment_state-*.json"))
    try:
        return bool(states) and all(json.loads(path.read_text()).get("trial_data") is not None for path in states)
    except (OSError, ValueError):
        return False


class KeepStateCopy(Callback):
    """Copies Tune's saved experiment state, each time Tune saves it, whole into the experiment's folder (COPY).

    Tune writes its state in a driver-side folder, then copies it into storage in the background, overwriting its
    files in place: a full disk leaves them cut short, and a killed driver leaves them a save or two behind. The copy
    is made on the driver's thread right after Tune's save, into a new folder renamed into place. Where it cannot be
    written, the experiment ends with a StorageError (see `fit`).
    """

    def __init__(self) -> None:
        self._copied: int | None = None  # the newest modification time (ns) among the files copied last

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if not trials:
            return
        staging = Path(trials[0].storage.experiment_driver_staging_path)
        files = [path for path in staging.iterdir() if path.is_file() and not path.name.startswith(".")]  # not temp
        newest = max((path.stat().st_mtime_ns for path in files), default=None)
        if newest is None or newest == self._copied:
            return
        experiment = Path(trials[0].storage.experiment_fs_path)
        tmp, copy = experiment / (COPY + ".tmp"), experiment / COPY
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            for path in files:
                shutil.copy2(path, tmp)
            shutil.rmtree(copy, ignore_errors=True)
            tmp.rename(copy)
        except OSError as error:
            raise StorageError.of(None, error) from None
        self._copied = newest


def repair_checkpoints(experiment: Path) -> None:
    """Recreate each checkpoint that the experiment's saved state names for an unfinished trial but that is gone.

    Tune deletes a trial's previous checkpoint (`CheckpointConfig(num_to_keep=1)`) when it registers a new one, before
    the experiment state naming the new one reaches storage: a driver killed in between leaves a state that names a
    deleted checkpoint, and Tune cannot restore the trial. Its next checkpoint takes the name instead, marked with the
    evaluations Tune knew of at the named one; the trainable reports the others first, from the state's history.
    """
    saved = sorted(experiment.glob("experiment_state-*.json"))  # Tune restores the newest (the same max of names)
    if not saved:
        return
    for trial_json, metadata_json in json.loads(saved[-1].read_text())["trial_data"]:
        trial = json.loads(trial_json)
        latest = None if trial["status"] == "TERMINATED" else _latest_checkpoint(metadata_json)
        if latest is None:
            continue
        name, iteration = latest
        folder = experiment / trial["relative_logdir"]
        if (folder / name).exists():
            continue
        # the oldest newer one is the checkpoint Tune registered last (complete); a newer one may be half written
        newer = sorted(p for p in folder.glob("checkpoint_*") if p.name > name)
        if newer:
            shutil.copytree(newer[0], folder / name)
            (folder / name / REPORTED_FILE).write_text(str(iteration))


def _latest_checkpoint(metadata_json: str) -> tuple[str, int] | None:
    """The folder name and training iteration of the checkpoint that a trial's saved metadata (Tune's experiment
    state, written by this study) names as its latest; None where it has none."""
    metadata = json.loads(metadata_json, cls=TuneFunctionDecoder, allow_cloudpickle=True)
    manager = metadata.get("checkpoint_manager")
    latest = manager.latest_checkpoint_result if manager is not None else None
    if latest is None or latest.checkpoint is None:
        return None
    return Path(latest.checkpoint.path).name, int(latest.metrics["training_iteration"])


class SchedulerState(Callback):
    """Saves a Tune scheduler's state with Tune's experiment state and restores it with that state.

    Tune restores a scheduler as it was created: an ASHA without its rungs would judge a resumed search's trials
    against the trials run since the restart only. Saved with the trials' states, it goes on as if never stopped.
    """

    def __init__(self, scheduler: TrialScheduler) -> None:
        self.scheduler = scheduler  # pickled with the Tuner, together with Tune's own reference to it

    def get_state(self) -> dict[str, Any]:
        return {"scheduler": dict(self.scheduler.__getstate__())}  # its own pickled state (a live hook left out)

    def set_state(self, state: dict[str, Any]) -> None:
        vars(self.scheduler).update(state["scheduler"])


def fit(tuner: tune.Tuner, storage: Path) -> tune.ResultGrid:
    """`tuner.fit()`; the StorageError that a callback here raised (also where Tune wrapped it in a TuneError), naming
    `storage` where it names no folder, and the TrackingUnavailable that one raised (a label set's stage ended while
    MLflow did not answer)."""
    try:
        return tuner.fit()
    except (TuneError, StorageError, TrackingUnavailable) as error:
        # Tune raises a TuneError while it handles an error that a callback raised on a trial's event
        cause = error.__context__ if isinstance(error, TuneError) else error
        if isinstance(cause, TrackingUnavailable):
            raise cause from None
        if not isinstance(cause, StorageError):
            raise
        raise StorageError(cause.path or storage, cause.reason) from None


class StopOnStorageError(Callback):
    """Ends the experiment (see `fit`) when a trial could not write its checkpoint.

    Retrying cannot help while the storage stays full, and the trial did nothing wrong: it is not retried nor
    recorded as failed (put it before the MLflow callback), and Tune's saved state still shows it running, so
    `Tuner.restore` goes on with it.
    """

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._raise_storage_error(trial)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._raise_storage_error(trial)

    @staticmethod
    def _raise_storage_error(trial: Trial) -> None:
        error = StorageError.parse(error_reason(trial.error_file))
        if error is not None:
            raise error
