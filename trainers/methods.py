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
from trainers.param_schedules import ParamSchedule, is_schedule
from trainers.registry import Registry
from trainers.reparam import from_psi_rho, to_psi_rho

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
MODE = Allowed("ψ in [0, 1): DM's emphasis mode λ/(λ+1)", lambda v: 0 <= v < 1)


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


@dataclass(frozen=True)
class Reparametrisation:
    """Names a method takes, all together, in place of some of its own: `to_own` maps their values to those
    (`replaces`, in order), `from_own` back; `allowed` checks each."""

    names: tuple[str, ...]
    replaces: tuple[str, ...]
    to_own: Callable[..., tuple[float, ...]]
    from_own: Callable[..., tuple[float, ...]]
    allowed: dict[str, Allowed]


# DM's emphasis mode ψ and log weight ratio ρ in place of λ and β (DESIGN §2): a schedule of ψ with ρ fixed moves the
# emphasis mode during training while keeping the spread of the weights.
REPARAMETRISATIONS: dict[str, Reparametrisation] = {
    "dm": Reparametrisation(("psi", "rho"), ("lam", "beta"), from_psi_rho, to_psi_rho,
                            {"psi": MODE, "rho": FINITE}),
}


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


def accepted_names(name: str) -> list[str]:
    """The names method `name`'s settings may use: its hyperparameters, then its reparametrisation's (DM: psi, rho)."""
    r = REPARAMETRISATIONS.get(name)
    return [*method_spec(name).params, *(r.names if r else ())]


def checked_params(name: str, hyperparameters: Mapping[str, object]) -> dict[str, object]:
    """The defaults of method `name` updated by `hyperparameters`, each checked against its spec: an unknown name or a
    value not of a float default's kind is a ConfigError on "<name>.<key>", a value the spec refuses one on "<key>".

    A numeric (float-default) hyperparameter may be a schedule over training progress (trainers.param_schedules),
    returned as a ParamSchedule, both of whose ends must be allowed. A reparametrisation's names (DM's psi and rho)
    come all together, in place of the names they replace (lam and beta), which then get no defaults.
    """
    params = method_spec(name).params
    r = REPARAMETRISATIONS.get(name)
    numeric = {key for key, h in params.items() if isinstance(h.default, float)} | set(r.names if r else ())
    for key, value in hyperparameters.items():
        if key not in params and not (r and key in r.names):
            raise ConfigError(f"{name}.{key}", value, f"parameters of {name}: {', '.join(accepted_names(name))}")
    if r and set(r.names) & hyperparameters.keys():
        both = " and ".join(r.names)
        for key in (*r.names, *r.replaces):
            if (key in r.names) != (key in hyperparameters):
                raise ConfigError(f"{name}.{key}", hyperparameters.get(key), f"{both} together, in place of "
                                  f"{' and '.join(r.replaces)}: set {both} or {' and '.join(r.replaces)}")
    checked: dict[str, object] = {}
    for key, value in hyperparameters.items():
        if key in numeric and not isinstance(value, (int, float)) and is_schedule(value):
            value = ParamSchedule.parse(f"{name}.{key}", value)
        elif is_schedule(value) and not isinstance(value, str):
            raise ConfigError(f"{name}.{key}", value, "a plain value: only numeric hyperparameters take a schedule")
        checked[key] = value
    for key, value in checked.items():
        ends = value.ends() if isinstance(value, ParamSchedule) else (value,)
        allowed = r.allowed.get(key) if r and key in r.names else params[key].allowed
        for end in ends:
            if key in numeric:
                FINITE.check(f"{name}.{key}", end)
            if allowed is not None:
                allowed.check(key, end)
    replaced = r.replaces if r and r.names[0] in checked else ()
    defaults = {key: h.default for key, h in params.items()
                if h.default is not inspect.Parameter.empty and key not in replaced}
    return {**defaults, **checked}


def params_at(name: str, hyperparameters: Mapping[str, object], t: float) -> dict[str, object]:
    """The builder's keywords of method `name` at training progress `t`: `checked_params` (defaults included), each
    schedule's value at `t`, a reparametrisation's names turned into the method's own (DM's psi, rho into lam, beta).

    >>> params_at("dm", {"psi": "linear:0.5:0", "rho": 4.0}, 0.0)["lam"]
    1.0
    """
    params = checked_params(name, hyperparameters)
    values = {k: v.value(t) if isinstance(v, ParamSchedule) else v for k, v in params.items()}
    r = REPARAMETRISATIONS.get(name)
    if r and r.names[0] in values:
        values.update(zip(r.replaces, r.to_own(*(values.pop(n) for n in r.names))))
    return values


def in_force(name: str, hyperparameters: Mapping[str, object], t: float) -> dict[str, float]:
    """The numeric hyperparameters of method `name` in force at progress `t`, by name: each float-default one and a
    reparametrisation's names both ways (DM: lam, beta, eps, psi, rho), e.g. to log at each evaluation.

    >>> in_force("dm", {"lam": 1.0, "beta": 16.0}, 0.3)
    {'lam': 1.0, 'beta': 16.0, 'eps': 1e-06, 'psi': 0.5, 'rho': 4.0}
    """
    params = checked_params(name, hyperparameters)
    values = params_at(name, params, t)
    spec = method_spec(name).params
    out = {k: float(v) for k, v in values.items() if k in spec and isinstance(spec[k].default, float) and _finite(v)}
    r = REPARAMETRISATIONS.get(name)
    if r:
        given = r.names[0] in params
        mine = ([params[n].value(t) if isinstance(params[n], ParamSchedule) else params[n] for n in r.names] if given
                else r.from_own(*(values[n] for n in r.replaces)))
        out.update(zip(r.names, map(float, mine)))
    return out


def method_values(name: str, values: Mapping[str, object]) -> dict[str, object]:
    """The hyperparameters of method `name` among `values` (a trial's flat values): its own names, and its
    reparametrisation's (DM's psi, rho) only where none of the names they replace is there (a psi_rho search's trial
    holds the lam and beta it gives beside the psi and rho it drew: lam and beta count)."""
    r = REPARAMETRISATIONS.get(name)
    own = method_spec(name).params
    picked = {k: v for k, v in values.items() if k in own}
    if r and not set(r.replaces) & values.keys():
        picked |= {k: v for k, v in values.items() if k in r.names}
    return picked


def updated_params(name: str, params: Mapping[str, object], changes: Mapping[str, object]) -> dict[str, object]:
    """`params` updated by `changes`, where a change of either side of a reparametrisation (DM's lam, beta or psi,
    rho) drops the other side from `params`."""
    out = dict(params)
    r = REPARAMETRISATIONS.get(name)
    if r:
        for side, other in ((r.names, r.replaces), (r.replaces, r.names)):
            if set(side) & changes.keys():
                out = {k: v for k, v in out.items() if k not in other}
    return out | dict(changes)


def has_schedule(hyperparameters: Mapping[str, object]) -> bool:
    """Whether any of checked `hyperparameters` is a schedule."""
    return any(isinstance(v, ParamSchedule) for v in hyperparameters.values())


def canonical_params(name: str, hyperparameters: Mapping[str, object]) -> dict[str, object]:
    """`hyperparameters` checked (`check_loss_params`) with each schedule in its canonical mapping form (from, to,
    shape, ...; see ParamSchedule.to_dict), as configs keep and log them; other values as given."""
    checked = check_loss_params(name, hyperparameters)
    return {k: checked[k].to_dict() if isinstance(checked[k], ParamSchedule) else v
            for k, v in hyperparameters.items()}


def check_loss_params(name: str, hyperparameters: Mapping[str, object]) -> dict[str, object]:
    """`checked_params`, and where `name` is no built-in method (one registered from Python, so torch is loaded) its
    builder run too, for its own checks: what `make_loss` accepts, found without building a built-in."""
    params = checked_params(name, hyperparameters)
    if name not in BUILT_IN:
        LOSSES[name](**params_at(name, params, 0.0))
    return params


def learns_from_probe(name: str, hyperparameters: Mapping[str, object]) -> bool:
    """Whether method `name` learns from a trusted probe set (a built-in's spec says; another's module, by its
    `needs`)."""
    if name in BUILT_IN:
        return BUILT_IN[name].probe
    return "probe" in getattr(LOSSES[name](**params_at(name, hyperparameters, 0.0)), "needs", ())
