"""The weighting methods (losses) by name and their hyperparameters: each one's default and the values it allows,
checked without torch. trainers.losses builds them; the CLIs and the config validation read them here.

    >>> loss_params("gce")
    {'q': 0.7, 'truncate': 0.0}
    >>> check_loss_params("gce", {"q": 0.5})
    {'q': 0.5, 'truncate': 0.0}
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, get_args

from trainers.errors import ConfigError
from trainers.registry import Registry

if TYPE_CHECKING:
    from trainers.losses import LossBuilder

Normalize = Literal["sum", "mean", "none"]
Layers = Literal["last", "all"]  # the layers a per-example gradient (or a virtual step) covers
AUTHORS_EPS = 1e-6  # the guard on 2(1 − p_i): the DM family's default `eps`


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Allowed:
    """The values a setting allows: those where `ok` holds (False where it cannot be asked), said in `words`."""

    words: str
    ok: Callable[[Any], bool]

    def check(self, name: str, value: object) -> None:
        """A ConfigError on `name` unless `value` is allowed."""
        try:
            fine = bool(self.ok(value))
        except (TypeError, ValueError):
            fine = False
        if not fine:
            raise ConfigError(name, value, self.words)


def one_of(choices: tuple[str, ...]) -> Allowed:
    """One of `choices`."""
    return Allowed("one of: " + ", ".join(choices), lambda v: isinstance(v, str) and v in choices)


FINITE = Allowed("a finite number", _finite)
FLAG = Allowed("true or false", lambda v: isinstance(v, bool))
POSITIVE = Allowed("a number > 0", lambda v: v > 0)
UNIT = Allowed("a number in [0, 1]", lambda v: 0 <= v <= 1)
NORMALIZE = one_of(get_args(Normalize))
LAYERS = one_of(get_args(Layers))
EPS = Allowed(f"a number ≥ 0 (0: the exact gradient; the authors' code: {AUTHORS_EPS:g})", lambda v: v >= 0)
LAM = Allowed("λ ≥ 0", lambda v: v >= 0)
PSI = Allowed("ψ ≥ 0", lambda v: v >= 0)
ALPHA = Allowed("α ≥ 0", lambda v: v >= 0)
ETA = Allowed("η ≥ 0", lambda v: v >= 0)
Q = Allowed("a number in (0, 1]", lambda v: 0 < v <= 1)
K_NEIGHBOURS = Allowed("an integer ≥ 1", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1)
DROP = Allowed("a number in [0, 1): the share of each batch given weight 0", lambda v: 0 <= v < 1)
META_LR = Allowed("a number > 0: the virtual step's size", lambda v: v > 0)
LOSS_WEIGHT = Allowed("a number ≥ 0: a loss weight", lambda v: v >= 0)


@dataclass(frozen=True)
class Hyperparameter:
    """A method's hyperparameter: its default, and the values it allows beyond its default's kind (a float default:
    any finite number)."""

    default: Any
    allowed: Allowed | None = None


@dataclass(frozen=True)
class MethodSpec:
    """A method's hyperparameters in their order; `probe`: it learns from a trusted probe set (the trainer holds one
    out for it)."""

    params: dict[str, Hyperparameter] = field(default_factory=dict)
    probe: bool = False


def _spec(probe: bool = False, **params: Hyperparameter) -> MethodSpec:
    return MethodSpec(params, probe)


_H = Hyperparameter
_DM_FAMILY = {"normalize": _H("sum", NORMALIZE), "eps": _H(AUTHORS_EPS, EPS)}
_IEG_FLAGS = {name: _H(True, FLAG) for name in ("uc", "mc", "aa", "relabel")}
# The built-in methods, which trainers.losses registers (its builders take these keywords, in this order).
BUILT_IN: dict[str, MethodSpec] = {
    "dm": _spec(lam=_H(0.5, LAM), beta=_H(8.0), **_DM_FAMILY),  # seed 000 Table 6
    "dm-normal": _spec(psi=_H(0.5, PSI), beta=_H(4.0), **_DM_FAMILY),
    "dm-exp": _spec(beta=_H(1.0), **_DM_FAMILY),
    "dm-beta": _spec(alpha=_H(2.0, ALPHA), eta=_H(2.0, ETA), **_DM_FAMILY),
    "cce": _spec(),
    "mae": _spec(scale=_H(1.0, Allowed("a number > 0 (1: seed 002's 1 − p; 2: seed 000's 2(1 − p))", lambda v: v > 0))),
    "mse": _spec(),
    "gce": _spec(q=_H(0.7, Q), truncate=_H(0.0, Allowed("a number in [0, 1) (0: no truncation; the GCE paper's k: 0.5)",
                                                        lambda v: 0 <= v < 1))),
    "cce-dn": _spec(),
    "mae-dn": _spec(),
    "mse-dn": _spec(),
    "gce-dn": _spec(q=_H(0.7, Q)),
    "ls": _spec(epsilon=_H(0.1, UNIT)),
    "boot-soft": _spec(beta=_H(0.95, UNIT)),
    "boot-hard": _spec(beta=_H(0.8, UNIT)),
    "sce": _spec(alpha=_H(0.1), beta=_H(1.0)),
    # a, k: seed 004 Table 1
    "gradsim": _spec(a=_H(4.0), k=_H(4, K_NEIGHBOURS), within_class=_H(False, FLAG), layers=_H("last", LAYERS),
                     drop=_H(0.0, DROP)),
    "gradsim-random": _spec(),
    "gradsim-oracle": _spec(),
    "l2r": _spec(True, meta_lr=_H(0.1, META_LR), layers=_H("all", LAYERS)),
    # the paper's coefficients (p = 5, k = 20, T = 0.5) and switches for seed 003 Table 7's components
    "ieg": _spec(True, meta_lr=_H(0.1, META_LR), p=_H(5.0, LOSS_WEIGHT), k=_H(20.0, LOSS_WEIGHT),
                 temperature=_H(0.5, POSITIVE), init_relabel=_H(0.9, UNIT), meta_momentum=_H(True, FLAG),
                 mixup_alpha=_H(0.5, POSITIVE), **_IEG_FLAGS, layers=_H("all", LAYERS)),
}
LOSSES: Registry[LossBuilder] = Registry("method", BUILT_IN, "trainers.losses")


def register_loss(name: str) -> Callable[[LossBuilder], LossBuilder]:
    """Register a loss builder (keyword-only hyperparameters with defaults) under `name`.

    The module it builds maps (logits, targets) to a scalar; one with `needs` also gets what those name, as keyword
    arguments (see trainers.WeightedCE). A trainers.reweight.ProbeMethod runs the model itself: (inputs, targets,
    **needs) → (the batch's logits, the loss).
    """
    return LOSSES.register(name)


def list_losses() -> list[str]:
    """Names of the registered losses (the trainers' methods)."""
    return LOSSES.names()


def method_spec(name: str) -> MethodSpec:
    """The hyperparameters of method `name`: a built-in's as declared here, another's from its builder's signature."""
    if name in BUILT_IN:
        return BUILT_IN[name]
    signature = inspect.signature(LOSSES[name])
    return MethodSpec({key: Hyperparameter(p.default) for key, p in signature.parameters.items()})


def loss_params(name: str) -> dict[str, object]:
    """The hyperparameters of loss `name` with their defaults."""
    return {key: h.default for key, h in method_spec(name).params.items()}


def checked_params(name: str, hyperparameters: Mapping[str, object]) -> dict[str, object]:
    """The defaults of method `name` updated by `hyperparameters`, each checked against its spec: an unknown name or a
    value not of a float default's kind is a ConfigError on "<name>.<key>", a value the spec refuses one on "<key>"."""
    params = method_spec(name).params
    for key, value in hyperparameters.items():
        if key not in params:
            raise ConfigError(f"{name}.{key}", value, f"parameters of {name}: {', '.join(params) or 'none'}")
        if isinstance(params[key].default, float):
            FINITE.check(f"{name}.{key}", value)
    for key, value in hyperparameters.items():
        if params[key].allowed is not None:
            params[key].allowed.check(key, value)
    defaults = {key: h.default for key, h in params.items() if h.default is not inspect.Parameter.empty}
    return {**defaults, **hyperparameters}


def check_loss_params(name: str, hyperparameters: Mapping[str, object]) -> dict[str, object]:
    """`checked_params`, and where `name` is no built-in method (one registered from Python, so torch is loaded) its
    builder run too, for its own checks: what `make_loss` accepts, found without building a built-in."""
    params = checked_params(name, hyperparameters)
    if name not in BUILT_IN:
        LOSSES[name](**params)
    return params


def learns_from_probe(name: str, hyperparameters: Mapping[str, object]) -> bool:
    """Whether method `name` learns from a trusted probe set (a built-in's spec says; another's module, by its
    `needs`)."""
    if name in BUILT_IN:
        return BUILT_IN[name].probe
    return "probe" in getattr(LOSSES[name](**checked_params(name, hyperparameters)), "needs", ())
