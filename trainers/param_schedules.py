"""Schedules of a method's hyperparameter over training progress t = step / total_steps in [0, 1].

In a config a hyperparameter's value is a number, or a schedule: a mapping such as {from: 0.5, to: 0.2, shape: linear}
(YAML) or its compact form SHAPE:FROM:TO[:AT[:B]] (the CLI, e.g. `--psi linear:0.5:0.2`). The trainer evaluates it
at every training step from the step count, so a run resumed from a checkpoint follows it exactly.

    >>> ParamSchedule.parse("psi", "linear:0.5:0.2").value(0.5)
    0.35
    >>> ParamSchedule.parse("lam", {"from": 0, "to": 2, "shape": "step", "at": 0.25}).value(0.25)
    2.0
    >>> str(ParamSchedule.parse("beta", {"from": 1, "to": 9, "shape": "sigmoid"}))
    'sigmoid:1:9:0.5:16'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from trainers.errors import ConfigError

SHAPES = ("linear", "cosine", "step", "sigmoid")
KEYS = ("from", "to", "shape", "at", "b")  # `at`: step and sigmoid only; `b`: sigmoid only
DEFAULT_AT = 0.5
DEFAULT_B = 16.0  # ProSelfLC's steepness (B = 16 in its experiments)
SYNTAX = ("a schedule: a mapping {from: NUMBER, to: NUMBER, shape: " + "|".join(SHAPES) + "} (step: at; sigmoid: at, "
          "b) or SHAPE:FROM:TO[:AT[:B]], e.g. linear:0.5:0.2")


@dataclass(frozen=True)
class ParamSchedule:
    """A hyperparameter's value at training progress t in [0, 1] (`value(t)`), from `start` (YAML `from`) to `end`
    (`to`) in one of SHAPES:

    - linear:  start + (end − start)·t
    - cosine:  start + (end − start)·(1 − cos(π·t))/2, flat at both ends
    - step:    start for t < at, end from t = at on
    - sigmoid: start + (end − start)·σ(b·(t − at)), σ(x) = 1/(1 + e^−x): ProSelfLC's global trust
      g(t) = σ(B·(t/Γ − ½)) (Wang et al. 2021; its paper is not among the seeds: the form as recalled, B = 16) taken
      from 0..1 to start..end. Not normalised, as ProSelfLC's g is not: the value at t = 0 is start + (end −
      start)·σ(−b·at), within (end − start)·σ(−b·at) of start (3.4e-4 of the span for b = 16, at = ½), and likewise at
      t = 1.

    Every shape stays between start and end, so a value allowed at both ends is allowed throughout (what the config
    checks: `ends()`).
    """

    start: float
    end: float
    shape: str = "linear"
    at: float = DEFAULT_AT
    b: float = DEFAULT_B

    def value(self, t: float) -> float:
        """The value at progress t (clipped into [0, 1])."""
        t = min(1.0, max(0.0, float(t)))
        if self.shape == "linear":
            frac = t
        elif self.shape == "cosine":
            frac = (1 - math.cos(math.pi * t)) / 2
        elif self.shape == "step":
            frac = float(t >= self.at)
        else:
            frac = _sigmoid(self.b * (t - self.at))
        return self.start + (self.end - self.start) * frac

    def ends(self) -> tuple[float, float]:
        """(start, end): the bounds of every value the schedule takes."""
        return self.start, self.end

    def to_dict(self) -> dict[str, Any]:
        """The canonical mapping (the YAML form): from, to, shape, and `at`, `b` only where the shape uses them."""
        out: dict[str, Any] = {"from": self.start, "to": self.end, "shape": self.shape}
        if self.shape in ("step", "sigmoid"):
            out["at"] = self.at
        if self.shape == "sigmoid":
            out["b"] = self.b
        return out

    def __str__(self) -> str:
        """The compact form SHAPE:FROM:TO[:AT[:B]] (the CLI's), e.g. 'linear:0.5:0.2'."""
        parts = [self.shape, self.start, self.end]
        if self.shape in ("step", "sigmoid"):
            parts.append(self.at)
        if self.shape == "sigmoid":
            parts.append(self.b)
        return ":".join(p if isinstance(p, str) else _text(p) for p in parts)

    @classmethod
    def parse(cls, field: str, value: object) -> "ParamSchedule":
        """The schedule that `value` (a mapping, a ParamSchedule, or the compact string) describes for setting `field`;
        anything else, or a bad key, shape or number, is one ConfigError on `field` that says what is allowed."""
        if isinstance(value, ParamSchedule):
            return value
        if isinstance(value, str):
            return cls.parse(field, _from_text(field, value))
        if not isinstance(value, Mapping):
            raise ConfigError(field, value, SYNTAX)
        unknown = [k for k in value if k not in KEYS]
        if unknown:
            raise ConfigError(field, dict(value), f"a schedule's keys are {', '.join(KEYS)}; not {unknown[0]!r}")
        missing = [k for k in ("from", "to") if k not in value]
        if missing:
            raise ConfigError(field, dict(value), f"a schedule needs {missing[0]!r}: {SYNTAX}")
        shape = value.get("shape", "linear")
        if shape not in SHAPES:
            raise ConfigError(field, dict(value), "a schedule's shape is one of: " + ", ".join(SHAPES))
        for key in ("from", "to", "at", "b"):
            if key in value and not _finite(value[key]):
                raise ConfigError(field, dict(value), f"a schedule's {key!r} is a finite number")
        used = {"step": ("at",), "sigmoid": ("at", "b")}.get(shape, ())
        extra = [k for k in ("at", "b") if k in value and k not in used]
        if extra:
            raise ConfigError(field, dict(value), f"{extra[0]!r} is for "
                              + ("step and sigmoid" if extra[0] == "at" else "sigmoid") + f", not shape {shape}")
        at, b = float(value.get("at", DEFAULT_AT)), float(value.get("b", DEFAULT_B))
        if not 0 <= at <= 1:
            raise ConfigError(field, dict(value), "a schedule's 'at' is a point of training progress in [0, 1]")
        if not b > 0:
            raise ConfigError(field, dict(value), "a sigmoid schedule's steepness 'b' is a number > 0")
        return cls(float(value["from"]), float(value["to"]), shape, at, b)


def is_schedule(value: object) -> bool:
    """Whether `value` is written as a schedule (a mapping, a string or a ParamSchedule), not as a plain value.
    Strings count only where a number is expected: the caller knows."""
    return isinstance(value, (Mapping, str, ParamSchedule))


def _from_text(field: str, text: str) -> dict[str, Any]:
    parts = text.strip().split(":")
    names = ("shape", "from", "to", "at", "b")
    if not 3 <= len(parts) <= 5:
        raise ConfigError(field, text, SYNTAX)
    out: dict[str, Any] = {"shape": parts[0].strip()}
    for name, part in zip(names[1:], parts[1:]):
        try:
            out[name] = float(part)
        except ValueError:
            raise ConfigError(field, text, f"{SYNTAX}; {name} {part!r} is not a number") from None
    return out


def _text(x: float) -> str:
    """x as short as it reads back exactly: 0.5, 16, 0.123456789."""
    short = f"{x:g}"
    return short if float(short) == x else repr(x)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
