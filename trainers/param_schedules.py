"""Schedules of a method's hyperparameter over training progress t = step / total_steps in [0, 1].

In a config a hyperparameter's value is a number, or a schedule: a mapping such as {from: 0.5, to: 0.2, shape: linear}
(YAML) or its compact form SHAPE:FROM:TO[:AT[:B]] (the CLI, e.g. `--psi linear:0.5:0.2`); or piecewise constant,
{shape: piecewise, values: [V0, ..., Vn], at: [T1, ..., Tn]} or piecewise:V0:T1:V1:...:Tn:Vn (each value from its
breakpoint on). The trainer evaluates it at every training step from the step count, so a run resumed from a
checkpoint follows it exactly. `policy` recovers the schedule a run actually followed (e.g. under Population Based
Training) from its evaluations' metrics, as a schedule that retraces the run from the start.

    >>> ParamSchedule.parse("psi", "linear:0.5:0.2").value(0.5)
    0.35
    >>> ParamSchedule.parse("lam", {"from": 0, "to": 2, "shape": "step", "at": 0.25}).value(0.25)
    2.0
    >>> str(ParamSchedule.parse("beta", {"from": 1, "to": 9, "shape": "sigmoid"}))
    'sigmoid:1:9:0.5:16'
    >>> ParamSchedule.parse("psi", "piecewise:0.2:0.5:0.4").value(0.5)
    0.4
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from trainers.errors import ConfigError

SHAPES = ("linear", "cosine", "step", "sigmoid", "piecewise")
# `at`: step and sigmoid (a number), piecewise (a list of breakpoints); `b`: sigmoid only; `values`: piecewise only
KEYS = ("from", "to", "shape", "at", "b", "values")
DEFAULT_AT = 0.5
DEFAULT_B = 16.0  # ProSelfLC's steepness (B = 16 in its experiments)
PIECEWISE_SYNTAX = ("a piecewise schedule: {shape: piecewise, values: [V0, ..., Vn], at: [T1, ..., Tn]} with "
                    "0 <= T1 < ... < Tn <= 1, or piecewise:V0:T1:V1:...:Tn:Vn, e.g. piecewise:0.2:0.5:0.4")
SYNTAX = ("a schedule: a mapping {from: NUMBER, to: NUMBER, shape: " + "|".join(SHAPES[:-1]) + "} (step: at; "
          "sigmoid: at, b) or SHAPE:FROM:TO[:AT[:B]], e.g. linear:0.5:0.2; or " + PIECEWISE_SYNTAX)


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
    - piecewise: values[j] with j the number of `breakpoints` (YAML `at`) <= t: each value takes over at its
      breakpoint; start and end are the first and last values.

    Every shape stays between the least and the greatest value it takes, `ends()`, so a value allowed at both is
    allowed throughout (what the config checks).
    """

    start: float
    end: float
    shape: str = "linear"
    at: float = DEFAULT_AT
    b: float = DEFAULT_B
    values: tuple[float, ...] = ()  # piecewise only: len(breakpoints) + 1 values
    breakpoints: tuple[float, ...] = ()  # piecewise only: rising strictly within [0, 1]

    def value(self, t: float) -> float:
        """The value at progress t (clipped into [0, 1])."""
        t = min(1.0, max(0.0, float(t)))
        if self.shape == "piecewise":
            return self.values[bisect.bisect_right(self.breakpoints, t)]
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
        """The bounds of every value the schedule takes: (start, end), for piecewise (least, greatest value)."""
        return (min(self.values), max(self.values)) if self.shape == "piecewise" else (self.start, self.end)

    def to_dict(self) -> dict[str, Any]:
        """The canonical mapping (the YAML form): from, to, shape, and `at`, `b` only where the shape uses them;
        for piecewise: shape, values, at (lists)."""
        if self.shape == "piecewise":
            return {"shape": "piecewise", "values": list(self.values), "at": list(self.breakpoints)}
        out: dict[str, Any] = {"from": self.start, "to": self.end, "shape": self.shape}
        if self.shape in ("step", "sigmoid"):
            out["at"] = self.at
        if self.shape == "sigmoid":
            out["b"] = self.b
        return out

    def __str__(self) -> str:
        """The compact form SHAPE:FROM:TO[:AT[:B]] (the CLI's), e.g. 'linear:0.5:0.2'; piecewise:V0:T1:V1:...:Tn:Vn."""
        if self.shape == "piecewise":
            cells = [self.values[0]] + [x for pair in zip(self.breakpoints, self.values[1:]) for x in pair]
            return ":".join(["piecewise", *map(_text, cells)])
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
            try:
                return cls.parse(field, _from_text(field, value))
            except ConfigError as error:  # name the text as written, not the mapping read from it
                raise ConfigError(field, value, error.allowed) from None
        if not isinstance(value, Mapping):
            raise ConfigError(field, value, SYNTAX)
        unknown = [k for k in value if k not in KEYS]
        if unknown:
            raise ConfigError(field, dict(value), f"a schedule's keys are {', '.join(KEYS)}; not {unknown[0]!r}")
        if value.get("shape") == "piecewise":
            return cls._piecewise(field, value)
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
        extra = [k for k in ("at", "b", "values") if k in value and k not in used]
        if extra:
            whose = {"at": "step and sigmoid (a number) and piecewise (a list)", "b": "sigmoid", "values": "piecewise"}
            raise ConfigError(field, dict(value), f"{extra[0]!r} is for {whose[extra[0]]}, not shape {shape}")
        at, b = float(value.get("at", DEFAULT_AT)), float(value.get("b", DEFAULT_B))
        if not 0 <= at <= 1:
            raise ConfigError(field, dict(value), "a schedule's 'at' is a point of training progress in [0, 1]")
        if not b > 0:
            raise ConfigError(field, dict(value), "a sigmoid schedule's steepness 'b' is a number > 0")
        return cls(float(value["from"]), float(value["to"]), shape, at, b)

    @classmethod
    def _piecewise(cls, field: str, value: Mapping[str, Any]) -> "ParamSchedule":
        """The piecewise schedule of the mapping `value` (shape piecewise), checked."""
        shown = dict(value)
        wrong = [k for k in ("from", "to", "b") if k in value]
        if wrong:
            raise ConfigError(field, shown, f"{wrong[0]!r} is not for shape piecewise: {PIECEWISE_SYNTAX}")
        if "values" not in value:
            raise ConfigError(field, shown, f"a piecewise schedule needs 'values': {PIECEWISE_SYNTAX}")
        values, at = value["values"], value.get("at", [])
        for key, seq in (("values", values), ("at", at)):
            if not isinstance(seq, (list, tuple)) or not all(_finite(x) for x in seq):
                raise ConfigError(field, shown, f"a piecewise schedule's {key!r} is a list of finite numbers")
        if len(values) != len(at) + 1:
            raise ConfigError(field, shown, f"a piecewise schedule has one value more than breakpoints 'at', not "
                              f"{len(values)} values and {len(at)} breakpoints: {PIECEWISE_SYNTAX}")
        if not all(0 <= x <= 1 for x in at) or any(a >= b for a, b in zip(at, at[1:])):
            raise ConfigError(field, shown, "a piecewise schedule's breakpoints 'at' rise strictly within [0, 1]")
        values, at = tuple(map(float, values)), tuple(map(float, at))
        return cls(values[0], values[-1], "piecewise", values=values, breakpoints=at)


def is_schedule(value: object) -> bool:
    """Whether `value` is written as a schedule (a mapping, a string or a ParamSchedule), not as a plain value.
    Strings count only where a number is expected: the caller knows."""
    return isinstance(value, (Mapping, str, ParamSchedule))


def policy(history: Sequence[Mapping[str, float]], names: Sequence[str], total_steps: int) -> dict[str, float | str]:
    """The schedule of each of `names` that a run followed, from its evaluations' metrics `history` (each with "step",
    the step count at that evaluation, and the values in force over the steps since the previous evaluation, as the
    Trainer reports them): a float where it never changed, else the compact piecewise form, history[i][name] for the
    steps in [history[i-1]["step"], history[i]["step"]), a breakpoint at history[i-1]["step"] / total_steps where it
    changes. Under Population Based Training, where a trial's values change between evaluations and its state is
    copied from another's, a run with this schedule from step 0 retraces the trial.

    >>> policy([{"step": 10, "psi": 0.2, "rho": 4}, {"step": 20, "psi": 0.5, "rho": 4}], ["psi", "rho"], 40)
    {'psi': 'piecewise:0.2:0.25:0.5', 'rho': 4.0}
    """
    if not history:
        raise ValueError("policy: the history has no evaluation")
    steps = [m["step"] for m in history]
    if not (total_steps > 0 and steps[0] > 0 and all(a < b for a, b in zip(steps, steps[1:]))
            and steps[-1] <= total_steps):
        raise ValueError(f"policy: the evaluations' steps {steps} do not rise strictly within (0, {total_steps}]")
    out: dict[str, float | str] = {}
    for name in names:
        values, at = [float(history[0][name])], []
        for before, now in zip(history, history[1:]):
            if float(now[name]) != values[-1]:
                values.append(float(now[name]))
                at.append(before["step"] / total_steps)
        out[name] = values[0] if len(values) == 1 else str(
            ParamSchedule.parse(name, {"shape": "piecewise", "values": values, "at": at}))
    return out


def _from_text(field: str, text: str) -> dict[str, Any]:
    parts = text.strip().split(":")
    if parts[0].strip() == "piecewise":
        if len(parts) % 2:
            raise ConfigError(field, text, f"{PIECEWISE_SYNTAX}; values and breakpoints alternate, an odd count of "
                                           "numbers")
        numbers = [_number(field, text, "breakpoint" if i % 2 else "value", part) for i, part in enumerate(parts[1:])]
        return {"shape": "piecewise", "values": numbers[0::2], "at": numbers[1::2]}
    names = ("shape", "from", "to", "at", "b")
    if not 3 <= len(parts) <= 5:
        raise ConfigError(field, text, SYNTAX)
    out: dict[str, Any] = {"shape": parts[0].strip()}
    for name, part in zip(names[1:], parts[1:]):
        out[name] = _number(field, text, name, part)
    return out


def _number(field: str, text: str, name: str, part: str) -> float:
    """The number `part` of the compact form `text`; a ConfigError that names it as `name` where it is none."""
    try:
        return float(part)
    except ValueError:
        raise ConfigError(field, text, f"{SYNTAX}; {name} {part!r} is not a number") from None


def _text(x: float) -> str:
    """x as short as it reads back exactly: 0.5, 16, 0.123456789."""
    short = f"{x:g}"
    return short if float(short) == x else repr(x)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
