"""Image classification data sets chosen by name, loaded whole into normalised tensors."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainers.catalog import DATASETS, is_own_data, list_datasets, register_dataset  # noqa: F401 (re-exported)
from trainers.errors import DataError

# The ten vehicle classes of CIFAR-100 (seed paper, appendix C), in label order.
VEHICLES10 = (
    "bicycle", "bus", "motorcycle", "pickup_truck", "train",
    "lawn_mower", "rocket", "streetcar", "tank", "tractor",
)  # fmt: skip
_DOWNLOAD_TIMEOUT_S = 30.0
_HINT = "(no network: copy the files there, see the README)"


@dataclass(frozen=True, eq=False)
class Dataset:
    """A data set held in memory: normalised float images (N×C×H×W) and int64 labels."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    augment: bool  # CIFAR-like augmentation (pad 4, random 32×32 crop, flip) is used in the papers
    # Own data (trainers.own_data): train_y are the labels as given, perhaps wrong. Their true labels: train_true_y
    # where known; None with true_known: train_y themselves (the built-in sets); None without: unknown.
    train_true_y: torch.Tensor | None = None
    true_known: bool = True
    trusted: torch.Tensor | None = None  # indices of training examples whose given labels are known good

    @property
    def true_labels(self) -> torch.Tensor | None:
        """The true training labels, or None where they are unknown."""
        if self.train_true_y is not None:
            return self.train_true_y
        return self.train_y if self.true_known else None

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def in_shape(self) -> tuple[int, int, int]:
        """Shape of one image: (channels, height, width)."""
        c, h, w = self.train_x.shape[1:]
        return (c, h, w)


Loader = Callable[[Path, bool], Dataset]
_Split = tuple[torch.Tensor, torch.Tensor]  # (images, labels)


def default_data_root() -> Path:
    """$NOISY_DATA_ROOT if set, else ${XDG_CACHE_HOME:-~/.cache}/noisy-data."""
    if root := os.environ.get("NOISY_DATA_ROOT"):
        return Path(root).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "noisy-data"


def provide_dataset(name: str, data: Dataset) -> None:
    """Make `data` loadable as `name` in this process where no data set of that name is registered (a trial process
    handed a data set that its driver registered from Python)."""
    if name not in DATASETS and not is_own_data(name):
        DATASETS.register(name)(lambda root, download: data)


def load_dataset(name: str, root: str | Path | None = None, *, download: bool = True) -> Dataset:
    """Load the data set registered as `name` from `root` (default: `default_data_root()`), or your own data:
    `npz:PATH` or `folder:PATH` (see trainers.own_data; `root` unused)."""
    if is_own_data(name):
        from trainers.own_data import load_own_data

        return load_own_data(name)
    loader = DATASETS[name]
    return loader(default_data_root() if root is None else Path(root).expanduser(), download)


def select_classes(
    x: torch.Tensor, y: torch.Tensor, all_classes: Sequence[str], keep: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the examples of the classes named in `keep`, relabelled 0..len(keep)-1 in that order."""
    absent = [c for c in keep if c not in all_classes]
    if absent:
        raise DataError(f"classes {absent} are not among the data set's {len(all_classes)} classes")
    relabel = torch.full((len(all_classes),), -1, dtype=torch.int64)
    relabel[[list(all_classes).index(c) for c in keep]] = torch.arange(len(keep))
    new_y = relabel[y]
    mask = new_y >= 0
    return x[mask], new_y[mask]


def _normalised(name: str, train: _Split, test: _Split, classes: Sequence[str], augment: bool) -> Dataset:
    """A Dataset whose images are standardised per channel with the training images' mean and std."""
    (train_x, train_y), (test_x, test_y) = train, test
    mean = train_x.mean(dim=(0, 2, 3), keepdim=True)
    std = train_x.std(dim=(0, 2, 3), keepdim=True).clamp_min_(1e-12)  # a constant channel or feature stays finite
    return Dataset(
        name, train_x.sub_(mean).div_(std), train_y, test_x.sub_(mean).div_(std), test_y, tuple(classes), augment
    )


def _expected_files(cls: type, root: Path) -> list[tuple[Path, str]]:
    """The files (path, md5) that torchvision needs for `cls` under `root`, from its own metadata."""
    if hasattr(cls, "base_folder"):  # CIFAR10, CIFAR100
        meta = (cls.meta["filename"], cls.meta["md5"])
        return [(root / cls.base_folder / f, md5) for f, md5 in [*cls.train_list, *cls.test_list, meta]]
    return [(root / cls.__name__ / "raw" / os.path.basename(url), md5) for url, md5 in cls.resources]


def _fault(cls: type, root: Path) -> str | None:
    """One line naming the first missing or corrupt file under `root`, or None when all are intact."""
    from torchvision.datasets.utils import check_integrity

    faults = [
        f"corrupt file {path} (md5 mismatch)" if path.is_file() else f"missing file {path}"
        for path, md5 in _expected_files(cls, root)
        if not check_integrity(path, md5)
    ]
    if not faults:
        return None
    return faults[0] + (f" (and {len(faults) - 1} more)" if len(faults) > 1 else "")


def _open(name: str, cls: type, root: Path, train: bool, download: bool) -> Any:
    """One split through torchvision: local files first, then a download where allowed."""
    try:
        return cls(root, train=train, download=False)
    except Exception as err:  # torchvision raises RuntimeError, OSError, EOFError, AssertionError, ...
        error = err
    fault = _fault(cls, root)
    if download or fault is None:  # with verified archives (FashionMNIST's .gz) "download" only unpacks
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)
        try:
            return cls(root, train=train, download=True)
        except Exception as err:
            error = err
        finally:
            socket.setdefaulttimeout(previous)
    reason = " ".join(f"{type(error).__name__}: {error}".split())
    detail = fault or f"files present but unreadable ({reason})"
    tried = f"; download failed ({reason})" if download and fault else ""
    hint = _HINT if download else "(copy the files there, see the README)"
    raise DataError(f"data set {name!r} under {root}: {detail}{tried} {hint}") from error


def _torchvision(name: str, kind: str, root: Path, download: bool, augment: bool, keep: Sequence[str] = ()) -> Dataset:
    """Load both splits of the torchvision data set class `kind` as tensors, optionally keeping only the classes in
    `keep`. torchvision is imported here, not with this module: a trial process that trains on other data (or on data
    it is handed) starts seconds sooner without it."""
    import torchvision.datasets

    cls = getattr(torchvision.datasets, kind)
    splits = []
    for train in (True, False):
        ds = _open(name, cls, root, train, download)
        x, y = torch.as_tensor(ds.data), torch.as_tensor(ds.targets, dtype=torch.int64)
        if keep:
            x, y = select_classes(x, y, ds.classes, keep)
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)  # N×H×W or N×H×W×C -> N×C×H×W
        splits.append((x.contiguous().float().div_(255), y))
    return _normalised(name, splits[0], splits[1], keep or ds.classes, augment)


@register_dataset("digits")
def _digits(root: Path, download: bool) -> Dataset:
    """scikit-learn's 8×8 digits with a fixed stratified 20% test split (root and download unused)."""
    from sklearn.datasets import load_digits  # imported here for the reason given in _torchvision
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.from_numpy(digits.data).float().div_(16).reshape(-1, 1, 8, 8)
    y = torch.from_numpy(digits.target).long()
    train, test = train_test_split(torch.arange(len(y)), test_size=0.2, stratify=digits.target, random_state=0)
    return _normalised("digits", (x[train], y[train]), (x[test], y[test]), [str(c) for c in digits.target_names], False)


@register_dataset("fashion_mnist")
def _fashion_mnist(root: Path, download: bool) -> Dataset:
    """Fashion-MNIST, 1×28×28."""
    return _torchvision("fashion_mnist", "FashionMNIST", root, download, augment=False)


@register_dataset("cifar10")
def _cifar10(root: Path, download: bool) -> Dataset:
    """CIFAR-10, 3×32×32."""
    return _torchvision("cifar10", "CIFAR10", root, download, augment=True)


@register_dataset("cifar100")
def _cifar100(root: Path, download: bool) -> Dataset:
    """CIFAR-100 with its 100 fine labels, 3×32×32."""
    return _torchvision("cifar100", "CIFAR100", root, download, augment=True)


@register_dataset("vehicles10")
def _vehicles10(root: Path, download: bool) -> Dataset:
    """The ten vehicle classes of CIFAR-100, relabelled 0..9 in the order of VEHICLES10."""
    return _torchvision("vehicles10", "CIFAR100", root, download, augment=True, keep=VEHICLES10)
