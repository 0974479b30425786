"""Population Based Training within one label set: Ray Tune's PopulationBasedTraining, made to live beside the study's
searcher in its one Tuner (see study.scheduler.PerLabelSet, which holds one per label set).

What it adds to Ray's PBT: it accepts the study's searcher (which hands out each label set's first population and
tells no Optuna study of a PBT trial); a trial that diverged is replaced at once by a copy of a good one (and never
copied); each exploited checkpoint is first copied aside, so that the exploiting trial still finds it after its source
has moved on (each trial keeps one checkpoint); every exploitation is recorded (`exploits`); and its state is saved by
trial id, so that a restored Tuner goes on with the population as it was.
"""

from __future__ import annotations

import hashlib
import math
import random
import shutil
import warnings
from pathlib import Path
from typing import Any, Mapping

from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler
from ray.tune.schedulers.pbt import _PBTTrialState

from trainables import DIVERGED

EXPLOITED = "exploited"  # the folder, in the Tune experiment's, of the copies of exploited checkpoints

Bounds = Mapping[str, tuple[float, float, bool]]  # name → (low, high, log scale)


class Clip:
    """PBT's custom explore step: each perturbed value clipped back into its search range (a multiplicative
    perturbation leaves it otherwise)."""

    def __init__(self, bounds: Bounds) -> None:
        self.bounds = dict(bounds)

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        for name, (low, high, _) in self.bounds.items():
            if name in config:
                config[name] = min(max(float(config[name]), low), high)
        return config


def mutations(bounds: Bounds) -> dict[str, Any]:
    """PBT's hyperparam_mutations of the ranges `bounds`: a uniform (log-uniform) draw for each range wider than a
    point (a fixed parameter is not perturbed)."""
    return {name: (tune.loguniform if log else tune.uniform)(low, high)
            for name, (low, high, log) in bounds.items() if low < high}


class _Population:
    """A Tune controller as one label set's PBT sees it: its own trials only (Ray's PBT ranks, waits for and pauses
    every trial of its Tuner), and no search algorithm (Ray's PBT refuses one; the study's is made for it)."""

    def __init__(self, controller: Any, own: Mapping[Trial, Any]) -> None:
        self._controller, self._own = controller, own
        self.search_alg = None

    def get_trials(self) -> list[Trial]:
        return [t for t in self._controller.get_trials() if t in self._own]

    def get_live_trials(self) -> list[Trial]:
        return [t for t in self._controller.get_live_trials() if t in self._own]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._controller, name)


class LabelSetPBT(PopulationBasedTraining):
    """Ray's PBT over one label set's population, ranked by `metric` (max) every `perturbation_interval` evaluations
    (training_iteration); the arguments are PopulationBasedTraining's, `bounds` the ranges of the values it
    perturbs. Asynchronous, as Ray's default, but a trial is ranked against the others' scores at the same training
    time (not their latest, which may be from earlier or later in training: trials that take turns on the slots
    are at different times)."""

    def __init__(self, *, metric: str, perturbation_interval: int, bounds: Bounds, quantile_fraction: float,
                 resample_probability: float) -> None:
        super().__init__(time_attr="training_iteration", metric=metric, mode="max",
                         perturbation_interval=perturbation_interval, hyperparam_mutations=mutations(bounds),
                         custom_explore_fn=Clip(bounds), quantile_fraction=quantile_fraction,
                         resample_probability=resample_probability, log_config=False)
        self.exploits: list[dict[str, Any]] = []  # each exploitation: trial, source, iteration, step, values
        self.scores: dict[str, dict[int, float]] = {}  # trial id → its score at each time it was ranked
        self._now: int | None = None  # the time of the result being ranked
        self._saved: dict[str, dict[str, Any]] = {}  # trial id → a restored state, until its trial is added again

    def __getstate__(self) -> dict[str, Any]:
        """Plain state, by trial id (no Trial objects): what a restored Tuner's population goes on with."""
        state = {k: v for k, v in self.__dict__.items() if k != "_trial_state"}
        state["_saved"] = {**self._saved, **{trial.trial_id: dict(vars(s)) for trial, s in self._trial_state.items()}}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._trial_state = {}

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        with warnings.catch_warnings():  # num_to_keep 1 is safe here: exploited checkpoints are copied aside
            warnings.filterwarnings("ignore", message=".*num_to_keep.*")
            super().on_trial_add(_Population(tune_controller, self._trial_state), trial)
        saved = self._saved.pop(trial.trial_id, None)
        if saved is not None:
            state = self._trial_state[trial]
            state.__dict__.update({k: v for k, v in saved.items() if k != "orig_tag"})
            state.orig_tag = saved["orig_tag"]

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        if _at_end(result):  # its last evaluation: ranked, neither paused nor copied
            self._save_trial_state(self._trial_state[trial], result[self._time_attr], result, trial)
            return TrialScheduler.CONTINUE
        tune_controller = _Population(tune_controller, self._trial_state)
        self._now = None if result.get(DIVERGED) else result[self._time_attr]
        if not result.get(DIVERGED):
            return super().on_trial_result(tune_controller, trial, result)
        # replaced now by a copy of a trial of the upper quantile, ranking every live trial by its last result
        state = self._trial_state[trial]
        self._save_trial_state(state, result[self._time_attr], result, trial)
        state.last_perturbation_time = result[self._time_attr]
        for other, other_state in self._trial_state.items():
            score = (other.last_result or {}).get(self._metric)
            if other_state.last_score is None and isinstance(score, (int, float)) and math.isfinite(score):
                other_state.last_score = score
        lower, upper = self._quantiles()
        self._checkpoint_or_exploit(trial, tune_controller, upper, lower)
        return TrialScheduler.NOOP if trial.status == Trial.PAUSED else TrialScheduler.CONTINUE

    def _checkpoint_or_exploit(self, trial: Trial, tune_controller: Any, upper_quantile: list[Trial],
                               lower_quantile: list[Trial]) -> None:
        """Ray's step without its extra saves (a population trial checkpoints at every evaluation): a trial of the
        lower quantile copies the latest checkpoint of a trial of the upper quantile that has one (where none has, it
        goes on as it is), unless Tune is still saving it (pausing it: that save would land over the copy)."""
        self._trial_state[trial].last_checkpoint = None
        sources = [other for other in upper_quantile if other is not trial and other.checkpoint is not None]
        if trial in lower_quantile and sources and not trial.is_saving:
            self._exploit(tune_controller, trial, random.choice(sources))

    def _quantiles(self) -> tuple[list[Trial], list[Trial]]:
        """PBT's lower and upper quantiles among the trials still training (one at its last evaluation is neither
        copied, which would end its copy at once, nor replaced), by their scores at the time of the result being
        ranked (those without one: not ranked), or by their latest scores (a diverged trial's replacement)."""
        def score(t: Trial) -> float | None:
            if self._now is None:
                return self._trial_state[t].last_score
            return self.scores.get(t.trial_id, {}).get(self._now)

        ranked = sorted((t for t, s in self._trial_state.items()
                         if score(t) is not None and not t.is_finished() and not _at_end(s.last_result or {})),
                        key=score)
        size = min(math.ceil(len(ranked) * self._quantile_fraction), len(ranked) // 2)
        return (ranked[:size], ranked[-size:]) if size else ([], [])

    def _save_trial_state(self, state: _PBTTrialState, time: int, result: dict, trial: Trial) -> float:
        """PBT's record of a result; a diverged trial's, or one without a finite score, ranks below every other."""
        score = result.get(self._metric)
        finite = not result.get(DIVERGED) and isinstance(score, (int, float)) and math.isfinite(score)
        saved = super()._save_trial_state(state, time, {**result, self._metric: score if finite else -math.inf}, trial)
        self.scores.setdefault(trial.trial_id, {})[time] = saved
        return saved

    def _exploit(self, tune_controller: Any, trial: Trial, trial_to_clone: Trial) -> None:
        """Copy `trial_to_clone`'s latest checkpoint aside (no later checkpoint of it deletes the copy), explore its
        config, and restart `trial` from the copy: weights and values always from the same moment of the source."""
        source = self._trial_state[trial_to_clone]
        latest = trial_to_clone.run_metadata.checkpoint_manager.latest_checkpoint_result  # with the metrics it had
        checkpoint, result = latest.checkpoint, latest.metrics
        iteration = result.get(self._time_attr, source.last_train_time)
        where = hashlib.sha1(checkpoint.path.encode()).hexdigest()[:8]  # a copy is of one checkpoint
        folder = _experiment_folder(trial) / EXPLOITED / f"{trial_to_clone.trial_id}-{iteration}-{where}"
        if not folder.is_dir():
            partial = folder.with_name(folder.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            checkpoint.to_directory(str(partial))
            partial.rename(folder)
        source.last_checkpoint, source.last_result = tune.Checkpoint.from_directory(str(folder)), result
        super()._exploit(tune_controller, trial, trial_to_clone)
        values = {name: trial.config[name] for name in self._hyperparam_mutations if name in trial.config}
        record = {"trial": trial.trial_id, "source": trial_to_clone.trial_id, "iteration": iteration,
                  "step": result.get("step"), "values": values}
        self.exploits.append(record)


def _experiment_folder(trial: Trial) -> Path:
    """The Tune experiment's folder in the study's storage (which outlives the Ray session); Tune's local staging
    folder where the storage is no local folder."""
    storage = trial.storage
    local = storage.storage_filesystem.type_name == "local"
    return Path(storage.experiment_fs_path if local else trial.local_experiment_path)


def _at_end(result: Mapping[str, Any]) -> bool:
    """Whether `result` is its trial's last evaluation (step = total_steps)."""
    return result.get("step", 0) >= result.get("total_steps", math.inf)
