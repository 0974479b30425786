"""DM's (λ, β) and the (ψ, ρ) reparametrisation: emphasis mode ψ and log max/min weight ratio ρ (DESIGN §2); the
formulas are trainers.reparam's (the trainer converts a ψ schedule at each step).

Parametrizations: lam_beta searches λ, β; psi_rho searches ψ, ρ and gives the trainer λ, β; psi_schedule searches
the ends of a linear schedule of ψ over training (psi_from, psi_to) and ρ, and gives the trainer ψ as a schedule (its
compact string, trainers.param_schedules) and ρ.
"""

from __future__ import annotations

from typing import Literal, Mapping, get_args

from trainers.errors import ConfigError
from trainers.param_schedules import ParamSchedule
from trainers.reparam import from_psi_rho, to_psi_rho

Parametrization = Literal["lam_beta", "psi_rho", "psi_schedule"]
SCHEDULE_SHAPE = "linear"  # psi_schedule's shape
PARAMETRIZATIONS: tuple[str, ...] = get_args(Parametrization)


def check_parametrization(parametrization: str) -> None:
    """Raise a ConfigError unless `parametrization` is one of PARAMETRIZATIONS."""
    if parametrization not in PARAMETRIZATIONS:
        raise ConfigError("parametrization", parametrization, "one of: " + ", ".join(PARAMETRIZATIONS))


def as_point(params: Mapping[str, float], parametrization: Parametrization) -> dict[str, float]:
    """A trainer setting as a point in the space's own Optuna names (for `points_to_evaluate`); other keys unchanged.

    >>> as_point({"lam": 1.0, "beta": 16.0, "lr": 0.01}, "psi_rho")
    {'lr': 0.01, 'psi': 0.5, 'rho': 4.0}
    >>> as_point({"lam": 1.0, "beta": 16.0}, "psi_schedule")  # a fixed setting: a flat schedule
    {'psi_from': 0.5, 'psi_to': 0.5, 'rho': 4.0}
    >>> as_point({"psi": "linear:0.5:0.2", "rho": 4.0}, "psi_schedule")
    {'rho': 4.0, 'psi_from': 0.5, 'psi_to': 0.2}
    """
    check_parametrization(parametrization)
    point = dict(params)
    if parametrization == "psi_schedule" and "psi" in point and "rho" in point:
        schedule = ParamSchedule.parse("psi", point.pop("psi"))
        point["psi_from"], point["psi_to"] = schedule.start, schedule.end
    elif parametrization in ("psi_rho", "psi_schedule"):
        if not {"lam", "beta"} <= point.keys():
            raise ConfigError("point", dict(params), "a setting with lam and beta" +
                              (", or psi (a schedule) and rho" if parametrization == "psi_schedule" else ""))
        psi, rho = to_psi_rho(point.pop("lam"), point.pop("beta"))
        ends = {"psi": psi} if parametrization == "psi_rho" else {"psi_from": psi, "psi_to": psi}
        point |= {**ends, "rho": rho}
    return point


def from_point(point: Mapping[str, float], parametrization: Parametrization) -> dict[str, float]:
    """The trainer setting at a point of the space: the inverse of `as_point`. psi_schedule's ψ is a schedule in its
    compact string form (a plain value in a trial's config, which nests no mapping of its own).

    >>> from_point({"psi_from": 0.5, "psi_to": 0.2, "rho": 4.0}, "psi_schedule")
    {'rho': 4.0, 'psi': 'linear:0.5:0.2'}
    """
    check_parametrization(parametrization)
    setting = dict(point)
    if parametrization == "psi_rho":
        setting["lam"], setting["beta"] = from_psi_rho(setting.pop("psi"), setting.pop("rho"))
    elif parametrization == "psi_schedule":
        start, end = float(setting.pop("psi_from")), float(setting.pop("psi_to"))
        setting["psi"] = str(ParamSchedule(start, end, SCHEDULE_SHAPE))
    return setting
