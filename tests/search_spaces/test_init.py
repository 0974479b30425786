"""The package's public names and the examples in its docstrings."""

import doctest

import optuna
import pytest

import search_spaces
from search_spaces import _grids, _reparam, _spaces


def test_public_names() -> None:
    assert all(hasattr(search_spaces, name) for name in search_spaces.__all__)
    assert {"make_space", "default_ranges", "to_psi_rho", "from_psi_rho", "as_point", "paper_grid", "paper_best",
            "GRIDS", "PARAMETRIZATIONS", "Space"} <= set(search_spaces.__all__)


@pytest.mark.parametrize("module", [search_spaces, _grids, _reparam, _spaces], ids=lambda m: m.__name__)
def test_docstring_examples(module) -> None:
    result = doctest.testmod(module, extraglobs={"optuna": optuna})
    assert result.attempted > 0 and result.failed == 0
