"""Noise detection: how well a per-example score tells the corrupted training labels from the intact ones."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def auroc(scores: Tensor, positive: Tensor, weight: Tensor | None = None) -> Tensor:
    """The area under the ROC curve of `scores` (higher: more likely positive) for the boolean mask `positive`, exactly
    with ties counted half (the Mann–Whitney U over n₊·n₋), each example counted `weight` times (None: once), on the
    scores' device; NaN where either class is empty.

    Example:
        >>> float(auroc(torch.tensor([0.1, 0.4, 0.4, 0.9]), torch.tensor([False, False, True, True])))
        0.875
    """
    scores, positive = scores.flatten(), positive.flatten()
    weight = torch.ones_like(scores, dtype=torch.float64) if weight is None else weight.flatten().double()
    levels, group = torch.unique(scores, return_inverse=True)
    pos, neg = (torch.zeros(len(levels), dtype=torch.float64, device=scores.device).index_add_(0, group, weight * mask)
                for mask in (positive, ~positive))
    u = (pos * (neg.cumsum(0) - neg / 2)).sum()  # each positive beats the negatives below it, half those tied
    n_pos, n_neg = pos.sum(), neg.sum()
    return torch.where(n_pos * n_neg > 0, u / (n_pos * n_neg), math.nan)


def detection_aurocs(p_given: Tensor, sample_noisy: Tensor, sample_weight: Tensor | None, last_weight: Tensor,
                     is_noisy: Tensor) -> dict[str, float]:
    """`noise_auroc_p`, the AUROC of 1 − p_i (p_i: the probability of the given label) over the examples of p_given,
    whose noise mask is `sample_noisy` and whose weights `sample_weight` (None: 1 each), and `noise_auroc_weight`, that
    of each training example's most recent weight (NaN: not trained on yet, left out), at finding the `is_noisy`
    examples; a metric is absent where its examples hold no noisy or no clean one."""
    seen = ~last_weight.isnan()
    values = torch.stack([auroc(1 - p_given, sample_noisy, sample_weight), auroc(last_weight[seen], is_noisy[seen])])
    return {name: v for name, v in zip(("noise_auroc_p", "noise_auroc_weight"), values.tolist()) if math.isfinite(v)}
