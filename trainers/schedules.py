"""Learning-rate schedules as a factor of the base rate per iteration: constant, multistep, exponential, cosine with
warm restarts."""

from __future__ import annotations

import math
from dataclasses import dataclass

from trainers.config import TrainConfig


@dataclass(frozen=True)
class Schedule:
    """lr(step) = base · factor(step); every length here is in iterations."""

    kind: str
    milestones: tuple[float, ...] = ()
    gamma: float = 0.1
    period: float = 1.0
    mult: float = 1.0
    decay: float = 1.0
    warmup: float = 0.0
    unit: float = 1.0  # exponential: × gamma once per this many iterations

    @classmethod
    def from_config(cls, config: TrainConfig, steps_per_epoch: int, total_steps: int) -> "Schedule":
        """The schedule of `config`, its epoch lengths turned into iterations."""
        unit = steps_per_epoch if config.schedule_unit == "epoch" else 1
        period = config.cosine_period * unit if config.cosine_period is not None else total_steps
        return cls(config.schedule, tuple(m * unit for m in config.milestones), config.gamma,
                   period, config.cosine_mult, config.cosine_decay, config.warmup * unit, unit)

    def __call__(self, step: int) -> float:
        factor = min(1.0, (step + 1) / self.warmup) if self.warmup > 0 else 1.0
        if self.kind == "multistep":
            factor *= self.gamma ** sum(step >= m for m in self.milestones)
        elif self.kind == "exponential":
            factor *= self.gamma ** (step // self.unit)
        elif self.kind == "cosine":
            t, length, peak = float(step), self.period, 1.0
            while t >= length:
                t, length, peak = t - length, length * self.mult, peak * self.decay
            factor *= peak * 0.5 * (1 + math.cos(math.pi * t / length))
        return factor
