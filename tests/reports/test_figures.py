"""reports' figures from a real small grid study (Ray Tune, Optuna, MLflow on SQLite), as `study run` logs it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from reports import StudyData, load_study
from reports._figures import curve_settings, detection_curves, make_figures, mode_points, normalised_curve, p_curves
from reports._tables import grid_means


@pytest.fixture(scope="module")
def data(report_study):
    uri, _ = report_study
    return load_study(uri)


@pytest.fixture(scope="module")
def figures(data, tmp_path_factory: pytest.TempPathFactory):
    return make_figures(data, tmp_path_factory.mktemp("figures"))


def test_every_figure_is_written_with_real_content(figures) -> None:
    names = [png.stem for png, _ in figures]
    assert names == ["grid_0", "grid_0.4", "weighting_curves", "dynamics", "mode_vs_noise", "p_clean_noisy",
                     "noise_detection", "search_history", "param_importances"]
    for png, caption in figures:
        assert png.suffix == ".png" and png.stat().st_size > 10_000
        assert png.with_suffix(".pdf").stat().st_size > 1_000
        pixels = matplotlib.image.imread(png)
        assert pixels[..., :3].std() > 0.01, png.name
        assert caption.endswith(".") and caption.count(". ") == 0 and len(caption) > 40


def test_heatmap_outlines_the_cell_of_best_mean_val_acc(data, figures) -> None:
    captions = dict((png.stem, caption) for png, caption in figures)
    for rate in (0.0, 0.4):
        search = data.trials[(data.trials["stage"] == "search") & (data.trials["noise_rate"] == rate)]
        means = search.groupby(["lam", "beta"])["val_acc"].mean()
        lam, beta = means.round(9).idxmax()  # ties (to 9 decimals): the smallest λ, then β, first in the index
        assert f"(λ={lam:g}, β={beta:g}) outlined" in captions[f"grid_{rate:g}"]
        test, val = grid_means(data.trials, f"{rate:g}", "test_acc"), grid_means(data.trials, f"{rate:g}", "val_acc")
        assert val.loc[lam, beta] == pytest.approx(means.max())
        cell = search[(search["lam"] == lam) & (search["beta"] == beta)]
        assert test.loc[lam, beta] == pytest.approx(cell["test_acc"].mean())


def test_weighting_curves_have_unit_area(data) -> None:
    settings = curve_settings(data)
    assert [name for _, name, _ in settings] == ["dm", "dm", "cce", "mae", "gce"]
    for rate, (_, _, params) in zip((0.0, 0.4), settings):
        row = data.rates[data.rates["noise_rate"] == rate].iloc[0]
        assert params == {"lam": row["best.lam"], "beta": row["best.beta"]}
    p = np.linspace(0.0, 1.0, 501)
    for _, name, params in settings:
        curve = normalised_curve(name, params, p)
        assert np.all(curve >= 0)
        assert np.trapezoid(curve, p) == pytest.approx(1.0, abs=1e-9)


def test_mode_bars_span_the_best_psi_of_each_seed_alone(data, figures) -> None:
    points = mode_points(data)
    assert [(key, rate) for key, rate, _, _ in points] == [("0", 0.0), ("0.4", 0.4)]
    for _, rate, psi, per_seed in points:
        row = data.rates[data.rates["noise_rate"] == rate].iloc[0]
        assert psi == pytest.approx(row["best.lam"] / (row["best.lam"] + 1))
        search = data.trials[(data.trials["stage"] == "search") & (data.trials["noise_rate"] == rate)]
        expected = []
        for seed in sorted(search["seed"].astype(int).unique()):  # the grid ran every cell with seeds 0 and 1
            runs = search[search["seed"].astype(int) == seed]
            best = runs.assign(_v=runs["val_acc"].round(9)).sort_values(  # ties: the smallest λ, then β
                ["_v", "lam", "beta", "run_id"], ascending=[False, True, True, True]).iloc[0]
            expected.append(best["lam"] / (best["lam"] + 1))
        assert len(expected) == 2 and per_seed == pytest.approx(expected)
    caption = dict((png.stem, caption) for png, caption in figures)["mode_vs_noise"]
    assert "each seed's search trials taken alone (diamonds" in caption


def test_p_clean_noisy_says_no_cce_is_at_hand_in_a_store_without_one(data, figures) -> None:
    key, drawn = p_curves(data)
    assert key == "0.4" and [(method, study.name) for method, study, _ in drawn] == [("dm", "rep")]
    caption = dict((png.stem, caption) for png, caption in figures)["p_clean_noisy"]
    assert "no study in this MLflow store has a CCE trial at this rate" in caption


def test_noise_detection_draws_the_best_trials_logged_aurocs_where_there_is_noise(data, figures) -> None:
    """Only the noisy rate (at rate 0 the trainer logs no AUROC), the rate's best trial, its AUROCs as MLflow holds
    them per step."""
    [(key, drawn)] = detection_curves(data)
    best = data.trials[(data.trials["stage"] == "search") & (data.trials["noise_rate"] == 0.4)]
    best = best.sort_values(["val_acc", "run_id"], ascending=[False, True]).iloc[0]
    assert key == "0.4" and [(method, study.name, trial["val_acc"]) for method, study, trial in drawn] == [
        ("dm", "rep", best["val_acc"])]
    history = data.history(drawn[0][2]["run_id"])
    for key in ("noise_auroc_p", "noise_auroc_weight"):
        points = MlflowClient(data.tracking_uri).get_metric_history(drawn[0][2]["run_id"], key)
        assert points and history[key].dropna().tolist() == [p.value for p in sorted(points, key=lambda p: p.step)]
        assert all(0 <= p.value <= 1 for p in points)
    caption = dict((png.stem, caption) for png, caption in figures)["noise_detection"]
    assert "no comparable study in this MLflow store has a CCE trial" in caption


def test_normalised_curve_of_cce_is_two_times_one_minus_p() -> None:
    p = np.linspace(0.0, 1.0, 101)
    assert np.allclose(normalised_curve("cce", {}, p), 2 * (1 - p))
    assert np.allclose(normalised_curve("mae", {}, p), 6 * p * (1 - p), rtol=1e-3)  # trapezoid area, not 1/6


def test_figures_are_byte_identical_across_runs(data, figures, tmp_path: Path) -> None:
    again = make_figures(data, tmp_path / "again")
    assert [png.name for png, _ in again] == [png.name for png, _ in figures]
    for (first, caption), (second, caption2) in zip(figures, again):
        assert first.read_bytes() == second.read_bytes(), first.name
        assert first.with_suffix(".pdf").read_bytes() == second.with_suffix(".pdf").read_bytes(), first.name
        assert caption == caption2


def test_missing_data_skips_figures_without_raising(data, tmp_path: Path) -> None:
    trials = data.trials.drop(columns=["lam", "beta", "val_acc"])
    rates = data.rates.drop(columns=[c for c in data.rates.columns if c.startswith("best.")])
    bare = dataclasses.replace(data, trials=trials, rates=rates)
    assert make_figures(bare, tmp_path) == []


def test_an_empty_study_draws_nothing(tmp_path: Path) -> None:
    empty = StudyData("empty", "sqlite://", "0", "run", {}, {}, pd.DataFrame(), pd.DataFrame())
    assert make_figures(empty, tmp_path) == []
    only_rates = StudyData("rates", "sqlite://", "0", "run", {}, {}, pd.DataFrame({"run_id": ["a"]}),
                           pd.DataFrame({"noise_rate": [0.2], "best.lam": [1.0], "best.beta": [8.0]}))
    assert [png.name for png, _ in make_figures(only_rates, tmp_path)] == ["weighting_curves.png", "mode_vs_noise.png"]
