"""A Ray Tune function trainable that runs one `trainers.Trainer` and checkpoints it at every evaluation."""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from ray import tune

from trainers import Dataset, TrainConfig, Trainer, load_dataset
from trainers.datasets import provide_dataset
from trainers.methods import method_values, updated_params
from trainers.param_schedules import policy

TRAIN_KEY = "train"  # the trial config's base TrainConfig, as a dict
STATE_FILE = "state.pt"
# Beside STATE_FILE: how many of the state's evaluations Tune has been told of (a restore reports the rest first)
REPORTED_FILE = "reported.txt"
DIVERGED = "diverged"  # a population trial's last result where its training loss stopped being finite
POLICY = "policy."  # a population trial's results: policy.<name>, the schedule it has followed (lineage included)
_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
_DATA: dict[tuple[str, str | None], Dataset] = {}  # per worker process, so reused actors load a data set once


class StorageError(Exception):
    """Files could not be written where a study keeps them (disk full, storage unwritable): the study stops, and
    `study resume` goes on once they can be written. `path` None: the study's storage folder, wherever it is."""

    _LINE = re.compile(r"StorageError: storage (?:at (?P<path>.+) )?could not be written \((?P<reason>.+)\)$")

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path, self.reason = (str(path) if path else None), reason
        super().__init__(self.path, reason)

    def __str__(self) -> str:
        return f"storage{f' at {self.path}' if self.path else ''} could not be written ({self.reason})"

    @classmethod
    def of(cls, path: str | Path | None, error: OSError) -> "StorageError":
        """The StorageError of an OSError met writing under `path`: the OS's reason, e.g. 'No space left on device'."""
        return cls(path, os.strerror(error.errno) if error.errno else str(error))

    @classmethod
    def parse(cls, line: str) -> "StorageError | None":
        """The StorageError whose line (a trial's error, "...StorageError: storage at ...") this is, else None."""
        found = cls._LINE.search(line)
        return cls(found["path"], found["reason"]) if found else None


def cached_dataset(name: str, root: str | None, *, download: bool = True) -> Dataset:
    """The data set `name`, loaded once per process (`download`: fetch missing files, see `trainers.load_dataset`)."""
    if (name, root) not in _DATA:
        _DATA[name, root] = load_dataset(name, root, download=download)
    return _DATA[name, root]


def train_config(config: Mapping[str, Any]) -> TrainConfig:
    """The TrainConfig of a trial: config["train"], overridden by top-level keys that name its fields or method
    hyperparameters.

    A nested mapping (a grid cell, e.g. {"cell": {"lam": 1, "beta": 8}}) counts as its items. Other keys (a search
    space's own parameters, such as psi_from) are ignored, and DM's psi and rho too where lam or beta is there (a
    psi_rho space's trial: lam and beta are what its psi and rho make; a psi_schedule space's gives psi and rho).
    """
    base = dict(config[TRAIN_KEY])
    method = config.get("method", base["method"])
    own = own_values(config)
    for key, value in own.items():
        if key in _FIELDS and key != "method_params":
            base[key] = value
    changes = method_values(method, {k: v for k, v in own.items() if k not in _FIELDS})
    base["method_params"] = updated_params(method, base.get("method_params", {}), changes)
    base["milestones"] = tuple(base.get("milestones", ()))
    return TrainConfig(**base)


def own_values(config: Mapping[str, Any]) -> dict[str, Any]:
    """A trial config's values besides its base settings (TRAIN_KEY), each nested mapping (a grid cell) unpacked."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if key != TRAIN_KEY:
            flat.update(value if isinstance(value, Mapping) else {key: value})
    return flat


def load_state(folder: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """A trial's saved state (STATE_FILE in `folder`): tensors and plain values only, never code (weights_only)."""
    return torch.load(Path(folder) / STATE_FILE, map_location=device, weights_only=True)


def train_trial(config: dict[str, Any], data: Dataset | None = None, checkpoint_every_s: float = 0.0,
                population: Sequence[str] = ()) -> None:
    """Ray Tune function trainable: train, report each evaluation, checkpoint, resume from the last checkpoint.

    `data`: the trial's data set, handed over by the study (`tune.with_parameters`: one load for the whole study, in
    the driver); None: loaded from `data_root` once per worker process. A checkpoint goes with the first report at
    least `checkpoint_every_s` after the last one (0: every report) and with the last. A checkpoint ahead of what
    Tune knows of the trial (see `study.recovery`) first reports the evaluations Tune missed, from the state's
    history, so Tune's iteration count and its scheduler see each evaluation once, in order; one behind it reports
    again the evaluations since (Tune's callbacks and schedulers then see those steps twice).

    `population`: the hyperparameters that Population Based Training changes (empty: none). A population trial
    checkpoints at every report (PBT copies the last), reports the schedule it has followed so far as POLICY + name
    (from its history, which a copied checkpoint carries: its lineage), and where its loss stops being finite reports
    DIVERGED (val_acc NaN) before it fails, so that PBT can replace it.
    """
    if data is not None:  # a data set registered in the driver only (register_dataset) is known here by its data
        provide_dataset(config[TRAIN_KEY]["dataset"], data)
    train = train_config(config)
    trainer = Trainer(train, data if data is not None else cached_dataset(train.dataset, train.data_root))
    seen = 0  # evaluations Tune has been told of
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            trainer.load_state_dict(load_state(folder, trainer.device))
            seen = _reported(folder, len(trainer.history))
    if population and trainer.step == trainer.total_steps:  # PBT copied a trial at its end: that end is this one's
        seen = min(seen, len(trainer.history) - 1)
    constants = {"chance": 1 / trainer.info["num_classes"], "total_steps": trainer.total_steps}
    if trainer.info["noise_rate_realised"] is not None:  # None: the true labels are unknown
        constants["noise_rate_realised"] = trainer.info["noise_rate_realised"]
    every = 0.0 if population else checkpoint_every_s
    saved = time.monotonic()
    try:
        for metrics in itertools.chain(trainer.history[seen:], trainer):
            seen += 1
            if population:
                followed = policy(trainer.history[:seen], population, trainer.total_steps)
                metrics = {**metrics, **{POLICY + name: str(value) for name, value in followed.items()}}
            if trainer.step < trainer.total_steps and time.monotonic() - saved < every:
                tune.report({**metrics, **constants})
                continue
            saved = time.monotonic()
            _report_with_state(trainer, seen, {**metrics, **constants})
    except FloatingPointError:
        if population:
            tune.report({"step": trainer.step, "val_acc": math.nan, DIVERGED: 1.0, **constants})
        raise


def _report_with_state(trainer: Trainer, seen: int, metrics: Mapping[str, Any]) -> None:
    """Report `metrics` with a checkpoint of `trainer` (`seen`: the evaluations Tune has then been told of); a
    StorageError where it cannot be written."""
    where = tempfile.gettempdir()  # this worker's temporary folder, then (None) the study's storage folder
    try:
        with tempfile.TemporaryDirectory() as folder:
            with (Path(folder) / STATE_FILE).open("wb") as file:  # a full disk: OSError, not torch's RuntimeError
                torch.save(trainer.state_dict(), file)
            (Path(folder) / REPORTED_FILE).write_text(str(seen))
            where = None
            tune.report(dict(metrics), checkpoint=tune.Checkpoint.from_directory(folder))
    except OSError as error:
        raise StorageError.of(where, error) from None


def _reported(folder: str | Path, evaluations: int) -> int:
    """How many of a checkpoint's `evaluations` Tune has been told of (all where the checkpoint does not say)."""
    path = Path(folder) / REPORTED_FILE
    return int(path.read_text()) if path.is_file() else evaluations
