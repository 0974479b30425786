"""The tie rule and number format that the driver, the console and the reports share (study.choice)."""

from __future__ import annotations

import random

import pytest

import search_spaces
from search_spaces._spaces import _METHODS
from study.choice import PARAMETER_ORDER, fmt_mean_std, fmt_number, fmt_setting, ordered, rank, tied
from study.driver import RateState, StudyState, summary_table
from study.label_sets import LabelSet
from study.searcher import Plan, StudySearcher


@pytest.mark.parametrize(("value", "text"), [(0.251171, "0.2512"), (0.966071, "0.9661"), (16.0, "16"), (3, "3"),
                                             (0.00022875, "0.0002288"), (1.0976, "1.098"), (True, "True"),
                                             ("sgd", "sgd")])
def test_numbers_have_four_significant_digits(value, text) -> None:
    assert fmt_number(value) == text


def test_a_setting_is_written_in_the_method_s_order_then_lr_and_weight_decay() -> None:
    assert fmt_setting({"beta": 0.966071, "lam": 0.251171}) == "lam=0.2512, beta=0.9661"
    assert fmt_setting({"rho": 4.0, "psi": 0.5}) == "psi=0.5, rho=4"
    assert fmt_setting({"weight_decay": 1e-4, "lr": 0.0123456, "beta": 8.0, "lam": 1.0}) == \
        "lam=1, beta=8, lr=0.01235, weight_decay=0.0001"
    assert fmt_setting({}) == ""


@pytest.mark.parametrize("method", sorted(_METHODS))
def test_the_fixed_order_is_each_method_s_own(method: str) -> None:
    names = list(search_spaces.default_ranges(method))
    assert [name for name, _ in ordered(dict.fromkeys(names))] == names
    assert set(names) <= set(PARAMETER_ORDER)


def test_the_psi_rho_order_is_psi_then_rho() -> None:
    names = list(search_spaces.default_ranges("dm", "psi_rho"))
    assert [name for name, _ in ordered(dict.fromkeys(names))] == names == ["psi", "rho"]


def test_ties_go_to_the_smallest_values_in_the_fixed_order_whatever_the_order_of_the_runs() -> None:
    runs = [({"lam": 0.8, "beta": 2.0}, 0.9338), ({"lam": 0.25, "beta": 16.0}, 0.9338),
            ({"lam": 0.25, "beta": 4.0}, 0.9338), ({"lam": 0.1, "beta": 1.0}, 0.9), ({"lam": 2.0, "beta": 1.0}, 0.95)]
    for seed in range(5):
        random.Random(seed).shuffle(runs)
        ranking = rank(runs)
        assert [r.setting for r in ranking][:4] == [{"lam": 2.0, "beta": 1.0}, {"lam": 0.25, "beta": 4.0},
                                                    {"lam": 0.25, "beta": 16.0}, {"lam": 0.8, "beta": 2.0}]
        assert len(tied(ranking)) == 1 and len(tied(ranking[1:])) == 3


def test_a_setting_scores_the_mean_of_its_repeats_and_values_read_back_from_mlflow_compare_as_numbers() -> None:
    ranking = rank([({"lam": 1.0, "beta": 8.0}, 0.1), ({"lam": 1.0, "beta": 8.0}, 0.2),
                    ({"lam": "0.5", "beta": "8.0"}, 0.15), ({"lam": 0.5, "beta": 8}, 0.15)])
    assert [(r.setting, r.runs) for r in ranking] == [({"lam": "0.5", "beta": "8.0"}, 2),
                                                      ({"lam": 1.0, "beta": 8.0}, 2)]
    assert ranking[0].score == pytest.approx(0.15) and len(tied(ranking)) == 2  # (0.1 + 0.2) / 2 ≠ 0.15 in floats
    assert rank([({"lam": 0.0}, float("nan")), ({"lam": 1.0}, 0.5)])[0].setting == {"lam": 1.0}
    assert tied([]) == []


def test_the_driver_retrains_the_setting_the_rule_picks() -> None:
    """Whatever order the search trials end in, the searcher retrains the setting that `rank` puts first: the best mean
    over a cell's repeats, ties by the smallest values."""
    outcomes = [((0.8, 2.0, 0), 0.9338), ((0.25, 16.0, 0), 0.9338), ((0.25, 4.0, 0), 0.93), ((0.25, 4.0, 1), 0.9376),
                ((0.1, 1.0, 0), 0.5)]
    for order in range(3):
        cells = [{"cell": {"lam": lam, "beta": beta}, "seed": seed} for (lam, beta, seed), _ in outcomes]
        searcher = StudySearcher([Plan(LabelSet("symmetric", 0.4), len(cells), 1, cells=cells)])
        given = {f"t{i}": searcher.suggest(f"t{i}") for i in range(len(cells))}
        scores = {(c["cell"]["lam"], c["cell"]["beta"], c["seed"]): v for c, v in zip(cells, (v for _, v in outcomes))}
        ids = list(given)
        random.Random(order).shuffle(ids)
        for trial_id in ids:
            config = given[trial_id]
            searcher.on_trial_complete(trial_id, {"val_acc": scores[config["cell"]["lam"], config["cell"]["beta"],
                                                                   config["seed"]]})
        assert (searcher.best("0.4").setting, searcher.best("0.4").score) == ({"lam": 0.25, "beta": 4.0},
                                                                               pytest.approx(0.9338))
        assert searcher.suggest("final")["cell"] == {"lam": 0.25, "beta": 4.0}


def test_one_value_is_shown_without_a_spread() -> None:
    assert fmt_mean_std([0.97222]) == "0.9722 (n=1)"
    assert fmt_mean_std([0.5, float("nan"), None, 0.7]) == "0.6000 ± 0.1414 (n=2)"
    assert fmt_mean_std([0.5, 0.6], digits=2, scale=100) == "55.00 ± 7.07 (n=2)"
    assert fmt_mean_std([]) == "—"
    state = StudyState({"noise": "symmetric"}, "sqlite://", "0", "run",
                       {"0.2": RateState("rate", True, {"beta": 12.0, "lam": 0.5}, 0.9338, 2, [0.9722], True)})
    assert summary_table(state).splitlines()[2] == "0.2 | lam=0.5, beta=12 | 0.9338 | 0.9722 (n=1) | 2"
