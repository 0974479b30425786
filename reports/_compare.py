"""Methods side by side: every study of the same data set, model and noise kind in one MLflow store, as a methods ×
noise rates table of the final retrains' test accuracy, and beside the papers' published numbers where the set-up
matches (seed 000 Tables 2–4, seed 002 Table 1).

    >>> studies = comparable_studies(data)        # doctest: +SKIP
    >>> comparison_table(studies)                 # doctest: +SKIP
"""

from __future__ import annotations

import statistics

import pandas as pd
from mlflow.tracking import MlflowClient

from reports._load import StudyData, load_study
from reports._published import published_for, published_setups
from reports._tables import MISSING, final_runs, fmt_mean_std, noise_label, noise_rates, rate_cell


def setup(data: StudyData) -> tuple[str, str, str]:
    """(data set, model, noise kind) of a study, from its logged config ("?" where not logged)."""
    train = data.config.get("train", {})
    return str(train.get("dataset", "?")), str(train.get("model", "?")), str(data.config.get("noise", "?"))


def comparable_studies(data: StudyData) -> list[StudyData]:
    """`data` and every other study in its store with the same data set, model and noise kind, sorted by method, then
    name (found once per StudyData)."""
    return data.derived("comparable_studies", lambda: _comparable(data))


def _comparable(data: StudyData) -> list[StudyData]:
    client = MlflowClient(data.tracking_uri)
    dataset, _, noise = setup(data)
    found = [data]
    for experiment in client.search_experiments():
        if experiment.name == data.name:
            continue
        runs = client.search_runs([experiment.experiment_id], "tags.stage = 'study'", max_results=1)
        if runs and (runs[0].data.tags.get("dataset"), runs[0].data.tags.get("noise")) == (dataset, noise):
            other = load_study(data.tracking_uri, experiment.name)
            if setup(other) == setup(data):
                found.append(other)
    return sorted(found, key=lambda d: (str(d.config.get("method", "")), d.name))


def comparison_table(studies: list[StudyData]) -> pd.DataFrame:
    """One row per study (method, study) and one column per noise rate, named by the first study that ran it: the
    final retrains' test accuracy in %, mean ± sample std (n)."""
    rates = sorted({rate for d in studies for rate in noise_rates(d.trials)})
    columns = {rate: noise_label(next(d for d in studies if rate in noise_rates(d.trials)), rate, "noise {rate:g}")
               for rate in rates}
    rows = []
    for data in studies:
        row = {"method": data.config.get("method", "?"), "study": data.name}
        for rate in rates:
            finals = final_runs(data.trials, rate)
            row[columns[rate]] = fmt_mean_std(finals["test_acc"] if "test_acc" in finals else [], percent=True)
        rows.append(row)
    return pd.DataFrame(rows)


def published_comparison(studies: list[StudyData]) -> pd.DataFrame:
    """Per study, noise rate and paper source: our final test accuracy (%), the paper's best row of the method, the
    difference in points, and that row's label; empty with a note where the papers report on no matching set-up."""
    rows = []
    for data in studies:
        dataset, model, noise = setup(data)
        method = str(data.config.get("method", "?"))
        for rate in noise_rates(data.trials):
            finals = final_runs(data.trials, rate)
            ours = finals["test_acc"].dropna().astype(float).tolist() if "test_acc" in finals else []
            for paper in published_for(dataset, model, noise, rate, method):
                difference = round(100 * statistics.mean(ours) - paper.accuracy, 2) if ours else MISSING
                rows.append({"method": method, "study": data.name, "noise rate": rate_cell(data, rate),
                             "ours (%)": fmt_mean_std(ours, percent=True),
                             "paper (%)": f"{paper.accuracy:.1f}" + (f" ± {paper.std:.1f}" if paper.std else ""),
                             "difference (points)": difference, "paper's row": paper.label, "source": paper.source})
    if rows:
        return pd.DataFrame(rows)
    dataset, model, noise = setup(studies[0])
    known = ", ".join(f"{d}/{m}" for d, m in published_setups())
    table = pd.DataFrame()
    table.attrs["note"] = (f"The papers publish no numbers for {dataset} with {model} under {noise} noise at these "
                           f"noise rates and methods (they report on {known}), so there is nothing to set beside ours.")
    return table
