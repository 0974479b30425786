"""An exponential moving average (EMA) of a model's weights, to evaluate in place of the raw weights.

IEG's released code (google-research `ieg`, `use_ema` on by default) evaluates
`tf.train.ExponentialMovingAverage(0.999, num_updates=global_step)` of the trainable variables, applied after each
optimiser step; its evaluation takes the averages where there are some and the raw variables for the rest, so the
batch-norm statistics (not trainable) are the raw model's. TensorFlow's `num_updates` warms the decay up:
d_t = min(decay, (1 + t)/(10 + t)) with t the global step after the optimiser's increment (1 after the first step).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

WARMUP = 10  # TensorFlow's num_updates warm-up: the decay is at most (1 + t)/(WARMUP + t) after step t


def decay_at(decay: float, step: int) -> float:
    """The decay of the update after optimiser step `step` (1 for the first): min(decay, (1 + step)/(10 + step))."""
    return min(decay, (1 + step) / (WARMUP + step))


class WeightAverage:
    """A copy of `model` (`.model`, to evaluate) whose parameters follow an EMA of the model's and whose buffers (the
    batch-norm running statistics) are the model's own, copied at each update, as the authors' (module docstring).

    It starts at the model's weights when created; `update(model, t)` after optimiser step t sets
    θ̄ ← d_t·θ̄ + (1 − d_t)·θ, d_t = decay_at(decay, t), in one fused operation over the parameter list.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).requires_grad_(False)
        self._params = list(self.model.parameters())
        self._buffers = list(self.model.buffers())

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average towards `model`'s weights after optimiser step `step`; copy its buffers."""
        torch._foreach_lerp_(self._params, list(model.parameters()), 1 - decay_at(self.decay, step))
        if self._buffers:
            torch._foreach_copy_(self._buffers, list(model.buffers()))
