"""(λ, β) ↔ (ψ, ρ): round trips, ρ and ψ checked against DM's weight itself, and points for warm starts."""

import math

import pytest
import torch

from search_spaces import as_point, from_psi_rho, to_psi_rho
from trainers import ConfigError, dm_weight

LAMS = [0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0]
BETAS = [-3.0, 0.0, 0.5, 2.0, 8.0, 24.0]


@pytest.mark.parametrize("lam", LAMS)
@pytest.mark.parametrize("beta", BETAS)
def test_lam_beta_round_trip(lam: float, beta: float) -> None:
    back = from_psi_rho(*to_psi_rho(lam, beta))
    assert back == pytest.approx((lam, beta), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("psi", [0.0, 0.05, 1 / 3, 0.5, 2 / 3, 0.9, 0.99])
@pytest.mark.parametrize("rho", [-1.0, 0.5, 2.0, 8.0])
def test_psi_rho_round_trip(psi: float, rho: float) -> None:
    assert to_psi_rho(*from_psi_rho(psi, rho)) == pytest.approx((psi, rho), rel=1e-9, abs=1e-12)


def test_known_values() -> None:
    assert to_psi_rho(0.0, 2.0) == (0.0, 2.0)  # 0^0 = 1: ρ = β at λ = 0
    assert to_psi_rho(1.0, 16.0) == (0.5, 4.0)
    assert to_psi_rho(2.0, 12.0) == pytest.approx((2 / 3, 12 * (2 / 3) ** 2 / 3))


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.5, 1.0, 2.0, 4.0])
@pytest.mark.parametrize("beta", [0.5, 2.0, 8.0, 24.0])
def test_rho_is_log_weight_ratio_and_psi_the_mode(lam: float, beta: float) -> None:
    p = torch.linspace(0, 1, 200_001, dtype=torch.float64)
    w = dm_weight(p, lam, beta)
    psi, rho = to_psi_rho(lam, beta)
    assert rho == pytest.approx(math.log(w.max() / w.min()), rel=1e-6)
    assert p[w.argmax()].item() == pytest.approx(psi, abs=1e-3)


def test_as_point_lam_beta_passes_everything_through() -> None:
    setting = {"lam": 1.0, "beta": 16.0, "lr": 0.01}
    point = as_point(setting, "lam_beta")
    assert point == setting and point is not setting


def test_as_point_psi_rho_replaces_lam_beta_only() -> None:
    point = as_point({"lam": 0.5, "beta": 12.0, "lr": 0.01, "weight_decay": 1e-4}, "psi_rho")
    assert point.keys() == {"psi", "rho", "lr", "weight_decay"}
    assert (point["psi"], point["rho"]) == to_psi_rho(0.5, 12.0)
    assert (point["lr"], point["weight_decay"]) == (0.01, 1e-4)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: to_psi_rho(-0.5, 1.0), "lam"),
        (lambda: from_psi_rho(1.0, 1.0), "psi"),
        (lambda: from_psi_rho(-0.1, 1.0), "psi"),
        (lambda: as_point({"lam": 1.0, "beta": 8.0}, "lambda"), "parametrization"),
        (lambda: as_point({"beta": 8.0}, "psi_rho"), "point"),
    ],
)
def test_bad_values_are_config_errors(call, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        call()
    assert error.value.field == field
