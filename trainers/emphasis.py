"""Emphasis functions w(p): how much weight an example gets as a function of p_i (seed 002 §3)."""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from trainers.errors import ConfigError
from trainers.methods import ALPHA, ETA, LAM, PSI


@dataclass(frozen=True)
class Emphasis:
    """A weighting w(p) on p in [0, 1] and its emphasis mode ψ = argmax_p w(p): nan where that is not one point (w flat,
    or largest at both p = 0 and p = 1).

    `weight(p, r)` takes r = 1 − p too, so callers that know 1 − p more exactly than float32's 1 − p can
    pass it; calling the emphasis with p alone uses r = 1 − p. Weights are float32 (float64 for float64 p).
    """

    name: str
    weight: Callable[[Tensor, Tensor], Tensor]
    mode: float

    def __call__(self, p: Tensor, one_minus_p: Tensor | None = None) -> Tensor:
        p = at_least_float32(p)
        return self.weight(p, 1 - p if one_minus_p is None else at_least_float32(one_minus_p))


def at_least_float32(t: Tensor) -> Tensor:
    """t in float32, or in float64 where it already is."""
    return t if t.dtype == torch.float64 else t.float()


def emphasis_variance(w: Tensor) -> tuple[Tensor, Tensor]:
    """Seed 002's emphasis variance σ = E((w_i − E w_i)²) of a batch's weights (Definition 2), and the same scaled to
    weights of mean 1, Var(w)/E(w)², which ranks settings differently."""
    var = w.var(unbiased=False)
    return var, var / w.mean().square().clamp_min(torch.finfo(w.dtype).tiny)


def dm_weight(p: Tensor, lam: float, beta: float) -> Tensor:
    """Derivative manipulation's weight exp(β·p^λ·(1−p)), computed in float32."""
    return make_emphasis("dm", lam=lam, beta=beta)(p)


def _dm(lam: float, beta: float) -> Emphasis:
    """exp(β·p^λ·(1 − p)): mode λ/(λ+1) for β > 0. For β < 0 the weight is largest at the ends: at 1 for λ = 0, at
    both 0 and 1 (w = 1 there) for λ > 0, so no mode (nan)."""
    LAM.check("lam", lam)
    mode = lam / (lam + 1) if beta > 0 else (1.0 if beta < 0 and lam == 0 else math.nan)
    return Emphasis("dm", lambda p, r: torch.exp(beta * p.pow(lam) * r), mode)


def _normal(psi: float, beta: float) -> Emphasis:
    """exp(−β·p(p − 2ψ)) = exp(−β((p − ψ)² − ψ²)): mode min(ψ, 1) for β > 0; for β < 0 the end farther from ψ, and no
    mode (nan) at ψ = ½, where w(0) = w(1) = 1."""
    PSI.check("psi", psi)
    if beta > 0:
        mode = min(psi, 1.0)
    else:
        mode = math.nan if beta == 0 or psi == 0.5 else float(psi < 0.5)
    return Emphasis("normal", lambda p, r: torch.exp(-beta * p * (p - 2 * psi)), mode)


def _exponential(beta: float) -> Emphasis:
    mode = 0.0 if beta > 0 else (1.0 if beta < 0 else math.nan)
    return Emphasis("exponential", lambda p, r: torch.exp(beta * r), mode)


def _beta(alpha: float, eta: float) -> Emphasis:
    ALPHA.check("alpha", alpha)
    ETA.check("eta", eta)
    if alpha > 1 and eta > 1:
        mode = (alpha - 1) / (alpha + eta - 2)
    elif alpha == eta or (alpha < 1 and eta < 1):  # flat (α = η = 1), or infinite at both ends
        mode = math.nan
    else:  # the end with the smaller exponent: w is monotone, or infinite there only
        mode = float(alpha > eta)
    return Emphasis("beta", lambda p, r: p.pow(alpha - 1) * r.pow(eta - 1), mode)


def _gce(q: float) -> Emphasis:
    if not 0 <= q <= 1:
        raise ConfigError("q", q, "q in [0, 1]")
    return Emphasis("gce", lambda p, r: 2 * p.pow(q) * r, q / (q + 1))


_EMPHASES: dict[str, Callable[..., Emphasis]] = {
    "dm": _dm,
    "normal": _normal,
    "exponential": _exponential,
    "beta": _beta,
    "cce": lambda: Emphasis("cce", lambda p, r: 2 * r, 0.0),
    # 2p(1 − p): the gradient L1 norm of seed 002's MAE 1 − p; seed 000's 2(1 − p) (`mae` with scale 2) has twice it
    "mae": lambda: Emphasis("mae", lambda p, r: 2 * p * r, 0.5),
    "mse": lambda: Emphasis("mse", lambda p, r: 4 * p * r**2, 1 / 3),
    "gce": _gce,
}


def make_emphasis(name: str, **params: float) -> Emphasis:
    """The emphasis function `name` (dm, normal, exponential, beta, cce, mae, mse, gce) with its parameters."""
    if name not in _EMPHASES:
        raise ConfigError("emphasis", name, "one of: " + ", ".join(list_emphases()))
    try:
        return _EMPHASES[name](**params)
    except TypeError:
        allowed = ", ".join(inspect.signature(_EMPHASES[name]).parameters) or "none"
        raise ConfigError(f"{name} parameters", sorted(params), f"its parameters: {allowed}") from None


def list_emphases() -> list[str]:
    """Names of the emphasis functions."""
    return sorted(_EMPHASES)

