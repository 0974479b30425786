"""A scheduler within each label set (ASHA, or Population Based Training: study.population): one Tuner runs every label
set's search, and a trial is compared only with the search trials of its own label set; final retrains always run to
the end."""

from __future__ import annotations

from typing import Any, Callable

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from study.searcher import SEARCH, label_set_key, stage_of

OnExploit = Callable[[str, dict[str, Any]], None]  # (label set key, study.population's record of an exploitation)


class PerLabelSet(FIFOScheduler):
    """Passes each search trial's events to the scheduler of its label set (made by `make(key)`, one per key of
    `keys`); `several`: the study has several noise kinds (see LabelSet.key). `on_exploit` is told of each
    exploitation of a PBT scheduler (not pickled: a restored scheduler takes this session's, see `adopt`)."""

    def __init__(self, make: Callable[[str], TrialScheduler], keys: list[str], several: bool,
                 on_exploit: OnExploit | None = None) -> None:
        super().__init__()
        self.schedulers = {key: make(key) for key in keys}
        self.several = several
        self.on_exploit = on_exploit

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "on_exploit": None}

    def adopt(self, new: "PerLabelSet") -> None:
        """Take the live parts of `new`, the scheduler made for this session (this one was restored)."""
        self.on_exploit = new.on_exploit

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        """A waiting trial (pending, or paused by PBT), the least trained first: PBT's fair share of the slots."""
        waiting = [t for t in tune_controller.get_trials() if t.status in (Trial.PENDING, Trial.PAUSED)]
        return min(waiting, key=lambda t: (t.last_result or {}).get("training_iteration", 0), default=None)

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
        if scheduler is None:
            return TrialScheduler.CONTINUE
        records = getattr(scheduler, "exploits", [])
        before = len(records)
        decision = scheduler.on_trial_result(tune_controller, trial, result)
        if self.on_exploit is not None:
            for record in records[before:]:
                self.on_exploit(label_set_key(trial.config, self.several), record)
        return decision

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        if (scheduler := self._of(trial)) is not None:
            scheduler.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        if (scheduler := self._of(trial)) is not None:
            scheduler.on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return "\n".join(f"{key}: {scheduler.debug_string()}" for key, scheduler in self.schedulers.items())
