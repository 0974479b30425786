"""A study sent to an existing two-node Ray cluster with --address (each node started here, stopped by its own PID)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_node(args: list[str]) -> subprocess.Popen:
    tmpdir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's Unix socket paths stay within 107 characters
    env = {**os.environ, "RAY_TMPDIR": tmpdir, "RAY_USAGE_STATS_ENABLED": "0"}
    ray = Path(sys.executable).with_name("ray")
    return subprocess.Popen([str(ray), "start", "--block", "--num-cpus", "1", "--node-ip-address", "127.0.0.1",
                             "--disable-usage-stats", *args], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(node: subprocess.Popen) -> None:
    """Stop a node and every process it started (its own process group), never `ray stop`."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(node.pid, sig)
            node.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def wait_for_nodes(address: str, count: int, deadline: float) -> None:
    probe = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
             "print(sum(n['Alive'] for n in ray.nodes()))")
    while time.monotonic() < deadline:
        out = subprocess.run([sys.executable, "-c", probe, address], capture_output=True, text=True, timeout=120)
        if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(2)
    raise AssertionError(f"the cluster at {address} did not reach {count} nodes")


@pytest.mark.slow
def test_study_runs_on_a_two_node_cluster(tmp_path: Path) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    head = start_node(["--head", "--port", str(port), "--include-dashboard", "false"])
    worker = None
    try:
        deadline = time.monotonic() + 180
        wait_for_nodes(address, 1, deadline)
        worker = start_node(["--address", address])
        wait_for_nodes(address, 2, deadline)
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        overrides = ["name=cluster", "noise_rates=[0.2]", "search.num_samples=2", "search.max_concurrent=2",
                     "train.epochs=2", "final.n_seeds=0", f"tracking_uri={uri}", f"storage={tmp_path / 'shared'}"]
        result = subprocess.run([sys.executable, "-m", "study", "run", *sum((["--set", o] for o in overrides), []),
                                 "--address", address], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("cluster")
        runs = client.search_runs([experiment.experiment_id], "tags.stage = 'search'")
        assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
        assert "0.2 | lam=" in result.stdout
    finally:
        for node in (worker, head):
            if node is not None:
                stop(node)
