"""The split protocol: a stratified 80/20 split, noise on the 80% only, the 20% kept clean for validation; optionally a
small trusted probe set (k examples per class, before noise) held apart from both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from trainers.datasets import Dataset
from trainers.errors import ConfigError
from trainers.noise import corrupt_labels

SplitMode = Literal["search", "final"]
PROBE_PER_CLASS = 10  # the probe set's default size per class for the methods that learn from one (seed 003)
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
    """Training part (noisy labels, true labels, noise mask), clean validation part (None in final mode), test set,
    and the trusted probe set (None where none is held out)."""

    train_x: Tensor
    train_y: Tensor
    true_y: Tensor
    is_noisy: Tensor
    val_x: Tensor | None
    val_y: Tensor | None
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    probe_x: Tensor | None = None
    probe_y: Tensor | None = None

    @property
    def noise_rate(self) -> float:
        """The realised share of training labels that are wrong."""
        return float(self.is_noisy.float().mean())


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
) -> Split:
    """Split `data` by the protocol: in "search" mode hold out a clean validation part; in "final" train on all.

    `probe_per_class` > 0 holds out that many examples of each class from the training part before the noise, with
    their true labels, as a trusted probe set (the meta methods' clean data, seed 003), class-interleaved
    (`class_interleaved`); the rest is the noisy part.
    """
    if split not in ("search", "final"):
        raise ConfigError("split", split, "one of: search, final")
    if not 0 < val_fraction < 1:
        raise ConfigError("val_fraction", val_fraction, "a number in (0, 1)")
    if isinstance(probe_per_class, bool) or not isinstance(probe_per_class, int) or probe_per_class < 0:
        raise ConfigError("probe_per_class", probe_per_class, "an integer ≥ 0")
    seeds = derive_seeds(seed)
    if split == "search":
        keep, held = stratified_split(data.train_y, val_fraction, seeds.split)
        val_x, val_y = data.train_x[held], data.train_y[held]
    else:
        keep, val_x, val_y = torch.arange(len(data.train_y)), None, None
    probe_x = probe_y = None
    if probe_per_class > 0:
        rest, probe = per_class_split(data.train_y[keep], probe_per_class, seeds.split ^ PROBE_SALT)
        keep, probe = keep[rest], keep[probe]
        probe = probe[class_interleaved(data.train_y[probe])]
        probe_x, probe_y = data.train_x[probe], data.train_y[probe]
    train_x, true_y = data.train_x[keep], data.train_y[keep]
    noisy = corrupt_labels(true_y, noise_rate, noise, data.num_classes, seeds.noise, inputs=train_x)
    return Split(train_x, noisy.labels, true_y, noisy.is_noisy, val_x, val_y,
                 data.test_x, data.test_y, data.num_classes, probe_x, probe_y)
