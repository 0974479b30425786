"""Your own data (`npz:PATH`, `folder:PATH`): loading, the `given` noise, true-label metrics absent or right,
`val_labels`, and each bad input as one line, exit 2 from `python -m trainers`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import trainers
from tests.trainers.own_data_files import CLASSES, own_arrays, write_folder, write_npz
from trainers.__main__ import main
from trainers.splits import derive_seeds, stratified_split
from trainers.training import TRUE_LABEL_METRICS

TRUE_METRICS = {"intact_acc", "noisy_fit_acc", "p_clean", "p_noisy", "noisy_weight_share"}


def run(name: str, **changes) -> trainers.Trainer:
    """A finished two-epoch run of the MLP with noise `given` on the data set `name`."""
    config = trainers.TrainConfig(dataset=name, noise="given", epochs=2, batch_size=32, lr=0.05, **changes)
    trainer = trainers.Trainer(config)
    list(trainer)
    return trainer


def test_an_npz_of_images_loads_normalised_with_the_given_labels(tmp_path: Path) -> None:
    name = write_npz(tmp_path / "x.npz", classes=np.array(CLASSES))
    data = trainers.load_dataset(name)
    arrays = own_arrays()
    assert data.in_shape == (1, 8, 8) and data.classes == CLASSES and not data.augment
    assert torch.equal(data.train_y, torch.from_numpy(arrays["y_train"]))
    assert data.true_labels is None and data.trusted is None
    assert abs(float(data.train_x.mean())) < 1e-4 and abs(float(data.train_x.std()) - 1) < 1e-2


def test_feature_vectors_load_as_channels_for_the_mlp(tmp_path: Path) -> None:
    arrays = own_arrays(features=True)
    data = trainers.load_dataset(write_npz(tmp_path / "f.npz", x_train=arrays["x_train"], x_test=arrays["x_test"]))
    assert data.in_shape == (16, 1, 1) and data.classes == ("0", "1", "2")
    assert torch.allclose(data.train_x.mean(0).flatten(), torch.zeros(16), atol=1e-4)  # each feature standardised
    assert run(data.name, val_labels="noisy").history[-1]["test_acc"] > 0.6


def test_without_true_labels_the_true_label_metrics_are_absent(tmp_path: Path) -> None:
    trainer = run(write_npz(tmp_path / "x.npz"), val_labels="noisy")
    last = trainer.history[-1]
    assert not set(TRUE_LABEL_METRICS) & set(last), last
    assert {"val_acc", "test_acc", "fit_acc", "train_loss"} <= set(last)
    assert "val_acc_clean" not in last and "val_acc_noisy" not in last
    assert trainer.info["noise_rate_realised"] is None and last["test_acc"] > 0.6


def test_with_true_labels_intact_acc_and_the_noise_mask_are_right(tmp_path: Path) -> None:
    arrays = own_arrays()
    trainer = run(write_npz(tmp_path / "x.npz", drop=()))
    keep, held = stratified_split(torch.from_numpy(arrays["y_train"]), 0.2, derive_seeds(0).split)
    given, true = arrays["y_train"][keep.numpy()], arrays["y_train_true"][keep.numpy()]
    pred = trainer.predict(trainer.train_x).argmax(1).numpy()
    last = trainer.history[-1]
    assert TRUE_METRICS <= set(last)
    assert last["intact_acc"] == pytest.approx(float((pred == true).mean()))
    assert last["noisy_fit_acc"] == pytest.approx(float((pred == given)[given != true].mean()))
    assert trainer.info["noise_rate_realised"] == pytest.approx(float((given != true).mean()))
    val_pred = trainer.predict(trainer.val[0]).argmax(1).numpy()
    assert last["val_acc"] == last["val_acc_clean"] == pytest.approx(
        float((val_pred == arrays["y_train_true"][held.numpy()]).mean()))
    assert last["val_acc_noisy"] == pytest.approx(float((val_pred == arrays["y_train"][held.numpy()]).mean()))
    assert last["val_acc_noisy"] != last["val_acc_clean"]


def test_noisy_validation_validates_by_the_given_labels(tmp_path: Path) -> None:
    last = run(write_npz(tmp_path / "x.npz", drop=()), val_labels="noisy").history[-1]
    assert last["val_acc"] == last["val_acc_noisy"] != last["val_acc_clean"]


def test_noisy_validation_of_synthetic_noise_corrupts_the_validation_part() -> None:
    split = trainers.make_split(trainers.load_dataset("digits"), noise="symmetric", noise_rate=0.6,
                                val_labels="noisy")
    assert torch.equal(split.val_y, split.val_noisy_y)
    assert float((split.val_noisy_y != split.val_clean_y).float().mean()) == pytest.approx(0.6, abs=0.02)


def test_trusted_examples_validate_and_leave_the_training_part(tmp_path: Path) -> None:
    trusted = np.arange(0, 150, 5)
    trainer = run(write_npz(tmp_path / "x.npz", trusted=trusted), val_labels="trusted")
    assert trainer.info["val_size"] == len(trusted) and trainer.info["train_size"] == 150 - len(trusted)
    assert "val_acc" in trainer.history[-1]


def test_an_image_folder_loads_with_its_classes_and_trusted_part(tmp_path: Path) -> None:
    data = trainers.load_dataset(write_folder(tmp_path / "imgs", per_class=6, trusted=2))
    assert data.classes == tuple(sorted(CLASSES)) and data.in_shape == (1, 8, 8)
    assert len(data.train_y) == 3 * (6 + 2) and len(data.test_y) == 3 * 3
    assert data.trusted.tolist() == list(range(18, 24)) and data.train_y[18:].tolist() == [0, 0, 1, 1, 2, 2]
    assert data.true_labels is None
    assert run(data.name, val_labels="trusted").info["val_size"] == 6


def npz_case(**arrays) -> callable:
    return lambda tmp: write_npz(tmp / "x.npz", **arrays)


def _drop(key: str):
    return lambda tmp: write_npz(tmp / "x.npz", drop=("y_train_true", key))


BAD = [
    ("npz-missing-key", _drop("y_test"), [], ("no array 'y_test'", "x_train, y_train, x_test, y_test")),
    ("npz-lengths", npz_case(y_train=np.zeros(149, dtype=np.int64)), [], ("x_train has 150 examples, y_train 149",)),
    ("npz-label-outside", npz_case(y_test=np.full(60, 3), classes=np.array(CLASSES)), [],
     ("y_test holds 3, outside [0, 3)",)),
    ("npz-negative-label", npz_case(y_test=np.full(60, -1)), [], ("y_test holds -1, outside [0, 3)",)),
    ("npz-float-labels", npz_case(y_train=own_arrays()["y_train"].astype(float)), [],
     ("y_train must be a 1-D integer array", "float64")),
    ("npz-class-without-example", npz_case(y_train=np.arange(150) % 2, classes=np.array(CLASSES)), [],
     ("class 'star' has no training example",)),
    ("npz-trusted-out-of-range", npz_case(trusted=np.array([1, 150])), [], ("trusted must hold indices", "[0, 150)")),
    ("folder-mixed-sizes", lambda tmp: write_folder(tmp / "imgs", per_class=2, sizes=(8, 9)), [],
     ("images of mixed sizes", "is 9×9", "is 8×8")),
    ("folder-empty", lambda tmp: (tmp / "empty" / "train").mkdir(parents=True) or f"folder:{tmp / 'empty'}", [],
     ("image folder", "empty/train", "class folder")),
    ("val-trusted-without-trusted", npz_case(), ["--val-labels", "trusted"],
     ("val_labels: 'trusted' is not allowed", "has no trusted examples")),
    ("val-clean-without-true-labels", npz_case(), ["--val-labels", "clean"],
     ("val_labels: 'clean' is not allowed", "noisy or trusted", "has no true labels")),
    ("given-with-a-rate", npz_case(), ["--noise", "given:0.2", "--val-labels", "noisy"],
     ("noise_rate: 0.2 is not allowed", "noise 'given'")),
]


@pytest.mark.parametrize("make, flags, fragments", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_own_data_is_one_line_exit_2(make, flags: list[str], fragments: tuple[str, ...], tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    name = make(tmp_path)
    flags = flags or ["--val-labels", "noisy"]
    assert main(["--dataset", name, "--noise", "given", "--epochs", "1", *flags]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: "), err
    assert all(f in err for f in fragments), err
