"""A driver killed mid-study (SIGKILL) and `study resume`: exactly the requested trials, one MLflow run each, and every
trial's final metrics equal to an uninterrupted run of its setting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
from mlflow.tracking import MlflowClient

from study.cli import main
from study.config import load_study_config
from study.driver import StudyState, study_folder

pytestmark = pytest.mark.usefixtures("ray_session")
TRIALS = 4
# The session's Ray listens on 127.0.0.1 only: a second driver joining it needs Ray's cluster switch off too, else its
# ray.init turns 127.0.0.1 into this machine's outward IP, where nothing answers (as `ray start` does: its clusters are
# found there by every driver, whatever address they are given).
LOOPBACK_DRIVER = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def finished_search_runs(uri: str, name: str) -> list:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    return client.search_runs([experiment.experiment_id], "tags.stage = 'search' and attributes.status = 'FINISHED'")


def finished_lines(log: Path) -> int:
    """Trials the driver reported finished (one line each), read from its output while it runs."""
    return sum(line.startswith("  search ") for line in log.read_text().splitlines()) if log.exists() else 0


def test_killed_driver_resumes_without_rerunning_or_duplicating(tmp_path: Path, capsys, monkeypatch,
                                                                uninterrupted) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = ["name=resumed", "noise_rates=[0.4]", f"search.num_samples={TRIALS}", "search.max_concurrent=1",
                 "train.epochs=12", "final.n_seeds=0", f"tracking_uri={uri}", f"storage={tmp_path / 'ray'}"]
    address = ray.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "study", "run", *sum((["--set", o] for o in overrides), []), "--address", address]
    log = tmp_path / "driver.log"
    with log.open("w") as out:
        driver = subprocess.Popen(command, cwd=tmp_path, stdout=out, stderr=subprocess.DEVNULL, start_new_session=True,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1", **LOOPBACK_DRIVER})
    try:
        deadline = time.monotonic() + 240
        while finished_lines(log) < 2 and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert driver.poll() is None, "the driver ended before it could be killed"
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    assert 2 <= len(finished_search_runs(uri, "resumed")) < TRIALS

    config = load_study_config(None, overrides)
    monkeypatch.chdir(tmp_path)
    assert main(["resume", str(study_folder(config)), "--address", address]) == 0
    out = capsys.readouterr().out
    assert "noise rate | best setting" in out
    assert f"report: {tmp_path / 'report' / 'resumed' / 'index.md'}" in out  # the resumed study ends with its report

    runs = finished_search_runs(uri, "resumed")
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("resumed")
    every = client.search_runs([experiment.experiment_id], "tags.stage = 'search'")
    assert len(runs) == len(every) == TRIALS
    assert len({r.data.tags["ray_trial_id"] for r in runs}) == TRIALS
    state = StudyState.load(study_folder(config))
    assert state.rates["0.4"].trials == TRIALS and state.rates["0.4"].search_done
    assert len(client.search_runs([experiment.experiment_id], "tags.stage = 'noise_rate'")) == 1
    assert len(client.search_runs([experiment.experiment_id], "tags.stage = 'study'")) == 1

    for run in runs:  # those finished before the kill, those resumed from a checkpoint, those started after
        last = uninterrupted(run, config.train)
        history = client.get_metric_history(run.info.run_id, "val_acc")
        assert sorted(m.step for m in history) == [9 * e for e in range(1, 13)]  # every epoch, once
        assert run.data.metrics["val_acc"] == pytest.approx(last["val_acc"], abs=1e-12)
        assert run.data.metrics["test_acc"] == pytest.approx(last["test_acc"], abs=1e-12)
