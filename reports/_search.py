"""Each label set's search as Optuna sees it, replayed from MLflow: its optimisation history, its parameter
importances (Optuna's fANOVA evaluator, seeded) and, for a free search of DM, the λ–β plane it sampled.

    >>> study = search_study(data, "0.4")                 # doctest: +SKIP
    >>> optuna.importance.get_param_importances(study)    # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from typing import Callable, TypeVar

import matplotlib.ticker
import numpy as np
import optuna
import pandas as pd
from optuna.distributions import FloatDistribution
from optuna.importance import FanovaImportanceEvaluator, get_param_importances

from reports._load import StudyData
from reports._plot import OKABE_ITO, Drawn, best_trial, dm_only, first_in_row, fmt, legend_below, panel_grid
from reports._tables import GRID_PARAMS, axis_name, is_grid, label_set, label_set_keys, noise_label, search_runs
from trainers.errors import ConfigError

T = TypeVar("T")
FEW_TRIALS = 10  # importances from fewer search trials of a label set are flagged: fANOVA's forest is then a guess


def search_study(data: StudyData, key: str) -> optuna.Study | None:
    """The finished search trials of the label set `key` as a new in-memory Optuna study (maximising val_acc, trials in
    the order they started), over the parameters the study searched; None where there are fewer than two or no known
    space."""
    return data.derived(f"search_study {key!r}", lambda: _replay(data, key))


def _replay(data: StudyData, key: str) -> optuna.Study | None:
    runs, missing = search_runs(data.trials, key, ("val_acc",))
    if missing:
        return None
    runs = runs.sort_values(["start_time", "run_id"], kind="stable")
    distributions = _distributions(data, key, runs)
    if len(runs) < 2 or not distributions:
        return None
    study = _quiet(lambda: optuna.create_study(direction="maximize", study_name=f"{data.name}-{key}"))
    study.add_trials([optuna.trial.create_trial(params={n: float(row[n]) for n in distributions},
                                                distributions=distributions, value=float(row["val_acc"]))
                      for _, row in runs.iterrows()])
    return study


def importances(study: optuna.Study) -> dict[str, float]:
    """fANOVA importance (seed 0, summing to 1) of each parameter that varied; {} where none did, or where every
    trial's validation accuracy is the same (nothing to explain)."""
    varied = [n for n, d in study.trials[0].distributions.items()
              if len({t.params[n] for t in study.trials}) > 1]
    if not varied or len({t.value for t in study.trials}) < 2:
        return {}
    found = _quiet(lambda: get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), params=varied))
    return {name: float(found[name]) for name in sorted(found)}


def importance_table(data: StudyData) -> pd.DataFrame:
    """Parameter importances per label set: one row per parameter, one column per label set (empty with a note where
    no label set's search could be replayed)."""
    return data.derived("importance_table", lambda: _importance_table(data))


def _importance_table(data: StudyData) -> pd.DataFrame:
    columns = {}
    for key in label_set_keys(data):
        study = search_study(data, key)
        found = importances(study) if study is not None else {}
        if found:
            columns[_column(data, key)] = found
    if not columns:
        table = pd.DataFrame()
        table.attrs["note"] = (f"No parameter importances: no {axis_name(data)} has two finished search trials over "
                               "a parameter that varied with validation accuracies that differ.")
        return table
    table = pd.DataFrame(columns).sort_index()
    table.index.name = "parameter"
    return table.reset_index()


def importance_caveat(data: StudyData) -> str:
    """The clause that flags the label sets whose importances rest on fewer than FEW_TRIALS trials ("" where none
    does), to end a caption with."""
    table = importance_table(data)
    few = [f"{_column(data, key)}: {len(study.trials)}" for key in label_set_keys(data)
           if _column(data, key) in table.columns and (study := search_study(data, key)) is not None
           and len(study.trials) < FEW_TRIALS]
    if not few:
        return ""
    return (f"; caution: fewer than {FEW_TRIALS} trials per {axis_name(data)} ({', '.join(few)}), too few for fANOVA "
            "to rank the parameters reliably, so read them as a hint")


def _column(data: StudyData, key: str) -> str:
    """The importance table's column of the label set `key`."""
    return noise_label(data, key, "noise {rate:g}")


def history_figure(data: StudyData) -> Drawn:
    """Validation accuracy of each search trial in the order it started, and the best so far, one panel per label
    set."""
    panels = [(key, study) for key in label_set_keys(data) if (study := search_study(data, key)) is not None]
    if not panels:
        return None
    fig, axes = panel_grid(len(panels), 3.2, (3.0,))
    for index, ((ax,), (key, study)) in enumerate(zip(axes, panels)):
        values = np.array([t.value for t in study.trials]) * 100
        number = np.arange(1, len(values) + 1)
        ax.plot(number, values, "o", color=OKABE_ITO[4], ms=5, label="trial")
        ax.step(number, np.maximum.accumulate(values), where="post", color=OKABE_ITO[5], lw=1.8, label="best so far")
        ax.set_title(noise_label(data, key, "Noise {pct}"))
        ax.set_xlabel("trial (in start order)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if first_in_row(index):
            ax.set_ylabel("validation accuracy (%)")
    legend_below(fig, *axes[0][0].get_legend_handles_labels(), 2)
    return fig, (f"Optimisation history of each {axis_name(data)}'s search: every trial's validation accuracy in the "
                 "order the trials started, with the best so far.")


def importance_figure(data: StudyData) -> Drawn:
    """Horizontal bars of each label set's fANOVA importances."""
    table = importance_table(data)
    if table.empty:
        return None
    keys = [key for key in label_set_keys(data) if _column(data, key) in table.columns]
    fig, axes = panel_grid(len(keys), 2.8, (0.45 * len(table) + 1.6,), margin=1.2, share_y=True)
    for (ax,), key in zip(axes, keys):
        ax.barh(range(len(table)), table[_column(data, key)].fillna(0.0), color=OKABE_ITO[2], edgecolor=OKABE_ITO[4])
        ax.set_yticks(range(len(table)), [_label(p) for p in table["parameter"]])
        ax.set_xlim(0, 1)
        ax.set_title(noise_label(data, key, "Noise {pct}"))
        ax.set_xlabel("importance (fANOVA)")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig, (f"How much of the variation in validation accuracy each searched parameter explains, per "
                 f"{axis_name(data)} (Optuna's fANOVA importance evaluator, seed 0; shares summing to 1)"
                 f"{importance_caveat(data)}.")


def scatter_figure(data: StudyData) -> Drawn:
    """The (λ, β) of each trial of a free DM search, coloured by validation accuracy, best ringed; a panel per label
    set."""
    panels = []
    for key in label_set_keys(data):
        runs, missing = search_runs(dm_only(data.trials), key, (*GRID_PARAMS, "val_acc"))
        if not missing and len(runs) >= 2 and not (is_grid(runs) if data.grid_search is None else data.grid_search):
            panels.append((key, runs.sort_values("run_id", kind="stable")))
    if not panels:
        return None
    fig, axes = panel_grid(len(panels), 3.6, (3.3,), margin=0.4)
    for index, ((ax,), (key, runs)) in enumerate(zip(axes, panels)):
        values = runs["val_acc"].to_numpy() * 100
        points = ax.scatter(runs["lam"], runs["beta"], c=values, cmap="viridis", s=46, edgecolors="black", lw=0.5)
        best = best_trial(data, key)  # ties by the study's rule, as the summary's
        ax.scatter([best["lam"]], [best["beta"]], s=190, facecolors="none", edgecolors=OKABE_ITO[5], lw=2.2)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("λ (emphasis mode exponent)")
        ax.set_title(f"{noise_label(data, key, 'Noise {pct}')}: best λ={fmt(best['lam'])}, β={fmt(best['beta'])}")
        ax.grid(alpha=0.3, which="both")
        fig.colorbar(points, ax=ax, pad=0.02).set_label("validation accuracy (%)")
        if first_in_row(index):
            ax.set_ylabel("β (emphasis spread, log scale)")
    fig.tight_layout()
    return fig, (f"The λ and β of every trial of the free search at each {axis_name(data)}, coloured by validation "
                 "accuracy, with the best trial ringed.")


def _distributions(data: StudyData, key: str, runs: pd.DataFrame) -> dict[str, FloatDistribution]:
    """The parameters the study searched for the label set `key` (a grid: λ and β; else its Optuna space's, over the
    ranges of its rate or, for a human kind, the default ones; log-scaled where that is), each over the range of values
    the runs hold; {} where a run lacks one or the config cannot be read."""
    from study.config import study_config_from_dict  # the study's config schema: read, not run

    try:
        config = study_config_from_dict(data.config, allow_missing_gpu=True)
    except ConfigError:
        return {}
    s = config.search
    if s.mode == "grid":
        names: dict[str, bool] = dict.fromkeys(GRID_PARAMS, False)
    else:
        from search_spaces import make_space

        trial = _quiet(lambda: optuna.create_study().ask())
        found = label_set(data, key)
        rate = None if found is None or found.human else found.rate
        make_space(config.method, ranges=s.ranges_for(rate), parametrization=s.parametrization, tune_lr=s.tune_lr,
                   tune_weight_decay=s.tune_weight_decay)(trial)
        names = {n: bool(getattr(d, "log", False)) for n, d in trial.distributions.items()}
    out = {}
    for name, log in names.items():
        values = pd.to_numeric(runs[name], errors="coerce") if name in runs else pd.Series(dtype=float)
        if values.isna().any() or values.empty:
            return {}
        out[name] = FloatDistribution(float(values.min()), float(values.max()), log=log and values.min() > 0)
    return out


def _label(name: str) -> str:
    return {"lam": "λ", "beta": "β", "psi": "ψ", "rho": "ρ", "weight_decay": "weight decay"}.get(name, name)


def _quiet(make: Callable[[], T]) -> T:
    """`make()` without Optuna's INFO lines and warnings (they are not the report's)."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return make()
    finally:
        optuna.logging.set_verbosity(verbosity)


SEARCH_FIGURES: tuple[tuple[str, Callable[[StudyData], Drawn]], ...] = (
    ("search_lam_beta", scatter_figure),
    ("search_history", history_figure),
    ("param_importances", importance_figure),
)

