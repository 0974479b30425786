"""A study on human label noise (CIFAR-N) names its label set by kind and realised rate in every table and figure."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from reports import load_study, noise_label, write_report
from tests.reports.stores import log_run

KIND = "cifar10n-worst"
LABEL = f"{KIND} (40.2%)"


def _human_noise_study(tmp: Path, *, tagged: bool = True) -> str:
    """A store holding one finished DM grid study on cifar10n-worst, logged as the driver logs it: a 2 × 2 λ × β grid
    of search trials (realised rate 0.38 on their training split) and two final retrains (0.4021, 0.4022); without
    `tagged`, as a driver before label sets logged it (no label_set tag)."""
    uri = f"sqlite:///{tmp}/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.create_experiment("human", artifact_location=str(tmp / "artifacts"))
    common = {"dataset": "cifar10", "noise": KIND, "method": "dm"}
    study = client.create_run(experiment, tags={**common, "stage": "study"}).info.run_id
    client.log_dict(study, {"method": "dm", "noise": KIND, "noise_rates": [0.0], "search": {"mode": "grid"},
                            "train": {"dataset": "cifar10", "model": "resnet"}}, "study_config.json")
    rate_tags = {**common, "noise_rate": "0", "mlflow.parentRunId": study, **({"label_set": KIND} if tagged else {})}
    rate = client.create_run(experiment, tags={**rate_tags, "stage": "noise_rate"}).info.run_id
    for key, value in {"best.lam": "1", "best.beta": "8"}.items():
        client.log_param(rate, key, value)
    for i, (lam, beta) in enumerate([(0, 2), (0, 8), (1, 2), (1, 8)]):
        log_run(client, experiment, {**rate_tags, "stage": "search", "mlflow.parentRunId": rate},
                {"lam": lam, "beta": beta, "seed": 0},
                {"val_acc": 0.5 + i / 10, "test_acc": 0.55 + i / 10, "noise_rate_realised": 0.38})
    for seed, realised in enumerate([0.4021, 0.4022]):
        log_run(client, experiment, {**rate_tags, "stage": "final", "mlflow.parentRunId": rate},
                {"lam": 1, "beta": 8, "seed": seed}, {"test_acc": 0.8 + seed / 100, "noise_rate_realised": realised})
    client.set_terminated(rate)
    client.set_terminated(study)
    return uri


@pytest.fixture(scope="module")
def human_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(tracking URI, report folder) of the human-noise study."""
    tmp = tmp_path_factory.mktemp("human-noise")
    uri = _human_noise_study(tmp)
    return uri, write_report(uri, "human", tmp / "report", log_artifacts=False).parent


def test_label_is_kind_and_final_realised_rate(human_report: tuple[str, Path]) -> None:
    data = load_study(human_report[0], "human")
    assert noise_label(data, KIND) == LABEL
    assert noise_label(data, KIND, "Noise {pct}") == LABEL
    searched = data.trials[data.trials["stage"] == "search"]
    assert noise_label(replace(data, trials=searched), KIND) == f"{KIND} (38.0%)"


def test_tables_name_the_label_set(human_report: tuple[str, Path]) -> None:
    out = human_report[1]
    assert pd.read_csv(out / "summary.csv")["noise_rate"].tolist() == [LABEL]
    comparison = pd.read_csv(out / "comparison.csv")
    assert [c for c in comparison.columns if c not in ("method", "study")] == [LABEL]
    index = (out / "index.md").read_text()
    assert f"## {LABEL}: λ × β grid of test_acc" in index
    assert f"## {LABEL}: λ × β heatmap" in index
    assert "Noise rate 0" not in index and "noise rate 0" not in index and "noise 0" not in index


def test_figure_caption_names_the_label_set(human_report: tuple[str, Path]) -> None:
    index = (human_report[1] / "index.md").read_text()
    assert f"over the λ × β grid at {LABEL} (grey: not run)" in index


def test_a_store_without_label_set_tags_is_read_as_the_driver_would_have_tagged_it(tmp_path: Path) -> None:
    uri = _human_noise_study(tmp_path, tagged=False)
    data = load_study(uri, "human")
    assert set(data.trials["label_set"]) == set(data.rates["label_set"]) == {KIND}
    assert noise_label(data, KIND) == LABEL
    out = write_report(uri, "human", tmp_path / "report", log_artifacts=False).parent
    assert pd.read_csv(out / "summary.csv")["noise_rate"].tolist() == [LABEL]
