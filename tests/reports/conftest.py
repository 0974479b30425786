"""Fixtures for the reports tests: one real small study, run through the project's own driver (Ray Tune, MLflow)."""

from __future__ import annotations

from pathlib import Path

import pytest


def run_small_study(tmp: Path, overrides: list[str]) -> str:
    """Run a study with `overrides` logging into tmp/mlflow.db; its tracking URI."""
    from study.config import load_study_config
    from study.driver import run_study

    uri = f"sqlite:///{tmp}/mlflow.db"
    run_study(load_study_config(None, [*overrides, f"tracking_uri={uri}", f"storage={tmp}/ray"]), echo=lambda s: None)
    return uri


@pytest.fixture(scope="session")
def report_study(tmp_path_factory: pytest.TempPathFactory, ray_session) -> tuple[str, Path]:
    """(tracking URI, folder) of a finished DM study: a 2 × 2 λ × β grid run twice per cell (seeds 0 and 1) at noise
    rates 0 and 0.4, 1 epoch, 2 final seeds."""
    tmp = tmp_path_factory.mktemp("report-study")
    uri = run_small_study(tmp, ["name=rep", "noise_rates=[0.0, 0.4]", "search.mode=grid",
                                "search.grid={lam: [0, 1], beta: [2, 8]}", "search.repeats=2", "train.epochs=1",
                                "final.n_seeds=2", "search.max_concurrent=2"])
    return uri, tmp


@pytest.fixture(scope="session")
def free_store(tmp_path_factory: pytest.TempPathFactory, ray_session) -> tuple[str, Path]:
    """(tracking URI, folder) of a store holding two studies on digits at noise rate 0.2: "free", a free Optuna
    search of DM (4 trials, 2 final seeds), and "cce1", CCE (2 trials asked, 1 run as CCE has nothing to search;
    1 final seed)."""
    tmp = tmp_path_factory.mktemp("free-store")
    common = ["noise_rates=[0.2]", "train.epochs=1", "search.max_concurrent=2"]
    run_small_study(tmp, ["name=free", "search.num_samples=4", "final.n_seeds=2", *common])
    return run_small_study(tmp, ["name=cce1", "method=cce", "search.num_samples=2", "final.n_seeds=1", *common]), tmp
