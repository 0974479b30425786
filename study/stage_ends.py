"""A label set's stages end inside the study's one Tuner: a Tune callback that sees each end as it happens, so that a
label set's best setting and final scores are written while the other label sets still run."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ray.tune import Callback
from ray.tune.experiment import Trial

from study.searcher import label_set_key, stage_of

# what was run of a stage: each trial's config, its last result and whether it failed
Outcomes = list[tuple[Mapping[str, Any], Mapping[str, Any], bool]]


class StageEnds(Callback):
    """Calls `ended(key, stage, outcomes)` once for each (label set key, stage) of `expected` (→ its number of
    trials) when all its trials have ended, at the end of a step of Tune's loop; `several`: the study has several noise
    kinds. Pickled (with the Tuner) without `ended`: a copy calls nothing."""

    def __init__(self, expected: Mapping[tuple[str, str], int], several: bool,
                 ended: Callable[[str, str, Outcomes], None] | None = None) -> None:
        self.expected, self.several, self.ended = dict(expected), several, ended
        self._done: set[tuple[str, str]] = set()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "ended": None, "_done": set()}

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if self.ended is None:
            return
        outcomes: dict[tuple[str, str], Outcomes] = {}
        for trial in trials:
            stage = (label_set_key(trial.config, self.several), stage_of(trial.config))
            if stage in self._done or trial.status not in (Trial.TERMINATED, Trial.ERROR):
                continue
            outcomes.setdefault(stage, []).append((trial.config, trial.last_result or {}, trial.status == Trial.ERROR))
        for (key, stage), ended in outcomes.items():
            if len(ended) == self.expected.get((key, stage), -1):
                self._done.add((key, stage))
                self.ended(key, stage, ended)
