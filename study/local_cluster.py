"""A Ray cluster of several nodes on this machine, for tests and benchmarks: each node a `ray start --block` with a
RAY_TMPDIR of its own, stopped by its own process group (never `ray stop`, which would stop every Ray here)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Sequence


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_cluster(cpus: Sequence[int], *, timeout_s: float = 180) -> Iterator[str]:
    """A cluster on 127.0.0.1 of one node per entry of `cpus` (its CPUs; the first is the head, without a dashboard),
    each node up before the next starts: its address inside the `with`, every node stopped after it."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    nodes: list[tuple[subprocess.Popen, str]] = []
    try:
        for count, num_cpus in enumerate(cpus, 1):
            role = ["--head", "--port", str(port), "--include-dashboard", "false"] if count == 1 else ["--address",
                                                                                                     address]
            nodes.append(_start_node(num_cpus, role))
            _wait_for_nodes(address, count, deadline)
        yield address
    finally:
        for node, tmpdir in reversed(nodes):
            _stop(node)
            shutil.rmtree(tmpdir, ignore_errors=True)


def _start_node(num_cpus: int, args: list[str]) -> tuple[subprocess.Popen, str]:
    """A node started in a process group of its own, and its RAY_TMPDIR."""
    tmpdir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's Unix socket paths stay within 107 characters
    env = {**os.environ, "RAY_TMPDIR": tmpdir, "RAY_USAGE_STATS_ENABLED": "0"}
    ray = Path(sys.executable).with_name("ray")
    node = subprocess.Popen([str(ray), "start", "--block", "--num-cpus", str(num_cpus), "--node-ip-address",
                             "127.0.0.1", "--disable-usage-stats", *args], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return node, tmpdir


def _stop(node: subprocess.Popen) -> None:
    """Stop a node and every process it started (its process group)."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(node.pid, sig)
            node.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_for_nodes(address: str, count: int, deadline: float) -> None:
    """Return once the cluster at `address` has `count` live nodes; a RuntimeError at `deadline`."""
    probe = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
             "print(sum(n['Alive'] for n in ray.nodes()))")
    while time.monotonic() < deadline:
        out = subprocess.run([sys.executable, "-c", probe, address], capture_output=True, text=True, timeout=120)
        if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(2)
    raise RuntimeError(f"the Ray cluster at {address} did not reach {count} nodes")
