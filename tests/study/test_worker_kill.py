"""A trial's Ray worker process killed (SIGKILL) mid-training: Tune retries the trial from its last checkpoint, its
final metrics equal those of an uninterrupted run, and MLflow keeps one run for it with each step logged once."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from ray import tune

from study.config import load_study_config
from study.driver import TRIALS as EXPERIMENT, run_study, study_folder

pytestmark = pytest.mark.usefixtures("ray_session")
TRIALS, EPOCHS, STEPS_PER_EPOCH = 3, 30, 9  # digits: 1150 training examples in batches of 128
KILL_AFTER = 2  # epochs: the worker is killed once a trial has reported (and checkpointed) this many


def results(trial_folder: Path) -> list[dict]:
    """The results Tune has written for a trial so far (result.json, a JSON line each; a line being written is left)."""
    rows = []
    for line in (trial_folder / "result.json").read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def ray_worker(pid: int) -> bool:
    """Whether `pid` is a live Ray worker (its process title starts with "ray::")."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::")
    except OSError:
        return False


def kill_a_worker(experiment: Path, killed: dict, stop: threading.Event) -> None:
    """SIGKILL the Ray worker of the first trial whose result.json shows a checkpointed result at epoch KILL_AFTER or
    later; what was killed goes into `killed` (trial id, pid, epoch)."""
    while not stop.is_set():
        for folder in experiment.glob("*/"):
            rows = results(folder) if (folder / "result.json").is_file() else []
            last = rows[-1] if rows else {}
            if KILL_AFTER <= last.get("epoch", 0) < EPOCHS and last.get("checkpoint_dir_name"):
                pid = last["pid"]
                if ray_worker(pid):
                    os.kill(pid, signal.SIGKILL)
                    killed.update(trial_id=last["trial_id"], pid=pid, epoch=last["epoch"], folder=folder)
                    return
        time.sleep(0.02)


def test_a_killed_worker_is_retried_from_its_checkpoint_and_loses_nothing(tmp_path: Path, uninterrupted) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = load_study_config(None, [
        "name=killed", "checkpoint_every_s=0", "noise_rates=[0.4]", f"search.num_samples={TRIALS}",
        "search.max_concurrent=2", f"train.epochs={EPOCHS}", "final.n_seeds=0", f"tracking_uri={uri}",
        f"storage={tmp_path / 'ray'}"])
    experiment = study_folder(config) / EXPERIMENT
    killed: dict = {}
    stop = threading.Event()
    killer = threading.Thread(target=kill_a_worker, args=(experiment, killed, stop), daemon=True)
    killer.start()
    lines: list[str] = []
    try:
        state = run_study(config, echo=lines.append)
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was killed"
    assert state.rates["0.4"].trials == TRIALS

    # Tune retried the trial (one failure) and it finished; the retry ran in another worker from the checkpoint
    trials = {t.trial_id: t for t in tune.ExperimentAnalysis(str(experiment)).trials}
    assert len(trials) == TRIALS
    victim = trials[killed["trial_id"]]
    assert (victim.status, victim.num_failures) == ("TERMINATED", 1)
    assert sorted(t.num_failures for t in trials.values()) == [0] * (TRIALS - 1) + [1]
    assert {t.status for t in trials.values()} == {"TERMINATED"}
    assert "Failure # 1" in Path(victim.error_file).read_text()
    rows = results(killed["folder"])
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))  # every epoch reported once
    before = [r for r in rows if r["pid"] == killed["pid"]]
    after = [r for r in rows if r["pid"] != killed["pid"]]
    assert len({r["pid"] for r in after}) == 1
    assert len(before) >= killed["epoch"] >= KILL_AFTER and before + after == rows
    # the restored run began after the last checkpoint, not at epoch 1: restored, not restarted
    assert after[0]["epoch"] == before[-1]["epoch"] + 1 and after[0]["iterations_since_restore"] == 1
    retried = [line for line in lines if "retried from its last checkpoint" in line]
    assert len(retried) == 1 and killed["trial_id"] in retried[0], retried

    # MLflow: one run per trial, each metric once per epoch, and the final metrics of an uninterrupted run
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name("killed").experiment_id
    runs = client.search_runs([experiment_id], "tags.stage = 'search'")
    assert len(runs) == TRIALS and {r.info.status for r in runs} == {"FINISHED"}
    [run] = [r for r in runs if r.data.tags["ray_trial_id"] == killed["trial_id"]]
    assert run.data.tags["retries"] == "1" and "error" not in run.data.tags
    for key in ("val_acc", "test_acc", "train_loss", "epoch", "best_val_acc"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        assert sorted(steps) == [STEPS_PER_EPOCH * e for e in range(1, EPOCHS + 1)], key
    for each in runs:  # the killed trial and the others
        last = uninterrupted(each, config.train)
        assert last["epoch"] == EPOCHS
        compared = {k: v for k, v in last.items() if k not in ("time", "step")}
        assert {k: each.data.metrics[k] for k in compared} == compared, each.data.tags["ray_trial_id"]
