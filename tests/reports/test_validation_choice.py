"""The noisy-against-clean validation table, from hand-made trials (no MLflow): each choice and its test accuracy."""

from __future__ import annotations

import pandas as pd

from reports._load import StudyData
from reports._tables import note, validation_choice_table


def study(trials: list[dict], best_lam: float) -> StudyData:
    rates = pd.DataFrame([{"noise_rate": 0.4, "best.lam": best_lam, "best_val_acc": 0.9}])
    return StudyData("s", "sqlite:///x.db", "1", "0", {}, {}, pd.DataFrame(trials), rates)


SEARCH = [  # run b is best by clean validation, c by noisy
    {"run_id": "a", "stage": "search", "status": "FINISHED", "noise_rate": 0.4, "lam": 1.0,
     "val_acc_clean": 0.70, "val_acc_noisy": 0.50, "test_acc": 0.71},
    {"run_id": "b", "stage": "search", "status": "FINISHED", "noise_rate": 0.4, "lam": 2.0,
     "val_acc_clean": 0.90, "val_acc_noisy": 0.55, "test_acc": 0.88},
    {"run_id": "c", "stage": "search", "status": "FINISHED", "noise_rate": 0.4, "lam": 3.0,
     "val_acc_clean": 0.80, "val_acc_noisy": 0.60, "test_acc": 0.79},
]
FINAL = [{"run_id": "f", "stage": "final", "status": "FINISHED", "noise_rate": 0.4, "lam": 2.0, "test_acc": 0.891}]


def test_each_validation_chooses_its_best_trial_and_the_retrained_one_has_its_final_accuracy() -> None:
    table = validation_choice_table(study(SEARCH + FINAL, best_lam=2.0)).set_index("validation")
    assert table.loc["clean", "setting"] == "lam=2" and table.loc["clean", "test_acc"] == 0.88
    assert table.loc["noisy", "setting"] == "lam=3" and table.loc["noisy", "test_acc"] == 0.79
    assert table.loc["clean", "final_test_acc"] == "0.8910 (n=1)" and table.loc["noisy", "final_test_acc"] == "—"


def test_without_both_validation_accuracies_the_table_says_why() -> None:
    trials = [{k: v for k, v in run.items() if k != "val_acc_noisy"} for run in SEARCH]
    table = validation_choice_table(study(trials, best_lam=2.0))
    assert table.empty and "val_acc_noisy" in note(table)
