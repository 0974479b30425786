"""Emphasis functions: their formulas, their modes against a numerical argmax, and their relations (seed 002 §3)."""

import math

import pytest
import torch

import trainers
from trainers import ConfigError, dm_weight, make_emphasis

GRID = torch.linspace(0, 1, 200_001, dtype=torch.float64)

CASES = [
    ("dm", {"lam": 0.0, "beta": 2.0}),
    ("dm", {"lam": 0.25, "beta": 8.0}),
    ("dm", {"lam": 0.5, "beta": 8.0}),
    ("dm", {"lam": 1.0, "beta": 2.0}),
    ("dm", {"lam": 2.0, "beta": 16.0}),
    ("dm", {"lam": 5.0, "beta": 4.0}),
    ("dm", {"lam": 0.0, "beta": -2.0}),
    ("dm", {"lam": 1.0, "beta": -2.0}),  # w(0) = w(1) = 1: two modes
    ("dm", {"lam": 0.5, "beta": -8.0}),
    ("dm", {"lam": 1.0, "beta": 0.0}),  # flat
    ("normal", {"psi": 0.2, "beta": 4.0}),
    ("normal", {"psi": 0.9, "beta": 4.0}),
    ("normal", {"psi": 1.5, "beta": 4.0}),
    ("normal", {"psi": 0.2, "beta": -4.0}),
    ("normal", {"psi": 0.0, "beta": -4.0}),
    ("normal", {"psi": 0.8, "beta": -4.0}),
    ("normal", {"psi": 1.5, "beta": -4.0}),
    ("normal", {"psi": 0.5, "beta": -4.0}),  # two modes
    ("normal", {"psi": 0.0, "beta": 4.0}),
    ("exponential", {"beta": 2.0}),
    ("exponential", {"beta": -2.0}),
    ("beta", {"alpha": 2.0, "eta": 3.0}),
    ("beta", {"alpha": 3.0, "eta": 2.0}),
    ("beta", {"alpha": 1.0, "eta": 2.0}),
    ("beta", {"alpha": 2.0, "eta": 1.0}),
    ("beta", {"alpha": 0.5, "eta": 2.0}),  # infinite at 0
    ("beta", {"alpha": 2.0, "eta": 0.5}),
    ("beta", {"alpha": 1.0, "eta": 0.5}),
    ("beta", {"alpha": 0.5, "eta": 1.0}),
    ("beta", {"alpha": 0.3, "eta": 0.8}),  # infinite at both ends
    ("beta", {"alpha": 0.5, "eta": 0.5}),
    ("beta", {"alpha": 1.0, "eta": 1.0}),  # flat
    ("cce", {}),
    ("mae", {}),
    ("mse", {}),
    ("gce", {"q": 0.7}),
    ("gce", {"q": 0.2}),
    ("gce", {"q": 0.0}),
    ("gce", {"q": 1.0}),
]
# The weightings written out again (seed 002 §3), in float64: the argmax below does not use trainers' formulas.
FORMULAS = {
    "dm": lambda p, lam, beta: torch.exp(beta * p**lam * (1 - p)),
    "normal": lambda p, psi, beta: torch.exp(-beta * p * (p - 2 * psi)),
    "exponential": lambda p, beta: torch.exp(beta * (1 - p)),
    "beta": lambda p, alpha, eta: p ** (alpha - 1) * (1 - p) ** (eta - 1),
    "cce": lambda p: 2 * (1 - p),
    "mae": lambda p: 2 * p * (1 - p),
    "mse": lambda p: 4 * p * (1 - p) ** 2,
    "gce": lambda p, q: 2 * p**q * (1 - p),
}


def test_the_cases_cover_every_emphasis() -> None:
    assert sorted({name for name, _ in CASES}) == sorted(FORMULAS) == trainers.list_emphases()


@pytest.mark.parametrize(("name", "params"), CASES)
def test_mode_is_the_numerical_argmax(name: str, params: dict) -> None:
    """The mode is the grid's maximiser where that is one point (a neighbourhood of one), else nan."""
    emphasis = make_emphasis(name, **params)
    w = FORMULAS[name](GRID, **params)
    torch.testing.assert_close(emphasis(GRID), w, rtol=1e-12, atol=0)
    top = GRID[w == w.max()]
    if top.max() - top.min() > 1e-3:
        assert math.isnan(emphasis.mode)
    else:
        assert emphasis.mode == pytest.approx(float(top.mean()), abs=1e-4)


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0, 2.0, 3.0])
def test_dm_mode_is_lambda_over_lambda_plus_one(lam: float) -> None:
    assert make_emphasis("dm", lam=lam, beta=8.0).mode == pytest.approx(lam / (lam + 1))


def test_known_modes_of_the_common_losses() -> None:
    assert make_emphasis("cce").mode == 0
    assert make_emphasis("mae").mode == 0.5
    assert make_emphasis("mse").mode == pytest.approx(1 / 3)
    assert make_emphasis("gce", q=0.7).mode == pytest.approx(0.7 / 1.7)


def test_flat_weighting_has_no_mode() -> None:
    assert math.isnan(make_emphasis("dm", lam=1.0, beta=0.0).mode)
    assert math.isnan(make_emphasis("beta", alpha=1.0, eta=1.0).mode)


@pytest.mark.parametrize(("lam", "beta"), [(0.0, 1.0), (0.5, 8.0), (1.0, 16.0), (2.0, -3.0)])
def test_dm_weight_formula(lam: float, beta: float) -> None:
    p = [0.0, 1e-6, 0.1, 0.5, 0.9, 1 - 1e-6, 1.0]
    expected = [math.exp(beta * (pi**lam) * (1 - pi)) for pi in p]
    got = dm_weight(torch.tensor(p, dtype=torch.float64), lam, beta)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=0)


def test_dm_weight_is_float32_for_half_inputs() -> None:
    assert dm_weight(torch.tensor([0.5], dtype=torch.bfloat16), 1.0, 24.0).dtype == torch.float32


def test_dm_generalises_the_other_variants() -> None:
    """λ = 0 is the exponential variant; λ = 1 the normal one with ψ = ½ (seed 002 §3.2.2)."""
    torch.testing.assert_close(make_emphasis("dm", lam=0.0, beta=3.0)(GRID),
                               make_emphasis("exponential", beta=3.0)(GRID))
    torch.testing.assert_close(make_emphasis("dm", lam=1.0, beta=3.0)(GRID),
                               make_emphasis("normal", psi=0.5, beta=3.0)(GRID))


@pytest.mark.parametrize(("loss", "alpha", "eta", "scale", "params"), [
    ("cce", 1, 2, 2, {}), ("mae", 2, 2, 2, {}), ("mse", 2, 3, 4, {}), ("gce", 1.3, 2, 2, {"q": 0.3}),
])
def test_beta_variant_covers_the_common_losses(loss: str, alpha: float, eta: float, scale: float, params: dict) -> None:
    """Seed 002 Eq. 11: the common losses' weightings are beta variants up to a constant."""
    beta = make_emphasis("beta", alpha=alpha, eta=eta)(GRID)
    torch.testing.assert_close(make_emphasis(loss, **params)(GRID), scale * beta)


def test_exact_one_minus_p_is_used_where_given() -> None:
    p = torch.tensor([1.0], dtype=torch.float32)  # 1 − p underflowed; the caller knows it is 1e-20
    w = make_emphasis("cce")(p, torch.tensor([1e-20]))
    assert w.item() == pytest.approx(2e-20)


@pytest.mark.parametrize(("name", "params", "field"), [
    ("dm", {"lam": -0.1, "beta": 1.0}, "lam"),
    ("gce", {"q": 1.5}, "q"),
    ("beta", {"alpha": -1.0, "eta": 2.0}, "alpha"),
    ("nope", {}, "emphasis"),
])
def test_bad_parameters(name: str, params: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_emphasis(name, **params)
    assert err.value.field == field


def test_unknown_parameter_is_named() -> None:
    with pytest.raises(ConfigError, match="lam, beta"):
        make_emphasis("dm", lam=1.0, gamma=2.0)


def test_registry_lists_every_variant() -> None:
    assert trainers.list_emphases() == sorted(["dm", "normal", "exponential", "beta", "cce", "mae", "mse", "gce"])
