"""Own data in a real small study (Ray Tune, Optuna, MLflow on SQLite): an npz and an image folder, with and without
true labels; a data set registered from Python; bad own data stopped by `study run` in one line, nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

import trainers
from reports._load import load_study
from reports._tables import validation_choice_table
from study.cli import main
from study.config import load_study_config
from study.driver import run_study
from tests.study.test_bad_input import assert_one_clear_line, places, snapshot  # noqa: F401 (places: a fixture)
from tests.study.test_study_run import runs_by_stage
from tests.trainers.own_data_files import own_arrays, write_folder, write_npz
from trainers.training import TRUE_LABEL_METRICS

TINY = ["noise_rates=[0.0]", "search.num_samples=2", "search.max_concurrent=2", "train.epochs=2", "final.n_seeds=1",
        "train.batch_size=32", "train.lr=0.05"]


def own_study(tmp_path: Path, name: str, dataset: str, *extra: str) -> tuple[list, list, str]:
    """Run a tiny study of `dataset`; its (search, final) MLflow runs and the tracking URI."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = load_study_config(None, [f"name={name}", f"train.dataset={dataset}", f"tracking_uri={uri}",
                                      f"storage={tmp_path / 'ray'}", *TINY, *extra])
    run_study(config, echo=lambda line: None)
    stages = runs_by_stage(uri, name)
    assert len(stages["search"]) == 2 and len(stages["final"]) == 1
    assert all(r.info.status == "FINISHED" for r in stages["search"] + stages["final"])
    return stages["search"], stages["final"], uri


@pytest.mark.usefixtures("ray_session")
def test_an_npz_without_true_labels_leaves_the_true_label_metrics_out(tmp_path: Path) -> None:
    search, final, _ = own_study(tmp_path, "own-npz", write_npz(tmp_path / "x.npz"), "noise=given",
                                 "train.val_labels=noisy")
    for run in search + final:
        assert not set(TRUE_LABEL_METRICS) & set(run.data.metrics), sorted(run.data.metrics)
        assert "noise_rate_realised" not in run.data.metrics and "test_acc" in run.data.metrics
    assert all({"val_acc", "best_val_acc"} <= set(r.data.metrics) for r in search)
    assert not any({"val_acc_clean", "val_acc_noisy"} & set(r.data.metrics) for r in search)
    assert all(r.data.params["val_labels"] == "noisy" and r.data.params["noise"] == "given" for r in search)


@pytest.mark.usefixtures("ray_session")
def test_an_npz_with_true_labels_has_them_right(tmp_path: Path) -> None:
    arrays = own_arrays()
    search, final, uri = own_study(tmp_path, "own-npz-true", write_npz(tmp_path / "x.npz", drop=()), "noise=given")
    realised = float((arrays["y_train"] != arrays["y_train_true"]).mean())
    for run in search + final:
        assert {"intact_acc", "p_clean", "p_noisy", "noisy_fit_acc", "noisy_weight_share"} <= set(run.data.metrics)
        assert 0 <= run.data.metrics["intact_acc"] <= 1
    assert final[0].data.metrics["noise_rate_realised"] == pytest.approx(realised)  # the final split is all of it
    for run in search:
        metrics = run.data.metrics
        assert metrics["val_acc"] == metrics["val_acc_clean"] and "val_acc_noisy" in metrics
    table = validation_choice_table(load_study(uri, "own-npz-true"))
    assert table["validation"].tolist() == ["clean", "noisy"] and table["test_acc"].between(0, 1).all()


@pytest.mark.usefixtures("ray_session")
def test_an_image_folder_with_trusted_examples_runs_a_study(tmp_path: Path) -> None:
    search, final, _ = own_study(tmp_path, "own-folder", write_folder(tmp_path / "imgs", per_class=20, trusted=4),
                                 "noise=given", "train.val_labels=trusted")
    assert not any(set(TRUE_LABEL_METRICS) & set(r.data.metrics) for r in search + final)
    assert all(r.data.metrics["val_acc"] > 0.5 for r in search)


@pytest.mark.usefixtures("ray_session")
def test_a_data_set_registered_from_python_reaches_the_trials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray's worker processes never see the driver's registration: the data set handed to them must do."""
    arrays = own_arrays(seed=3)
    registry = trainers.datasets.DATASETS  # the registration is undone after the test, for the tests that list it
    monkeypatch.setattr(registry, "_entries", dict(registry._entries))

    @trainers.register_dataset("registered_in_the_driver")
    def _registered(root: Path, download: bool) -> trainers.Dataset:
        x = torch.from_numpy(arrays["x_train"]).float().unsqueeze(1) / 255
        xt = torch.from_numpy(arrays["x_test"]).float().unsqueeze(1) / 255
        y, yt = torch.from_numpy(arrays["y_train_true"]), torch.from_numpy(arrays["y_test"])
        return trainers.Dataset("registered_in_the_driver", x, y, xt, yt, ("a", "b", "c"), False)

    search, final, _ = own_study(tmp_path, "own-registered", "registered_in_the_driver", "noise=symmetric")
    assert all("val_acc" in r.data.metrics for r in search)
    assert all("intact_acc" in r.data.metrics for r in search + final)


def empty_folder(aside: Path) -> str:
    (aside / "empty" / "train").mkdir(parents=True)
    return f"folder:{aside / 'empty'}"


GIVEN = ["noise=given", "noise_rates=[0]"]
BAD = [
    ("npz-missing-key", lambda aside: write_npz(aside / "x.npz", drop=("y_train_true", "x_test")), GIVEN,
     ("error: train.dataset: npz file", "no array 'x_test'")),
    ("npz-float-labels", lambda aside: write_npz(aside / "x.npz", y_test=np.zeros(60)), GIVEN,
     ("error: train.dataset: npz file", "y_test must be a 1-D integer array")),
    ("folder-empty", empty_folder, GIVEN, ("error: train.dataset: image folder", "class folder")),
    ("val-clean-without-true-labels", lambda aside: write_npz(aside / "x.npz"), [*GIVEN, "train.val_labels=clean"],
     ("error: train.val_labels: 'clean' is not allowed", "noisy or trusted", "has no true labels")),
    ("val-trusted-without-trusted", lambda aside: write_npz(aside / "x.npz"),
     [*GIVEN, "train.val_labels=trusted"],
     ("error: train.val_labels: 'trusted' is not allowed", "has no trusted examples")),
    ("given-with-rates", lambda aside: write_npz(aside / "x.npz"), ["noise=given"],
     ("error: noise_rates: 0.2 is not allowed", "noise 'given'")),
]


@pytest.mark.parametrize("make, sets, fragments", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_own_data_stops_the_study_in_one_line(make, sets: list[str], fragments: tuple[str, ...],
                                                   places: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    cwd, aside = places
    dataset = make(aside)
    before = snapshot(aside)
    sets = [f"train.dataset={dataset}", "train.val_labels=noisy", *sets]
    code = main(["run", *[arg for s in sets for arg in ("--set", s)]])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert_one_clear_line(err, fragments)
    assert out == "" and list(cwd.iterdir()) == [] and snapshot(aside) == before


@pytest.mark.usefixtures("ray_session")
def test_a_config_error_raised_in_a_ray_task_reaches_the_driver_as_itself() -> None:
    import ray

    @ray.remote
    def bad() -> None:
        raise trainers.ConfigError("train.val_labels", "clean", "noisy or trusted")

    with pytest.raises(trainers.ConfigError) as error:
        ray.get(bad.remote())
    assert error.value.field == "train.val_labels" and "'clean' is not allowed (noisy or trusted)" in str(error.value)
