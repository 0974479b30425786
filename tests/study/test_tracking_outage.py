"""A real `mlflow server` that goes away mid-study: no metric is lost.

The server is killed after the search's first result and stays away: the trials go on, their writes wait, and the
study stops at the search's end (exit 75, one line). The server comes back on the same port and store, and
`study resume` writes what MLflow lacks from Tune's own record, then runs the final retrains, during which the server is
killed again and restarted after several writes failed: they waited in order and are written when it answers. At the
end every trial has one run, every metric every reported step, the parent runs are intact and the report is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from ray import tune
from ray.tune.experiment import Trial

from study.driver import TRIALS
from study.local_cluster import free_port
from study.cli import TEMPFAIL, main
from study.tracking import MlflowTracker, metric_values

pytestmark = pytest.mark.usefixtures("ray_session")
EPOCHS = 4
RATE = "0.2"
GRID = "{lam: [0, 1], beta: [2]}"


class MlflowServer:
    """`mlflow server` on 127.0.0.1 with a SQLite store and an artifact folder in `folder`, in its own process group."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 240) -> None:
        """Start it and wait until it answers."""
        command = [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", "1",
                   "--backend-store-uri", f"sqlite:///{self.folder}/mlflow.db",
                   "--artifacts-destination", str(self.folder / "artifacts")]
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with (self.folder / "server.log").open("a") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, (self.folder / "server.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(f"{self.uri}/health", timeout=2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, f"mlflow server at {self.uri} did not answer in {timeout} s"
                time.sleep(0.2)

    def stop(self) -> None:
        """Kill it and every process it started (its process group)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):  # the group may be gone already
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def server(tmp_path: Path):
    served = tmp_path / "served"
    served.mkdir()
    server = MlflowServer(served)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def results_of(folder: Path, stage: str) -> list[Path]:
    """The result.json files of a stage's trials, in the study's one Tune experiment (a trial's stage: its folder's
    name, train_trial_<id>_<n>_<stage>-<noise>-<rate>, which Tune writes before anything in it)."""
    return list(folder.glob(f"{TRIALS}/*_{stage}-*/result.json"))


def recorded(folder: Path, stage: str) -> int:
    """Results Tune recorded for a stage's trials so far (one line each in their result.json)."""
    return sum(len(p.read_text().splitlines()) for p in results_of(folder, stage))


def in_background(steps: Callable[[], None]) -> Callable[[], None]:
    """Run `steps` in a thread now; the returned call waits for it and raises what it raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            steps()
        except BaseException as error:  # noqa: BLE001 — handed to the test's thread
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> None:
        thread.join(timeout=300)
        assert not thread.is_alive() and not errors, errors

    return join


def wait_for(condition: Callable[[], bool], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def tune_record(folder: Path, stage: str) -> dict[str, list[dict]]:
    """Each trial's results as Tune wrote them (result.json), by trial id."""
    record = {}
    for path in results_of(folder, stage):
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        if lines:
            record[lines[0]["trial_id"]] = lines
    return record


def logged_and_expected(client: MlflowClient, runs: list, record: dict[str, list[dict]]) -> tuple[int, int]:
    """(metric values MLflow holds, metric values Tune recorded) over the trials of `record`; asserts no step twice."""
    by_trial = {run.data.tags["ray_trial_id"]: run.info.run_id for run in runs}
    logged = expected = 0
    for trial_id, lines in record.items():
        keys = {key for line in lines for key in metric_values(line)}
        expected += sum(len(metric_values(line)) for line in lines)
        for key in keys if trial_id in by_trial else ():
            steps = [m.step for m in client.get_metric_history(by_trial[trial_id], key)]
            assert len(steps) == len(set(steps)), (trial_id, key, steps)
            logged += len(steps)
    return logged, expected


def test_mlflow_server_outage_loses_no_metric(server: MlflowServer, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    overrides = ["name=outage", f"noise_rates=[{RATE}]", "search.mode=grid", f"search.grid={GRID}",
                 "search.max_concurrent=1", f"train.epochs={EPOCHS}", "final.n_seeds=2", f"tracking_uri={server.uri}",
                 f"storage={tmp_path / 'ray'}"]
    folder = tmp_path / "ray" / "outage"
    client = MlflowClient(server.uri)

    # 1. The server goes away after the search's first result and stays away: the study stops after the search.
    join = in_background(lambda: (wait_for(lambda: recorded(folder, "search") >= 1), server.stop()))
    code = main(["run", *sum((["--set", o] for o in overrides), []), "--tracking-patience", "2"])
    join()
    out, err = capsys.readouterr()
    stopped = [*(line for line in out.splitlines() if line.startswith(("MLflow at ", "waiting "))), err.strip()]
    assert code == TEMPFAIL, err[-3000:]
    assert err.count("\n") == 1 and err.startswith(f"error: MLflow at {server.uri} has not answered for 2 s"), err
    assert f"continue with: study resume {folder}" in err and "Traceback" not in err
    assert f"MLflow at {server.uri} does not answer (" in out
    assert json.loads((folder / "study.json").read_text())["rates"][RATE]["search_done"] is False

    # 2. Back on the same port and store: MLflow lacks some of what Tune recorded.
    server.start()
    experiment = client.get_experiment_by_name("outage")
    search = tune_record(folder, "search")
    before, expected_search = logged_and_expected(
        client, client.search_runs([experiment.experiment_id], "tags.stage = 'search'"), search)
    assert len(search) == 2 and before < expected_search

    # 3. `study resume` completes the search's record; during the final retrains the server goes away again and comes
    #    back after several of their results: their writes wait, in order, and are written when it answers.
    def outage_during_final() -> None:
        wait_for(lambda: recorded(folder, "final") >= 1)
        server.stop()
        down_at = recorded(folder, "final")
        wait_for(lambda: recorded(folder, "final") >= down_at + 3)
        server.start()

    join = in_background(outage_during_final)
    code = main(["resume", str(folder), "--tracking-patience", "300"])
    join()
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    assert f"MLflow at {server.uri} does not answer (" in out
    again = re.search(rf"MLflow at {re.escape(server.uri)} answers again after (\d+) s: (\d+) tries had failed, "
                      r"(\d+) writes had waited; all are written now", out)
    assert again, out[-3000:]
    failed, waited = int(again.group(2)), int(again.group(3))
    assert failed >= 1 and waited >= 3
    assert f"report: {tmp_path / 'report' / 'outage' / 'index.md'}" in out

    # One run per trial, every metric of every reported step exactly once, the parent runs intact.
    runs = {stage: client.search_runs([experiment.experiment_id], f"tags.stage = '{stage}'")
            for stage in ("study", "noise_rate", "search", "final")}
    (study,) = runs["study"]
    (rate,) = runs["noise_rate"]
    assert study.info.status == rate.info.status == "FINISHED"
    assert rate.data.tags["mlflow.parentRunId"] == study.info.run_id
    assert {"best.lam", "best.beta"} <= set(rate.data.params) and float(rate.data.params["best.beta"]) == 2.0
    assert {"best_val_acc", "trials", "final_test_acc_mean", "final_test_acc_std"} <= set(rate.data.metrics)
    counts = {}
    for stage in ("search", "final"):
        record = tune_record(folder, stage)
        assert len(record) == 2 and all(len(lines) == EPOCHS for lines in record.values())
        assert sorted(r.data.tags["ray_trial_id"] for r in runs[stage]) == sorted(record)  # one run per trial
        for run in runs[stage]:
            assert run.info.status == "FINISHED" and run.data.tags["mlflow.parentRunId"] == rate.info.run_id
            assert {"lam", "beta", "seed"} <= set(run.data.params)
            history = client.get_metric_history(run.info.run_id, "test_acc")
            assert sorted(m.step for m in history) == [line["step"] for line in record[run.data.tags["ray_trial_id"]]]
        counts[stage] = logged_and_expected(client, runs[stage], record)
        assert counts[stage][0] == counts[stage][1] > 0, (stage, counts[stage])
    summary = pd.read_csv(tmp_path / "report" / "outage" / "summary.csv")
    assert summary["failed"].tolist() == [0] and summary["trials"].tolist() == [2]
    with capsys.disabled():
        print("", *stopped, *(line for line in out.splitlines() if line.startswith(("MLflow at ", "waiting "))),
              sep="\n")
        print(f"figures: stopped run: {expected_search - before} of {expected_search} search metric values missing "
              f"in MLflow before resume; outage during resume: {failed} tries failed, {waited} writes waited; "
              f"metric values logged/recorded: search {counts['search']}, final {counts['final']}; lost: 0")


def test_complete_writes_what_tune_recorded_and_mlflow_lacks(tmp_path: Path) -> None:
    """A tracker that saw none of a stage's trials (as after `study resume`) writes each one's run, params, every
    reported step's metrics and its end from Tune's record; a second such tracker finds nothing to add."""
    def trainable(config: dict) -> None:
        for step in (10, 20, 30):
            tune.report({"step": step, "val_acc": step / 100 + config["x"], "total_steps": 30, "chance": 0.1})
            if config["x"] < 0:
                raise ValueError("boom")

    results = tune.Tuner(trainable, param_space={"x": tune.grid_search([0.1, 0.2, -1.0])},
                         run_config=tune.RunConfig(name="fill", storage_path=str(tmp_path / "ray"), verbose=0)).fit()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("fill")
    parent = client.create_run(experiment_id).info.run_id
    for _ in range(2):
        MlflowTracker(uri, experiment_id, parent, {"stage": "search"}).complete(results)

    runs = client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'")
    by_x = {float(run.data.params["x"]): run for run in runs}
    assert sorted(by_x) == [-1.0, 0.1, 0.2] and len(runs) == 3
    for x, run in by_x.items():
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_acc"))
        steps = [10] if x < 0 else [10, 20, 30]
        assert history == [(step, pytest.approx(step / 100 + x)) for step in steps]
        assert run.data.tags["stage"] == "search" and run.data.tags["ray_trial_id"]
        if x < 0:
            assert run.info.status == "FAILED" and run.data.tags["error"] == "ValueError: boom"
        else:
            assert run.info.status == "FINISHED" and "early_stopped" not in run.data.tags


def test_writes_wait_in_order_while_mlflow_does_not_answer_and_the_writer_retries_them(server: MlflowServer) -> None:
    """Callbacks return while MLflow is away (a trial's end is said at once); the tracker's writer retries on its own
    and writes everything in order when MLflow answers again; `complete` leaves no write queued and no thread."""
    client = MlflowClient(server.uri)
    experiment = client.create_experiment("away")
    parent = client.create_run(experiment).info.run_id
    server.stop()
    lines: list[str] = []
    tracker = MlflowTracker(server.uri, experiment, parent, {"stage": "final"}, echo=lines.append)
    trial = Trial("train_trial", config={"seed": 3}, trial_id="t_away", stub=True)
    tracker.on_trial_start(0, [trial], trial)
    for index, step in enumerate((10, 20, 10, 30, 40)):  # 10 again: a retry from the start, logged once
        tracker.on_trial_result(index, [trial], trial, {"step": step, "test_acc": step / 100 + index,
                                                        "config": trial.config})
    tracker.on_trial_complete(5, [trial], trial)
    assert "  final t_away seed=3: test_acc 4.4000" in lines
    wait_for(lambda: any(line.startswith(f"MLflow at {server.uri} does not answer (") for line in lines))

    server.start()
    wait_for(lambda: any(" answers again " in line for line in lines), timeout=120)
    again = re.fullmatch(rf"MLflow at {re.escape(server.uri)} answers again after \d+ s: (\d+) tries had failed, "
                         r"7 writes had waited; all are written now", lines[-1])
    assert again and int(again.group(1)) >= 1, lines
    tracker.complete([])
    assert not [thread for thread in threading.enumerate() if thread.name == "MlflowTracker"]

    [run] = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent}'")
    history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "test_acc"))
    assert history == [(10, 0.1), (20, 1.2), (30, 3.3), (40, 4.4)]
    assert run.info.status == "FINISHED" and run.data.params == {"seed": "3"} and run.data.tags["seed"] == "3"
