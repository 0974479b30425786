"""A small real study (Ray Tune, Optuna, MLflow on SQLite): runs nested study → noise rate → trial, params and metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from study.config import load_study_config
from study.driver import StudyState, run_study, study_folder, summary_table

pytestmark = pytest.mark.usefixtures("ray_session")


def small_study(tmp_path: Path, name: str, *extra: str):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = [f"name={name}", "noise_rates=[0.0, 0.4]", "search.num_samples=3", "search.max_concurrent=2",
                 "train.epochs=2", "final.n_seeds=1", f"tracking_uri={uri}", f"storage={tmp_path / 'ray'}", *extra]
    return load_study_config(None, overrides), uri


def runs_by_stage(uri: str, name: str) -> dict[str, list]:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    stages: dict[str, list] = {}
    for run in runs:
        stages.setdefault(run.data.tags.get("stage"), []).append(run)
    return stages


def test_small_study_leaves_nested_runs_with_params_and_epoch_metrics(tmp_path: Path) -> None:
    config, uri = small_study(tmp_path, "small")
    lines: list[str] = []
    state = run_study(config, echo=lines.append)
    stages = runs_by_stage(uri, "small")

    (study,) = stages["study"]
    rates = stages["noise_rate"]
    assert sorted(r.data.tags["noise_rate"] for r in rates) == ["0", "0.4"]
    assert all(r.data.tags["mlflow.parentRunId"] == study.info.run_id for r in rates)
    rate_ids = {r.info.run_id: r.data.tags["noise_rate"] for r in rates}

    search = stages["search"]
    assert len(search) == 6
    client = MlflowClient(uri)
    for run in search:
        assert run.data.tags["mlflow.parentRunId"] in rate_ids
        assert run.data.tags["noise_rate"] == rate_ids[run.data.tags["mlflow.parentRunId"]]
        assert {"lam", "beta", "dataset", "model", "noise_rate", "split", "seed"} <= set(run.data.params)
        assert run.data.params["split"] == "search"
        assert float(run.data.params["noise_rate"]) == float(run.data.tags["noise_rate"])
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, "val_acc")
        assert len(history) == 2 and sorted(m.step for m in history) == [9, 18]
        assert {"test_acc", "fit_acc", "p_clean", "emphasis_var"} <= set(run.data.metrics)
    for rate_run in rates:
        assert sum(r.data.tags["mlflow.parentRunId"] == rate_run.info.run_id for r in search) == 3

    final = stages["final"]
    assert len(final) == 2 and all(r.data.params["split"] == "final" for r in final)
    for key, rs in state.rates.items():
        assert rs.trials == 3 and len(rs.final_test) == 1 and set(rs.best) >= {"lam", "beta"}
        rate_run = client.get_run(rs.run_id)
        assert rate_run.data.metrics["best_val_acc"] == pytest.approx(rs.best_val_acc)
        assert rate_run.data.metrics["final_test_acc_mean"] == pytest.approx(rs.final_test[0])
    assert StudyState.load(study_folder(config)).rates.keys() == state.rates.keys()
    assert "noise rate | best setting" in summary_table(state)
    assert sum(line.lstrip().startswith("search ") for line in lines) == 6
