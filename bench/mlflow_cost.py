"""Figure 7, MLflow cost: milliseconds to log one reported epoch of a trial, into a SQLite store and through a local
`mlflow server`."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

from ray.tune.experiment import Trial

from bench._registry import Context, Result, Table, register_benchmark
from bench._timing import interleaved, median_ms, p95_ms
from study.config import load_study_config
from study.tracking import MlflowTracker, client_for
from trainables import TRAIN_KEY
from trainers import Trainer

EPOCHS, QUICK_EPOCHS = 200, 5  # timed reports per store, after one untimed (which creates the run and logs params)
SERVER_START_S = 120.0
NOTES = (
    "The study's tracking callback (`study.tracking.MlflowTracker.on_trial_result`, then `on_experiment_end` so that "
    "the epoch is written at once, on the calling thread: one `log_batch` of its metrics; in a study the tracker's "
    "own thread writes a trial's epochs of the last second in one request instead) for a trial of the embedded "
    "default study (DM on "
    "digits; {metrics} metrics per epoch, taken from a real first epoch), into a SQLite store and into a local "
    "`mlflow server` on 127.0.0.1 (its own SQLite store, one worker, started and stopped by the benchmark). The first "
    "report of each (the run's creation and its params) is untimed; then {epochs} reports to each store, taking turns."
)


@register_benchmark("mlflow_cost", title="MLflow cost per reported epoch", figure=7,
                    target="none set: median and p95 ms per reported epoch")
def mlflow_cost(context: Context) -> Result:
    """Median and p95 ms per reported epoch for each store, the reports interleaved."""
    epochs = QUICK_EPOCHS if context.quick else EPOCHS
    with _mlflow_server(context.work) as server_uri:
        result = _epoch_result(context.data_root)  # while the server starts
        reporters = {"SQLite": _Reporter(f"sqlite:///{context.work / 'mlflow.db'}", "SQLite", result)}
        reporters["mlflow server"] = _Reporter(server_uri(), "mlflow server", result)
        context.echo(f"  {epochs} reports to each of: {', '.join(reporters)}")
        times = interleaved(reporters, rounds=epochs, warmup=1)
        stats = {name: {"median_ms": median_ms(t), "p95_ms": p95_ms(t), **reporters[name].logged()}
                 for name, t in times.items()}
    table = Table("Milliseconds per reported epoch", ("store", "median ms", "p95 ms", "epochs logged"),
                  [(name, s["median_ms"], s["p95_ms"], s["epochs_logged"]) for name, s in stats.items()])
    summary = "; ".join(f"{name} {s['median_ms']:.1f} ms (p95 {s['p95_ms']:.1f})" for name, s in stats.items())
    metrics = stats["SQLite"]["metrics_per_epoch"]
    return Result(summary, None, {}, [table], {"stores": stats, "reports": epochs},
                  NOTES.format(metrics=metrics, epochs=epochs))


class _Reporter:
    """Reports `result` as the next epoch of one trial through an MlflowTracker into the store at `uri`."""

    def __init__(self, uri: str, name: str, result: dict[str, Any]) -> None:
        client = client_for(uri)
        experiment = client.create_experiment("bench-mlflow-cost")
        parent = client.create_run(experiment, tags={"mlflow.runName": "bench"}).info.run_id
        self.tracker = MlflowTracker(uri, experiment, parent, {"stage": "search"}, echo=lambda line: None)
        self.trial = Trial("train_trial", config=result["config"], trial_id=f"bench_{name.split()[0]}", stub=True)
        self.result, self.iteration = result, 0

    def __call__(self) -> None:
        self.iteration += 1
        result = {**self.result, "training_iteration": self.iteration, "step": self.iteration * self.result["step"]}
        self.tracker.on_trial_result(self.iteration, [], self.trial, result)
        self.tracker.on_experiment_end([])  # written now, on this thread: the cost of one epoch's write on its own

    def logged(self) -> dict[str, int]:
        """Read back from the store: the metrics of the trial's run and how many epochs of val_acc it holds."""
        client, run_id = self.tracker.client, self.tracker.run_id(self.trial.trial_id)
        return {"metrics_per_epoch": len(client.get_run(run_id).data.metrics),
                "epochs_logged": len(client.get_metric_history(run_id, "val_acc"))}


def _epoch_result(data_root: str | None) -> dict[str, Any]:
    """What a trial of the default study reports for an epoch, as Tune hands it to callbacks (with its config)."""
    study = load_study_config(None)
    config = study.train.replace(data_root=data_root, method=study.method, method_params=study.method_params,
                                 noise=study.noise, noise_rate=0.4)
    trainer = Trainer(config)
    metrics = next(iter(trainer))
    return {**metrics, "chance": 1 / trainer.info["num_classes"], "total_steps": trainer.total_steps,
            "noise_rate_realised": trainer.info["noise_rate_realised"], "timestamp": int(time.time()),
            "time_this_iter_s": metrics["time"], "done": False,
            "config": {TRAIN_KEY: config.to_dict(), **config.method_params}}


@contextlib.contextmanager
def _mlflow_server(work: Path) -> Iterator[Callable[[], str]]:
    """Starts a local `mlflow server` on 127.0.0.1 in its own process group, killed by that group on exit.

    Yields a function that waits until the server answers and returns its URI.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = work / "mlflow-server.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
                                   str(port), "--workers", "1", "--backend-store-uri",
                                   f"sqlite:///{work / 'server.db'}", "--default-artifact-root",
                                   (work / "artifacts").as_uri()],
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield functools.partial(_wait_healthy, f"http://127.0.0.1:{port}", server, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _wait_healthy(uri: str, server: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {server.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    return uri
        time.sleep(0.5)
    raise RuntimeError(f"mlflow server not healthy after {SERVER_START_S:g} s: {log.read_text()[-2000:]}")
