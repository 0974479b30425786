"""A study's figures (PNG and PDF), drawn from what `load_study` read back from MLflow.

Each figure is drawn only where its data are there; none raises on a missing column. Output is reproducible:
fixed file names, a fixed order and no time stamps or software versions in the files.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from reports._load import StudyData  # noqa: E402
from trainers.emphasis import make_emphasis  # noqa: E402

# Okabe & Ito's colour-blind-safe palette (black first, yellow last: it prints faintly).
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")
# The implicit weightings of common losses drawn beside DM's (DESIGN §2): name, parameters, label.
BASELINES: tuple[tuple[str, dict[str, float], str], ...] = (
    ("cce", {}, "CCE  2(1−p)"),
    ("mae", {}, "MAE  2p(1−p)"),
    ("gce", {"q": 0.7}, "GCE  2p$^{0.7}$(1−p)"),
)
DPI = 150
_STYLE = {
    "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
    "legend.fontsize": 9, "figure.dpi": DPI, "axes.prop_cycle": plt.cycler(color=OKABE_ITO),
    "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "reports", "pdf.fonttype": 42,
}
Figure = tuple[Path, str]


def make_figures(data: StudyData, out: Path) -> list[Figure]:
    """Write the study's figures into `out` as PNG (dpi 150) and PDF; (PNG path, caption) per figure drawn.

    Order: grid_<rate> per noise rate, weighting_curves, dynamics, mode_vs_noise, p_clean_noisy.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    drawn: list[Figure] = []
    with plt.rc_context(_STYLE):
        for rate in _noise_rates(data):
            drawn += _save(out, f"grid_{rate:g}", _grid_figure(data, rate))
        for name, draw in _FIGURES:
            drawn += _save(out, name, draw(data))
    return drawn


def normalised_curve(name: str, params: dict[str, float], p: np.ndarray) -> np.ndarray:
    """The emphasis `name`'s weight w(p) on the increasing points `p`, scaled to unit area (trapezoid rule)."""
    p = np.asarray(p, dtype=np.float64)
    w = make_emphasis(name, **params)(torch.from_numpy(p)).numpy()
    area = _trapezoid(w, p)
    return w / area if area > 0 and math.isfinite(area) else np.full_like(p, np.nan)


def curve_settings(data: StudyData) -> list[tuple[str, str, dict[str, float]]]:
    """The weightings `weighting_curves.png` draws: (label, emphasis name, parameters), DM per noise rate first."""
    rates_of: dict[tuple[float, float], list[float]] = {}  # rates that chose the same setting share one curve
    for rate in _noise_rates(data):
        setting = best_dm_setting(data, rate)
        if setting is not None:
            rates_of.setdefault((setting["lam"], setting["beta"]), []).append(rate)
    curves = [(f"DM, noise {', '.join(_pct_label(r) for r in rates)} (λ={_fmt(lam)}, β={_fmt(beta)})", "dm",
               {"lam": lam, "beta": beta}) for (lam, beta), rates in rates_of.items()]
    return [*curves, *[(label, name, params) for name, params, label in BASELINES]] if curves else []


def best_dm_setting(data: StudyData, rate: float) -> dict[str, float] | None:
    """The noise rate's chosen (λ, β): the rate run's best.lam/best.beta, else the best search trial's, else None."""
    row = _rate_row(data, rate)
    if row is not None and _number(row.get("best.lam")) is not None and _number(row.get("best.beta")) is not None:
        if row.get("best.method") in (None, "dm") or _is_nan(row.get("best.method")):
            return {"lam": _number(row["best.lam"]), "beta": _number(row["best.beta"])}
    best = _ranked(_search(data, rate))
    if best.empty:
        return None
    lam, beta = _number(best.iloc[0].get("lam")), _number(best.iloc[0].get("beta"))
    return None if lam is None or beta is None else {"lam": lam, "beta": beta}


def grid_table(data: StudyData, rate: float) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Mean test_acc and mean val_acc of the rate's search trials per (λ rows, β columns), or None if no grid."""
    runs = _search(data, rate)
    if runs.empty or not {"lam", "beta", "test_acc"} <= set(runs.columns):
        return None
    runs = runs.assign(lam=pd.to_numeric(runs["lam"], errors="coerce"),
                       beta=pd.to_numeric(runs["beta"], errors="coerce"))
    runs = runs.dropna(subset=["lam", "beta", "test_acc"])
    repeated = runs.groupby("beta")["lam"].nunique().max() if not runs.empty else 0
    if runs["lam"].nunique() < 2 or runs["beta"].nunique() < 2 or repeated < 2:
        return None
    test = runs.pivot_table(index="lam", columns="beta", values="test_acc", aggfunc="mean")
    val_col = "val_acc" if "val_acc" in runs.columns else "test_acc"
    val = runs.pivot_table(index="lam", columns="beta", values=val_col, aggfunc="mean").reindex_like(test)
    return test, val


# ---- the figures -------------------------------------------------------------------------------------------------


def _grid_figure(data: StudyData, rate: float) -> tuple[plt.Figure, str] | None:
    table = grid_table(data, rate)
    if table is None:
        return None
    test, val = table
    scale = _scale(test.to_numpy())
    values = test.to_numpy() * scale
    n_lam, n_beta = values.shape
    fig, ax = plt.subplots(figsize=(max(4.5, 0.62 * n_beta + 2.2), max(2.6, 0.5 * n_lam + 1.5)))
    masked = np.ma.masked_invalid(values)
    cmap = plt.get_cmap("viridis").with_extremes(bad="#f2f2f2")
    image = ax.imshow(masked, cmap=cmap, aspect="auto", origin="lower")
    lo, hi = (np.nanmin(values), np.nanmax(values)) if np.isfinite(values).any() else (0.0, 1.0)
    for i in range(n_lam):
        for j in range(n_beta):
            if np.isfinite(values[i, j]):
                light = hi == lo or (values[i, j] - lo) / (hi - lo) > 0.6
                ax.text(j, i, f"{values[i, j]:.1f}" if scale == 100 else f"{values[i, j]:.3f}", ha="center",
                        va="center", fontsize=9, color="black" if light else "white")
    best = np.unravel_index(np.nanargmax(np.where(np.isfinite(val.to_numpy()), val.to_numpy(), -np.inf)), val.shape)
    ax.add_patch(plt.Rectangle((best[1] - 0.5, best[0] - 0.5), 1, 1, fill=False, edgecolor=OKABE_ITO[5], lw=2.5))
    ax.set_xticks(range(n_beta), [_fmt(b) for b in test.columns])
    ax.set_yticks(range(n_lam), [_fmt(lam) for lam in test.index])
    ax.set_xlabel("β (emphasis spread, dimensionless)")
    ax.set_ylabel("λ (emphasis mode exponent)")
    ax.set_title(f"Noise rate {_pct_label(rate)}: mean test accuracy of search runs\n"
                 f"(outlined: best mean validation accuracy; grey: not run)")
    ax.spines[["top", "right"]].set_visible(True)
    bar = fig.colorbar(image, ax=ax, pad=0.02)
    bar.set_label(f"test accuracy ({'%' if scale == 100 else 'fraction'})")
    caption = (f"Mean test accuracy of the search-stage runs over the λ × β grid at noise rate {_pct_label(rate)} "
               f"(grey: not run), with the best cell by mean validation accuracy (λ={_fmt(test.index[best[0]])}, "
               f"β={_fmt(test.columns[best[1]])}) outlined.")
    return fig, caption


def _weighting_figure(data: StudyData) -> tuple[plt.Figure, str] | None:
    curves = curve_settings(data)
    if not curves:
        return None
    p = np.linspace(0.0, 1.0, 501)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    dm_colours = iter(OKABE_ITO[1:])
    baseline_styles = iter([(OKABE_ITO[0], ":"), ("#777777", "--"), ("#777777", "-.")])
    for label, name, params in curves:
        if name == "dm":
            ax.plot(p, normalised_curve(name, params, p), color=next(dm_colours), lw=2, label=label)
        else:
            colour, style = next(baseline_styles)
            ax.plot(p, normalised_curve(name, params, p), color=colour, ls=style, lw=1.5, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("$p_i$, probability of the labelled class")
    ax.set_ylabel("normalised weight w(p) / ∫w")
    ax.legend(frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    caption = ("Emphasis functions w(p) scaled to unit area: each noise rate's chosen DM setting beside the implicit "
               "weightings of CCE, MAE and GCE (q=0.7).")
    return fig, caption


def _dynamics_figure(data: StudyData) -> tuple[plt.Figure, str] | None:
    panels = []
    for rate in _noise_rates(data):
        trial = best_trial(data, rate)
        if trial is None:
            continue
        history = _history(data, trial["run_id"])
        series = [(key, label) for key, label in _DYNAMICS if _has(history, key)]
        if series and "epoch" in history.columns:
            panels.append((rate, trial, history, series))
    if not panels:
        return None
    scale = 100
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels) + 0.6, 3.3), sharey=True, squeeze=False)
    colours = {"noisy_fit_acc": OKABE_ITO[5], "intact_acc": OKABE_ITO[4], "test_acc": OKABE_ITO[3]}
    markers = {"noisy_fit_acc": "s", "intact_acc": "o", "test_acc": "^"}
    for ax, (rate, trial, history, series) in zip(axes[0], panels):
        for key, label in series:
            part = history.dropna(subset=[key, "epoch"])
            ax.plot(part["epoch"], part[key] * scale, marker=markers[key], ms=5, color=colours[key], label=label)
        ax.set_title(f"Noise {_pct_label(rate)}: λ={_fmt(trial.get('lam'))}, β={_fmt(trial.get('beta'))}")
        _epoch_axis(ax, history["epoch"])
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy (%)")
    found = {h.get_label(): h for ax in axes[0] for h in ax.get_lines()}
    order = [label for _, label in _DYNAMICS if label in found]
    fig.legend([found[label] for label in order], order, loc="lower center", ncol=len(order), frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    caption = ("Learning dynamics of each noise rate's best search trial (by validation accuracy): training accuracy "
               "on the corrupted labels, on the intact labels, and test accuracy per epoch.")
    return fig, caption


_DYNAMICS = (("noisy_fit_acc", "training, corrupted labels"), ("intact_acc", "training, intact (true) labels"),
             ("test_acc", "test set"))


def _epoch_axis(ax: plt.Axes, epochs: pd.Series) -> None:
    """x from epoch 0 to the last evaluation, whole epochs as ticks."""
    last = float(pd.to_numeric(epochs, errors="coerce").max()) if len(epochs) else 1.0
    last = last if math.isfinite(last) and last > 0 else 1.0
    ax.set_xlim(0, last * 1.06)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, min_n_ticks=2))
    ax.set_xlabel("training epoch")


def _mode_figure(data: StudyData) -> tuple[plt.Figure, str] | None:
    points = []
    for rate in _noise_rates(data):
        setting = best_dm_setting(data, rate)
        top = _ranked(_search(data, rate)).head(3)
        lams = pd.to_numeric(top["lam"], errors="coerce").dropna() if "lam" in top.columns else pd.Series(dtype=float)
        if setting is None:
            continue
        psi = setting["lam"] / (setting["lam"] + 1)
        psis = (lams / (lams + 1)).to_numpy() if len(lams) else np.array([psi])
        points.append((rate * 100, psi, max(psi - psis.min(), 0.0), max(psis.max() - psi, 0.0)))
    if not points:
        return None
    x, y, lo, hi = (np.array(v) for v in zip(*points))
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    ax.errorbar(x, y, yerr=[lo, hi], fmt="o-", color=OKABE_ITO[4], ecolor=OKABE_ITO[4], capsize=4, ms=6, lw=1.5,
                label="chosen setting (bars: range of top-3 trials)")
    ax.set_xlabel("noise rate (%)")
    ax.set_ylabel("emphasis mode ψ = λ/(λ+1)")
    ax.set_ylim(-0.05, 1.05)
    pad = max(5.0, 0.08 * (x.max() - x.min()))
    ax.set_xlim(x.min() - pad, x.max() + pad)
    ax.set_xticks(x)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    caption = ("Emphasis mode ψ = λ/(λ+1) of the chosen DM setting against the noise rate, with bars spanning ψ "
               "over the top three search trials by validation accuracy.")
    return fig, caption


def _p_clean_noisy_figure(data: StudyData) -> tuple[plt.Figure, str] | None:
    for rate in reversed(_noise_rates(data)):
        trial = best_trial(data, rate)
        if trial is None:
            continue
        history = _history(data, trial["run_id"])
        if "epoch" in history.columns and (_has(history, "p_clean") or _has(history, "p_noisy")):
            break
    else:
        return None
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    for key, label, colour, marker, size in (("p_clean", "clean examples", OKABE_ITO[4], "o", 9),
                                             ("p_noisy", "noisy (mislabelled) examples", OKABE_ITO[5], "x", 7)):
        if _has(history, key):  # a hollow circle and a cross stay apart where the two means coincide
            part = history.dropna(subset=[key, "epoch"])
            ax.plot(part["epoch"], part[key], marker=marker, ms=size, mfc="none", mew=1.8, color=colour, label=label)
    ax.set_ylim(0, 1)
    _epoch_axis(ax, history["epoch"])
    ax.set_ylabel("mean $p_i$ of the given label")
    ax.set_title(f"Noise {_pct_label(rate)}: λ={_fmt(trial.get('lam'))}, β={_fmt(trial.get('beta'))}")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, loc="best")
    caption = (f"Mean probability p_i of the given label for clean and for mislabelled training examples over "
               f"training, for the best search trial at the highest noise rate ({_pct_label(rate)}).")
    return fig, caption


_FIGURES: tuple[tuple[str, Callable[[StudyData], Any]], ...] = (
    ("weighting_curves", _weighting_figure),
    ("dynamics", _dynamics_figure),
    ("mode_vs_noise", _mode_figure),
    ("p_clean_noisy", _p_clean_noisy_figure),
)


# ---- helpers -----------------------------------------------------------------------------------------------------


def _save(out: Path, name: str, drawn: tuple[plt.Figure, str] | None) -> list[Figure]:
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


def _noise_rates(data: StudyData) -> list[float]:
    rates: set[float] = set()
    for frame in (data.trials, data.rates):
        if isinstance(frame, pd.DataFrame) and "noise_rate" in frame.columns:
            rates |= {float(r) for r in pd.to_numeric(frame["noise_rate"], errors="coerce").dropna()}
    return sorted(rates)


def _search(data: StudyData, rate: float) -> pd.DataFrame:
    """The finished search trials at `rate` (DM only where a method column says so)."""
    trials = data.trials
    if not isinstance(trials, pd.DataFrame) or trials.empty or not {"stage", "noise_rate"} <= set(trials.columns):
        return pd.DataFrame()
    keep = (trials["stage"] == "search") & np.isclose(pd.to_numeric(trials["noise_rate"], errors="coerce"), rate)
    if "status" in trials.columns:
        keep &= trials["status"] == "FINISHED"
    if "method" in trials.columns:
        keep &= trials["method"].isin(["dm"]) | trials["method"].isna()
    return trials[keep]


def _ranked(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` best first by val_acc (ties by run id), those without val_acc dropped."""
    if runs.empty or "val_acc" not in runs.columns:
        return pd.DataFrame()
    runs = runs.dropna(subset=["val_acc"])
    return runs.assign(_neg=-runs["val_acc"]).sort_values(["_neg", "run_id"], kind="stable").drop(columns="_neg")


def best_trial(data: StudyData, rate: float) -> pd.Series | None:
    """The rate's best search trial by val_acc; of ties, the one with the rate run's chosen (λ, β), else by run id."""
    ranked = _ranked(_search(data, rate))
    if ranked.empty:
        return None
    tied = ranked[ranked["val_acc"] == ranked["val_acc"].iloc[0]]
    row = _rate_row(data, rate) or {}
    lam, beta = _number(row.get("best.lam")), _number(row.get("best.beta"))
    if lam is not None and beta is not None and {"lam", "beta"} <= set(tied.columns):
        chosen = tied[np.isclose(pd.to_numeric(tied["lam"], errors="coerce"), lam)
                      & np.isclose(pd.to_numeric(tied["beta"], errors="coerce"), beta)]
        if not chosen.empty:
            return chosen.iloc[0]
    return ranked.iloc[0]


def _rate_row(data: StudyData, rate: float) -> dict[str, Any] | None:
    rates = data.rates
    if not isinstance(rates, pd.DataFrame) or rates.empty or "noise_rate" not in rates.columns:
        return None
    match = rates[np.isclose(pd.to_numeric(rates["noise_rate"], errors="coerce"), rate)]
    return None if match.empty else match.iloc[0].to_dict()


def _history(data: StudyData, run_id: str) -> pd.DataFrame:
    try:
        return data.history(run_id)
    except Exception:  # a store that lost a run's metrics draws no dynamics; the other figures still come
        return pd.DataFrame()


def _has(frame: pd.DataFrame, key: str) -> bool:
    return key in frame.columns and frame[key].notna().any()


def _scale(values: np.ndarray) -> float:
    """100 where accuracies are fractions (shown as %), 1 where they already are percentages."""
    finite = values[np.isfinite(values)]
    return 100.0 if finite.size and finite.max() <= 1.0 else 1.0


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _fmt(value: Any) -> str:
    number = _number(value)
    return "?" if number is None else f"{number:.3g}"  # three significant digits: λ=0.251, β=0.966


def _pct_label(rate: float) -> str:
    return f"{rate * 100:g}%"


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2)
