"""Honest statistics: settings tied at the best validation accuracy are named and every table, figure and the driver
pick the same one by one rule; captions say where means rest on fewer than 3 runs or importances on fewer than 10
trials; figures of many label sets fit the HTML page. From stores logged as the driver logs them (no Ray)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from reports import load_study, write_report
from reports._figures import make_figures
from reports._plot import best_trial
from reports._tables import (emphasis_mode_table, grid_cells_table, search_trials_table, summary_table,
                             validation_choice_table)
from study.searcher import choose
from tests.reports.stores import log_run

# Search trials at noise 0.2 in the order they start: three settings tie at the best, the rule's pick starts last.
TRIALS = [(0.8, 2.0, 0.9338), (0.25, 16.0, 0.9338), (0.1, 1.0, 0.9059), (0.25, 4.0, 0.9338)]
PICK = {"lam": 0.25, "beta": 4.0}
PAGE_PX = 75 * 16  # index.html's body is 75em wide, at the usual 16 px to the em
HISTORY = ("epoch", "noisy_fit_acc", "intact_acc", "emphasis_var", "p_clean", "p_noisy", "noise_auroc_p",
           "noise_auroc_weight")


def _log_study(tmp: Path, name: str, trials: dict[float, list[tuple[float, float, float]]], finals: int,
               epochs: int = 0) -> str:
    """A store holding a finished free DM search logged as the driver logs it: per noise rate its `trials`
    (λ, β, val_acc; val_acc_clean the same; each with `epochs` evaluations of the per-epoch metrics the figures
    draw), the setting the driver chooses from them (`choose`) and `finals` retrains."""
    uri = f"sqlite:///{tmp}/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.create_experiment(name, artifact_location=str(tmp / "artifacts"))
    common = {"dataset": "digits", "noise": "symmetric", "method": "dm"}
    study = client.create_run(experiment, tags={**common, "stage": "study"}).info.run_id
    client.log_dict(study, {"name": name, "method": "dm", "noise": "symmetric", "noise_rates": list(trials),
                            "search": {"mode": "optuna", "num_samples": max(map(len, trials.values()))},
                            "train": {"dataset": "digits", "model": "mlp"}}, "study_config.json")
    for rate, runs in trials.items():
        tags = {**common, "noise_rate": f"{rate:g}", "label_set": f"{rate:g}", "mlflow.parentRunId": study}
        rate_run = client.create_run(experiment, tags={**tags, "stage": "noise_rate"}).info.run_id
        chosen = choose(({"lam": lam, "beta": beta}, {"val_acc": val}, False) for lam, beta, val in runs)
        best, best_val = chosen.setting, chosen.score
        for key, value in best.items():
            client.log_param(rate_run, f"best.{key}", str(value))
        client.log_metric(rate_run, "best_val_acc", best_val)
        for lam, beta, val in runs:
            run = log_run(client, experiment, {**tags, "stage": "search", "mlflow.parentRunId": rate_run},
                          {"lam": lam, "beta": beta, "seed": 0},
                          {"val_acc": val, "val_acc_clean": val, "val_acc_noisy": val - 0.1, "test_acc": val - 0.01})
            for epoch in range(1, epochs + 1):
                for key in HISTORY:
                    client.log_metric(run, key, epoch if key == "epoch" else val * epoch / epochs, step=epoch)
        for seed in range(finals):
            log_run(client, experiment, {**tags, "stage": "final", "mlflow.parentRunId": rate_run},
                    {**best, "seed": seed}, {"test_acc": 0.94 + seed / 100})
        client.set_terminated(rate_run)
    client.set_terminated(study)
    return uri


@pytest.fixture(scope="module")
def tied(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(tracking URI, report folder) of the study whose search ties three settings, with three final retrains."""
    tmp = tmp_path_factory.mktemp("ties")
    uri = _log_study(tmp, "ties", {0.2: TRIALS}, finals=3)
    return uri, write_report(uri, "ties", tmp / "report", log_artifacts=False).parent


def test_the_summary_names_the_tie_and_the_setting_the_rule_picks(tied: tuple[str, Path]) -> None:
    uri, out = tied
    summary = summary_table(load_study(uri, "ties"))
    assert summary["best_setting"].tolist() == ["lam=0.25, beta=4"] and summary["tied"].tolist() == [3]
    index = (out / "index.md").read_text()
    assert ("- noise rate 0.2: 3 settings tie at val_acc 0.9338 (lam=0.25, beta=4; lam=0.25, beta=16; "
            "lam=0.8, beta=2); the tie rule picks lam=0.25, beta=4.\n") in index
    assert "break them by one rule: settings whose mean validation accuracies agree to 9 decimals tie" in index


def test_every_table_and_figure_picks_the_setting_the_driver_retrained(tied: tuple[str, Path]) -> None:
    data = load_study(tied[0], "ties")
    assert {k: float(v) for k, v in data.rates.iloc[0].items() if k.startswith("best.")} == \
        {f"best.{k}": v for k, v in PICK.items()}
    trials = search_trials_table(data.trials, "0.2", ["lam", "beta"])
    assert trials[["lam", "beta"]].to_dict("records")[:3] == [PICK, {"lam": 0.25, "beta": 16.0},
                                                                {"lam": 0.8, "beta": 2.0}]
    modes = emphasis_mode_table(data.trials, "0.2", data.grid_search).set_index("psi range")
    assert modes.loc["[0, 0.25)", ["lam", "beta"]].to_dict() == PICK  # not β = 16, tied with it
    clean = validation_choice_table(data).set_index("validation").loc["clean"]
    assert clean["setting"] == "lam=0.25, beta=4" and clean["final_test_acc"].endswith("(n=3)")
    assert {k: best_trial(data, "0.2")[k] for k in PICK} == PICK  # the λ–β figure rings it


def test_grid_cells_tied_at_the_best_go_by_the_rule() -> None:
    trials = pd.DataFrame({"run_id": ["a", "b", "c"], "stage": "search", "noise_rate": 0.4, "val_acc": 0.9,
                           "uc": ["True", "False", "True"], "mc": ["True", "True", "False"]})  # as MLflow holds them
    cells = grid_cells_table(trials, "0.4", ["mc", "uc"])
    assert cells[["uc", "mc"]].to_numpy().tolist() == [["False", "True"], ["True", "False"], ["True", "True"]]


def test_captions_flag_few_runs_and_few_trials(tied: tuple[str, Path]) -> None:
    index = (tied[1] / "index.md").read_text()
    sections = {part.split("\n", 1)[0]: part for part in index.split("\n## ")}
    few_runs = "caution: some values average fewer than 3 runs (as few as n=1)"
    assert few_runs in sections["Noise rate 0.2: emphasis modes"]  # each mode's best is one run
    assert "caution" not in sections["Summary"]  # three final retrains
    assert "caution: fewer than 10 trials per noise rate (noise 0.2: 4)" in sections["Parameter importances"]
    figures = [caption for _, caption in make_figures(load_study(tied[0], "ties"), tied[1] / "again")]
    assert any("caution: fewer than 10 trials" in caption for caption in figures)
    assert all(caption.endswith(".") and ". " not in caption for caption in figures)
    assert "± 0.0000" not in index


def test_one_retrain_is_shown_as_itself(tmp_path: Path) -> None:
    uri = _log_study(tmp_path, "one", {0.2: TRIALS}, finals=1)
    out = write_report(uri, "one", tmp_path / "report", log_artifacts=False).parent
    assert pd.read_csv(out / "summary.csv")["final_test_acc"].tolist() == ["0.9400 (n=1)"]
    summary = (out / "index.md").read_text().split("\n## ")[1]
    assert "(as few as n=1)" in summary and "n=1 is a single run, shown without a spread" in summary


def test_figures_of_four_noise_rates_fit_the_page(tmp_path: Path) -> None:
    rates = {rate: [(lam, beta, 0.9 - rate / 2 - lam / 50 + beta / 100) for lam, beta, _ in TRIALS]
             for rate in (0.0, 0.2, 0.4, 0.6)}
    out = write_report(_log_study(tmp_path, "four", rates, finals=1, epochs=3), "four", tmp_path / "report",
                       log_artifacts=False).parent
    pngs = sorted(out.glob("*.png"))
    assert {"dynamics.png", "noise_detection.png", "search_lam_beta.png", "search_history.png",
            "param_importances.png"} <= {p.name for p in pngs}
    for png in pngs:
        assert matplotlib.image.imread(png).shape[1] <= PAGE_PX, png.name
    html = (out / "index.html").read_text()
    assert "img{display:block;max-width:100%;height:auto}" in html and "max-width:75em" in html
