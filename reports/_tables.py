"""A study's tables as pure functions of its trials: ablation grids, best β per λ, emphasis modes, the summary.

Each function returns a DataFrame whose rows are sorted; where the study cannot give the table (no λ/β, no runs at that
noise rate, a metric never logged) it returns an empty DataFrame whose `attrs["note"]` says in a sentence what is
missing. None of them raises on a study of another shape.

    >>> grid = ablation_grid(data.trials, 0.4, "test_acc")   # doctest: +SKIP
    >>> note(grid) or grid                                   # doctest: +SKIP
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Iterable

import numpy as np
import pandas as pd

from reports._load import StudyData

MISSING = "—"
GRID_PARAMS = ("lam", "beta")


def note(table: pd.DataFrame) -> str | None:
    """The sentence saying why `table` is empty, or None for a table with rows."""
    return table.attrs.get("note") if table.empty else None


def noise_rates(trials: pd.DataFrame) -> list[float]:
    """The noise rates that hold runs, sorted."""
    if trials.empty or "noise_rate" not in trials:
        return []
    return sorted({float(r) for r in pd.to_numeric(trials["noise_rate"], errors="coerce").dropna()})


def fmt_mean_std(values: Iterable[float]) -> str:
    """"mean ± std (n=k)" to 4 decimals (sample std); one value "0.9123 (n=1)"; none "—"."""
    finite = [float(v) for v in values if v is not None and not pd.isna(v)]
    if not finite:
        return MISSING
    if len(finite) == 1:
        return f"{finite[0]:.4f} (n=1)"
    return f"{statistics.mean(finite):.4f} ± {statistics.stdev(finite):.4f} (n={len(finite)})"


def ablation_grid(trials: pd.DataFrame, noise_rate: float, metric: str) -> pd.DataFrame:
    """Search runs at `noise_rate` as a λ × β grid of `metric`: rows λ, columns β, cells "mean ± std (n=k)"."""
    runs, missing = _search_runs(trials, noise_rate, (*GRID_PARAMS, metric))
    if missing:
        return _empty(f"The λ × β grid of {metric} at noise rate {noise_rate:g} is not applicable: {missing}.")
    lams, betas = sorted(runs["lam"].unique()), sorted(runs["beta"].unique())
    cells = {key: group[metric].tolist() for key, group in runs.groupby(list(GRID_PARAMS))}
    rows = [{"lam": _num(lam), **{f"beta={_num(beta)}": fmt_mean_std(cells.get((lam, beta), [])) for beta in betas}}
            for lam in lams]
    return pd.DataFrame(rows)


def best_beta_per_lambda(trials: pd.DataFrame, noise_rate: float) -> pd.DataFrame:
    """Per λ, the β whose search runs have the best mean val_acc (ties: the smaller β), with its mean val and test
    accuracy and the number of runs averaged."""
    runs, missing = _search_runs(trials, noise_rate, (*GRID_PARAMS, "val_acc"))
    if missing:
        return _empty(f"Best β per λ at noise rate {noise_rate:g} is not applicable: {missing}.")
    means = _setting_means(runs, list(GRID_PARAMS), ("val_acc", "test_acc"))
    rows = []
    for lam, group in means.groupby("lam", sort=True):
        best = _best_row(group, "beta")
        rows.append({"lam": lam, "beta": best["beta"], "val_acc": best["val_acc"], "test_acc": best["test_acc"],
                     "n": int(best["n"])})
    return pd.DataFrame(rows)


def emphasis_mode_table(trials: pd.DataFrame, noise_rate: float) -> pd.DataFrame:
    """Per λ (emphasis mode ψ = λ/(λ+1)), the best β by mean val_acc and its mean best_test_acc, test_acc (final),
    fit_acc (on the corrupted training labels) and intact_acc."""
    runs, missing = _search_runs(trials, noise_rate, (*GRID_PARAMS, "val_acc"))
    if missing:
        return _empty(f"The emphasis-mode table at noise rate {noise_rate:g} is not applicable: {missing}.")
    shown = ("val_acc", "best_test_acc", "test_acc", "fit_acc", "intact_acc")
    means = _setting_means(runs, list(GRID_PARAMS), shown)
    rows = []
    for lam, group in means.groupby("lam", sort=True):
        best = _best_row(group, "beta")
        rows.append({"lam": lam, "psi": lam / (lam + 1.0) if lam != -1 else math.nan, "beta": best["beta"],
                     **{name: best[name] for name in shown}, "n": int(best["n"])})
    return pd.DataFrame(rows)


def summary_table(data: StudyData) -> pd.DataFrame:
    """Per noise rate: the best setting, its val_acc, the final retrains' test_acc mean ± std, trials, final runs and
    collapsed runs."""
    trials, rates = data.trials, data.rates
    found = sorted(set(noise_rates(trials)) | set(noise_rates(rates)))
    if not found:
        return _empty(f"Study {data.name!r} holds no trial runs, so there is no summary.")
    rows = []
    for rate in found:
        rate_row = _at(rates, rate)
        rate_row = rate_row.iloc[0] if not rate_row.empty else pd.Series(dtype=object)
        at = _at(trials, rate)
        search = at[at["stage"] == "search"] if "stage" in at else at.iloc[0:0]
        final = at[at["stage"] == "final"] if "stage" in at else at.iloc[0:0]
        best = {k.removeprefix("best."): v for k, v in rate_row.items()
                if str(k).startswith("best.") and not pd.isna(v)}
        best_val = rate_row.get("best_val_acc", math.nan)
        if pd.isna(best_val) and "val_acc" in search and search["val_acc"].notna().any():
            best_val = float(search["val_acc"].max())
        finals = final["test_acc"].tolist() if "test_acc" in final else []
        collapsed = int(at["collapsed"].fillna(False).astype(bool).sum()) if "collapsed" in at else 0
        rows.append({"noise_rate": rate, "best_setting": _setting(best) if best or rate_row.empty else "(defaults)", "best_val_acc": best_val,
                     "final_test_acc": fmt_mean_std(finals), "trials": len(search), "final_runs": len(final),
                     "collapsed": collapsed})
    return pd.DataFrame(rows)


def _search_runs(trials: pd.DataFrame, noise_rate: float, needed: tuple[str, ...]) -> tuple[pd.DataFrame, str]:
    """The search runs at `noise_rate` with every `needed` column numeric, or a phrase saying what is missing."""
    if trials.empty:
        return trials, "the study holds no trial runs"
    absent = [c for c in needed if c not in trials]
    if absent:
        method = _method(trials)
        return trials.iloc[0:0], f"the runs{method} have no {' or '.join(absent)}"
    runs = _at(trials, noise_rate)
    runs = runs[runs["stage"] == "search"] if "stage" in runs else runs.iloc[0:0]
    if runs.empty:
        return runs, f"no search runs at noise rate {noise_rate:g}"
    runs = runs.copy()
    for column in needed:
        runs[column] = pd.to_numeric(runs[column], errors="coerce")
    runs = runs.dropna(subset=list(needed))
    if runs.empty:
        return runs, f"no search run at noise rate {noise_rate:g} logged all of {', '.join(needed)}"
    return runs, ""


def _setting_means(runs: pd.DataFrame, keys: list[str], metrics: tuple[str, ...]) -> pd.DataFrame:
    """One row per setting (`keys`): the mean of each metric (NaN where never logged) and n, the runs averaged."""
    frame = runs.copy()
    for name in metrics:
        frame[name] = pd.to_numeric(frame[name], errors="coerce") if name in frame else np.nan
    grouped = frame.groupby(keys, sort=True)
    means = grouped[list(metrics)].mean()
    means["n"] = grouped.size()
    return means.reset_index()


def _best_row(group: pd.DataFrame, tie_key: str) -> pd.Series:
    ordered = group.sort_values(["val_acc", tie_key], ascending=[False, True], kind="stable")
    return ordered.iloc[0]


def _at(frame: pd.DataFrame, rate: float) -> pd.DataFrame:
    if frame.empty or "noise_rate" not in frame:
        return frame.iloc[0:0]
    values = pd.to_numeric(frame["noise_rate"], errors="coerce")
    return frame[np.isclose(values.fillna(-1.0), rate)]


def _method(trials: pd.DataFrame) -> str:
    if "method" in trials:
        methods = sorted({str(m) for m in trials["method"].dropna()})
        if methods:
            return f" (method {', '.join(methods)})"
    return ""


def _setting(best: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_num(v)}" for k, v in sorted(best.items())) or MISSING


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (float, int, np.floating, np.integer)) else str(value)


def _empty(sentence: str) -> pd.DataFrame:
    table = pd.DataFrame()
    table.attrs["note"] = sentence
    return table
