"""ASHA within each label set: one Tuner runs every label set's search, and a trial is compared only with the search
trials of its own label set; final retrains always run to the end."""

from __future__ import annotations

from typing import Any, Callable

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from study.searcher import SEARCH, label_set_key, stage_of


class PerLabelSet(FIFOScheduler):
    """Passes each search trial's events to the scheduler of its label set (made by `make`, one per key of `keys`);
    `several`: the study has several noise kinds (see LabelSet.key)."""

    def __init__(self, make: Callable[[], TrialScheduler], keys: list[str], several: bool) -> None:
        super().__init__()
        self.schedulers = {key: make() for key in keys}
        self.several = several

    def _of(self, trial: Trial) -> TrialScheduler | None:
        """The scheduler of `trial`'s label set; None for a final retrain."""
        if stage_of(trial.config) != SEARCH:
            return None
        return self.schedulers[label_set_key(trial.config, self.several)]

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        if (scheduler := self._of(trial)) is not None:
            scheduler.on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        if (scheduler := self._of(trial)) is not None:
            scheduler.on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        scheduler = self._of(trial)
        return TrialScheduler.CONTINUE if scheduler is None else scheduler.on_trial_result(tune_controller, trial,
                                                                                           result)

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        if (scheduler := self._of(trial)) is not None:
            scheduler.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        if (scheduler := self._of(trial)) is not None:
            scheduler.on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return "\n".join(f"{key}: {scheduler.debug_string()}" for key, scheduler in self.schedulers.items())
