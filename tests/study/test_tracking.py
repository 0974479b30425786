"""The MLflow tracker, without a study: a step that a restored trial reports again is logged once, the first time;
writes queued together reach MLflow in few requests, within its limits, and a trial's end at once; nothing is written
after the experiment ends; a write MLflow refuses stops the study."""

from __future__ import annotations

import pickle
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from ray.tune.experiment import Trial

from study import tracking
from study.tracking import MlflowTracker, run_name


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
    first.complete([])  # all written, as by a driver killed after its last write
    resumed = pickle.loads(pickle.dumps(first))  # a killed driver's tracker, as Tune's experiment state restores it
    for step in (18, 27, 36):  # restored from an older checkpoint than the last step logged
        report(resumed, step, -1.0 if step < 36 else 0.36)
    resumed.complete([])

    [run] = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent}'")
    history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_acc"))
    assert history == [(9, 0.09), (18, 0.18), (27, 0.27), (36, 0.36)]
    assert run.data.params == {"lam": "1.0"}


class CountingClient(MlflowClient):
    """The real MLflow client, counting its log_batch requests (the sizes of each); a log_batch says it was `asked`
    and waits for `gate`, as an MLflow slow to answer."""

    def __init__(self, uri: str, asked: threading.Event, gate: threading.Event) -> None:
        super().__init__(uri)
        self.asked, self.gate, self.batches = asked, gate, []

    def log_batch(self, run_id: str, metrics: Any = (), params: Any = (), tags: Any = (), **kwargs: Any) -> None:
        self.batches.append((len(metrics), len(params), len(tags)))
        self.asked.set()
        assert self.gate.wait(timeout=60)
        super().log_batch(run_id, metrics, params, tags, **kwargs)


@dataclass
class Store:
    """A SQLite store with an experiment and a parent run; the clients trackers made of it, the event that says they
    were asked for a run and the gate that lets them answer."""

    uri: str
    experiment: str
    parent: str
    clients: list[CountingClient] = field(default_factory=list)
    asked: threading.Event = field(default_factory=threading.Event)
    gate: threading.Event = field(default_factory=threading.Event)

    def tracker(self) -> MlflowTracker:
        return MlflowTracker(self.uri, self.experiment, self.parent, {"stage": "search"}, echo=lambda line: None)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("tracked")
    store = Store(uri, experiment, client.create_run(experiment).info.run_id)

    def counting(uri: str) -> CountingClient:
        store.clients.append(CountingClient(uri, store.asked, store.gate))
        return store.clients[-1]

    monkeypatch.setattr(tracking, "client_for", counting)
    return store


def writers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "MlflowTracker" and thread.is_alive()]


def test_results_queued_together_are_written_in_one_request_per_trial_and_an_end_at_once(store: Store) -> None:
    tracker = store.tracker()
    trials = [Trial("train_trial", config={"lam": lam}, trial_id=f"t_{lam}", stub=True) for lam in (1, 2)]
    steps = [9, 18, 27, 18, 27, 36]  # 18 and 27 again: restored from an older checkpoint, logged the first time only

    def report(trial: Trial, index: int) -> None:
        step = steps[index]
        tracker.on_trial_result(index, trials, trial, {"step": step, "val_acc": step / 100 + trial.config["lam"],
                                                       "loss": float(index), "config": trial.config})

    for trial in trials:
        tracker.on_trial_start(0, trials, trial)
    report(trials[0], 0)
    assert store.asked.wait(timeout=60)  # the writer writes the first result, and MLflow has not answered yet
    for index in range(len(steps)):
        for trial in trials[1:] if index == 0 else trials:
            report(trial, index)
    store.gate.set()
    for trial in trials:  # an end is written at once, with what was queued before it
        tracker.on_trial_complete(len(steps), trials, trial)

    assert not tracker._pending and not writers()
    [client] = store.clients
    # t_1's first result and its param; then t_2's 4 steps × 2 metrics and its param, t_1's other 3 steps × 2 metrics
    assert client.batches == [(2, 1, 0), (8, 1, 0), (6, 0, 0)]
    runs = client.search_runs([store.experiment], f"tags.`mlflow.parentRunId` = '{store.parent}'")
    assert sorted(run.data.tags["ray_trial_id"] for run in runs) == ["t_1", "t_2"]
    for run in runs:
        lam = int(run.data.params["lam"])
        assert run.info.status == "FINISHED" and run.data.params == {"lam": str(lam)}
        val_acc = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_acc"))
        loss = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss"))
        assert val_acc == [(step, pytest.approx(step / 100 + lam)) for step in (9, 18, 27, 36)]
        assert loss == [(9, 0.0), (18, 1.0), (27, 2.0), (36, 5.0)]
    tracker.complete([])
    assert len(client.batches) == 3 and not writers()


def test_a_long_queue_is_written_in_requests_within_mlflows_limits(store: Store) -> None:
    tracker = store.tracker()
    config = {f"p{i:03d}": i for i in range(150)}
    other, wide = (Trial("train_trial", config=c, trial_id=f"t_{i}", stub=True) for i, c in enumerate([{}, config]))
    for trial in (other, wide):
        tracker.on_trial_start(0, [other, wide], trial)
    tracker.on_trial_result(0, [other, wide], other, {"step": 0, "loss": 1.0})
    assert store.asked.wait(timeout=60)  # the writer writes another trial's result, and MLflow has not answered yet
    for step in (1, 2, 3):
        tracker.on_trial_result(step, [other, wide], wide, {f"m{i:03d}": step * 1000 + i for i in range(400)} |
                                {"step": step, "config": config})
    store.gate.set()
    tracker.complete([])

    [client] = store.clients
    # 1200 metrics and 150 params: at most 1000 entities (and 100 params) a request, in the fewest requests
    assert client.batches == [(1, 0, 0), (900, 100, 0), (300, 50, 0)]
    [run] = client.search_runs([store.experiment], "tags.ray_trial_id = 't_1'")
    assert run.data.params == {k: str(v) for k, v in config.items()}
    assert run.data.metrics == {f"m{i:03d}": 3000 + i for i in range(400)}
    for key in ("m000", "m399"):
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
        assert history == [(step, step * 1000 + int(key[1:])) for step in (1, 2, 3)]


def test_a_write_mlflow_refuses_is_raised_by_the_next_callback_and_by_complete(store: Store) -> None:
    store.gate.set()
    tracker = store.tracker()
    trial = Trial("train_trial", config={"lam": 1.0}, trial_id="t_bad", stub=True)
    tracker.on_trial_result(0, [trial], trial, {"step": 1, "/bad": 1.0, "config": trial.config})  # an invalid key
    deadline = time.monotonic() + 60
    while writers():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(MlflowException, match="/bad"):
        tracker.on_trial_result(1, [trial], trial, {"step": 2, "val_acc": 1.0, "config": trial.config})
    with pytest.raises(MlflowException, match="/bad"):
        tracker.complete([])
    assert not writers()


def test_the_writer_merges_what_queued_while_it_rested_and_ends_when_nothing_is_left(store: Store) -> None:
    store.gate.set()
    tracker = store.tracker()
    trial = Trial("train_trial", config={"lam": 0.5}, trial_id="t_rest", stub=True)
    tracker.on_trial_start(0, [trial], trial)
    [client] = store.clients
    started = len(client.batches)
    store.gate.clear()
    store.asked.clear()
    tracker.on_trial_result(1, [trial], trial, {"step": 1, "val_acc": 0.1, "config": trial.config})
    assert store.asked.wait(timeout=60)  # the writer is in its first request, with the first result
    for step in range(2, 9):  # these queue while MLflow is slow to answer
        tracker.on_trial_result(step, [trial], trial, {"step": step, "val_acc": step / 10, "config": trial.config})
    store.gate.set()
    deadline = time.monotonic() + 60
    while writers():  # the writer writes, rests, writes what queued meanwhile, and ends when nothing did
        assert time.monotonic() < deadline
        time.sleep(0.05)

    assert not tracker._pending
    # (metrics, params, tags) of each request: the first result with the trial's params, then the 7 others in one
    assert client.batches[started:] == [(1, 1, 0), (7, 0, 0)], client.batches
    [run] = client.search_runs([store.experiment], f"tags.`mlflow.parentRunId` = '{store.parent}'")
    history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_acc"))
    assert history == [(step, step / 10) for step in range(1, 9)] and run.info.status == "RUNNING"
    tracker.complete([])
    assert client.batches[started + 2:] == [] and not writers()


def test_a_restored_tracker_has_written_everything_when_the_experiment_ends(store: Store) -> None:
    """Tune calls a tracker it restored (unpickled), which the driver does not complete: by the experiment's end (here
    with a trial still running, as when the study is interrupted) it has written every write and left no thread, so
    nothing is written while the stage's `complete` (another tracker) looks for what MLflow lacks."""
    store.gate.set()
    restored = pickle.loads(pickle.dumps(store.tracker()))
    trial = Trial("train_trial", config={"lam": 2.0}, trial_id="t_restored", stub=True)
    restored.on_trial_start(0, [trial], trial)
    for step in range(1, 7):
        restored.on_trial_result(step, [trial], trial, {"step": step, "val_acc": step / 10, "config": trial.config})
    restored.on_experiment_end([trial])

    assert not restored._pending and not writers()
    client = MlflowClient(store.uri)
    [run] = client.search_runs([store.experiment], f"tags.`mlflow.parentRunId` = '{store.parent}'")
    history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_acc"))
    assert history == [(step, step / 10) for step in range(1, 7)] and run.data.params == {"lam": "2.0"}


def test_a_trial_run_is_named_by_its_stage_label_set_and_place_or_seed() -> None:
    assert run_name({"stage": "search", "label_set": "0.4"}, {"lam": 1.0}, 3) == "search 0.4 #3"
    assert run_name({"stage": "final", "label_set": "cifar10n-worst"}, {"seed": 1}, 7) == "final cifar10n-worst seed 1"
    assert run_name({"stage": "search"}, {}, 2) == "search #2"
