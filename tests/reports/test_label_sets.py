"""A study of several label sets reports each as its own row, column and section, named as people read them; studies
of different methods are compared label set by label set (matched by noise kind and rate, not by key)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from reports import load_study, noise_label, write_report
from reports._compare import comparable_studies, comparison_table
from study.label_sets import label_sets, noise_kinds
from tests.reports.stores import log_run

HUMAN = ["cifar10n-aggre", "cifar10n-worst"]
REALISED = {"cifar10n-aggre": (0.0899, [0.0900, 0.0901, 0.0902]),  # (search split, each final retrain)
            "cifar10n-worst": (0.4015, [0.4020, 0.4021, 0.4022])}
LABELS = ["cifar10n-aggre (9.0%)", "cifar10n-worst (40.2%)"]
GRID = [(0, 2), (0, 8), (1, 2), (1, 8)]


def final_test_accs(method: str, index: int) -> list[float]:
    """The test accuracies the three final retrains of `method`'s `index`-th label set log."""
    return [0.6 + index / 10 + (0.05 if method == "dm" else 0.0) + seed / 100 for seed in range(3)]


def _log_study(client: MlflowClient, tmp: Path, name: str, method: str, noise: str | list[str],
               rates: list[float]) -> None:
    """A finished study logged as the driver logs it: a study run, a run per label set (tags label_set, noise,
    noise_rate) and under it the search trials (DM: a 2 × 2 λ × β grid; CCE: one) and three final retrains."""
    experiment = client.create_experiment(name, artifact_location=str(tmp / name))
    common = {"dataset": "cifar10", "method": method}
    study = client.create_run(experiment, tags={**common, "noise": ",".join(noise_kinds(noise)), "stage": "study"})
    client.log_dict(study.info.run_id, {"method": method, "noise": noise, "noise_rates": rates,
                                        "search": {"mode": "grid"}, "train": {"dataset": "cifar10", "model": "resnet"}},
                    "study_config.json")
    for index, ls in enumerate(label_sets(noise, rates)):
        tags = {**common, "noise": ls.noise, "noise_rate": f"{ls.rate:g}", "label_set": ls.key}
        rate_run = client.create_run(experiment, tags={**tags, "stage": "noise_rate",
                                                       "mlflow.parentRunId": study.info.run_id}).info.run_id
        search_realised, final_realised = REALISED.get(ls.noise, (ls.rate, [ls.rate] * 3))
        if method == "dm":
            client.log_param(rate_run, "best.lam", "1")
            client.log_param(rate_run, "best.beta", "8")
        cells = GRID if method == "dm" else [None]
        for i, cell in enumerate(cells):
            params = {"lam": cell[0], "beta": cell[1]} if cell else {}
            log_run(client, experiment, {**tags, "stage": "search", "mlflow.parentRunId": rate_run},
                    {**params, "seed": 0, "noise": ls.noise},
                    {"val_acc": 0.5 + i / 10, "test_acc": 0.55 + i / 10, "noise_rate_realised": search_realised})
        for seed, (accuracy, realised) in enumerate(zip(final_test_accs(method, index), final_realised)):
            log_run(client, experiment, {**tags, "stage": "final", "mlflow.parentRunId": rate_run},
                    {"lam": 1, "beta": 8, "seed": seed, "noise": ls.noise} if method == "dm" else {"seed": seed},
                    {"test_acc": accuracy, "noise_rate_realised": realised})
        client.set_terminated(rate_run)
    client.set_terminated(study.info.run_id)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(tracking URI, folder) of a store of four studies: "human-cce" and "human-dm" on both CIFAR-10N label sets,
    "sympair-dm" on symmetric and pair noise at rate 0.2, and "sym-cce" on symmetric noise alone at 0.2."""
    tmp = tmp_path_factory.mktemp("label-sets")
    uri = f"sqlite:///{tmp}/mlflow.db"
    client = MlflowClient(uri)
    _log_study(client, tmp, "human-cce", "cce", HUMAN, [0.0])
    _log_study(client, tmp, "human-dm", "dm", HUMAN, [0.0])
    _log_study(client, tmp, "sympair-dm", "dm", ["symmetric", "pair"], [0.2])
    _log_study(client, tmp, "sym-cce", "cce", "symmetric", [0.2])
    return uri, tmp


@pytest.fixture(scope="module")
def human_report(store: tuple[str, Path]) -> Path:
    uri, tmp = store
    return write_report(uri, "human-dm", tmp / "report-human", log_artifacts=False).parent


def expected_cell(values: list[float], scale: float = 1.0, digits: int = 4) -> str:
    values = [v * scale for v in values]
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f} (n={len(values)})"


def test_the_driver_keys_human_label_sets_by_kind(store: tuple[str, Path]) -> None:
    data = load_study(store[0], "human-dm")
    assert [ls.key for ls in label_sets(HUMAN, [0.0])] == HUMAN
    assert data.rates["label_set"].tolist() == HUMAN and set(data.trials["noise_rate"]) == {0.0}
    assert [noise_label(data, key) for key in HUMAN] == LABELS


def test_the_summary_has_a_row_per_label_set(human_report: Path) -> None:
    summary = pd.read_csv(human_report / "summary.csv")
    assert summary["label_set"].tolist() == LABELS
    assert summary["final_test_acc"].tolist() == [expected_cell(final_test_accs("dm", i)) for i in range(2)]
    assert summary["trials"].tolist() == [4, 4] and summary["final_runs"].tolist() == [3, 3]


def test_the_comparison_matches_label_sets_across_methods(human_report: Path) -> None:
    comparison = pd.read_csv(human_report / "comparison.csv")
    assert comparison.columns.tolist() == ["method", "study", *LABELS]
    assert comparison["method"].tolist() == ["cce", "dm"]
    for row in comparison.itertuples(index=False):
        assert list(row[2:]) == [expected_cell(final_test_accs(row.method, i), 100, 2) for i in range(2)]


def test_the_index_names_each_label_set_and_no_noise_rate(human_report: Path) -> None:
    index = (human_report / "index.md").read_text()
    assert "over label sets cifar10n-aggre (9.0%), cifar10n-worst (40.2%)" in index
    for label in LABELS:
        assert f"## {label}: λ × β grid of test_acc" in index and f"## {label}: λ × β heatmap" in index
    assert "noise rate 0" not in index.lower() and "noise 0" not in index.lower()
    for key in HUMAN:
        assert (human_report / f"noise-{key}_grid_test_acc.csv").is_file()
        assert (human_report / f"grid_{key}.png").is_file()


def test_synthetic_kinds_are_named_by_kind_and_percentage_in_the_study_s_order(store: tuple[str, Path]) -> None:
    uri, tmp = store
    data = load_study(uri, "sympair-dm")
    assert data.rates["label_set"].tolist() == ["symmetric-0.2", "pair-0.2"]
    assert [noise_label(data, key) for key in ("symmetric-0.2", "pair-0.2")] == ["symmetric 20%", "pair 20%"]
    out = write_report(uri, "sympair-dm", tmp / "report-sympair", log_artifacts=False).parent
    assert pd.read_csv(out / "summary.csv")["label_set"].tolist() == ["symmetric 20%", "pair 20%"]
    index = (out / "index.md").read_text()
    assert "## symmetric 20%: λ × β grid of test_acc" in index and "## pair 20%: λ × β grid of test_acc" in index


def test_a_study_of_one_kind_is_compared_on_the_label_set_it_shares(store: tuple[str, Path]) -> None:
    uri, _ = store
    studies = comparable_studies(load_study(uri, "sympair-dm"))
    assert [d.name for d in studies] == ["sym-cce", "sympair-dm"]
    table = comparison_table(studies).set_index("study")
    assert table.columns.tolist() == ["method", "symmetric 20%", "pair 20%"]
    assert table.loc["sym-cce", "symmetric 20%"] == expected_cell(final_test_accs("cce", 0), 100, 2)
    assert table.loc["sym-cce", "pair 20%"] == "—"
    assert table.loc["sympair-dm", "pair 20%"] == expected_cell(final_test_accs("dm", 1), 100, 2)
