"""How a study chooses a setting and writes one: the tie rule and the number format shared by the driver, the console
and the reports (the standard library only: no torch, Ray or MLflow).

The driver ranks Ray's results with `rank`; a report ranks the runs it reads back from MLflow with the same function,
so both name the same setting. A setting's score is the mean of its runs' (repeated seeds') validation accuracies;
means equal to TIE_DIGITS decimals tie, and tied settings go by their parameter values (`setting_key`): the smallest
value of the first parameter in PARAMETER_ORDER (λ for DM), then of the next. Values, not time or trial ids, break ties
because both sides see the same values: Ray's trial ids of an Optuna search are random, a grid cell repeated over
seeds has no single start time, and the order in which trials start (and their MLflow runs are made) depends on
concurrency, retries and resumes, so a rerun or a report could otherwise name another setting than the one retrained.

    >>> best = rank([({"beta": 8.0, "lam": 1.0}, 0.9338), ({"lam": 0.5, "beta": 16.0}, 0.9338)])[0]
    >>> fmt_setting(best.setting), best.score
    ('lam=0.5, beta=16', 0.9338)
"""

from __future__ import annotations

import math
import numbers
import statistics
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

TIE_DIGITS = 9  # far finer than one example of any validation set (1/287 ≈ 0.0035), coarser than float rounding
# Each method's searched parameters in its own order (search_spaces' spaces: λ before β, ψ before ρ, ...), then the
# grids' switches (IEG's components, seed 003 Table 7); the training settings come last (TRAINING_ORDER).
PARAMETER_ORDER = ("lam", "psi", "alpha", "a", "p", "beta", "rho", "eta", "q", "epsilon", "k", "meta_lr",
                   "probe_per_class", "uc", "mc", "aa", "relabel")
TRAINING_ORDER = ("lr", "weight_decay")
RULE = (f"settings whose mean validation accuracies agree to {TIE_DIGITS} decimals tie, and of tied settings the one "
        "with the smallest parameter values wins, compared in a fixed order (λ, then β for DM)")


@dataclass(frozen=True)
class Ranked:
    """A setting, the mean of its runs' scores and how many runs it has."""

    setting: dict[str, Any]
    score: float
    runs: int


def rank(scored: Iterable[tuple[Mapping[str, Any], float]]) -> list[Ranked]:
    """The settings of (setting, score) pairs (one per run), best mean score first, ties by `setting_key`; NaN last."""
    groups: dict[tuple, tuple[dict[str, Any], list[float]]] = {}
    for setting, score in scored:
        groups.setdefault(setting_key(setting), (dict(setting), []))[1].append(float(score))
    ranked = [Ranked(setting, statistics.mean(scores), len(scores)) for setting, scores in groups.values()]
    return sorted(ranked, key=lambda r: order_key(r.setting, r.score))


def tied(ranking: list[Ranked]) -> list[Ranked]:
    """The settings of `ranking` (from `rank`) that tie with its first: the chosen one first."""
    return [r for r in ranking if _rounded(r.score) == _rounded(ranking[0].score)]


def order_key(setting: Mapping[str, Any], score: float) -> tuple:
    """Sorts (setting, score) best first: the score to TIE_DIGITS decimals (NaN last), then `setting_key`."""
    return (-_rounded(score), setting_key(setting))


def setting_key(setting: Mapping[str, Any]) -> tuple:
    """The tie-break key of a setting: its values in `ordered` order, each as a number where it is one (a value read
    back from MLflow, "0.5" or "True", compares as the driver's 0.5 or True), missing values last."""
    return tuple((name, _value_key(value)) for name, value in ordered(setting))


def ordered(setting: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The (name, value) pairs of `setting` in the fixed order: PARAMETER_ORDER, other names alphabetically, then
    TRAINING_ORDER."""
    return sorted(setting.items(), key=lambda item: name_key(item[0]))


def name_key(name: str) -> tuple:
    """Where a parameter name goes in the fixed order (`ordered`)."""
    if name in PARAMETER_ORDER:
        return (0, PARAMETER_ORDER.index(name), name)
    return (2, TRAINING_ORDER.index(name), name) if name in TRAINING_ORDER else (1, 0, name)


def fmt_number(value: Any) -> str:
    """A value as the console and the reports write it: a number to 4 significant digits ("0.2512", "16", "0.0002288"),
    a schedule's compact text with its numbers so ("piecewise:0.4018:0.2:0.178"), anything else as str."""
    if isinstance(value, str) and ":" in value:
        shape, *parts = value.split(":")
        return ":".join([shape, *(_short(part) for part in parts)])
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    return str(value) if isinstance(value, numbers.Integral) else f"{float(value):.4g}"


def _short(text: str) -> str:
    try:
        return f"{float(text):.4g}"
    except ValueError:
        return text


def fmt_setting(setting: Mapping[str, Any]) -> str:
    """A setting as "lam=0.2512, beta=0.9661": `fmt_number` values in the fixed order (`ordered`); "" for none."""
    return ", ".join(f"{name}={fmt_number(value)}" for name, value in ordered(setting))


def fmt_mean_std(values: Iterable[Any], *, digits: int = 4, scale: float = 1.0) -> str:
    """"mean ± std (n=k)" (sample std) of the finite `values` times `scale`, to `digits` decimals; one value as itself,
    "0.9123 (n=1)" (no spread to show); none "—"."""
    finite = [float(v) * scale for v in values if isinstance(v, numbers.Real) and math.isfinite(v)]
    if not finite:
        return "—"
    if len(finite) == 1:
        return f"{finite[0]:.{digits}f} (n=1)"
    return f"{statistics.mean(finite):.{digits}f} ± {statistics.stdev(finite):.{digits}f} (n={len(finite)})"


def _rounded(score: float) -> float:
    return round(score, TIE_DIGITS) if math.isfinite(score) else -math.inf


def _value_key(value: Any) -> tuple:
    if value is None or (isinstance(value, numbers.Real) and math.isnan(value)):
        return (2, 0.0, "")
    if isinstance(value, str) and value in ("True", "False"):
        return (0, float(value == "True"), "")
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))
