"""Safe by default: YAML read with a safe loader, checkpoints loaded without code, names and paths kept inside the
storage folder, no shell built from input, and a local Ray on 127.0.0.1 without a dashboard."""

from __future__ import annotations

import glob
import inspect
import ipaddress
import json
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
import yaml

from study.cli import main
from study.config import StudyConfig, load_study_config
from study.driver import check_resumable, study_folder
from trainables._trial import STATE_FILE, load_state
from trainers.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("trainers", "trainables", "search_spaces", "study", "reports")


def sources() -> list[Path]:
    files = [p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))]
    assert len(files) > 20
    return files


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def ray_probe(tmp_path_factory: pytest.TempPathFactory):
    """PROBE in a process of its own (its own process group, a short RAY_TMPDIR), started when the module starts so
    that it runs beside the other tests: a local Ray started by study.driver.connect, then shut down."""
    ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's Unix socket paths stay within 107 characters
    probe = subprocess.Popen([sys.executable, "-c", PROBE], cwd=tmp_path_factory.mktemp("ray"), text=True,
                             env={**clean_env(), "RAY_TMPDIR": ray_tmp, "RAY_USAGE_STATS_ENABLED": "0"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    yield probe
    if probe.poll() is None:  # only the Ray this module started: its own process group
        os.killpg(probe.pid, signal.SIGKILL)
        probe.wait()
    shutil.rmtree(ray_tmp, ignore_errors=True)


def test_the_packages_are_found(ray_probe: subprocess.Popen) -> None:
    """(Runs first and asks for `ray_probe`, so that Ray starts beside the tests below.)"""
    assert {p.parent.name for p in sources()} >= set(PACKAGES)


def evil_yaml(marker: Path) -> str:
    return f'name: evil\ntrain: !!python/object/apply:os.system ["touch {marker}"]\n'


def test_python_tag_in_a_yaml_file_is_refused_and_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    cwd, marker, config = tmp_path / "cwd", tmp_path / "pwned", tmp_path / "evil.yaml"
    cwd.mkdir()
    config.write_text(evil_yaml(marker))
    monkeypatch.chdir(cwd)
    assert main(["run", str(config)]) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err and out == "", err
    assert lines[0].startswith(f"error: config: '{config}' is not allowed (not valid YAML: ")
    assert "python/object/apply:os.system" in lines[0]
    assert not marker.exists() and list(cwd.iterdir()) == []
    with pytest.raises(ConfigError, match="not valid YAML"):  # the loader itself, not only the CLI
        load_study_config(config)
    assert not marker.exists()
    yaml.unsafe_load(config.read_text())  # what the safe loader stops: an unsafe one runs the command
    assert marker.exists()


def test_python_tag_in_a_set_override_is_refused_and_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    assert main(["run", "--set", f'train=!!python/object/apply:os.system ["touch {marker}"]']) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --set: ") and "the value is not valid YAML" in err
    assert not marker.exists() and list(tmp_path.iterdir()) == []


# --- (b) checkpoints: torch.load(weights_only=True), so a pickled object that runs code is refused ------------------


class _RunsCode:
    """Unpickling this calls open(path, "w"): a file appears if the loader runs what a checkpoint names."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_checkpoint_with_a_pickled_object_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    torch.save({"model": {"w": torch.ones(2)}, "payload": _RunsCode(marker)}, tmp_path / STATE_FILE)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_state(tmp_path)
    assert not marker.exists()
    torch.load(tmp_path / STATE_FILE, weights_only=False).get("payload").close()  # what the guard stops: it runs
    assert marker.exists()


def test_a_plain_checkpoint_still_loads(tmp_path: Path) -> None:
    state = {"model": {"w": torch.arange(3.0)}, "rng": torch.get_rng_state(), "epoch": 2, "history": [0.5, 0.25]}
    torch.save(state, tmp_path / STATE_FILE)
    loaded = load_state(tmp_path)
    assert torch.equal(loaded["model"]["w"], state["model"]["w"]) and torch.equal(loaded["rng"], state["rng"])
    assert loaded["epoch"] == 2 and loaded["history"] == [0.5, 0.25]


def test_every_torch_load_in_the_packages_is_weights_only() -> None:
    calls = [(path, m.group(0)) for path in sources()
             for m in re.finditer(r"torch\.load\((?:[^()]|\([^()]*\))*\)", path.read_text())]
    assert calls, "expected the trainable's checkpoint load"
    assert [c for c in calls if "weights_only=True" not in c[1]] == []
    assert not [p for p in sources() if re.search(r"\bpickle\.loads?\(|\bdill\b|\bcloudpickle\.load", p.read_text())]


# --- (c) names and paths built from input stay inside the storage folder ---------------------------------------


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ".", "/etc", "a\\b", "", "x/../../y", "~root", "a b",
                                  "ok\n"])
def test_a_study_name_cannot_leave_the_storage_folder(name: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_study_config(None, [f"name={json.dumps(name)}"])
    assert err.value.field == "name" and err.value.value == name


@pytest.mark.parametrize("name", ["digits-dm", "a.b_c-1", "...x"])
def test_a_valid_name_is_one_folder_directly_under_storage(name: str, tmp_path: Path) -> None:
    folder = study_folder(load_study_config(None, [f"name={name}"]), str(tmp_path))
    assert folder.parent == tmp_path.resolve() and folder.name == name


def saved_study(folder: Path, config: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "study.json").write_text(json.dumps({"config": config, "tracking_uri": "sqlite:///x.db",
                                                   "experiment_id": "1", "study_run_id": "0", "rates": {}}))
    return folder


def test_resume_writes_only_inside_the_folder_it_is_given(tmp_path: Path) -> None:
    good = saved_study(tmp_path / "store" / "kept", StudyConfig(name="kept").to_dict())
    assert check_resumable(good).name == "kept"
    renamed = saved_study(tmp_path / "store" / "other", StudyConfig(name="kept").to_dict())  # would write ../kept
    with pytest.raises(ConfigError, match="rename the folder back to kept") as err:
        check_resumable(renamed)
    assert err.value.field == "path"
    escaping = saved_study(tmp_path / "store" / "evil", {**StudyConfig().to_dict(), "name": "../../evil"})
    with pytest.raises(ConfigError, match="name: '../../evil' is not allowed"):
        check_resumable(escaping)
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["evil", "kept", "other"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


# --- (d) no shell command is built from input ----------------------------------------------------------------------


def test_no_shell_in_the_packages() -> None:
    shell = re.compile(r"shell\s*=\s*True|\bos\.system\(|\bos\.popen\(|\bos\.exec\w*\(|\bos\.spawn\w*\(|"
                       r"\bsubprocess\.getoutput|\bsubprocess\.getstatusoutput|(?<![.\w])eval\(|(?<![.\w])exec\(")
    found = [f"{p.relative_to(REPO)}:{n}" for p in sources() for n, line in enumerate(p.read_text().splitlines(), 1)
             if shell.search(line.split("#")[0])]
    assert found == []
    calls = [m.group(0) for p in sources()
             for m in re.finditer(r"subprocess\.(?:run|Popen|call|check_call|check_output)\(\s*.", p.read_text())]
    assert calls and all(call.endswith("[") for call in calls), calls  # each an argument list, never a command string


# --- (e) a local Ray started by the project listens on 127.0.0.1 only and starts no dashboard --------------------

def parent_of(stat: str) -> tuple[int, int] | None:
    """(pid, parent pid) from /proc/<pid>/stat, or None for a process that ended while being read."""
    try:
        return int(stat.split("/")[2]), int(open(stat).read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def tree(root: int) -> set[int]:
    """`root` and all its descendants' pids."""
    parents = dict(filter(None, map(parent_of, glob.glob("/proc/[0-9]*/stat"))))
    found, todo = {root}, [root]
    while todo:
        pid = todo.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                found.add(child)
                todo.append(child)
    return found


def listening(pids: set[int]) -> list[tuple[str, int]]:
    """(address, port) of each TCP socket in LISTEN state held by one of `pids`."""
    inodes = set()
    for pid in pids:
        for fd in glob.glob(f"/proc/{pid}/fd/*"):
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    out = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for row in open(table).read().splitlines()[1:]:
            f = row.split()
            if f[3] == "0A" and f[9] in inodes:  # LISTEN
                raw, port = f[1].split(":")
                packed = b"".join(bytes.fromhex(raw[i:i + 8])[::-1] for i in range(0, len(raw), 8))
                out.append((socket.inet_ntop(family, packed), int(port, 16)))
    return out


# A local Ray started by study.driver.connect in a fresh process, which reports what it sees (with the functions above).
PROBE = "\n".join([r'''
import glob, ipaddress, json, os, socket, sys
from ray._private import ray_constants
from study.driver import connect
import ray
''', *(inspect.getsource(f) for f in (parent_of, tree, listening)), r'''
before = ray_constants.ENABLE_RAY_CLUSTER
connect(None)
node = ray._private.worker._global_node
pids = tree(os.getpid())
print(json.dumps({"node_ip": ray.util.get_node_ip_address(), "nodes": [n["NodeManagerAddress"] for n in ray.nodes()],
                  "webui_url": node.address_info["webui_url"], "listening": listening(pids), "processes": len(pids),
                  "switch_restored": ray_constants.ENABLE_RAY_CLUSTER == before}))
ray.shutdown()
'''])


def _loopback(ip: str) -> bool:
    """127.0.0.0/8, ::1, or ::ffff:127.0.0.1 (an IPv6 socket bound to the IPv4 loopback)."""
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


@pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="reads listening sockets from Linux's /proc")
def test_local_ray_listens_on_loopback_only_without_dashboard(ray_probe: subprocess.Popen) -> None:
    process = ray_probe
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err[-3000:]
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["node_ip"] == "127.0.0.1" and seen["nodes"] == ["127.0.0.1"]
    assert seen["switch_restored"]
    assert not seen["webui_url"]  # no dashboard UI
    assert seen["processes"] > 2 and len(seen["listening"]) >= 2  # GCS, raylet, ...: the probe did see Ray's servers
    assert [ip for ip, _ in seen["listening"] if not _loopback(ip)] == []
    assert [port for _, port in seen["listening"] if port == 8265] == []  # nothing on the dashboard's port


@pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="reads listening sockets from Linux's /proc")
def test_the_test_sessions_ray_listens_on_loopback_only(ray_session: None) -> None:
    """The Ray that the integration tests share is started the driver's way: its node and every server on 127.0.0.1."""
    import ray

    assert ray.util.get_node_ip_address() == "127.0.0.1"
    assert [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"]
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
    sockets = listening(tree(os.getpid()))  # this process (the driver) and what it started: GCS, raylet, workers, ...
    assert len(sockets) >= 2
    assert [ip for ip, _ in sockets if not _loopback(ip)] == []
