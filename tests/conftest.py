"""Shared pytest fixtures: a data root prepared from the real data files in ../shared/data."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path
from typing import Iterator

import pytest


def shared_data_dir() -> Path:
    """Where the read-only real data files live: $NOISY_SHARED_DATA, else ../shared/data beside the repo."""
    return Path(os.environ.get("NOISY_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty data root of this test session's own (the shared folder is never written to)."""
    return tmp_path_factory.mktemp("noisy-data")


@pytest.fixture(scope="session")
def fashion_root(data_root: Path) -> Path:
    """`data_root` holding the four Fashion-MNIST .gz files in FashionMNIST/raw/."""
    source = shared_data_dir() / "FashionMNIST" / "raw"
    files = sorted(source.glob("*.gz"))
    if len(files) < 4:
        pytest.skip(f"Fashion-MNIST .gz files absent from {source}")
    raw = data_root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for file in files:
        shutil.copyfile(file, raw / file.name)
    return data_root


@pytest.fixture(scope="session")
def cifar10_root(data_root: Path) -> Path:
    """`data_root` holding the unpacked CIFAR-10 python batches in cifar-10-batches-py/."""
    archive = shared_data_dir() / "cifar-10-batches-py.tar.xz"
    if not archive.is_file():
        pytest.skip(f"CIFAR-10 archive absent: {archive}")
    with tarfile.open(archive, "r:xz") as tar:
        tar.extractall(data_root, filter="data")
    return data_root


@pytest.fixture(scope="session")
def cifar_n_root(data_root: Path) -> Path:
    """`data_root` holding the two CIFAR-N label files in CIFAR-N/."""
    source = shared_data_dir() / "CIFAR-N"
    files = sorted(source.glob("CIFAR-*_human.pt"))
    if len(files) < 2:
        pytest.skip(f"CIFAR-N label files absent from {source}")
    folder = data_root / "CIFAR-N"
    folder.mkdir(exist_ok=True)
    for file in files:
        shutil.copyfile(file, folder / file.name)
    return data_root


@pytest.fixture(scope="session")
def shared_data_root(fashion_root: Path, cifar10_root: Path) -> Path:
    """A data root holding both Fashion-MNIST and CIFAR-10 (skips where either is absent)."""
    return fashion_root


def short_tmpdir() -> str:
    """A new folder with a short path under /tmp (pytest's tmp_path is too long for Ray's Unix sockets)."""
    import tempfile

    return tempfile.mkdtemp(prefix="ray-", dir="/tmp")


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One local Ray for all the integration tests, started as the study driver starts one (127.0.0.1, no dashboard),
    with two CPUs and its own RAY_TMPDIR; shut down at the end."""
    import ray

    from study.driver import connect

    os.environ["RAY_TMPDIR"] = short_tmpdir()  # Ray's socket paths under it must stay within 107 characters
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    connect(None, num_cpus=2)
    yield
    ray.shutdown()
