"""Tests for trainers.datasets on the real data files (no mocks)."""

from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from torchvision.datasets import FashionMNIST

from trainers.datasets import VEHICLES10, default_data_root, list_datasets, load_dataset, select_classes
from trainers.errors import ConfigError, DataError


def _corrupt(path: Path) -> None:
    """Flip one byte in the middle of a file."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(data)


def _assert_one_line(err: pytest.ExceptionInfo[DataError], *fragments: str) -> str:
    message = str(err.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_registry_lists_all_and_rejects_unknown() -> None:
    assert list_datasets() == ["cifar10", "cifar100", "digits", "fashion_mnist", "vehicles10"]
    with pytest.raises(ConfigError) as err:
        load_dataset("mnist3d")
    assert err.value.field == "dataset"
    assert all(name in str(err.value) for name in list_datasets())


def test_default_data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NOISY_DATA_ROOT", str(tmp_path / "d"))
    assert default_data_root() == tmp_path / "d"
    monkeypatch.delenv("NOISY_DATA_ROOT")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_data_root() == tmp_path / "noisy-data"


def test_digits_shapes_normalised_and_deterministic() -> None:
    ds = load_dataset("digits")
    assert ds.train_x.shape == (1437, 1, 8, 8) and ds.test_x.shape == (360, 1, 8, 8)
    assert ds.train_x.dtype == torch.float32 and ds.train_y.dtype == torch.int64
    assert ds.num_classes == 10 and ds.in_shape == (1, 8, 8) and not ds.augment
    assert torch.allclose(ds.train_x.mean(dim=(0, 2, 3)), torch.zeros(1), atol=1e-5)
    assert torch.allclose(ds.train_x.std(dim=(0, 2, 3)), torch.ones(1), atol=1e-5)
    again = load_dataset("digits")
    assert torch.equal(ds.train_x, again.train_x) and torch.equal(ds.test_y, again.test_y)


def test_select_classes_picks_and_relabels() -> None:
    x = torch.arange(6).reshape(6, 1) * 10
    y = torch.tensor([0, 1, 2, 3, 1, 2])
    sx, sy = select_classes(x, y, ("a", "b", "c", "d"), ("c", "a"))
    assert sx.flatten().tolist() == [0, 20, 50]
    assert sy.tolist() == [1, 0, 0]
    with pytest.raises(DataError):
        select_classes(x, y, ("a", "b"), ("zebra",))


def test_vehicles10_classes_are_cifar100_names() -> None:
    assert len(VEHICLES10) == 10 and "pickup_truck" in VEHICLES10 and "lawn_mower" in VEHICLES10


def test_fashion_mnist(fashion_root: Path) -> None:
    ds = load_dataset("fashion_mnist", fashion_root, download=False)
    assert ds.train_x.shape == (60000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
    assert ds.in_shape == (1, 28, 28) and ds.num_classes == 10 and not ds.augment
    assert torch.bincount(ds.train_y).tolist() == [6000] * 10
    assert abs(ds.train_x.mean().item()) < 1e-3


def test_cifar10(cifar10_root: Path) -> None:
    ds = load_dataset("cifar10", cifar10_root, download=False)
    assert ds.train_x.shape == (50000, 3, 32, 32) and ds.test_x.shape == (10000, 3, 32, 32)
    assert ds.in_shape == (3, 32, 32) and ds.augment and ds.classes[0] == "airplane"
    assert torch.bincount(ds.train_y).tolist() == [5000] * 10
    assert torch.allclose(ds.train_x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-3)


@pytest.mark.parametrize(
    ("name", "file"), [("fashion_mnist", "train-images-idx3-ubyte.gz"), ("cifar10", "data_batch_1")]
)
def test_missing_root_is_one_line_error(tmp_path: Path, name: str, file: str) -> None:
    with pytest.raises(DataError) as err:
        load_dataset(name, tmp_path, download=False)
    _assert_one_line(err, str(tmp_path), file, "missing")


def test_corrupt_fashion_mnist_names_the_file(fashion_root: Path, tmp_path: Path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    shutil.copytree(fashion_root / "FashionMNIST" / "raw", raw, ignore=shutil.ignore_patterns("*ubyte"))
    _corrupt(raw / "train-labels-idx1-ubyte.gz")
    with pytest.raises(DataError) as err:
        load_dataset("fashion_mnist", tmp_path, download=False)
    message = _assert_one_line(err, "train-labels-idx1-ubyte.gz", "corrupt", "md5")
    assert "more" not in message  # only that one file is bad


def test_corrupt_cifar10_names_the_batch(cifar10_root: Path, tmp_path: Path) -> None:
    source, folder = cifar10_root / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for file in source.iterdir():  # links to the intact files, a real copy of the one to corrupt
        (folder / file.name).symlink_to(file)
    (folder / "data_batch_3").unlink()
    shutil.copyfile(source / "data_batch_3", folder / "data_batch_3")
    _corrupt(folder / "data_batch_3")
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", tmp_path, download=False)
    _assert_one_line(err, "data_batch_3", "corrupt", "md5", str(tmp_path))


def _offline() -> bool:
    """Whether Fashion-MNIST's download mirror cannot be reached (any HTTP answer means it can)."""
    try:
        urllib.request.urlopen(FashionMNIST.mirrors[0], timeout=5).close()
    except urllib.error.HTTPError:
        return False
    except OSError:
        return True
    return False


def test_download_without_network_is_one_line_error(tmp_path: Path) -> None:
    if not _offline():
        pytest.skip("the network is reachable; this test is about the offline error")
    start = time.monotonic()
    with pytest.raises(DataError) as err:
        load_dataset("fashion_mnist", tmp_path, download=True)
    _assert_one_line(err, str(tmp_path), "train-images-idx3-ubyte.gz", "download failed")
    assert time.monotonic() - start < 60
