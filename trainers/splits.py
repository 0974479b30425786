"""The split protocol: a stratified 80/20 split, noise on the 80% only, the 20% validating with their true labels (or
their noisy ones, or a trusted set instead: `val_labels`); optionally a small trusted probe set (k examples per class,
before noise) held apart from both."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from trainers.catalog import VAL_LABELS, ValLabels
from trainers.datasets import Dataset, default_data_root
from trainers.errors import ConfigError
from trainers.human_noise import HUMAN_NOISE_KINDS, human_noise, paired_labels
from trainers.noise import corrupt_labels

SplitMode = Literal["search", "final"]
VAL_NOISE_SALT = 0x7A1  # the noisy validation labels' draw: the noise seed XOR this, apart from the training part's
PROBE_SALT = 0x960BE  # the probe's draw: the split seed XOR this, apart from the validation draw


class Seeds(NamedTuple):
    """Independent seeds for each random choice of a run, all derived from one seed."""

    split: int
    noise: int
    init: int
    order: int


def derive_seeds(seed: int) -> Seeds:
    """Split, noise, initialisation and batch order seeds that follow from `seed`."""
    return Seeds(*(int(s) for s in np.random.SeedSequence(seed).generate_state(4)))


@dataclass(frozen=True)
class Split:
    """Training part (noisy labels; true labels and noise mask, None where the true labels are unknown), validation part
    (None in final mode) with the labels it validates by, test set, the trusted probe set (None where none is held out),
    and the validation part's true and noisy labels (None where unknown or in final mode)."""

    train_x: Tensor
    train_y: Tensor
    true_y: Tensor | None
    is_noisy: Tensor | None
    val_x: Tensor | None
    val_y: Tensor | None
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    probe_x: Tensor | None = None
    probe_y: Tensor | None = None
    val_clean_y: Tensor | None = None
    val_noisy_y: Tensor | None = None

    @property
    def noise_rate(self) -> float | None:
        """The realised share of training labels that are wrong (None where the true labels are unknown)."""
        return None if self.is_noisy is None else float(self.is_noisy.float().mean())


def stratified_split(labels: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Indices (kept, held out), holding out round(fraction·n_c) of each class c, both sorted."""
    return _hold_out(labels, lambda n_c: round(fraction * n_c), seed)


def per_class_split(labels: Tensor, per_class: int, seed: int) -> tuple[Tensor, Tensor]:
    """Indices (kept, held out), holding out `per_class` examples of each class (all of a smaller one), both sorted."""
    return _hold_out(labels, lambda n_c: min(per_class, n_c), seed)


def class_interleaved(labels: Tensor) -> Tensor:
    """The order of `labels`' indices that takes one example of each class in turn (classes ascending; within a class,
    the given order): the authors' `shuffle_dataset(class_balanced=True)` arrangement of a probe set, whose
    consecutive slices are class-balanced."""
    rank = F.one_hot(labels).cumsum(0).gather(1, labels[:, None]).squeeze(1) - 1  # earlier examples of its class
    return torch.argsort(rank * (int(labels.max()) + 1) + labels)


def _hold_out(labels: Tensor, count: Callable[[int], int], seed: int) -> tuple[Tensor, Tensor]:
    """Indices (kept, held out), holding out a random `count(n_c)` of each class c (in class order), both sorted."""
    rng = np.random.default_rng(seed)
    y = labels.numpy()
    held = np.concatenate([
        rng.permutation(idx)[: count(len(idx))] for idx in (np.flatnonzero(y == c) for c in np.unique(y))
    ])
    mask = np.zeros(len(y), dtype=bool)
    mask[held] = True
    return torch.from_numpy(np.flatnonzero(~mask)), torch.from_numpy(np.flatnonzero(mask))


def make_split(
    data: Dataset,
    *,
    noise: str,
    noise_rate: float,
    split: SplitMode = "search",
    val_fraction: float = 0.2,
    probe_per_class: int = 0,
    seed: int = 0,
    val_labels: ValLabels = "clean",
    data_root: str | Path | None = None,
) -> Split:
    """Split `data` by the protocol: in "search" mode hold out a clean validation part; in "final" train on all.

    `probe_per_class` > 0 holds out that many examples of each class from the training part before the noise, with
    their true labels, as a trusted probe set (the meta methods' clean data, seed 003), class-interleaved
    (`class_interleaved`); the rest is the noisy part. `val_labels`: the validation part keeps its true labels
    ("clean"), takes noise as the training part does ("noisy"), or is the data set's trusted examples ("trusted").
    A human noise kind (CIFAR-N) reads its labels from its file under `data_root` (None: `default_data_root()`).
    """
    if split not in ("search", "final"):
        raise ConfigError("split", split, "one of: search, final")
    if not 0 < val_fraction < 1:
        raise ConfigError("val_fraction", val_fraction, "a number in (0, 1)")
    if isinstance(probe_per_class, bool) or not isinstance(probe_per_class, int) or probe_per_class < 0:
        raise ConfigError("probe_per_class", probe_per_class, "an integer ≥ 0")
    check_val_labels(data, val_labels)
    true = data.true_labels
    if true is None and probe_per_class > 0:
        raise ConfigError("probe_per_class", probe_per_class, f"0: {data.name} has no true labels for a probe set")
    seeds = derive_seeds(seed)
    root = default_data_root() if data_root is None else data_root
    human = paired_labels(noise, data, root) if noise in HUMAN_NOISE_KINDS else None  # the file read once

    def noisy_labels(indices: Tensor, noise_seed: int) -> Tensor:
        """The noisy labels of the training examples `indices`: the human ones, or noise drawn on the given ones."""
        if human is not None:
            return human_noise(noise, human, indices, data.num_classes, noise_seed).labels
        return corrupt_labels(data.train_y[indices], noise_rate, noise, data.num_classes, noise_seed,
                              inputs=data.train_x[indices]).labels

    val_x = val_y = val_clean_y = val_noisy_y = None
    if split == "search":
        if val_labels == "trusted":
            held = torch.as_tensor(data.trusted, dtype=torch.long).sort().values
            keep = torch.from_numpy(np.setdiff1d(np.arange(len(data.train_y)), held.numpy()))
        else:
            keep, held = stratified_split(data.train_y, val_fraction, seeds.split)
        given = data.train_y[held]
        val_x, val_clean_y = data.train_x[held], None if true is None else true[held]
        val_noisy_y = noisy_labels(held, seeds.noise ^ VAL_NOISE_SALT)
        val_y = {"clean": val_clean_y, "noisy": val_noisy_y, "trusted": given}[val_labels]
    else:
        keep = torch.arange(len(data.train_y))
    probe_x = probe_y = None
    if probe_per_class > 0:
        rest, probe = per_class_split(data.train_y[keep], probe_per_class, seeds.split ^ PROBE_SALT)
        keep, probe = keep[rest], keep[probe]
        probe = probe[class_interleaved(data.train_y[probe])]
        probe_x, probe_y = data.train_x[probe], true[probe]
    true_y = None if true is None else true[keep]
    noisy = noisy_labels(keep, seeds.noise)
    return Split(data.train_x[keep], noisy, true_y, None if true_y is None else noisy != true_y, val_x, val_y,
                 data.test_x, data.test_y, data.num_classes, probe_x, probe_y, val_clean_y, val_noisy_y)


def check_val_labels(data: Dataset, val_labels: str) -> None:
    """A ConfigError on `val_labels` unless `data` has what it validates by: true labels (clean), trusted examples."""
    if val_labels not in VAL_LABELS:
        raise ConfigError("val_labels", val_labels, "one of: " + ", ".join(VAL_LABELS))
    if val_labels == "clean" and data.true_labels is None:
        raise ConfigError("val_labels", val_labels, f"noisy or trusted: {data.name} has no true labels")
    if val_labels == "trusted" and (data.trusted is None or len(data.trusted) == 0):
        raise ConfigError("val_labels", val_labels, f"clean or noisy: {data.name} has no trusted examples")
