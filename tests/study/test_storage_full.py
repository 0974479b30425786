"""Storage that cannot be written (a full disk) mid-study: one clear line, a clean stop, and `study resume` completes
the study once there is room again (also where Tune's own saved state was cut short), with exactly the requested
trials and one MLflow run each, no metric lost."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
from mlflow.tracking import MlflowClient

from study.cli import IOERR, main
from study.config import load_study_config
from study.driver import TRIALS, StudyState, study_folder

pytestmark = pytest.mark.usefixtures("ray_session")
BETAS, EPOCHS = [5, 24, 2, 3], 6


class FullDisk:
    """A storage folder whose disk can be filled and freed: a small tmpfs where this process may mount one (root with
    CAP_SYS_ADMIN), else writes into the study's next checkpoints and study.json made to fail as on a full disk
    (symlinks to /dev/full, whose writes fail with ENOSPC; no privilege needed)."""

    def __init__(self, root: Path) -> None:
        self.root, self.folder = root, root / "ray" / "full"
        root.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(root)], capture_output=True)
        self.tmpfs = mounted.returncode == 0
        self.made: list[Path] = []

    def fill(self) -> None:
        if self.tmpfs:
            with (self.root / "filler").open("wb", buffering=0) as filler:
                for size in (1 << 16, 1 << 10, 1):  # to the last byte
                    with contextlib.suppress(OSError):
                        while True:
                            filler.write(bytes(size))
            return
        for trial in self.folder.glob(f"{TRIALS}/train_trial_*"):
            newest = max((int(p.name.removeprefix("checkpoint_")) for p in trial.glob("checkpoint_*")), default=0)
            for index in range(newest + 1, newest + EPOCHS + 1):
                (trial / f"checkpoint_{index:06d}").mkdir(exist_ok=True)
                self._full(trial / f"checkpoint_{index:06d}" / "state.pt")
        self._full(self.folder / "study.json.tmp")

    def _full(self, path: Path) -> None:
        with contextlib.suppress(FileExistsError):  # that one was written already
            path.symlink_to("/dev/full")
            self.made.append(path)

    def free(self) -> None:
        (self.root / "filler").unlink(missing_ok=True)
        for path in self.made:
            path.unlink()
            if path.parent.name.startswith("checkpoint_") and not (path.parent / "state.pt").exists():
                shutil.rmtree(path.parent)  # the checkpoint that failed
        self.made.clear()

    def close(self) -> None:
        if self.tmpfs:
            subprocess.run(["umount", "-l", str(self.root)], check=True)


@pytest.fixture
def disk(tmp_path: Path):
    disk = FullDisk(tmp_path / "storage")
    yield disk
    disk.close()


def stderr_lines(text: str) -> list[str]:
    """The lines a user reads: not the INFO lines of Ray's and MLflow's loggers."""
    return [line for line in text.splitlines() if line.strip() and not re.search(r"\sINFO\s", line)]


def test_full_disk_stops_the_study_in_one_line_and_resume_completes_it(disk: FullDisk, tmp_path: Path, capsys,
                                                                        monkeypatch, driver_env) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = ["checkpoint_every_s=0",
                 "name=full", "noise_rates=[0.4]", "search.mode=grid", f"search.grid={{lam: [1], beta: {BETAS}}}",
                 "search.max_concurrent=2", "resources.cpus_per_trial=0.5", f"train.epochs={EPOCHS}",
                 "final.n_seeds=0", f"tracking_uri={uri}", f"storage={disk.root / 'ray'}"]
    folder = study_folder(load_study_config(None, overrides))
    assert folder == disk.folder
    address = ray.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "study", "run", *sum((["--set", o] for o in overrides), []), "--address", address]
    with (tmp_path / "driver.out").open("w") as out, (tmp_path / "driver.err").open("w") as err:
        driver = subprocess.Popen(command, cwd=tmp_path, stdout=out, stderr=err, start_new_session=True,
                                  env=driver_env)
    try:
        deadline = time.monotonic() + 240
        while not list(folder.glob(f"{TRIALS}/train_trial_*_00002_*/checkpoint_*")):  # the second trial under way
            assert driver.poll() is None and time.monotonic() < deadline, "the driver ended or stalled first"
            time.sleep(0.05)
        disk.fill()
        code = driver.wait(timeout=120)  # it stops by itself, it does not hang
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
    line = (f"error: storage at {folder} could not be written (No space left on device); once it can be written, "
            f"continue with: study resume {folder}")
    assert code == IOERR
    assert stderr_lines((tmp_path / "driver.err").read_text()) == [line]  # no traceback, no Ray error after it
    deadline = time.monotonic() + 60  # the trials' workers are gone: Ray has all its CPUs back
    while ray.available_resources().get("CPU") != ray.cluster_resources()["CPU"]:
        assert time.monotonic() < deadline, ray.available_resources()
        time.sleep(0.2)
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name("full").experiment_id
    stopped = client.search_runs([experiment_id], "tags.stage = 'search'")
    assert "FAILED" not in {r.info.status for r in stopped}  # the trials did nothing wrong: they go on
    assert not StudyState.load(folder).rates["0.4"].search_done

    # resumed while the disk is still full (what the stop freed, taken too): the same line, before any trial runs
    disk.fill()
    monkeypatch.chdir(tmp_path)
    assert main(["resume", str(folder), "--address", address, "--no-report"]) == IOERR
    assert stderr_lines(capsys.readouterr().err) == [line]
    assert len(client.search_runs([experiment_id], "tags.stage = 'search'")) == len(stopped)

    # Tune rewrites its saved state in place: a full disk can leave it cut short (as it did in one of our runs)
    tune_state = max(folder.glob(f"{TRIALS}/experiment_state-*.json"))
    tune_state.write_bytes(tune_state.read_bytes()[:len(tune_state.read_bytes()) // 2])
    disk.free()
    assert main(["resume", str(folder), "--address", address, "--no-report"]) == 0
    assert "noise rate | best setting" in capsys.readouterr().out
    runs = client.search_runs([experiment_id], "tags.stage = 'search'")
    assert sorted(float(r.data.params["beta"]) for r in runs) == sorted(BETAS)  # each cell once, one run each
    assert {r.info.status for r in runs} == {"FINISHED"} and not any("error" in r.data.tags for r in runs)
    for run in runs:  # no evaluation lost, none logged twice
        for key in ("val_acc", "test_acc", "train_loss"):
            steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
            assert steps == [9 * e for e in range(1, EPOCHS + 1)], (run.data.params["beta"], key)
    state = StudyState.load(folder)
    assert state.rates["0.4"].trials == len(BETAS) and state.rates["0.4"].search_done
