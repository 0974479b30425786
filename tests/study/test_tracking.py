"""The MLflow tracker, without a study: a step that a restored trial reports again is logged once, the first time."""

from __future__ import annotations

import pickle
from pathlib import Path

from mlflow.tracking import MlflowClient
from ray.tune.experiment import Trial

from study.tracking import MlflowTracker


def test_a_replayed_step_is_logged_once_by_the_same_driver_and_by_a_resumed_one(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("tracked")
    parent = client.create_run(experiment).info.run_id
    trial = Trial("train_trial", config={"lam": 1.0}, trial_id="t_00000", stub=True)

    def report(tracker: MlflowTracker, step: int, val_acc: float) -> None:
        tracker.on_trial_result(0, [trial], trial, {"step": step, "val_acc": val_acc, "config": trial.config})

    first = MlflowTracker(uri, experiment, parent, {"stage": "search"}, echo=lambda line: None)
    for step in (9, 18, 27):
        report(first, step, step / 100)
    report(first, 27, -1.0)  # a retry in the same driver, restored from the checkpoint before step 27
    resumed = pickle.loads(pickle.dumps(first))  # a killed driver's tracker, as Tune's experiment state restores it
    for step in (18, 27, 36):  # restored from an older checkpoint than the last step logged
        report(resumed, step, -1.0 if step < 36 else 0.36)

    [run] = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent}'")
    history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_acc"))
    assert history == [(9, 0.09), (18, 0.18), (27, 0.27), (36, 0.36)]
    assert run.data.params == {"lam": "1.0"}
