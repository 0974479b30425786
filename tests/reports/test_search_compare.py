"""A free Optuna search and a comparison of methods, from a real store of two studies (Ray Tune, Optuna, MLflow):
the search-trial and ψ-quarter tables, the replayed Optuna study and its importances, the search figures, the
methods × noise rates table and the published numbers set beside ours."""

from __future__ import annotations

import dataclasses
import math
import statistics
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.distributions import FloatDistribution

from reports import load_study
from reports._compare import comparable_studies, comparison_table, published_comparison
from reports._figures import detection_curves, make_figures, p_curves
from reports._published import PUBLISHED
from reports._search import importance_table, importances, search_study
from reports._tables import ablation_grid, emphasis_mode_table, search_trials_table

RATE = 0.2
KEY = f"{RATE:g}"  # the label set's key in a study of one noise kind


def rule(run) -> tuple:
    """A search run's place by the study's tie rule, as README says it: best val_acc to 9 decimals, then the smallest
    λ, then β, then run id."""
    params = {name: float(run.data.params[name]) for name in ("lam", "beta") if name in run.data.params}
    return (-round(run.data.metrics["val_acc"], 9), params.get("lam", 0.0), params.get("beta", 0.0), run.info.run_id)


def logged(uri: str, name: str, stage: str) -> list:
    """The runs of `stage` in study `name`, straight from MLflow, in the order they started."""
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], f"tags.stage = '{stage}'", max_results=1000)
    return sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id))


@pytest.fixture(scope="module")
def free(free_store):
    uri, _ = free_store
    return load_study(uri, "free")


def test_a_free_search_has_no_grid_but_lists_its_trials_best_first(free_store, free) -> None:
    uri, _ = free_store
    assert "drew λ and β freely" in ablation_grid(free.trials, KEY, "test_acc").attrs["note"]
    runs = logged(uri, "free", "search")
    table = search_trials_table(free.trials, KEY, ["lam", "beta"])
    expected = sorted((rule(r), r.data.metrics["val_acc"]) for r in runs)
    assert table["rank"].tolist() == [1, 2, 3, 4]
    assert table["lam"].tolist() == [lam for (_, lam, _, _), _ in expected]
    assert table["beta"].tolist() == [beta for (_, _, beta, _), _ in expected]
    assert table["val_acc"].tolist() == [val for _, val in expected]
    assert table["psi"].tolist() == pytest.approx([lam / (lam + 1) for (_, lam, _, _), _ in expected])


def test_a_free_search_groups_emphasis_modes_by_quarters_of_psi(free_store, free) -> None:
    uri, _ = free_store
    best: dict[int, tuple[tuple, float, float]] = {}
    for run in logged(uri, "free", "search"):
        lam, val = float(run.data.params["lam"]), run.data.metrics["val_acc"]
        quarter = min(math.floor(lam / (lam + 1) * 4), 3)
        if quarter not in best or rule(run) < best[quarter][0]:
            best[quarter] = (rule(run), lam, val)
    modes = emphasis_mode_table(free.trials, KEY)
    assert modes["psi range"].tolist() == [f"[{q / 4:g}, {(q + 1) / 4:g}{']' if q == 3 else ')'}" for q in sorted(best)]
    assert modes["lam"].tolist() == [best[q][1] for q in sorted(best)]
    assert modes["val_acc"].tolist() == [best[q][2] for q in sorted(best)]


def test_the_replayed_optuna_study_holds_the_trials_in_start_order(free_store, free) -> None:
    uri, _ = free_store
    study = search_study(free, KEY)
    runs = logged(uri, "free", "search")
    assert [t.value for t in study.trials] == [r.data.metrics["val_acc"] for r in runs]
    assert [t.params["lam"] for t in study.trials] == [float(r.data.params["lam"]) for r in runs]
    assert set(study.trials[0].distributions) == {"lam", "beta"}
    found = importances(study)
    assert set(found) == {"lam", "beta"} and sum(found.values()) == pytest.approx(1.0)
    assert all(0 <= v <= 1 for v in found.values())
    table = importance_table(free)
    assert table.set_index("parameter")[f"noise {RATE:g}"].to_dict() == pytest.approx(found)


def test_a_search_whose_trials_all_tie_has_no_importances() -> None:
    study = optuna.create_study(direction="maximize")
    distributions = {"lam": FloatDistribution(0.0, 2.0), "beta": FloatDistribution(0.5, 12.0, log=True)}
    study.add_trials([optuna.trial.create_trial(params={"lam": lam, "beta": beta}, distributions=distributions,
                                                value=0.9338) for lam, beta in [(0.5, 12.0), (0.0, 2.0)]])
    assert importances(study) == {}  # fANOVA raises "zero total variance in all trees"


def test_the_search_figures_are_drawn_for_a_free_search(free, tmp_path: Path) -> None:
    captions = {png.stem: caption for png, caption in make_figures(free, tmp_path)}
    assert "grid_0.2" not in captions
    assert list(captions)[-3:] == ["search_lam_beta", "search_history", "param_importances"]
    assert "at the highest noise rate (20%):" in captions["p_clean_noisy"]  # named by the label set drawn


def test_p_clean_noisy_sets_the_best_cce_trial_beside_the_best_dm_from_the_other_study(free_store, free) -> None:
    uri, _ = free_store

    def best(name: str):  # the study's best search trial by val_acc (ties by the rule), straight from MLflow
        return min(logged(uri, name, "search"), key=rule).info.run_id

    assert len(logged(uri, "cce1", "search")) == 1  # 2 asked, but CCE has nothing to search: 1 trial, not 2 alike
    key, drawn = p_curves(free)
    assert key == KEY
    assert [(method, study.name, trial["run_id"]) for method, study, trial in drawn] == [
        ("dm", "free", best("free")), ("cce", "cce1", best("cce1"))]
    key, drawn = p_curves(load_study(uri, "cce1"))  # a CCE study draws the best DM of the store beside its own
    assert [(method, study.name, trial["run_id"]) for method, study, trial in drawn] == [
        ("cce", "cce1", best("cce1")), ("dm", "free", best("free"))]
    [(key, drawn)] = detection_curves(free)  # the noise-detection AUROCs: CCE's beside the study's own
    assert key == KEY and [(method, study.name, trial["run_id"]) for method, study, trial in drawn] == [
        ("dm", "free", best("free")), ("cce", "cce1", best("cce1"))]
    [(_, drawn)] = detection_curves(load_study(uri, "cce1"))  # a CCE study draws its own only
    assert [(method, study.name) for method, study, _ in drawn] == [("cce", "cce1")]


def test_the_comparison_table_holds_each_study_s_final_test_accuracy(free_store, free) -> None:
    uri, _ = free_store
    studies = comparable_studies(free)
    assert [d.name for d in studies] == ["cce1", "free"]
    table = comparison_table(studies).set_index("study")
    for name in ("cce1", "free"):
        values = [100 * r.data.metrics["test_acc"] for r in logged(uri, name, "final")]
        cell = table.loc[name, f"noise {RATE:g}"]
        if len(values) == 1:
            assert cell == f"{values[0]:.2f} (n=1)"
        else:
            assert cell == f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f} (n={len(values)})"
    assert "publish no numbers for digits with mlp" in published_comparison(studies).attrs["note"]


def test_published_numbers_are_matched_by_set_up_and_the_difference_is_ours_minus_theirs(free_store, free) -> None:
    uri, _ = free_store
    as_cifar100 = []
    for data in comparable_studies(free):  # the same runs, said to be of the papers' CIFAR-100 set-up
        config = {**data.config, "train": {**data.config["train"], "dataset": "cifar100", "model": "resnet44"}}
        as_cifar100.append(dataclasses.replace(data, config=config))
    table = published_comparison(as_cifar100)
    for name, method in (("cce1", "cce"), ("free", "dm")):
        ours = 100 * statistics.mean(r.data.metrics["test_acc"] for r in logged(uri, name, "final"))
        rows = table[table["study"] == name]
        for source in ("seed 000 Table 4", "seed 002 Table 1"):
            paper = max((p for p in PUBLISHED if (p.source, p.method, p.dataset, p.noise) ==
                         (source, method, "cifar100", "symmetric") and p.rate == RATE), key=lambda p: p.accuracy)
            row = rows[rows["source"] == source].iloc[0]
            assert row["paper's row"] == paper.label
            assert row["difference (points)"] == pytest.approx(round(ours - paper.accuracy, 2))
    assert set(table["source"]) == {"seed 000 Table 4", "seed 002 Table 1"}


def test_seed_003_numbers_are_found_by_set_up_with_the_best_probe_size() -> None:
    from reports._published import published_for

    (ieg,) = published_for("cifar100", "wrn28_10", "uniform", 0.4, "ieg")
    assert (ieg.source, ieg.label, ieg.accuracy, ieg.std) == ("seed 003 Table 2", "IEG (1k probe)", 80.2, 0.3)
    assert [p.accuracy for p in published_for("cifar10", "resnet29", "uniform", 0.8, "ieg")] == [85.6]
    assert [p.accuracy for p in published_for("cifar10", "wrn28_10", "uniform", 0.8, "l2r")] == [73.0]
    assert published_for("cifar10", "wrn28_10", "symmetric", 0.4, "ieg") == []  # the paper's noise is uniform
