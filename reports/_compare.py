"""Methods side by side: every study of the same data set and model in one MLflow store that shares a noise kind with
this one, as a methods × label sets table of the final retrains' test accuracy (label sets matched across studies by
noise kind and rate), and beside the papers' published numbers where the set-up matches (seed 000 Tables 2–4, seed 002
Table 1).

    >>> studies = comparable_studies(data)        # doctest: +SKIP
    >>> comparison_table(studies)                 # doctest: +SKIP
"""

from __future__ import annotations

import statistics
from dataclasses import replace

import pandas as pd
from mlflow.tracking import MlflowClient

from reports._load import StudyData, load_study
from reports._published import published_for, published_setups
from reports._tables import MISSING, final_runs, fmt_mean_std, label_set, label_set_keys, noise_label, rate_cell
from study.label_sets import noise_kinds

Setup = tuple[str, str, tuple[str, ...]]
Identity = tuple[str, float]  # a label set across studies: its noise kind and rate (0 for a human kind)


def setup(data: StudyData) -> Setup:
    """(data set, model, noise kinds) of a study, from its logged config ("?" where not logged)."""
    train = data.config.get("train", {})
    return str(train.get("dataset", "?")), str(train.get("model", "?")), noise_kinds(data.config.get("noise", "?"))


def comparable_studies(data: StudyData) -> list[StudyData]:
    """`data` and every other study in its store with the same data set and model and a noise kind in common, sorted
    by method, then name (found once per StudyData)."""
    return data.derived("comparable_studies", lambda: _comparable(data))


def _comparable(data: StudyData) -> list[StudyData]:
    client = MlflowClient(data.tracking_uri)
    dataset, _, kinds = setup(data)
    found = [data]
    for experiment in client.search_experiments():
        if experiment.name == data.name:
            continue
        runs = client.search_runs([experiment.experiment_id], "tags.stage = 'study'", max_results=1)
        tags = runs[0].data.tags if runs else {}
        if tags.get("dataset") == dataset and set(tags.get("noise", "").split(",")) & set(kinds):
            other = load_study(data.tracking_uri, experiment.name)
            if _shared(setup(other), setup(data)):
                found.append(other)
    return sorted(found, key=lambda d: (str(d.config.get("method", "")), d.name))


def _shared(one: Setup, other: Setup) -> bool:
    """Whether two set-ups have their data set and model and at least one noise kind in common."""
    return one[:2] == other[:2] and bool(set(one[2]) & set(other[2]))


def comparison_table(studies: list[StudyData]) -> pd.DataFrame:
    """One row per study (method, study) and one column per label set, matched across studies by noise kind and rate
    and named by the first study that ran it (`noise_label`; "<kind> <pct>" where the studies' noise kinds differ):
    the final retrains' test accuracy in %, mean ± sample std (n)."""
    keys = [_keys_by_identity(data) for data in studies]
    kinds = list(dict.fromkeys(kind for data in studies for kind in setup(data)[2]))
    mixed = len({setup(data)[2] for data in studies}) > 1
    columns: dict[Identity, str] = {}
    for data, by_identity in zip(studies, keys):
        for identity, key in by_identity.items():
            columns.setdefault(identity, _column(data, key, mixed))
    order = sorted(columns, key=lambda identity: (kinds.index(identity[0]) if identity[0] in kinds else len(kinds),
                                                  identity[1]))
    rows = []
    for data, by_identity in zip(studies, keys):
        row = {"method": data.config.get("method", "?"), "study": data.name}
        for identity in order:
            finals = final_runs(data.trials, by_identity[identity]) if identity in by_identity else pd.DataFrame()
            row[columns[identity]] = fmt_mean_std(finals["test_acc"] if "test_acc" in finals else [], percent=True)
        rows.append(row)
    return pd.DataFrame(rows)


def key_of(data: StudyData, identity: Identity) -> str | None:
    """The key `data` gives the label set of noise kind and rate `identity`, or None where it has no trials of it."""
    return _keys_by_identity(data).get(identity)


def identity_of(data: StudyData, key: str) -> Identity | None:
    """The noise kind and rate of `data`'s label set `key` (what matches it across studies); None where no run holds
    it."""
    found = label_set(data, key)
    return None if found is None else (found.noise, round(found.rate, 9))


def _keys_by_identity(data: StudyData) -> dict[Identity, str]:
    """The keys of `data`'s label sets with trials, by their identity, in the study's order."""
    found = ((identity_of(data, key), key) for key in label_set_keys(data, trials_only=True))
    return {identity: key for identity, key in found if identity is not None}


def _column(data: StudyData, key: str, mixed: bool) -> str:
    """The comparison table's column of `data`'s label set `key`: its `noise_label` ("noise <rate>" in a study of one
    synthetic kind), or "<kind> <pct>" for a synthetic one where the studies' noise kinds differ."""
    found = label_set(data, key)
    if mixed and found is not None and not found.human:
        return replace(found, several=True).name()
    return noise_label(data, key, "noise {rate:g}")


def published_comparison(studies: list[StudyData]) -> pd.DataFrame:
    """Per study, synthetic label set and paper source: our final test accuracy (%), the paper's best row of the
    method, the difference in points, and that row's label; empty with a note where the papers report on no matching
    set-up (they report on synthetic noise only)."""
    rows = []
    for data in studies:
        dataset, model, _ = setup(data)
        method = str(data.config.get("method", "?"))
        for key in label_set_keys(data, trials_only=True):
            found = label_set(data, key)
            if found is None or found.human:
                continue
            finals = final_runs(data.trials, key)
            ours = finals["test_acc"].dropna().astype(float).tolist() if "test_acc" in finals else []
            for paper in published_for(dataset, model, found.noise, found.rate, method):
                difference = round(100 * statistics.mean(ours) - paper.accuracy, 2) if ours else MISSING
                rows.append({"method": method, "study": data.name, "noise rate": rate_cell(data, key),
                             "ours (%)": fmt_mean_std(ours, percent=True),
                             "paper (%)": f"{paper.accuracy:.1f}" + (f" ± {paper.std:.1f}" if paper.std else ""),
                             "difference (points)": difference, "paper's row": paper.label, "source": paper.source})
    if rows:
        return pd.DataFrame(rows)
    dataset, model, _ = setup(studies[0])
    kinds = dict.fromkeys(kind for data in studies for kind in setup(data)[2])
    known = ", ".join(f"{d}/{m}" for d, m in published_setups())
    table = pd.DataFrame()
    table.attrs["note"] = (f"The papers publish no numbers for {dataset} with {model} under {', '.join(kinds)} noise "
                           f"at these noise rates and methods (they report on {known}), so there is nothing to set "
                           "beside ours.")
    return table
