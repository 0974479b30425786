"""The study's tie rule (`study.choice`) applied to the runs a report reads back from MLflow: a label set's settings
best first, its runs best first, and which settings tie, as the driver ranked them when it chose what to retrain.

    >>> ranking = rank_settings(runs, ["lam", "beta"])   # doctest: +SKIP
    >>> study.choice.tied(ranking)[0].setting            # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from reports._load import StudyData
from study.choice import Ranked, name_key, order_key, rank


def searched_names(data: StudyData, fallback: Sequence[str] = ("lam", "beta")) -> list[str]:
    """The parameters the study chose by (its label sets' best.<param> names), in the fixed order; where none is
    logged, those of `fallback` that its trials hold."""
    names = [str(c).removeprefix("best.") for c in data.rates.columns if str(c).startswith("best.")]
    names = names or [name for name in fallback if name in data.trials]
    return sorted(names, key=name_key)


def setting_of(row: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """A run's setting: its values of `names` (NaN where it has none)."""
    return {name: row.get(name, float("nan")) for name in names}


def rank_settings(runs: pd.DataFrame, names: Sequence[str], metric: str = "val_acc") -> list[Ranked]:
    """The settings (values of `names`) of `runs`, best mean `metric` first, ties by the study's rule."""
    if runs.empty or metric not in runs:
        return []
    scores = pd.to_numeric(runs[metric], errors="coerce")
    return rank((setting_of(row, names), score) for (_, row), score in zip(runs.iterrows(), scores)
                if pd.notna(score))


def ranked_runs(runs: pd.DataFrame, names: Sequence[str], metric: str = "val_acc") -> pd.DataFrame:
    """`runs` best `metric` first, ties by the study's rule on their settings (values of `names`), then by run id;
    those without `metric` dropped."""
    if runs.empty or metric not in runs.columns:
        return pd.DataFrame()
    runs = runs[pd.to_numeric(runs[metric], errors="coerce").notna()]
    keys = {i: (*order_key(setting_of(row, names), float(row[metric])), str(row.get("run_id", "")))
            for i, row in runs.iterrows()}
    return runs.loc[sorted(keys, key=keys.__getitem__)]


def best_row(settings: pd.DataFrame, names: Sequence[str]) -> pd.Series:
    """The row of `settings` (one per setting: its `names` and mean val_acc) that the study's rule ranks first."""
    keys = {i: order_key(setting_of(row, names), float(row["val_acc"])) for i, row in settings.iterrows()}
    return settings.loc[min(keys, key=keys.__getitem__)]
