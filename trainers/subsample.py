"""The training examples an evaluation's training-set metrics are computed from: a fixed stratified subsample."""

from __future__ import annotations

import torch
from torch import Tensor


def stratified_subsample(strata: Tensor, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(sorted indices, weights) of about `size` examples drawn without replacement within each stratum of `strata`
    (a non-negative integer per example), each stratum's number proportional to its share (largest remainders, at least
    one from each stratum); the weight of an example from stratum s is N_s/n_s, so that a weighted mean over the
    subsample is an unbiased estimate of the mean over all examples, and over any union of strata of that union's mean.

    Example:
        >>> idx, weight = stratified_subsample(torch.tensor([0, 0, 0, 0, 1, 1]), 3, torch.Generator().manual_seed(0))
        >>> len(idx), weight.tolist()
        (3, [2.0, 2.0, 2.0])
    """
    strata = strata.cpu()
    counts = torch.bincount(strata)
    share = counts.double() * size / len(strata)
    take = share.floor().long()
    largest = torch.argsort(take - share, stable=True)[: size - int(take.sum())]
    take[largest] += 1
    take = torch.maximum(take, (counts > 0).long()).minimum(counts)
    shuffled = torch.randperm(len(strata), generator=generator)
    grouped = shuffled[torch.argsort(strata[shuffled], stable=True)]  # by stratum, in random order within each
    place = torch.arange(len(strata)) - (counts.cumsum(0) - counts)[strata[grouped]]
    chosen = grouped[place < take[strata[grouped]]].sort().values
    return chosen, (counts.double() / take.clamp_min(1))[strata[chosen]]
