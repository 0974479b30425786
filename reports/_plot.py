"""What the report's figures share: the style (Okabe–Ito palette, print sizes), saving PNG and PDF reproducibly, and
the study's search runs as the figures select them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reports._load import StudyData  # noqa: E402
from reports._tables import runs_of, search_runs  # noqa: E402
from reports._ties import ranked_runs, searched_names  # noqa: E402
from study.choice import fmt_number  # noqa: E402

# Okabe & Ito's colour-blind-safe palette (black first, yellow last: it prints faintly).
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")
DPI = 150
STYLE = {
    "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
    "legend.fontsize": 9, "figure.dpi": DPI, "axes.prop_cycle": plt.cycler(color=OKABE_ITO),
    "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "reports", "pdf.fonttype": 42,
}
Figure = tuple[Path, str]
Drawn = tuple[plt.Figure, str] | None
COLUMNS = 2  # panels side by side at most: a figure of several label sets fits the HTML page with its text full size
LEGEND_ROW = 0.22  # inches per row of a legend under the panels


def panel_grid(n: int, width: float, heights: Sequence[float], *, margin: float = 0.6,
               share_y: bool = False) -> tuple[plt.Figure, list[list[plt.Axes]]]:
    """A figure of `n` panels, COLUMNS to a row, each `width` inches wide and a stack of axes `heights` inches tall
    (with `share_y`, each level of the stack shares its y axis across panels); the axes of each panel, top first."""
    columns, levels = min(n, COLUMNS), len(heights)
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(rows * levels, columns, squeeze=False, figsize=(width * columns + margin,
                                                                             sum(heights) * rows),
                             gridspec_kw={"height_ratios": list(heights) * rows})
    panels = [[axes[row * levels + level][column] for level in range(levels)]
              for row in range(rows) for column in range(columns)]
    for spare in panels[n:]:
        for ax in spare:
            ax.remove()
    panels = panels[:n]
    for level in range(levels) if share_y else ():
        for panel in panels[1:]:
            panel[level].sharey(panels[0][level])
    return fig, panels


def first_in_row(index: int) -> bool:
    """Whether the `index`th panel of a `panel_grid` opens its row (where the y axis is labelled)."""
    return index % COLUMNS == 0


def legend_below(fig: plt.Figure, handles: Sequence[Any], labels: Sequence[str], columns: int) -> None:
    """The figure's legend in `columns` columns under its panels: the figure grows by the legend's height."""
    room = LEGEND_ROW * math.ceil(len(labels) / columns) + 0.1
    fig.set_figheight(fig.get_figheight() + room)
    fig.tight_layout(rect=(0, room / fig.get_figheight(), 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=columns, frameon=False, bbox_to_anchor=(0.5, 0.0))


def save(out: Path, name: str, drawn: Drawn) -> list[Figure]:
    """Write `drawn` as <name>.png (dpi DPI) and <name>.pdf without time stamps; [(PNG path, caption)], [] for None."""
    if drawn is None:
        return []
    fig, caption = drawn
    png = out / f"{name}.png"
    try:
        fig.savefig(png, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
        fig.savefig(out / f"{name}.pdf", bbox_inches="tight", metadata={"Software": None, "CreationDate": None})
    finally:
        plt.close(fig)
    return [(png, caption)]


def dm_only(trials: pd.DataFrame) -> pd.DataFrame:
    """The runs of DM (all of them where no method column says otherwise)."""
    if "method" not in trials.columns:
        return trials
    return trials[trials["method"].isin(["dm"]) | trials["method"].isna()]


def search(data: StudyData, key: str) -> pd.DataFrame:
    """The finished search trials of DM of the label set `key` (all of them where no method column says otherwise)."""
    return search_runs(dm_only(data.trials), key, ())[0]


def best_trial(data: StudyData, key: str) -> pd.Series | None:
    """The label set's best search trial of DM by val_acc, ties by the study's rule (`ranked_runs`)."""
    ranked = ranked_runs(search(data, key), searched_names(data))
    return None if ranked.empty else ranked.iloc[0]


def rate_row(data: StudyData, key: str) -> dict[str, Any] | None:
    """The run of the label set `key` (its best.<param> and summary values), or None where there is none."""
    match = runs_of(data.rates, key)
    return None if match.empty else match.iloc[0].to_dict()


def run_history(data: StudyData, run_id: str) -> pd.DataFrame:
    try:
        return data.history(run_id)
    except Exception:  # a store that lost a run's metrics draws no dynamics; the other figures still come
        return pd.DataFrame()


def has(frame: pd.DataFrame, key: str) -> bool:
    return key in frame.columns and frame[key].notna().any()


def pct_scale(values: np.ndarray) -> float:
    """100 where accuracies are fractions (shown as %), 1 where they already are percentages."""
    finite = values[np.isfinite(values)]
    return 100.0 if finite.size and finite.max() <= 1.0 else 1.0


def as_number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def fmt(value: Any) -> str:
    """A number as the console and the tables write it (λ=0.2512, β=0.9661); "?" for none."""
    number = as_number(value)
    return "?" if number is None else fmt_number(number)
