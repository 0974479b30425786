"""Synthetic label noise: symmetric, uniform, pair flip, the CIFAR asymmetric models and instance-dependent noise;
`given`: the labels as given (your own data's, noisy already), none added."""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from trainers.catalog import NOISE_KINDS
from trainers.errors import ConfigError

INSTANCE_SPREAD = 0.1  # instance noise: the standard deviation of the per-example flip rates q_i (Xia et al. 2020)

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
    labels: Tensor | Sequence[int], rate: float, kind: str, num_classes: int, seed: int, *, inputs: Tensor | None = None
) -> NoisyLabels:
    """Corrupt round(rate·n) of the eligible labels by `kind`; the same seed gives the same labels.

    Eligible are all labels, except for the asymmetric kinds, where only the classes that flip are.
    `uniform` draws the new label from all classes (IEG's), so its realised rate is about r(1 − 1/C).
    `instance` (which needs the `inputs` of the labels) draws each label from `instance_flip_probabilities` with flip
    rates q_i ~ N(rate, 0.1²) truncated to [0, 1]: its realised rate only approximates r.
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
    if kind == "instance":
        return _instance_noise(y, rate, num_classes, seed, inputs)
    rng = np.random.default_rng(seed)
    target = _flip_targets(y, kind, num_classes, rng)
    eligible = np.flatnonzero((target >= 0).numpy())
    chosen = torch.from_numpy(rng.permutation(eligible)[: round(rate * len(eligible))])
    noisy = y.clone()
    noisy[chosen] = target[chosen]
    return NoisyLabels(noisy, noisy != y)


def instance_flip_probabilities(inputs: Tensor, labels: Tensor, flip_rates: Tensor, num_classes: int,
                                seed: int) -> Tensor:
    """Each example's distribution of its noisy label (N × K, float64) in Xia et al. 2020's instance-dependent noise:
    1 − q_i on its label y_i and q_i·softmax(a) over the others, a = x_iᵀ·W[y_i] with x_i the flattened input and
    W ~ N(0, 1) of shape K × d × K drawn from `seed` (one class's d × K slice at a time, the same numbers as drawing
    it whole).
    """
    x, y, q = inputs.flatten(1), torch.as_tensor(labels), torch.as_tensor(flip_rates, dtype=torch.float64)
    rng = np.random.default_rng(seed)
    probs = torch.empty(len(y), num_classes, dtype=torch.float64)
    for c in range(num_classes):
        w = torch.from_numpy(rng.standard_normal((x.shape[1], num_classes)))
        rows = torch.nonzero(y == c).squeeze(1)
        a = x[rows].double() @ w
        a[:, c] = -math.inf
        probs[rows] = q[rows, None] * a.softmax(1)
        probs[rows, c] = 1 - q[rows]
    return probs


def _instance_noise(y: Tensor, rate: float, num_classes: int, seed: int, inputs: Tensor | None) -> NoisyLabels:
    """Instance-dependent noise: q_i ~ N(rate, 0.1²) truncated to [0, 1] (by the inverse CDF), then each label drawn
    from its `instance_flip_probabilities`."""
    if inputs is None or len(inputs) != len(y):
        raise ConfigError("noise", "instance", "needs the inputs of the labels it corrupts")
    w_seed, draw_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    rng = np.random.default_rng(draw_seed)
    lo, hi = (torch.special.ndtr(torch.tensor((b - rate) / INSTANCE_SPREAD, dtype=torch.float64)) for b in (0, 1))
    u = lo + (hi - lo) * torch.from_numpy(rng.random(len(y)))
    q = (rate + INSTANCE_SPREAD * torch.special.ndtri(u)).clamp(0, 1)
    probs = instance_flip_probabilities(inputs, y, q, num_classes, w_seed)
    drawn = (probs.cumsum(1) < torch.from_numpy(rng.random(len(y)))[:, None]).sum(1)
    noisy = drawn.clamp(max=num_classes - 1)
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
