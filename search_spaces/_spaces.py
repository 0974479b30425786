"""Define-by-run Optuna spaces over each method's searched hyperparameters (and optionally lr, weight decay)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from search_spaces._reparam import Parametrization, check_parametrization, from_point
from trainers.errors import ConfigError
from trainers.methods import check_loss_params

if TYPE_CHECKING:  # making (and checking) a space needs no Optuna: only its trials do
    from optuna.trial import BaseTrial

Space = Callable[["BaseTrial"], "dict[str, Any] | None"]


@dataclass(frozen=True)
class _Range:
    low: float
    high: float
    log: bool = False
    integer: bool = False  # whole numbers only (Optuna's suggest_int)
    to_batch: bool = False  # the high end is the batch size where make_space is told it
    train: bool = False  # a TrainConfig field (the probe set's size), not a method hyperparameter


# β up to 12: measured on digits' MLP (lr 0.01, 40% noise), exact DM with λ = 1 is unstable across seeds at β = 12 and
# collapses at 16 (DESIGN §2). The papers' larger β (Table 3 goes to 24) stay reachable through `ranges` and the grids.
_BETA = _Range(0.5, 12.0, log=True)
_Q = _Range(0.1, 1.0)
_BOOT = _Range(0.5, 1.0)
# Gradient similarity (seed 004): k from 2 to the batch size B (k ≥ B − 1 compares with every other example; 128, the
# paper's batch, where B is not given), on a log scale like the paper's ablation k ∈ {2, 4, …, 128}; a around the
# paper's 4 (its Fig. 3 ranks best at 8).
_GRADSIM = {"a": _Range(1.0, 16.0, log=True), "k": _Range(2, 128, log=True, integer=True, to_batch=True)}
# The methods that learn from a trusted probe set (seed 003): the virtual step's size around the authors' fixed 0.1; the
# probe's examples per class from 1 (the paper's smallest, CIFAR-100 Table 2) past its 10; IEG's loss weights p and k
# around the paper's 5 and 20 (4 and 8 on WebVision; its Fig. A2 compares k = 1 with 20).
_META_LR = _Range(0.01, 1.0, log=True)
_PROBE = _Range(1, 20, log=True, integer=True, train=True)
_PROBE_METHODS = {
    "l2r": {"meta_lr": _META_LR, "probe_per_class": _PROBE},
    "ieg": {"p": _Range(0.5, 20.0, log=True), "k": _Range(1.0, 50.0, log=True), "meta_lr": _META_LR,
            "probe_per_class": _PROBE},
}
# Searched hyperparameters per method; the others (normalize, eps) keep the trainer's defaults.
_METHODS: dict[str, dict[str, _Range]] = {
    "dm": {"lam": _Range(0.0, 2.0), "beta": _BETA},
    "dm-normal": {"psi": _Range(0.0, 1.0), "beta": _BETA},
    "dm-exp": {"beta": _BETA},
    "dm-beta": {"alpha": _Range(1.0, 4.0), "eta": _Range(1.0, 4.0)},
    "gce": {"q": _Q},
    "gce-dn": {"q": _Q},
    "ls": {"epsilon": _Range(0.0, 0.5)},
    "boot-soft": {"beta": _BOOT},
    "boot-hard": {"beta": _BOOT},
    "sce": {"alpha": _Range(0.01, 1.0, log=True), "beta": _Range(0.1, 2.0)},
    "gradsim": _GRADSIM,
    **_PROBE_METHODS,
    **{name: {} for name in ("cce", "mae", "mse", "cce-dn", "mae-dn", "mse-dn", "gradsim-random", "gradsim-oracle")},
}
# ψ up to ⅔ (λ = 2, the papers' largest); ρ over the papers' best settings' 0.5–5 and beyond.
_PSI_RHO = {"psi": _Range(0.0, 2 / 3), "rho": _Range(0.5, 8.0, log=True)}
# psi_schedule: ψ moves linearly from psi_from to psi_to over training, each over ψ's range; ρ fixed throughout (fix it
# for the whole search with ranges rho: [v, v])
_PSI_SCHEDULE = {"psi_from": _PSI_RHO["psi"], "psi_to": _PSI_RHO["psi"], "rho": _PSI_RHO["rho"]}
_TRAINING = {"lr": _Range(1e-3, 0.1, log=True), "weight_decay": _Range(1e-5, 1e-3, log=True)}


@dataclass(frozen=True)
class _Space:
    """Suggests `ranges` in order and returns the trainer setting they make (None when there is nothing)."""

    method: str
    parametrization: Parametrization
    ranges: tuple[tuple[str, _Range], ...]

    def __call__(self, trial: BaseTrial) -> dict[str, Any] | None:
        point = {name: trial.suggest_int(name, r.low, r.high, log=r.log) if r.integer
                 else trial.suggest_float(name, r.low, r.high, log=r.log) for name, r in self.ranges}
        return from_point(point, self.parametrization) or None


def space_bounds(space: Space) -> dict[str, tuple[float, float, bool]]:
    """(low, high, log scale) of each range that `space` (from `make_space`) searches, by the space's own names.

    >>> space_bounds(make_space("dm", parametrization="psi_rho", ranges={"rho": (4.0, 4.0)}))
    {'psi': (0.0, 0.6666666666666666, False), 'rho': (4.0, 4.0, True)}
    """
    return {name: (r.low, r.high, r.log) for name, r in space.ranges}


def default_ranges(method: str, parametrization: Parametrization = "lam_beta", *,
                   batch_size: int | None = None) -> dict[str, tuple[float, float]]:
    """The default (low, high) of each hyperparameter that `make_space` searches for `method`.

    >>> default_ranges("dm", "psi_rho")
    {'psi': (0.0, 0.6666666666666666), 'rho': (0.5, 8.0)}
    >>> default_ranges("gradsim", batch_size=64)
    {'a': (1.0, 16.0), 'k': (2, 64)}
    """
    return {name: (r.low, r.high) for name, r in _method_ranges(method, parametrization, batch_size).items()}


def make_space(
    method: str,
    *,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    parametrization: Parametrization = "lam_beta",
    tune_lr: bool = False,
    tune_weight_decay: bool = False,
    batch_size: int | None = None,
) -> Space:
    """A define-by-run space for OptunaSearch that returns the method's hyperparameters by their trainer names.

    `ranges` overrides default (low, high) pairs by the space's own names (psi, rho for "psi_rho"; lr and
    weight_decay when tuned); an integer parameter's (gradsim's k, probe_per_class) must be whole numbers. The probe
    methods' spaces also search the probe set's size, a training setting (TrainConfig.probe_per_class).
    `batch_size` is the trials' batch size, the high end of gradsim's k (None: 128). The space is picklable, as
    OptunaSearch's checkpoints need.

    >>> space = make_space("dm", parametrization="psi_rho")
    >>> space(optuna.trial.FixedTrial({"psi": 0.5, "rho": 4.0}))
    {'lam': 1.0, 'beta': 16.0}
    >>> space = make_space("dm", parametrization="psi_schedule", ranges={"rho": (4.0, 4.0)})
    >>> space(optuna.trial.FixedTrial({"psi_from": 0.5, "psi_to": 0.2, "rho": 4.0}))
    {'rho': 4.0, 'psi': 'linear:0.5:0.2'}
    """
    searched = _method_ranges(method, parametrization, batch_size)
    if tune_lr:
        searched["lr"] = _TRAINING["lr"]
    if tune_weight_decay:
        searched["weight_decay"] = _TRAINING["weight_decay"]
    for name, value in (ranges or {}).items():
        if name not in searched:
            hint = f"; {name} only with tune_{name}" if name in _TRAINING else ""
            raise ConfigError(f"ranges.{name}", value, f"a parameter that {method} searches ({parametrization}): "
                              f"{', '.join(searched) or 'none'}{hint}")
        searched[name] = _override(name, value, searched[name])
    _check_accepted(method, parametrization, {n: r for n, r in searched.items() if n not in _TRAINING and not r.train})
    return _Space(method, parametrization, tuple(searched.items()))


def _method_ranges(method: str, parametrization: str, batch_size: int | None = None) -> dict[str, _Range]:
    if method not in _METHODS:
        raise ConfigError("method", method, "one of: " + ", ".join(sorted(_METHODS)))
    check_parametrization(parametrization)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError("batch_size", batch_size, "an integer ≥ 1")
    if parametrization in ("psi_rho", "psi_schedule"):
        if method != "dm":
            raise ConfigError("parametrization", parametrization,
                              f"lam_beta for {method}; {parametrization} is for dm only")
        return dict(_PSI_RHO if parametrization == "psi_rho" else _PSI_SCHEDULE)
    return {name: dataclasses.replace(r, high=max(r.low, batch_size)) if r.to_batch and batch_size is not None else r
            for name, r in _METHODS[method].items()}


def _override(name: str, value: Any, default: _Range) -> _Range:
    field = f"ranges.{name}"
    try:
        if isinstance(value, str):
            raise TypeError(value)
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(field, value, "a pair [low, high] of numbers") from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ConfigError(field, value, "finite numbers with low ≤ high")
    if default.log and low <= 0:
        raise ConfigError(field, value, "0 < low ≤ high (searched on a log scale)")
    if default.integer:
        if not (low.is_integer() and high.is_integer()):
            raise ConfigError(field, value, "whole numbers (an integer parameter)")
        low, high = int(low), int(high)
    return dataclasses.replace(default, low=low, high=high, to_batch=False)


def _check_accepted(method: str, parametrization: Parametrization, searched: dict[str, _Range]) -> None:
    """Each range's ends (the other parameters at their lows) must be settings the trainer accepts."""
    for name, r in searched.items():
        for end in (r.low, r.high):
            point = {n: end if n == name else other.low for n, other in searched.items()}
            try:
                check_loss_params(method, from_point(point, parametrization))
            except ConfigError as error:
                raise ConfigError(f"ranges.{name}", (r.low, r.high), error.allowed) from None
