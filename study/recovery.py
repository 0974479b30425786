"""Resuming a Tune experiment whose driver was killed: the checkpoints its saved state names, and its scheduler's
memory (ASHA's rungs), as they were when that state was saved."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.schedulers import TrialScheduler

from trainables import REPORTED_FILE


def repair_checkpoints(experiment: Path) -> list[Path]:
    """Recreate each checkpoint that the experiment's saved state names for an unfinished trial but that is gone;
    the checkpoints recreated.

    Tune deletes a trial's previous checkpoint (`CheckpointConfig(num_to_keep=1)`) when it registers a new one, before
    the experiment state naming the new one reaches storage: a driver killed in between leaves a state that names a
    deleted checkpoint, and Tune cannot restore the trial. Its next checkpoint takes the name instead, marked with the
    evaluations Tune knows of; the trainable reports the others first, from the state's history.
    """
    saved = sorted(experiment.glob("experiment_state-*.json"))  # Tune restores the newest (the same max of names)
    if not saved:
        return []
    recreated = []
    for trial_json, metadata_json in json.loads(saved[-1].read_text())["trial_data"]:
        trial, result = json.loads(trial_json), json.loads(metadata_json).get("last_result") or {}
        name, folder = result.get("checkpoint_dir_name"), experiment / trial["relative_logdir"]
        if trial["status"] == "TERMINATED" or not name or (folder / name).exists():
            continue
        # the oldest newer one is the checkpoint Tune registered last (complete); a newer one may be half written
        newer = sorted(p for p in folder.glob("checkpoint_*") if p.name > name)
        if newer:
            shutil.copytree(newer[0], folder / name)
            (folder / name / REPORTED_FILE).write_text(str(result["training_iteration"]))
            recreated.append(folder / name)
    return recreated


class SchedulerState(Callback):
    """Saves a Tune scheduler's state with Tune's experiment state and restores it with that state.

    Tune restores a scheduler as it was created: an ASHA without its rungs would judge a resumed search's trials
    against the trials run since the restart only. Saved with the trials' states, it goes on as if never stopped.
    """

    def __init__(self, scheduler: TrialScheduler) -> None:
        self.scheduler = scheduler  # pickled with the Tuner, together with Tune's own reference to it

    def get_state(self) -> dict[str, Any]:
        return {"scheduler": dict(vars(self.scheduler))}

    def set_state(self, state: dict[str, Any]) -> None:
        vars(self.scheduler).update(state["scheduler"])
