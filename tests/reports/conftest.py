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
    """(tracking URI, folder) of a finished DM study: the table3 grid at noise rates 0 and 0.4, 1 epoch, 2 final
    seeds."""
    tmp = tmp_path_factory.mktemp("report-study")
    uri = run_small_study(tmp, ["name=rep", "noise_rates=[0.0, 0.4]", "search.mode=grid", "search.grid=table3",
                                "train.epochs=1", "final.n_seeds=2", "search.max_concurrent=2"])
    return uri, tmp
