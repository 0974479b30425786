"""Noise detection: how well a per-example score tells the corrupted training labels from the intact ones."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def auroc(scores: Tensor, positive: Tensor) -> Tensor:
    """The area under the ROC curve of `scores` (higher: more likely positive) for the boolean mask `positive`, exactly
    by ranks with ties averaged (the Mann–Whitney U over n₊·n₋), on the scores' device; NaN where either class is
    empty.

    Example:
        >>> float(auroc(torch.tensor([0.1, 0.4, 0.4, 0.9]), torch.tensor([False, False, True, True])))
        0.875
    """
    scores, positive = scores.flatten(), positive.flatten()
    _, group, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    counts = counts.double()
    ranks = (counts.cumsum(0) - (counts - 1) / 2)[group]  # 1-based, each tie group at its mean rank
    n_pos = positive.sum().double()
    n_neg = positive.numel() - n_pos
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
    return torch.where(n_pos * n_neg > 0, u / (n_pos * n_neg), math.nan)


def detection_aurocs(p_given: Tensor, last_weight: Tensor, is_noisy: Tensor) -> dict[str, float]:
    """`noise_auroc_p`, the AUROC of 1 − p_i (p_i: the probability of the given label), and `noise_auroc_weight`, that
    of each example's most recent weight (NaN: not trained on yet, left out), at finding the `is_noisy` examples; a
    metric is absent where its examples hold no noisy or no clean one."""
    seen = ~last_weight.isnan()
    values = torch.stack([auroc(1 - p_given, is_noisy), auroc(last_weight[seen], is_noisy[seen])]).tolist()
    return {name: v for name, v in zip(("noise_auroc_p", "noise_auroc_weight"), values) if math.isfinite(v)}
