"""DM's (λ, β) and the (ψ, ρ) reparametrisation: emphasis mode ψ and log max/min weight ratio ρ (DESIGN §2)."""

from __future__ import annotations

from typing import Literal, Mapping, get_args

from trainers.errors import ConfigError

Parametrization = Literal["lam_beta", "psi_rho"]
PARAMETRIZATIONS: tuple[str, ...] = get_args(Parametrization)


def to_psi_rho(lam: float, beta: float) -> tuple[float, float]:
    """(ψ, ρ) of DM's weight exp(β·p^λ·(1−p)): ψ = λ/(λ+1), ρ = β·ψ^λ·(1−ψ) (0^0 = 1).

    >>> to_psi_rho(1.0, 16.0)
    (0.5, 4.0)
    """
    if not lam >= 0:
        raise ConfigError("lam", lam, "a number ≥ 0")
    psi = lam / (lam + 1)
    return psi, beta * psi**lam * (1 - psi)


def from_psi_rho(psi: float, rho: float) -> tuple[float, float]:
    """(λ, β) with emphasis mode `psi` in [0, 1) and log weight ratio `rho`; the inverse of `to_psi_rho`.

    >>> from_psi_rho(0.5, 4.0)
    (1.0, 16.0)
    """
    if not 0 <= psi < 1:
        raise ConfigError("psi", psi, "a number in [0, 1)")
    lam = psi / (1 - psi)
    return lam, rho / (psi**lam * (1 - psi))


def check_parametrization(parametrization: str) -> None:
    """Raise a ConfigError unless `parametrization` is one of PARAMETRIZATIONS."""
    if parametrization not in PARAMETRIZATIONS:
        raise ConfigError("parametrization", parametrization, "one of: " + ", ".join(PARAMETRIZATIONS))


def as_point(params: Mapping[str, float], parametrization: Parametrization) -> dict[str, float]:
    """A trainer setting as a point in the space's own Optuna names (for `points_to_evaluate`); other keys unchanged.

    >>> as_point({"lam": 1.0, "beta": 16.0, "lr": 0.01}, "psi_rho")
    {'lr': 0.01, 'psi': 0.5, 'rho': 4.0}
    """
    check_parametrization(parametrization)
    point = dict(params)
    if parametrization == "psi_rho":
        if not {"lam", "beta"} <= point.keys():
            raise ConfigError("point", dict(params), "a setting with lam and beta")
        point["psi"], point["rho"] = to_psi_rho(point.pop("lam"), point.pop("beta"))
    return point


def from_point(point: Mapping[str, float], parametrization: Parametrization) -> dict[str, float]:
    """The trainer setting at a point of the space: the inverse of `as_point`."""
    check_parametrization(parametrization)
    setting = dict(point)
    if parametrization == "psi_rho":
        setting["lam"], setting["beta"] = from_psi_rho(setting.pop("psi"), setting.pop("rho"))
    return setting
