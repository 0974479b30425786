"""How often a trial checkpoints: at every evaluation with checkpoint_every_s 0; else at the first evaluation that long
after its last checkpoint, and always at its last. Either way it trains the same, on the data set it is handed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ray import tune

from trainables import TRAIN_KEY, cached_dataset, train_trial
from trainers import TrainConfig

pytestmark = pytest.mark.usefixtures("ray_session")
EPOCHS = 4


def reported(storage: Path, name: str, checkpoint_every_s: float) -> list[dict[str, Any]]:
    """The rows of result.json of one CCE trial on digits run through Tune with `checkpoint_every_s`."""
    base = TrainConfig(dataset="digits", model="mlp", method="cce", epochs=EPOCHS, batch_size=256).to_dict()
    trainable = tune.with_parameters(train_trial, data=cached_dataset("digits", None),
                                     checkpoint_every_s=checkpoint_every_s)
    tuner = tune.Tuner(tune.with_resources(trainable, {"cpu": 1}), param_space={TRAIN_KEY: base},
                       run_config=tune.RunConfig(name=name, storage_path=str(storage), verbose=0))
    [result] = list(tuner.fit())
    assert result.error is None
    return [json.loads(line) for line in (Path(result.path) / "result.json").read_text().splitlines()]


def test_a_trial_checkpoints_as_often_as_checkpoint_every_s_says_and_trains_the_same(tmp_path: Path) -> None:
    every = reported(tmp_path, "every", 0.0)
    sparse = reported(tmp_path, "sparse", 3600.0)
    assert [bool(row.get("checkpoint_dir_name")) for row in every] == [True] * EPOCHS
    assert [bool(row.get("checkpoint_dir_name")) for row in sparse] == [False] * (EPOCHS - 1) + [True]
    for key in ("epoch", "train_loss", "val_acc", "test_acc"):
        assert [row[key] for row in sparse] == [row[key] for row in every], key
