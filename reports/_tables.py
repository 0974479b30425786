"""A study's tables as pure functions of its trials: ablation grids, best β per λ, emphasis modes, the summary.

Tables are per label set (a noise kind at a rate, or a human kind's labels), named by its key (`label_set_keys`).
Each function returns a DataFrame whose rows are sorted; where the study cannot give the table (no λ/β, no runs of
that label set, a metric never logged) it returns an empty DataFrame whose `attrs["note"]` says in a sentence what is
missing. None of them raises on a study of another shape.

    >>> grid = ablation_grid(data.trials, "0.4", "test_acc")   # doctest: +SKIP
    >>> note(grid) or grid                                     # doctest: +SKIP
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable

import numpy as np
import pandas as pd

from reports._load import StudyData, label_set_column, ordered_keys
from reports._ties import Ranked, best_row, rank_settings, ranked_runs, searched_names, setting_of
from study import choice
from study.choice import fmt_number, fmt_setting, name_key, setting_key, tied
from study.label_sets import LabelSet, noise_kinds

MISSING = "—"
GRID_PARAMS = ("lam", "beta")
RATE_TEMPLATE = "noise rate {rate:g}"  # a label set's name in a study of one synthetic kind
TIES_SHOWN = 5  # tied settings a note lists by name


def note(table: pd.DataFrame) -> str | None:
    """The sentence saying why `table` is empty, or None for a table with rows."""
    return table.attrs.get("note") if table.empty else None


def label_set_keys(data: StudyData, *, trials_only: bool = False) -> list[str]:
    """The keys of the label sets that hold runs (with `trials_only`: trial runs), in the study's order."""
    return ordered_keys(data.config, data.trials, *(() if trials_only else (data.rates,)))


def several_kinds(data: StudyData) -> bool:
    """Whether `data` sweeps several noise kinds (its tables then have a label-set column, not a noise-rate one)."""
    noise = data.config.get("noise") if isinstance(data.config, dict) else None
    return noise is not None and len(noise_kinds(noise)) > 1


def axis_name(data: StudyData) -> str:
    """What the study sweeps, in words: "label set" in a study of several noise kinds, else "noise rate"."""
    return "label set" if several_kinds(data) else "noise rate"


def label_set(data: StudyData, key: str) -> LabelSet | None:
    """The label set `key` names, as its runs were logged (their noise kind and rate); None where no run holds it."""
    return _label_set(key, runs_of(data.trials, key), runs_of(data.rates, key))


def realised_rate(trials: pd.DataFrame, key: str) -> float | None:
    """The mean noise_rate_realised of the label set's final retrains, else of its search trials; None where neither
    logged it."""
    return _realised(runs_of(trials, key))


def noise_label(data: StudyData, key: str, synthetic: str = RATE_TEMPLATE) -> str:
    """The name reports give `data`'s label set `key`: in a study of one synthetic kind `synthetic` filled in ({rate}:
    the rate, {pct}: it as `study.label_sets.pct_label` writes it); in one of several kinds "<kind> <pct>" ("symmetric
    40%"); a human kind's "<kind> (<realised rate, % to one decimal>)" (`realised_rate`; the kind alone where none
    logged it)."""
    return _name(key, synthetic, runs_of(data.trials, key), runs_of(data.rates, key))


def rate_cell(data: StudyData, key: str) -> float | str:
    """A table's label-set cell: the rate itself in a study of one synthetic kind, else its `noise_label`."""
    found = label_set(data, key)
    return noise_label(data, key) if found is None or found.human or found.several else found.rate


def file_key(key: str) -> str:
    """A label-set key as it may stand in a file name: any character but letters, digits, ".", "-" and "_" as "_"."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", key)


def label_column(data: StudyData) -> str:
    """The name of a table's label-set column: noise_rate in a study of one noise kind, else label_set."""
    return axis_name(data).replace(" ", "_")


def fmt_mean_std(values: Iterable[float], *, percent: bool = False) -> str:
    """"mean ± std (n=k)" (sample std) as the console writes it (`study.choice.fmt_mean_std`): fractions to 4
    decimals, or with `percent` as % to 2; one value "0.9123 (n=1)"; none "—"."""
    return choice.fmt_mean_std(values, digits=2 if percent else 4, scale=100 if percent else 1)


def runs_of(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """The runs in `frame` of the label set `key`."""
    return frame if frame.empty else frame[label_set_column(frame) == key]


def final_runs(trials: pd.DataFrame, key: str) -> pd.DataFrame:
    """The final retrains of the label set `key`."""
    at = runs_of(trials, key)
    return at[at["stage"] == "final"] if "stage" in at else at.iloc[0:0]


def ablation_grid(trials: pd.DataFrame, key: str, metric: str, grid: bool | None = None) -> pd.DataFrame:
    """Search runs of the label set `key` as a λ × β grid of `metric`: rows λ, columns β, cells "mean ± std (n=k)".

    `grid`: whether the search ran a grid (None: judged from the runs, see `is_grid`); the same in the functions below.
    """
    runs, missing = _grid_runs(trials, key, metric, grid)
    if missing:
        return _empty(f"The λ × β grid of {metric} at {_named(trials, key)} is not applicable: {missing}.")
    lams, betas = sorted(runs["lam"].unique()), sorted(runs["beta"].unique())
    cells = {cell: group[metric].tolist() for cell, group in runs.groupby(list(GRID_PARAMS))}
    rows = [{"lam": fmt_number(lam), **{f"beta={fmt_number(beta)}": fmt_mean_std(cells.get((lam, beta), []))
                                        for beta in betas}}
            for lam in lams]
    return pd.DataFrame(rows)


def grid_means(trials: pd.DataFrame, key: str, metric: str,
               grid: bool | None = None) -> pd.DataFrame | None:
    """The mean of `metric` per grid cell of the label set `key` (index λ, columns β, NaN where not run), or None where
    the search ran no grid."""
    runs, missing = _grid_runs(trials, key, metric, grid)
    if missing:
        return None
    return runs.pivot_table(index="lam", columns="beta", values=metric, aggfunc="mean")


def is_grid(runs: pd.DataFrame) -> bool:
    """Whether the runs' (λ, β) settings form a grid: one setting, or some λ or β shared by several settings (a free
    search draws a new λ and β for every trial)."""
    cells = runs[list(GRID_PARAMS)].drop_duplicates()
    return len(cells) == 1 or cells["lam"].nunique() < len(cells) or cells["beta"].nunique() < len(cells)


def best_beta_per_lambda(trials: pd.DataFrame, key: str, grid: bool | None = None) -> pd.DataFrame:
    """Per λ, the β whose search runs have the best mean val_acc (ties by the study's rule: the smaller β), with its
    mean val and test accuracy and the number of runs averaged."""
    runs, missing = _grid_runs(trials, key, "val_acc", grid)
    if missing:
        return _empty(f"Best β per λ at {_named(trials, key)} is not applicable: {missing}.")
    means = _setting_means(runs, list(GRID_PARAMS), ("val_acc", "test_acc"))
    rows = []
    for lam, group in means.groupby("lam", sort=True):
        best = best_row(group, GRID_PARAMS)
        rows.append({"lam": lam, "beta": best["beta"], "val_acc": best["val_acc"], "test_acc": best["test_acc"],
                     "n": int(best["n"])})
    return pd.DataFrame(rows)


def emphasis_mode_table(trials: pd.DataFrame, key: str, grid: bool | None = None) -> pd.DataFrame:
    """Per emphasis mode, the best setting by mean val_acc (ties by the study's rule) and its mean best_test_acc,
    test_acc (final), fit_acc (on the corrupted training labels) and intact_acc. Modes are the grid's λ (ψ = λ/(λ+1)),
    or for a free search the quarters of ψ ∈ [0, 1]."""
    runs, missing = search_runs(trials, key, (*GRID_PARAMS, "val_acc"))
    if missing:
        return _empty(f"The emphasis-mode table at {_named(trials, key)} is not applicable: {missing}.")
    shown = ("val_acc", "best_test_acc", "test_acc", "fit_acc", "intact_acc")
    means = _setting_means(runs, list(GRID_PARAMS), shown)
    means["psi"] = means["lam"] / (means["lam"] + 1.0)
    grid = is_grid(runs) if grid is None else grid
    modes = means["lam"] if grid else means["psi"].map(_psi_quarter)
    rows = []
    for mode, group in means.groupby(modes, sort=True):
        best = best_row(group, GRID_PARAMS)
        rows.append({**({} if grid else {"psi range": mode}), "lam": best["lam"], "psi": best["psi"],
                     "beta": best["beta"], **{name: best[name] for name in shown}, "n": int(best["n"])})
    return pd.DataFrame(rows)


PROBE_METRICS = ("weight_clean", "weight_noisy", "noisy_zero_weight", "relabel_clean", "relabel_noisy")


def grid_cells_table(trials: pd.DataFrame, key: str, params: list[str]) -> pd.DataFrame:
    """Search runs of the label set `key` per cell of a grid other than λ × β (e.g. IEG's components, seed 003 Table
    7): the cell's `params`, val_acc and test_acc as "mean ± std (n=k)" over its runs, the last epoch's mean weights
    and relabel coefficients where logged; best mean val_acc first (ties by the study's rule)."""
    runs, missing = search_runs(trials, key, ("val_acc",))
    columns = [name for name in params if name in runs]
    if missing or not columns:
        reason = missing or "the runs hold none of the grid's parameters"
        return _empty(f"The grid cells at {_named(trials, key)} cannot be listed: {reason}.")
    shown = [name for name in PROBE_METRICS if name in runs]
    place = {setting_key(r.setting): i for i, r in enumerate(rank_settings(runs, columns))}
    rows = []
    for cell, group in runs.groupby(columns, sort=True, dropna=False):
        setting = dict(zip(columns, cell if isinstance(cell, tuple) else (cell,)))
        values = pd.to_numeric(group.get("test_acc", pd.Series(dtype=float)), errors="coerce")
        rows.append({**{c: fmt_number(v) for c, v in setting.items()},
                     "val_acc": fmt_mean_std(group["val_acc"]), "test_acc": fmt_mean_std(values),
                     **{name: pd.to_numeric(group[name], errors="coerce").mean() for name in shown},
                     "_order": place[setting_key(setting)]})
    return pd.DataFrame(rows).sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


def search_trials_table(trials: pd.DataFrame, key: str, searched: list[str]) -> pd.DataFrame:
    """Every search run of the label set `key`, best val_acc first (ties by the study's rule, then by run id; runs
    without val_acc last): rank, the `searched` parameters (ψ beside λ), val_acc, test_acc and how the run ended."""
    runs, missing = search_runs(trials, key, (), failed=True)
    if missing:
        return _empty(f"The search trials at {_named(trials, key)} cannot be listed: {missing}.")
    runs = runs.assign(val_acc=pd.to_numeric(runs["val_acc"], errors="coerce") if "val_acc" in runs else math.nan)
    columns = [c for c in searched if c in runs]
    ranked = ranked_runs(runs, columns)
    runs = runs.loc[[*ranked.index, *runs.drop(index=ranked.index).sort_values("run_id", kind="stable").index]]
    table = runs[columns].apply(pd.to_numeric, errors="coerce") if columns else pd.DataFrame(index=runs.index)
    if "lam" in table and "psi" not in table:
        table.insert(table.columns.get_loc("lam") + 1, "psi", table["lam"] / (table["lam"] + 1.0))
    table["val_acc"] = runs["val_acc"]
    table["test_acc"] = pd.to_numeric(runs["test_acc"], errors="coerce") if "test_acc" in runs else math.nan
    table["ended"] = [_ending(row) for _, row in runs.iterrows()]
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.reset_index(drop=True)


def summary_table(data: StudyData) -> pd.DataFrame:
    """Per label set (column `label_column`): the best setting, its val_acc, how many settings tie at that val_acc
    (`tie_notes` names them), the final retrains' test_acc mean ± std, trials, final runs, collapsed runs and failed
    runs."""
    trials = data.trials
    keys = label_set_keys(data)
    if not keys:
        return _empty(f"Study {data.name!r} holds no trial runs, so there is no summary.")
    rows = []
    for key in keys:
        rate_row = runs_of(data.rates, key)
        rate_row = rate_row.iloc[0] if not rate_row.empty else pd.Series(dtype=object)
        at = runs_of(trials, key)
        search = at[at["stage"] == "search"] if "stage" in at else at.iloc[0:0]
        final = final_runs(trials, key)
        best = _chosen(rate_row)
        ranking = setting_ranking(data, key)
        best_val = rate_row.get("best_val_acc", math.nan)
        if pd.isna(best_val) and ranking:
            best_val = ranking[0].score
        finals = final["test_acc"].tolist() if "test_acc" in final else []
        collapsed = int(at["collapsed"].fillna(False).astype(bool).sum()) if "collapsed" in at else 0
        failed = int((at["status"] == "FAILED").sum()) if "status" in at else 0
        setting = _setting(best) if best or rate_row.empty else "(defaults)"
        rows.append({label_column(data): rate_cell(data, key), "best_setting": setting, "best_val_acc": best_val,
                     "tied": len(tied(ranking)) if ranking else None, "final_test_acc": fmt_mean_std(finals),
                     "trials": len(search), "final_runs": len(final), "collapsed": collapsed, "failed": failed})
    return pd.DataFrame(rows)


def validation_choice_table(data: StudyData) -> pd.DataFrame:
    """Per label set: the setting that validation by the noisy labels would choose (best mean last val_acc_noisy)
    against the one validation by the clean labels chooses (val_acc_clean), ties by the study's rule: the setting, its
    mean val accuracies and test_acc and, where it is the one retrained, the final retrains' test_acc."""
    needed = ("val_acc_clean", "val_acc_noisy", "test_acc")
    rows = []
    for key in label_set_keys(data, trials_only=True):
        runs, missing = search_runs(data.trials, key, needed)
        if missing:
            return _empty(f"Noisy against clean validation needs both validation accuracies, logged where the true "
                          f"labels are known: {missing}.")
        best, names = chosen_setting(data, key), _names(data, key)
        finals = final_runs(data.trials, key)
        for labels in ("clean", "noisy"):
            setting = rank_settings(runs, names, f"val_acc_{labels}")[0].setting
            mine = runs[[setting_key(setting_of(row, names)) == setting_key(setting) for _, row in runs.iterrows()]]
            retrained = bool(best) and setting_key(setting) == setting_key(best)
            rows.append({label_column(data): rate_cell(data, key), "validation": labels, "setting": _setting(setting),
                         **{name: mine[name].mean() for name in needed},
                         "final_test_acc": fmt_mean_std(finals["test_acc"]) if retrained and "test_acc" in finals
                         else MISSING})
    return pd.DataFrame(rows) if rows else _empty(f"Study {data.name!r} holds no search runs.")


def setting_ranking(data: StudyData, key: str) -> list[Ranked]:
    """The settings of the label set `key`'s finished search runs, best mean val_acc first, ties by the study's rule
    (`study.choice`), as the driver ranked them."""
    runs, missing = search_runs(data.trials, key, ("val_acc",))
    return [] if missing else rank_settings(runs, _names(data, key))


def tie_notes(data: StudyData) -> list[str]:
    """A sentence per label set whose best mean val_acc several settings share: the tied settings, the one the rule
    picks and, where the study retrained another (chosen before the rule), that one."""
    notes = []
    for key in label_set_keys(data, trials_only=True):
        ties = tied(setting_ranking(data, key))
        if len(ties) < 2:
            continue
        names = "; ".join(fmt_setting(r.setting) for r in ties[:TIES_SHOWN])
        more = f"; and {len(ties) - TIES_SHOWN} more" if len(ties) > TIES_SHOWN else ""
        note = (f"{noise_label(data, key)}: {len(ties)} settings tie at val_acc {fmt_number(ties[0].score)} "
                f"({names}{more}); the tie rule picks {fmt_setting(ties[0].setting)}")
        best = chosen_setting(data, key)
        if best and setting_key(best) != setting_key(ties[0].setting):
            note += f", but the study retrained {fmt_setting(best)} (chosen before this rule)"
        notes.append(note + ".")
    return notes


def chosen_setting(data: StudyData, key: str) -> dict[str, Any]:
    """The setting the label set `key`'s run says the search chose ({} where it logged none)."""
    rate_row = runs_of(data.rates, key)
    return _chosen(rate_row.iloc[0]) if not rate_row.empty else {}


def _names(data: StudyData, key: str) -> list[str]:
    """The parameters that make a setting of the label set `key`: those its run chose by, else the study's."""
    return sorted(chosen_setting(data, key), key=name_key) or searched_names(data)


def search_runs(trials: pd.DataFrame, key: str, needed: tuple[str, ...], *,
                 failed: bool = False) -> tuple[pd.DataFrame, str]:
    """The finished (with `failed`: all) search runs of the label set `key` with every `needed` column numeric, or a
    phrase saying what is missing."""
    if trials.empty:
        return trials, "the study holds no trial runs"
    absent = [c for c in needed if c not in trials]
    if absent:
        method = _method(trials)
        return trials.iloc[0:0], f"the runs{method} have no {' or '.join(absent)}"
    runs = runs_of(trials, key)
    runs = runs[runs["stage"] == "search"] if "stage" in runs else runs.iloc[0:0]
    if not failed and "status" in runs:
        runs = runs[runs["status"] == "FINISHED"]
    if runs.empty:
        return runs, f"no search runs at {_named(trials, key)}"
    runs = runs.copy()
    for column in needed:
        runs[column] = pd.to_numeric(runs[column], errors="coerce")
    runs = runs.dropna(subset=list(needed))
    if runs.empty:
        return runs, f"no search run at {_named(trials, key)} logged all of {', '.join(needed)}"
    return runs, ""


def _grid_runs(trials: pd.DataFrame, key: str, metric: str,
               grid: bool | None) -> tuple[pd.DataFrame, str]:
    """`search_runs` for a λ × β table, with the phrase saying so where the search drew free settings."""
    runs, missing = search_runs(trials, key, (*GRID_PARAMS, metric))
    if not missing and not (is_grid(runs) if grid is None else grid):
        missing = (f"the search drew λ and β freely ({len(runs)} settings), so they form no grid; the search-trials "
                   "table and the λ–β figure show them")
    return runs, missing


def _psi_quarter(psi: float) -> str:
    low = min(math.floor(psi * 4), 3) / 4
    return f"[{low:g}, {low + 0.25:g}{']' if low == 0.75 else ')'}"


def _ending(run: pd.Series) -> str:
    if run.get("collapsed") is True:
        return "collapsed"
    if run.get("early_stopped") is True:
        return "stopped early"
    return str(run.get("status", "")).lower() or MISSING


def _setting_means(runs: pd.DataFrame, keys: list[str], metrics: tuple[str, ...]) -> pd.DataFrame:
    """One row per setting (`keys`): the mean of each metric (NaN where never logged) and n, the runs averaged."""
    frame = runs.copy()
    for name in metrics:
        frame[name] = pd.to_numeric(frame[name], errors="coerce") if name in frame else np.nan
    grouped = frame.groupby(keys, sort=True)
    means = grouped[list(metrics)].mean()
    means["n"] = grouped.size()
    return means.reset_index()


def _chosen(rate_row: pd.Series) -> dict[str, Any]:
    """The setting a label set's run says the search chose: its best.<param> values, by parameter."""
    return {str(k).removeprefix("best."): v for k, v in rate_row.items()
            if str(k).startswith("best.") and not pd.isna(v)}


def _label_set(key: str, *runs: pd.DataFrame) -> LabelSet | None:
    """The label set `key`, read off the first of `runs` (each a frame of its runs) that holds one: its noise kind
    (symmetric where none logged) and rate; None where none does."""
    for frame in runs:
        if not frame.empty:
            row = frame.iloc[0]
            kind = row.get("noise") if isinstance(row.get("noise"), str) else "symmetric"
            rate = float(pd.to_numeric(row.get("noise_rate"), errors="coerce"))
            alone = LabelSet(kind, rate)
            return alone if alone.key == key else LabelSet(kind, rate, True)
    return None


def _name(key: str, synthetic: str, trials: pd.DataFrame, *more: pd.DataFrame) -> str:
    """`noise_label` of the label set `key` from its runs: its `trials`, then `more`; "label set <key>" where none
    holds it."""
    found = _label_set(key, trials, *more)
    if found is None:
        return f"label set {key}"
    if not found.human:
        return found.name(synthetic)
    realised = _realised(trials)
    return found.noise if realised is None else f"{found.noise} ({realised * 100:.1f}%)"


def _named(trials: pd.DataFrame, key: str) -> str:
    """The label set `key` named in a table's note, from its trials."""
    return _name(key, RATE_TEMPLATE, runs_of(trials, key))


def _realised(runs: pd.DataFrame) -> float | None:
    """The mean noise_rate_realised of the final retrains among `runs`, else of its search trials; None where neither
    logged it."""
    for stage in ("final", "search"):
        part = runs[runs["stage"] == stage] if "stage" in runs else runs.iloc[0:0]
        realised = pd.to_numeric(part.get("noise_rate_realised", pd.Series(dtype=float)), errors="coerce").dropna()
        if not realised.empty:
            return float(realised.mean())
    return None


def _method(trials: pd.DataFrame) -> str:
    if "method" in trials:
        methods = sorted({str(m) for m in trials["method"].dropna()})
        if methods:
            return f" (method {', '.join(methods)})"
    return ""


def _setting(best: dict[str, Any]) -> str:
    return fmt_setting(best) or MISSING


def _empty(sentence: str) -> pd.DataFrame:
    table = pd.DataFrame()
    table.attrs["note"] = sentence
    return table
