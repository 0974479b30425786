"""A driver killed mid-study (SIGKILL) and `study resume`, with ASHA early stopping on: exactly the requested trials,
one MLflow run each, the parent runs intact, the trials finished before the kill untouched, early-stopping decisions
kept (and made after the restart as if there had been none), and every trial's final metrics equal to an
uninterrupted run of its setting, even where Tune's saved state names a checkpoint it had already deleted."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
from mlflow.tracking import MlflowClient

from study.cli import main
from study.config import load_study_config
from study.driver import TRIALS, StudyState, study_folder
from study.recovery import COPY

pytestmark = pytest.mark.usefixtures("ray_session")
# Grid cells (λ 1), run one at a time in this order; val_acc after 4, 6 and 8 epochs (measured, noise 0.4):
# β 5: 0.491, 0.484, 0.436 | β 24: 0.143, stopped at 4 | β 2: 0.526, 0.603, 0.669 | β 3: 0.519, 0.575, 0.606, on to
# the end past rung 4's median of the first three (0.491); a scheduler restored without its rungs would hold only
# the third's value from after the restart (≥ 0.603) there, and stop the fourth at 4
BETAS = [5, 24, 2, 3]
EPOCHS, GRACE = 12, 4
RUNGS = (4, 8)  # ASHA's milestones for grace period 4, reduction factor 2 and 12 evaluations
SEARCH, PARENTS = "tags.stage = 'search'", "tags.stage != 'search'"


def tune_trials(experiment: Path) -> dict[int, dict]:
    """Tune's saved view of each trial, by its number (1, 2, … in BETAS's order): status, evaluations seen, the
    checkpoint it names (relative to the experiment's folder)."""
    state = json.loads(max(experiment.glob("experiment_state-*.json")).read_text())
    trials = {}
    for trial_json, metadata_json in state["trial_data"]:
        trial, result = json.loads(trial_json), json.loads(metadata_json)["last_result"]
        trials[BETAS.index(trial["evaluated_params"]["cell/beta"]) + 1] = {
            "status": trial["status"], "iteration": result.get("training_iteration", 0),
            "checkpoint": Path(trial["relative_logdir"], result.get("checkpoint_dir_name", "none"))}
    return trials


def save_state(experiment: Path, to: Path) -> dict[int, dict]:
    """Copy the study's copy of Tune's saved state (what a driver killed now would leave) to `to`; Tune's view of the
    trials in it, or {} where the copy was being replaced (as it is after each of Tune's saves)."""
    shutil.rmtree(to, ignore_errors=True)
    try:
        shutil.copytree(experiment / COPY, to)
        return tune_trials(to)
    except (OSError, ValueError, KeyError):
        return {}


def evaluations(trial: Path) -> int:
    """The evaluations that the newest checkpoint in a trial's folder holds (0 before its first)."""
    return max((int(p.name.removeprefix("checkpoint_")) + 1 for p in trial.glob("checkpoint_*")), default=0)


def wait_for(condition, driver: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 240
    while not condition():
        assert driver.poll() is None and time.monotonic() < deadline, f"the driver ended or stalled before {what}"
        time.sleep(0.05)


def record(client: MlflowClient, run) -> dict:
    """What a run holds: status, end time, tags, params and every metric's full history."""
    history = {key: [(m.step, m.timestamp, m.value) for m in client.get_metric_history(run.info.run_id, key)]
               for key in run.data.metrics}
    return {"status": run.info.status, "end": run.info.end_time, "tags": run.data.tags, "params": run.data.params,
            "history": history}


def asha_lengths(histories: list[list[float]]) -> list[int]:
    """How long each trial (in the order they ran, one at a time) runs under asynchronous successive halving: it
    stops at the first rung where its val_acc is below the median of those the trials before it had there."""
    rungs: dict[int, list[float]] = {m: [] for m in RUNGS}
    lengths = []
    for values in histories:
        length = EPOCHS
        for milestone in RUNGS:
            if milestone > len(values):
                break
            value, before = values[milestone - 1], rungs[milestone]
            rungs[milestone] = [*before, value]
            if before and value < statistics.median(before):
                length = milestone
                break
        lengths.append(length)
    return lengths


def test_killed_driver_resumes_without_rerunning_duplicating_or_undoing(tmp_path: Path, capsys, monkeypatch,
                                                                        uninterrupted, driver_env) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = ["checkpoint_every_s=0",
                 "name=resumed", "noise_rates=[0.4]", "search.mode=grid", f"search.grid={{lam: [1], beta: {BETAS}}}",
                 "search.max_concurrent=1", f"search.asha={{grace_period: {GRACE}, reduction_factor: 2}}",
                 f"train.epochs={EPOCHS}", "final.n_seeds=0", f"tracking_uri={uri}", f"storage={tmp_path / 'ray'}"]
    config = load_study_config(None, overrides)
    folder = study_folder(config)
    experiment = folder / TRIALS
    address = ray.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "study", "run", *sum((["--set", o] for o in overrides), []), "--address", address]
    with (tmp_path / "driver.log").open("w") as out:
        driver = subprocess.Popen(command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                  env=driver_env)
    saved: dict[int, dict] = {}

    def state_past_first_rung() -> bool:  # Tune's saved state shows the third trial past its first rung
        saved.update(save_state(experiment, tmp_path / "saved"))
        return saved.get(3, {}).get("iteration", 0) > GRACE

    try:
        # keep Tune's state as it is once the third trial is past its first rung, then let the trial go on until
        # the checkpoint that state names is deleted, and kill the driver
        wait_for(state_past_first_rung, driver, "the third trial passed its first rung")
        named = experiment / saved[3]["checkpoint"]
        wait_for(lambda: not named.exists(), driver, "the third trial's next checkpoint")
        assert driver.poll() is None, "the driver ended before it could be killed"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    # the saved state at the kill as a driver killed after Tune deleted the checkpoint it names (Tune keeps one) but
    # before its next save would leave it: the first trial done, the second stopped early by ASHA, the third running
    assert [(saved[n]["status"], saved[n]["iteration"]) for n in (1, 2, 3)] == [
        ("TERMINATED", EPOCHS), ("TERMINATED", GRACE), ("RUNNING", saved[3]["iteration"])]
    assert GRACE < saved[3]["iteration"] < evaluations(named.parent) < EPOCHS
    assert not named.exists()
    shutil.rmtree(experiment / COPY, ignore_errors=True)  # absent where the kill came as the copy was replaced
    shutil.copytree(tmp_path / "saved", experiment / COPY)

    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name("resumed").experiment_id
    state_before = StudyState.load(folder)
    parents_before = {r.info.run_id: record(client, r) for r in client.search_runs([experiment_id], PARENTS)}
    search_before = sorted(client.search_runs([experiment_id], SEARCH), key=lambda r: r.info.start_time)
    assert [r.info.status for r in search_before] == ["FINISHED", "FINISHED", "RUNNING"]
    assert search_before[1].data.tags["early_stopped"] == "true" and "early_stopped" not in search_before[0].data.tags
    finished_before = {r.info.run_id: record(client, r) for r in search_before[:2]}

    monkeypatch.chdir(tmp_path)
    assert main(["resume", str(folder), "--address", address]) == 0
    out = capsys.readouterr().out
    assert "noise rate | best setting" in out
    assert f"report: {tmp_path / 'report' / 'resumed' / 'index.md'}" in out  # the resumed study ends with its report

    # exactly the requested trials, one MLflow run each, all finished
    runs = sorted(client.search_runs([experiment_id], SEARCH), key=lambda r: r.info.start_time)
    assert [r.info.status for r in runs] == ["FINISHED"] * len(BETAS)
    assert [float(r.data.params["beta"]) for r in runs] == BETAS
    assert [r.info.run_name for r in runs] == [f"search 0.4 #{n}" for n in range(1, len(BETAS) + 1)]  # as they started
    assert len({r.data.tags["ray_trial_id"] for r in runs}) == len(BETAS)
    state = StudyState.load(folder)
    assert state.rates["0.4"].trials == len(BETAS) and state.rates["0.4"].search_done

    # the parent runs intact: the same two runs, their tags and params as they were (the search's best added), ended
    before = state_before.rates["0.4"]
    assert (state.study_run_id, state.rates["0.4"].run_id) == (state_before.study_run_id, before.run_id)
    parents = {r.info.run_id: record(client, r) for r in client.search_runs([experiment_id], PARENTS)}
    assert set(parents) == set(parents_before) == {state.study_run_id, state.rates["0.4"].run_id}
    for run_id, before in parents_before.items():
        assert before["status"] == "RUNNING" and parents[run_id]["status"] == "FINISHED"
        assert parents[run_id]["tags"] == before["tags"]
        assert parents[run_id]["params"].items() >= before["params"].items()

    # the trials that had finished before the kill were not run again: their runs are as they were
    for run_id, before in finished_before.items():
        assert record(client, client.get_run(run_id)) == before

    # early stopping: the second trial stays stopped (Tune: TERMINATED after 4 evaluations), and each trial ran as
    # long as ASHA run once, without a restart, lets it: the fourth goes on past the rung of the first three
    histories = [sorted(client.get_metric_history(r.info.run_id, "val_acc"), key=lambda m: m.step) for r in runs]
    values = [[m.value for m in history] for history in histories]
    lengths = [len(history) for history in histories]
    assert lengths == asha_lengths(values) == [EPOCHS, GRACE, EPOCHS, EPOCHS]
    assert [r.data.tags.get("early_stopped") for r in runs] == [None, "true", None, None]
    assert [(t["status"], t["iteration"]) for _, t in sorted(tune_trials(experiment).items())] == [
        ("TERMINATED", n) for n in lengths]

    # every evaluation logged once, and the last equal to an uninterrupted run's (the third went on from the
    # checkpoint after the one Tune's state named, reporting the evaluations Tune had missed first)
    references = [uninterrupted(run, config.train, length) for run, length in zip(runs, lengths)]
    for run, history, last in zip(runs, histories, references):
        assert [m.step for m in history] == [9 * e for e in range(1, len(history) + 1)]
        assert run.data.metrics["val_acc"] == pytest.approx(last["val_acc"], abs=1e-12)
        assert run.data.metrics["test_acc"] == pytest.approx(last["test_acc"], abs=1e-12)
