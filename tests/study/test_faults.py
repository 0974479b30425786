"""Faults a study survives, with the real parts (Ray Tune, Optuna, MLflow on SQLite): a trial whose loss becomes NaN
fails alone and at once (no retry), with its reason in MLflow, while eight trials report into one SQLite store at once
and lose nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient
from ray import tune

from reports import write_report
from study.config import load_study_config
from study.driver import TRIALS, run_study
from study.searcher import stage_of

EPOCHS = 3


def test_diverging_trials_fail_alone_and_eight_concurrent_trials_lose_no_metric(ray_session, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    # β = 1000 overflows DM's weights on the first batch: the loss is NaN and the trainer raises FloatingPointError.
    config = load_study_config(None, [
        "name=faults", "noise_rates=[0.2]", "search.mode=grid", "search.grid={lam: [0, 0.5, 1, 2], beta: [2, 1000]}",
        "search.max_concurrent=8", "resources.cpus_per_trial=0.25", f"train.epochs={EPOCHS}", "final.n_seeds=1",
        f"tracking_uri={uri}", f"storage={tmp_path}/ray"])
    lines: list[str] = []
    state = run_study(config, echo=lines.append)

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("faults")
    search = client.search_runs([experiment.experiment_id], "tags.stage = 'search'", max_results=100)
    assert len(search) == 8
    failed = [r for r in search if r.info.status == "FAILED"]
    finished = [r for r in search if r.info.status == "FINISHED"]
    assert sorted(float(r.data.params["beta"]) for r in failed) == [1000.0] * 4
    assert sorted(float(r.data.params["beta"]) for r in finished) == [2.0] * 4
    for run in failed:
        assert run.data.tags["error"].startswith("FloatingPointError: the training loss became nan"), run.data.tags
    assert sum("failed: FloatingPointError" in line for line in lines) == 4
    # each diverging trial failed once and was not retried (a retry would diverge again), though Tune retries crashes
    every = tune.ExperimentAnalysis(f"{tmp_path}/ray/faults/{TRIALS}").trials  # the search's and the final retrain
    trials = [t for t in every if stage_of(t.config) == "search"]
    assert sorted((t.status, t.num_failures) for t in trials) == [("ERROR", 1)] * 4 + [("TERMINATED", 0)] * 4
    assert all(t.max_failures == 2 for t in trials)
    assert [Path(t.error_file).read_text().count("Failure # ") for t in trials if t.status == "ERROR"] == [1] * 4
    assert not [line for line in lines if "retried from its last checkpoint" in line]
    # the study went on: a best setting among the finished cells, and its final retrain
    assert state.rates["0.2"].best["beta"] == 2.0 and state.rates["0.2"].search_done and state.rates["0.2"].final_done
    final = client.search_runs([experiment.experiment_id], "tags.stage = 'final'")
    assert [r.info.status for r in final] == ["FINISHED"]

    # eight trials reported into one SQLite store at once: every evaluation of every metric is there
    keys = {"val_acc", "test_acc", "fit_acc", "intact_acc", "train_loss", "p_clean", "p_noisy", "epoch"}
    for run in finished:
        assert keys <= set(run.data.metrics)
        for key in keys:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert len(steps) == len(set(steps)) == EPOCHS, (key, steps)

    index = write_report(uri, "faults", tmp_path / "report", log_artifacts=False)
    summary = pd.read_csv(index.parent / "summary.csv")
    assert summary["failed"].tolist() == [4] and summary["trials"].tolist() == [8]
