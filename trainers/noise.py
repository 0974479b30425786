"""Synthetic label noise: symmetric, uniform, pair flip and the CIFAR asymmetric models; `given`: the labels as given
(your own data's, noisy already), none added."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from trainers.errors import ConfigError

NOISE_KINDS = ("symmetric", "uniform", "pair", "asym-cifar10", "asym-cifar100", "given")

# CIFAR-10 class indices: truck → automobile, bird → airplane, deer → horse, cat ↔ dog.
CIFAR10_FLIPS = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}

# CIFAR-100 fine label → its superclass (the data set's `coarse_labels`).
CIFAR100_SUPERCLASS = (
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
)  # fmt: skip


class NoisyLabels(NamedTuple):
    """Corrupted labels and the mask of those that differ from the true ones."""

    labels: Tensor
    is_noisy: Tensor

    @property
    def rate(self) -> float:
        """The realised noise rate: the share of labels that differ from the true ones."""
        return float(self.is_noisy.float().mean()) if len(self.is_noisy) else 0.0


def corrupt_labels(
    labels: Tensor | Sequence[int], rate: float, kind: str, num_classes: int, seed: int
) -> NoisyLabels:
    """Corrupt round(rate·n) of the eligible labels by `kind`; the same seed gives the same labels.

    Eligible are all labels, except for the asymmetric kinds, where only the classes that flip are.
    `uniform` draws the new label from all classes (IEG's), so its realised rate is about r(1 − 1/C).
    """
    y = torch.as_tensor(labels, dtype=torch.long).clone()
    if not 0 <= rate < 1:
        raise ConfigError("noise_rate", rate, "a number in [0, 1)")
    if kind not in NOISE_KINDS:
        raise ConfigError("noise", kind, "one of: " + ", ".join(NOISE_KINDS))
    needed = {"asym-cifar10": 10, "asym-cifar100": 100}.get(kind)
    if needed is not None and num_classes != needed:
        raise ConfigError("noise", kind, f"needs {needed} classes, the data set has {num_classes}")
    if kind == "given":
        if rate != 0:
            raise ConfigError("noise_rate", rate, "0: noise 'given' keeps the labels as given and adds none")
        return NoisyLabels(y, torch.zeros(len(y), dtype=torch.bool))
    rng = np.random.default_rng(seed)
    target = _flip_targets(y, kind, num_classes, rng)
    eligible = np.flatnonzero((target >= 0).numpy())
    chosen = torch.from_numpy(rng.permutation(eligible)[: round(rate * len(eligible))])
    noisy = y.clone()
    noisy[chosen] = target[chosen]
    return NoisyLabels(noisy, noisy != y)


def _flip_targets(y: Tensor, kind: str, c: int, rng: np.random.Generator) -> Tensor:
    """For each label, the label it would take if chosen (−1: never flips)."""
    if kind == "symmetric":
        return (y + torch.from_numpy(rng.integers(1, c, len(y)))) % c
    if kind == "uniform":
        return torch.from_numpy(rng.integers(0, c, len(y)))
    if kind == "pair":
        return (y + 1) % c
    mapping = torch.full((c,), -1, dtype=torch.long)
    if kind == "asym-cifar10":
        for src, dst in CIFAR10_FLIPS.items():
            mapping[src] = dst
    else:
        superclass = np.asarray(CIFAR100_SUPERCLASS)
        for s in range(20):
            a, b = rng.choice(np.flatnonzero(superclass == s), size=2, replace=False)
            mapping[a], mapping[b] = int(b), int(a)
    return mapping[y]
