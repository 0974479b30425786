"""Human label noise: the CIFAR-N labels (Wei et al., ICLR 2022) of CIFAR-10's and CIFAR-100's training sets, and the
paper's control, synthetic noise drawn from the human labels' class transition matrix (independent of the image)."""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from numpy._core.multiarray import _reconstruct
from torch import Tensor

from trainers.catalog import HUMAN_KINDS, HUMAN_NOISE_DATASETS, HUMAN_NOISE_KINDS, SYNTHETIC
from trainers.datasets import Dataset
from trainers.errors import ConfigError, DataError
from trainers.noise import NoisyLabels

FOLDER = "CIFAR-N"  # under the data root


class LabelFile(NamedTuple):
    """A CIFAR-N label file as released: its name under <root>/CIFAR-N/ and its md5."""

    name: str
    md5: str


FILES = {
    "cifar10": LabelFile("CIFAR-10_human.pt", "96644db5574813cae939af5f7f2a0aec"),
    "cifar100": LabelFile("CIFAR-100_human.pt", "a67b45c1d7992051865b5c755bd68bb1"),
}

# Exactly the globals the released files' pickles name beyond torch's own allow-list (numpy arrays of int64),
# `_reconstruct` under the numpy 1 name the pickles use; Int64DType is what `numpy.dtype("i8")` builds.
_ALLOWED = [(_reconstruct, "numpy.core.multiarray._reconstruct"), np.ndarray, np.dtype, np.dtypes.Int64DType]


def label_path(dataset: str, root: str | Path) -> Path:
    """Where the CIFAR-N label file of `dataset` is found under the data root."""
    return Path(root).expanduser() / FOLDER / FILES[dataset].name


def read_label_file(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a CIFAR-N file, unpickled by `torch.load(weights_only=True)` allowing only `_ALLOWED`; a DataError
    naming the file where it holds anything else."""
    try:
        with torch.serialization.safe_globals(_ALLOWED):
            content = torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError) as error:
        named = re.search(r"GLOBAL ([\w.]+)", str(error))
        reason = f"its pickle names {named[1]}, which is not allowed" if named else " ".join(str(error).split()[:12])
        raise DataError(f"unreadable file {path} (refused by the restricted unpickler: {reason})") from None
    if not isinstance(content, dict):
        raise DataError(f"unreadable file {path} (not a mapping of label arrays)")
    return content


def load_label_file(path: Path, md5: str) -> dict[str, np.ndarray]:
    """The arrays of the CIFAR-N file at `path` once its md5 is `md5`; a one-line DataError where it is missing,
    tampered with or unreadable."""
    if not path.is_file():
        raise DataError(f"missing file {path} (the CIFAR-N human labels: copy the release's file there, see README)")
    actual = hashlib.md5(path.read_bytes()).hexdigest()
    if actual != md5:
        raise DataError(f"corrupt file {path} (md5 mismatch: {actual}, expected {md5})")
    return read_label_file(path)


def human_labels(kind: str, root: str | Path) -> tuple[Tensor, Tensor]:
    """(clean, human) labels of all training examples, in the data set's order, for the human kind (or its control)."""
    dataset, key = HUMAN_KINDS[kind.removesuffix(SYNTHETIC)]
    path = label_path(dataset, root)
    content = load_label_file(path, FILES[dataset].md5)
    arrays = []
    for name in ("clean_label", key):
        value = content.get(name)
        if not (isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype == np.int64):
            raise DataError(f"corrupt file {path} (its {name!r} is not an array of integer labels)")
        arrays.append(torch.from_numpy(value))
    if len(arrays[0]) != len(arrays[1]):
        raise DataError(f"corrupt file {path} (clean_label and {key} differ in length)")
    return arrays[0], arrays[1]


def transition_matrix(clean: Tensor, noisy: Tensor, num_classes: int) -> Tensor:
    """T[i, j]: the share of the examples of true class i labelled j (rows of absent classes: the identity)."""
    counts = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    counts.index_put_((clean, noisy), torch.ones(len(clean), dtype=torch.float64), accumulate=True)
    totals = counts.sum(1, keepdim=True)
    return torch.where(totals > 0, counts / totals.clamp(min=1), torch.eye(num_classes, dtype=torch.float64))


def sample_from_matrix(labels: Tensor, matrix: Tensor, seed: int) -> NoisyLabels:
    """Each label i replaced by j with probability matrix[i, j], independently of everything but the label."""
    cumulative = matrix.cumsum(1)[labels]
    draws = torch.from_numpy(np.random.default_rng(seed).random(len(labels)))
    noisy = (draws[:, None] >= cumulative).sum(1).clamp(max=matrix.shape[1] - 1)
    return NoisyLabels(noisy, noisy != labels)


def paired_labels(kind: str, data: Dataset, root: str | Path) -> tuple[Tensor, Tensor]:
    """`human_labels(kind, root)` once the file's clean labels are `data`'s training labels, in order; a ConfigError
    where `kind` does not fit `data`, a DataError naming the file where its labels are another data set's."""
    dataset = HUMAN_NOISE_DATASETS.get(kind)
    if dataset is None:
        raise ConfigError("noise", kind, "one of: " + ", ".join(HUMAN_NOISE_KINDS))
    if data.name != dataset:
        raise ConfigError("noise", kind, f"fits only the data set {dataset}, not {data.name}")
    clean, human = human_labels(kind, root)
    if not torch.equal(clean, data.train_y):
        n = len(data.train_y)
        detail = f"{int((clean != data.train_y).sum())} of {n} differ" if len(clean) == n else f"{len(clean)}, not {n}"
        raise DataError(f"mismatched file {label_path(dataset, root)} (its clean_label is not the {dataset} training "
                        f"labels in order: {detail})")
    return clean, human


def human_noise(kind: str, labels: tuple[Tensor, Tensor], keep: Tensor, num_classes: int, seed: int) -> NoisyLabels:
    """The labels of the training examples `keep` under `kind`, from its file's (clean, human) `labels`
    (`paired_labels`): the human labels, or for a control kind labels drawn from the human labels' transition matrix
    with `seed`."""
    clean, human = labels
    true_y = clean[keep]
    if kind in HUMAN_KINDS:
        return NoisyLabels(human[keep], human[keep] != true_y)
    return sample_from_matrix(true_y, transition_matrix(clean, human, num_classes), seed)
