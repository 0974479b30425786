"""Emphasis over time: the emphasis mode ψ(t) = λ/(λ+1) over training progress t of the best setting of every
comparable DM study (a fixed setting, a searched ψ schedule, Population Based Training's piecewise policy), and their
final test accuracy side by side; shown only where one of them chose a ψ that varies over training.

    >>> curves = emphasis_curves(data)        # doctest: +SKIP
    >>> curves["0.4"][0]                      # doctest: +SKIP
    ('digits-sched (schedule)', array([0., 0.001, ...]), array([0.5, 0.4997, ...]))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports._compare import comparable_studies, comparison_table, identity_of, key_of
from reports._load import StudyData
from reports._plot import OKABE_ITO, STYLE, Drawn, Figure, first_in_row, legend_below, panel_grid, plt, save
from reports._tables import chosen_setting, label_set_keys, noise_label
from trainers.param_schedules import ParamSchedule
from trainers.reparam import to_psi_rho

KINDS = ("fixed", "schedule", "PBT")  # how a study's best ψ came about, in the order rows and curves are shown
T_POINTS = 1001  # samples of t in [0, 1]: a step of a piecewise policy is drawn as a (nearly) vertical segment
FIGURE = "emphasis_psi_t"
TABLE = "emphasis_over_time"
LEGEND_COLUMNS = 3  # studies to a legend row: fixed, schedule and PBT side by side
Curve = tuple[str, np.ndarray, np.ndarray]  # label, t, ψ(t)


def best_psi(data: StudyData, key: str) -> float | str | None:
    """The emphasis mode of the setting chosen at the label set `key`: its best.psi as logged (a number, or a schedule
    string), else ψ = λ/(λ+1) of its best.lam; None where it chose neither."""
    setting = chosen_setting(data, key)
    if "psi" in setting:
        return setting["psi"]
    if "lam" in setting and "beta" in setting:
        return to_psi_rho(float(setting["lam"]), float(setting["beta"]))[0]
    return None


def psi_course(value: float | str, t: np.ndarray) -> np.ndarray:
    """ψ at each progress in `t`: a number throughout, or a schedule string evaluated by `ParamSchedule`."""
    if isinstance(value, str):
        schedule = ParamSchedule.parse("psi", value)
        return np.array([schedule.value(x) for x in t], dtype=float)
    return np.full(len(t), float(value))


def emphasis_kind(data: StudyData) -> str:
    """"PBT" where the study ran Population Based Training (search.mode pbt), "schedule" where a best ψ is a schedule,
    else "fixed"."""
    if (data.config.get("search") or {}).get("mode") == "pbt":
        return "PBT"
    keys = label_set_keys(data)
    return "schedule" if any(isinstance(best_psi(data, key), str) for key in keys) else "fixed"


def emphasis_studies(data: StudyData) -> list[StudyData]:
    """The DM studies comparable with `data` (itself included), fixed first, then schedules, then PBT, each by name;
    [] unless `data` is a DM study and one of them chose a ψ that varies over training."""
    return data.derived("emphasis_studies", lambda: _emphasis_studies(data))


def _emphasis_studies(data: StudyData) -> list[StudyData]:
    if _method(data) != "dm":
        return []
    studies = [d for d in comparable_studies(data) if _method(d) == "dm"]
    t = np.linspace(0.0, 1.0, T_POINTS)
    varies = any(np.ptp(psi_course(psi, t)) > 0 for d in studies for key in label_set_keys(d)
                 if (psi := best_psi(d, key)) is not None)
    return sorted(studies, key=lambda d: (KINDS.index(emphasis_kind(d)), d.name)) if varies else []


def emphasis_curves(data: StudyData) -> dict[str, list[Curve]]:
    """Per label set of `data` (its key, in the study's order): each emphasis study's (`emphasis_studies`) best ψ over
    t ∈ [0, 1] (T_POINTS points) at the label set of the same noise kind and rate, labelled "<study> (<kind>)";
    {} where the report shows no emphasis over time."""
    studies = emphasis_studies(data)
    t = np.linspace(0.0, 1.0, T_POINTS)
    curves: dict[str, list[Curve]] = {}
    for key in label_set_keys(data) if studies else ():
        identity = identity_of(data, key)
        for study in studies:
            theirs = key_of(study, identity) if identity is not None else None
            psi = best_psi(study, theirs) if theirs is not None else None
            if psi is not None:
                curves.setdefault(key, []).append((_label(study), t, psi_course(psi, t)))
    return curves


def emphasis_table(data: StudyData) -> pd.DataFrame:
    """One row per emphasis study (kind, study, its number of search trials), one column per label set (matched
    across studies as `comparison_table` matches them): the final retrains' test accuracy in %, mean ± sample std over
    their seeds (n seeds); empty with a note where the report shows no emphasis over time."""
    studies = emphasis_studies(data)
    if not studies:
        table = pd.DataFrame()
        table.attrs["note"] = f"No DM study comparable with {data.name!r} chose an emphasis mode ψ that varies."
        return table
    compared = comparison_table(studies).drop(columns="method")
    compared.insert(0, "kind", [emphasis_kind(d) for d in studies])
    compared.insert(2, "search trials", [_search_trials(d) for d in studies])
    return compared


def emphasis_figures(data: StudyData, out: Path) -> list[Figure]:
    """The ψ(t) figure written into `out` as FIGURE.png and .pdf; [(PNG path, caption)], [] where it has no curves."""
    with plt.rc_context(STYLE):
        return save(Path(out), FIGURE, _figure(data))


def _figure(data: StudyData) -> Drawn:
    curves = emphasis_curves(data)
    if not curves:
        return None
    studies = emphasis_studies(data)
    colours = {_label(d): OKABE_ITO[i % len(OKABE_ITO)] for i, d in enumerate(studies)}
    fixed = {_label(d) for d in studies if emphasis_kind(d) == "fixed"}  # dashed, on top: a course along it shows
    fig, panels = panel_grid(len(curves), 3.6, (2.6,))
    handles: dict[str, Any] = {}
    for index, ((key, drawn), (ax,)) in enumerate(zip(curves.items(), panels)):
        for label, t, psi in drawn:
            handles[label], = ax.plot(t, psi, "--" if label in fixed else "-", color=colours[label], lw=1.6,
                                      zorder=3 if label in fixed else 2)
        ax.set(xlim=(0, 1), ylim=(-0.02, 1.02), xlabel="training progress t", title=noise_label(data, key))
        ax.grid(alpha=0.3)
        if first_in_row(index):
            ax.set_ylabel("emphasis mode ψ")
    legend_below(fig, list(handles.values()), list(handles), min(len(handles), LEGEND_COLUMNS))
    caption = ("The emphasis mode ψ = λ/(λ+1) of each comparable DM study's best setting over training progress t "
               "(0: the first step, 1: the last): flat (dashed) for a fixed setting, the searched schedule's course, "
               "and for Population Based Training the piecewise policy its best trial followed.")
    return fig, caption


def _label(data: StudyData) -> str:
    return f"{data.name} ({emphasis_kind(data)})"


def _method(data: StudyData) -> str:
    return str(data.config.get("method") or "dm")


def _search_trials(data: StudyData) -> int:
    trials = data.trials
    return int((trials["stage"] == "search").sum()) if "stage" in trials else 0
