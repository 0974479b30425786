"""The papers' grids and best settings, as read from seed 000 (Table 2, Table 3 with Figs 6–9, Tables 4 and 7)."""

import pytest

from search_spaces import GRIDS, grid_method, paper_best, paper_grid
from trainers import ConfigError, make_loss

TABLE3_BETAS = {0.0: (0.5, 1, 2, 4), 0.5: (4, 8, 12, 16), 1.0: (8, 12, 16, 20), 2.0: (12, 16, 20, 24)}  # Figs 6–9
TABLE3 = [(lam, b) for lam, betas in TABLE3_BETAS.items() for b in betas]
TABLE7 = [(lam, b) for lam in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6) for b in (2, 4, 6, 8, 10)]


def cells(name: str) -> list[tuple[float, float]]:
    return [(cell["lam"], cell["beta"]) for cell in paper_grid(name)]


def test_grid_names() -> None:
    assert GRIDS == ("table3", "table7", "ieg-table7")
    assert [grid_method(name) for name in GRIDS] == ["dm", "dm", "ieg"]


@pytest.mark.parametrize(("name", "expected"), [("table3", TABLE3), ("table7", TABLE7)])
def test_grid_cells(name: str, expected: list) -> None:
    assert cells(name) == expected
    assert len(expected) == {"table3": 16, "table7": 30}[name]
    assert all(cell.keys() == {"lam", "beta"} for cell in paper_grid(name))


@pytest.mark.parametrize("name", GRIDS)
def test_every_cell_is_a_setting_of_its_method(name: str) -> None:
    for cell in paper_grid(name):
        make_loss(grid_method(name), **cell)


def test_ieg_table7_rows() -> None:
    """Seed 003 Table 7: row 1 (L2R) has no component, row 5 (IEG) all; rows 2–4 add λ, AA, MC; 6–8 drop MC, AA, λ."""
    rows = [tuple(name for name in ("uc", "mc", "aa", "relabel") if cell[name]) for cell in paper_grid("ieg-table7")]
    assert rows == [(), ("relabel",), ("aa", "relabel"), ("mc", "aa", "relabel"), ("uc", "mc", "aa", "relabel"),
                    ("uc", "aa", "relabel"), ("uc", "mc", "relabel"), ("uc", "mc", "aa")]


@pytest.mark.parametrize(
    ("dataset", "rate", "lam", "beta"),
    [
        ("cifar10", 0.0, 0.0, 2.0),  # Table 2: GR (λ = 0, β = 2) 92.5 on ResNet-56
        ("cifar10", 0.2, 0.5, 12.0),  # Table 3: final 87.8
        ("cifar10", 0.4, 1.0, 16.0),  # final 83.3
        ("cifar10", 0.6, 2.0, 12.0),  # final 72.5
        ("cifar10", 0.8, 2.0, 12.0),  # final 32.8
        ("fashion_mnist", 0.4, 1.0, 16.0),  # any other data set: CIFAR-10's
        ("digits", 0.8, 2.0, 12.0),
        ("cifar100", 0.0, 0.0, 2.0),  # Table 2: GR (λ = 0, β = 2) 68.4 on ResNet-44
        ("cifar100", 0.2, 0.3, 6.0),  # Table 7: 64.1
        ("cifar100", 0.4, 0.4, 6.0),  # 60.0
        ("cifar100", 0.6, 0.5, 8.0),  # 49.9, tied with (0.4, 6); Table 4 reports (β, λ) = (8, 0.5)
    ],
)
def test_paper_best(dataset: str, rate: float, lam: float, beta: float) -> None:
    assert paper_best(dataset, rate) == {"lam": lam, "beta": beta}


def test_best_settings_lie_on_their_grids() -> None:
    for rate in (0.0, 0.2, 0.4, 0.6, 0.8):
        best = paper_best("cifar10", rate)
        assert (best["lam"], best["beta"]) in TABLE3
    for rate in (0.2, 0.4, 0.6):
        best = paper_best("cifar100", rate)
        assert (best["lam"], best["beta"]) in TABLE7


def test_rates_match_within_1e_9() -> None:
    assert paper_best("cifar10", 3 * 0.2) == paper_best("cifar10", 0.6)  # 0.6000000000000001
    assert paper_best("cifar10", 0.2 + 1e-10) is not None
    assert paper_best("cifar10", 0.2 + 1e-6) is None


@pytest.mark.parametrize(("dataset", "rate"), [("cifar10", 0.3), ("cifar100", 0.3), ("cifar100", 0.8)])
def test_rates_the_paper_lacks(dataset: str, rate: float) -> None:
    assert paper_best(dataset, rate) is None


@pytest.mark.parametrize(
    ("call", "field"),
    [(lambda: paper_grid("table4"), "search.grid"), (lambda: grid_method("table4"), "search.grid"),
     (lambda: paper_best("cifar-100", 0.2), "dataset")],
)
def test_unknown_names(call, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        call()
    assert error.value.field == field
