"""A study of gradient similarity end to end: config, Ray Tune search of (a, k), final retrain, MLflow, report."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from reports import write_report
from study.config import load_study_config
from study.driver import run_study

pytestmark = pytest.mark.usefixtures("ray_session")


def test_a_gradsim_study_on_digits_is_tracked_and_reported(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = load_study_config(None, ["name=digits-gradsim", "method=gradsim", "noise_rates=[0.4]",
                                      "search.num_samples=2", "search.max_concurrent=2", "train.epochs=1",
                                      "final.n_seeds=1", f"tracking_uri={uri}", f"storage={tmp_path / 'ray'}"])
    assert config.method_params == {}
    run_study(config, echo=lambda line: None)

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("digits-gradsim")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    trials = [r for r in runs if r.data.tags.get("stage") in ("search", "final")]
    assert sorted(r.data.tags["stage"] for r in trials) == ["final", "search", "search"]
    for run in trials:
        assert run.data.tags["method"] == "gradsim" and run.info.status == "FINISHED"
        assert 0 <= run.data.metrics["noisy_top10"] <= 10 and 0 <= run.data.metrics["noisy_bottom10"] <= 10
    search = [r for r in trials if r.data.tags["stage"] == "search"]
    points = {(float(r.data.params["a"]), int(r.data.params["k"])) for r in search}
    assert len(points) == 2  # the search drew two settings, each within a ∈ [1, 16], k ∈ [2, batch size]
    assert all(1 <= a <= 16 and 2 <= k <= config.train.batch_size for a, k in points)
    best = max(search, key=lambda r: r.data.metrics["val_acc"])
    final = next(r for r in trials if r.data.tags["stage"] == "final")
    assert (final.data.params["a"], final.data.params["k"]) == (best.data.params["a"], best.data.params["k"])

    index = write_report(uri, "digits-gradsim", tmp_path / "report", log_artifacts=False)
    text = index.read_text()
    assert '"method": "gradsim"' in text and "| gradsim |" in text  # in the config and the methods compared
