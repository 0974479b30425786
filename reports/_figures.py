"""A study's figures (PNG and PDF), drawn from what `load_study` read back from MLflow.

Each figure is drawn only where its data are there; none raises on a missing column. Output is reproducible:
fixed file names, a fixed order and no time stamps or software versions in the files.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib.ticker
import numpy as np
import pandas as pd
import torch

from reports._compare import comparable_studies, identity_of, key_of
from reports._load import StudyData
from reports._plot import (COLUMNS, OKABE_ITO, STYLE, Drawn, Figure, as_number, best_trial, dm_only, first_in_row, fmt,
                           has, is_nan, legend_below, panel_grid, pct_scale, plt, rate_row, run_history, save, search)
from reports._search import SEARCH_FIGURES
from reports._tables import (axis_name, file_key, grid_means, label_set, label_set_keys, noise_label, realised_rate,
                             search_runs)
from reports._ties import ranked_runs, searched_names
from study.choice import rank, tied
from trainers.emphasis import make_emphasis

# The implicit weightings of common losses drawn beside DM's (DESIGN §2): name, parameters, label.
BASELINES: tuple[tuple[str, dict[str, float], str], ...] = (
    ("cce", {}, "CCE  2(1−p)"),
    ("mae", {}, "MAE  2p(1−p)"),
    ("gce", {"q": 0.7}, "GCE  2p$^{0.7}$(1−p)"),
)


def make_figures(data: StudyData, out: Path) -> list[Figure]:
    """Write the study's figures into `out` as PNG (dpi 150) and PDF; (PNG path, caption) per figure drawn.

    Order: grid_<key> per label set (its key as `file_key` writes it), weighting_curves, dynamics, mode_vs_noise,
    p_clean_noisy, noise_detection, then the search figures.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    drawn: list[Figure] = []
    with plt.rc_context(STYLE):
        for key in label_set_keys(data):
            drawn += save(out, f"grid_{file_key(key)}", _grid_figure(data, key))
        for name, draw in (*_FIGURES, *SEARCH_FIGURES):
            drawn += save(out, name, draw(data))
    return drawn


def normalised_curve(name: str, params: dict[str, float], p: np.ndarray) -> np.ndarray:
    """The emphasis `name`'s weight w(p) on the increasing points `p`, scaled to unit area (trapezoid rule)."""
    p = np.asarray(p, dtype=np.float64)
    w = make_emphasis(name, **params)(torch.from_numpy(p)).numpy()
    area = _trapezoid(w, p)
    return w / area if area > 0 and math.isfinite(area) else np.full_like(p, np.nan)


def curve_settings(data: StudyData) -> list[tuple[str, str, dict[str, float]]]:
    """The weightings `weighting_curves.png` draws: (label, emphasis name, parameters), DM per label set first."""
    keys_of: dict[tuple[float, float], list[str]] = {}  # label sets that chose the same setting share one curve
    for key in label_set_keys(data):
        setting = best_dm_setting(data, key)
        if setting is not None:
            keys_of.setdefault((setting["lam"], setting["beta"]), []).append(key)
    curves = [(f"DM, noise {', '.join(noise_label(data, key, '{pct}') for key in keys)} (λ={fmt(lam)}, "
               f"β={fmt(beta)})", "dm", {"lam": lam, "beta": beta}) for (lam, beta), keys in keys_of.items()]
    return [*curves, *[(label, name, params) for name, params, label in BASELINES]] if curves else []


def best_dm_setting(data: StudyData, key: str) -> dict[str, float] | None:
    """The label set's chosen (λ, β): its run's best.lam/best.beta, else the best search trial's, else None."""
    row = rate_row(data, key)
    if row is not None and as_number(row.get("best.lam")) is not None and as_number(row.get("best.beta")) is not None:
        if row.get("best.method") in (None, "dm") or is_nan(row.get("best.method")):
            return {"lam": as_number(row["best.lam"]), "beta": as_number(row["best.beta"])}
    best = ranked_runs(search(data, key), searched_names(data))
    if best.empty:
        return None
    lam, beta = as_number(best.iloc[0].get("lam")), as_number(best.iloc[0].get("beta"))
    return None if lam is None or beta is None else {"lam": lam, "beta": beta}


# ---- the figures -------------------------------------------------------------------------------------------------


def _grid_figure(data: StudyData, key: str) -> Drawn:
    test = grid_means(dm_only(data.trials), key, "test_acc", data.grid_search)
    val = grid_means(dm_only(data.trials), key, "val_acc", data.grid_search)
    if test is None or val is None or test.notna().to_numpy().sum() < 2:
        return None
    val = val.reindex_like(test)
    ranking = rank(({"lam": lam, "beta": beta}, val.at[lam, beta]) for lam in val.index for beta in val.columns
                   if np.isfinite(val.at[lam, beta]))
    if not ranking:
        return None
    best = (val.index.get_loc(ranking[0].setting["lam"]), val.columns.get_loc(ranking[0].setting["beta"]))
    ties = len(tied(ranking))
    scale = pct_scale(test.to_numpy())
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
    ax.add_patch(plt.Rectangle((best[1] - 0.5, best[0] - 0.5), 1, 1, fill=False, edgecolor=OKABE_ITO[5], lw=2.5))
    ax.set_xticks(range(n_beta), [fmt(b) for b in test.columns])
    ax.set_yticks(range(n_lam), [fmt(lam) for lam in test.index])
    ax.set_xlabel("β (emphasis spread, dimensionless)")
    ax.set_ylabel("λ (emphasis mode exponent)")
    ax.set_title(f"{noise_label(data, key, 'Noise rate {pct}')}: mean test accuracy of search runs\n"
                 f"(outlined: best mean validation accuracy; grey: not run)")
    ax.spines[["top", "right"]].set_visible(True)
    bar = fig.colorbar(image, ax=ax, pad=0.02)
    bar.set_label(f"test accuracy ({'%' if scale == 100 else 'fraction'})")
    caption = (f"Mean test accuracy of the search-stage runs over the λ × β grid at "
               f"{noise_label(data, key, 'noise rate {pct}')} (grey: not run), with the best cell by mean validation "
               f"accuracy (λ={fmt(test.index[best[0]])}, β={fmt(test.columns[best[1]])}) outlined"
               + (f" (the tie rule's pick of {ties} tied cells)." if ties > 1 else "."))
    return fig, caption


def _weighting_figure(data: StudyData) -> Drawn:
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
    legend_below(fig, *ax.get_legend_handles_labels(), 2)
    caption = (f"Emphasis functions w(p) scaled to unit area: each {axis_name(data)}'s chosen DM setting beside the "
               "implicit weightings of CCE, MAE and GCE (q=0.7).")
    return fig, caption


def _dynamics_figure(data: StudyData) -> Drawn:
    panels = []
    for key in label_set_keys(data):
        trial = best_trial(data, key)
        if trial is None:
            continue
        history = run_history(data, trial["run_id"])
        series = [(metric, label) for metric, label in _DYNAMICS if has(history, metric)]
        if series and "epoch" in history.columns:
            panels.append((key, trial, history, series))
    if not panels:
        return None
    scale = 100
    sigma = any(has(history, "emphasis_var") for _, _, history, _ in panels)
    fig, axes = panel_grid(len(panels), 3.4, (3.0, 2.2)[: 1 + sigma], share_y=True)
    colours = {"noisy_fit_acc": OKABE_ITO[5], "intact_acc": OKABE_ITO[4], "test_acc": OKABE_ITO[3]}
    markers = {"noisy_fit_acc": "s", "intact_acc": "o", "test_acc": "^"}
    for index, ((ax, *_), (key, trial, history, series)) in enumerate(zip(axes, panels)):
        for metric, label in series:
            part = history.dropna(subset=[metric, "epoch"])
            ax.plot(part["epoch"], part[metric] * scale, marker=markers[metric], ms=5, color=colours[metric],
                    label=label)
        ax.set_title(f"{noise_label(data, key, 'Noise {pct}')}: λ={fmt(trial.get('lam'))}, "
                     f"β={fmt(trial.get('beta'))}")
        _epoch_axis(ax, history["epoch"])
        ax.grid(alpha=0.3)
        if first_in_row(index):
            ax.set_ylabel("accuracy (%)")
    if sigma:
        _sigma_row(axes, panels)
    found = {h.get_label(): h for ax, *_ in axes for h in ax.get_lines()}
    order = [label for _, label in _DYNAMICS if label in found]
    legend_below(fig, [found[label] for label in order], order, min(COLUMNS, len(axes)))
    caption = (f"Learning dynamics of each {axis_name(data)}'s best search trial (by validation accuracy): training "
               "accuracy of the mislabelled examples on their wrong labels, on the intact (true) labels, and test "
               "accuracy per epoch" + (", and below, the emphasis variance σ = E((w_i − E w_i)²) of the weights of a "
                                       "batch (seed 002 Definition 2), averaged over each epoch's batches."
                                       if sigma else "."))
    return fig, caption


def _sigma_row(axes: list[list[plt.Axes]], panels: list) -> None:
    """The lower axes of each panel of the dynamics figure: its trial's emphasis variance σ per epoch."""
    for index, ((top, ax), (_, _, history, _)) in enumerate(zip(axes, panels)):
        top.set_xlabel("")
        if first_in_row(index):
            ax.set_ylabel("emphasis variance σ\n(variance of the $w_i$)")
        if has(history, "emphasis_var"):
            part = history.dropna(subset=["emphasis_var", "epoch"])
            ax.plot(part["epoch"], part["emphasis_var"], marker="D", ms=4, color=OKABE_ITO[1])
        _epoch_axis(ax, history["epoch"])
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)


_DYNAMICS = (("noisy_fit_acc", "mislabelled training examples, fit to the wrong label"),
             ("intact_acc", "training, intact (true) labels"),
             ("test_acc", "test set"))


def _epoch_axis(ax: plt.Axes, epochs: pd.Series) -> None:
    """x from epoch 0 to the last evaluation, whole epochs as ticks."""
    last = float(pd.to_numeric(epochs, errors="coerce").max()) if len(epochs) else 1.0
    last = last if math.isfinite(last) and last > 0 else 1.0
    ax.set_xlim(0, last * 1.06)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, min_n_ticks=2))
    ax.set_xlabel("training epoch")


def mode_points(data: StudyData) -> list[tuple[str, float, float, list[float]]]:
    """Per label set with a chosen DM setting: (key, its `plotted_rate`, ψ = λ/(λ+1) of that setting, the best ψ of
    each seed's search trials taken alone, in seed order; empty where the search ran one seed)."""
    points = []
    for key in label_set_keys(data):
        setting = best_dm_setting(data, key)
        if setting is None:
            continue
        runs = search(data, key)
        per_seed = []
        if {"seed", "lam"} <= set(runs.columns):
            for _, group in runs.groupby(pd.to_numeric(runs["seed"], errors="coerce"), sort=True):
                ranked = ranked_runs(group, searched_names(data))
                lam = None if ranked.empty else as_number(ranked.iloc[0]["lam"])
                if lam is not None:
                    per_seed.append(lam / (lam + 1))
        points.append((key, plotted_rate(data, key), setting["lam"] / (setting["lam"] + 1),
                       per_seed if len(per_seed) > 1 else []))
    return points


def plotted_rate(data: StudyData, key: str) -> float:
    """Where a figure puts the label set `key` on a noise-rate axis: its rate, or a human kind's realised rate (0
    where none was logged)."""
    found = label_set(data, key)
    if found is None:
        return 0.0
    realised = realised_rate(data.trials, key) if found.human else None
    return found.rate if realised is None else realised


_SEEDS = "best of each seed alone"


def _mode_figure(data: StudyData) -> Drawn:
    points = mode_points(data)
    if not points:
        return None
    x = np.array([rate * 100 for _, rate, _, _ in points])
    step = 0.025 * max(x.max() - x.min(), 20.0)  # each seed's tick a little apart, so equal ones stay visible
    seeded = [(rate * 100 + step * (j + 1), psi) for _, rate, _, seeds in points for j, psi in enumerate(seeds)]
    kinds: dict[str, list[tuple[str, float, float, list[float]]]] = {}  # one line per noise kind
    human = False
    for point in points:
        found = label_set(data, point[0])
        kinds.setdefault(found.noise if found is not None else point[0], []).append(point)
        human |= found is not None and found.human
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    for colour, (kind, part) in zip(itertools.cycle(_KIND_COLOURS), kinds.items()):
        lo = [max(psi - min(seeds), 0.0) if seeds else 0.0 for _, _, psi, seeds in part]
        hi = [max(max(seeds) - psi, 0.0) if seeds else 0.0 for _, _, psi, seeds in part]
        ax.errorbar([rate * 100 for _, rate, _, _ in part], [psi for _, _, psi, _ in part], yerr=[lo, hi], fmt="o-",
                    color=colour, ecolor=colour, capsize=4, ms=6, lw=1.5, zorder=2,
                    label=(f"{kind}: " if len(kinds) > 1 else "") + "chosen setting"
                    + (" (bars: range over seeds)" if seeded else ""))
    if seeded:
        sx, sy = zip(*seeded)
        ax.scatter(sx, sy, marker="D", s=14, color=OKABE_ITO[5], zorder=3, label=_SEEDS)
    ax.set_xlabel("noise rate (%" + ("; human labels: realised)" if human else ")"))
    ax.set_ylabel("emphasis mode ψ = λ/(λ+1)")
    ax.set_ylim(-0.05, 1.05)
    pad = max(5.0, 0.08 * (x.max() - x.min())) + step * max((len(seeds) for *_, seeds in points), default=0)
    ax.set_xlim(x.min() - pad, x.max() + pad)
    ticks = sorted(set(x))
    ax.set_xticks(ticks, [f"{round(tick, 1):g}" for tick in ticks])
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()  # the chosen settings first
    order = sorted(range(len(labels)), key=lambda i: labels[i] == _SEEDS)
    ax.legend([handles[i] for i in order], [labels[i] for i in order], frameon=False, loc="lower center",
              bbox_to_anchor=(0.5, 1.0), ncol=min(len(order), 2) if len(kinds) > 1 else len(order))
    spread = ("with bars spanning the best ψ of each seed's search trials taken alone (diamonds, to the right)"
              if seeded else "from one seed per setting, so with no spread over seeds to show")
    caption = (f"Emphasis mode ψ = λ/(λ+1) of the chosen DM setting (best mean validation accuracy) against the noise "
               f"rate{' (a human label set at its realised rate)' if human else ''}"
               f"{', a line per noise kind' if len(kinds) > 1 else ''}, {spread}.")
    return fig, caption


_KIND_COLOURS = (OKABE_ITO[4], OKABE_ITO[1], OKABE_ITO[3], OKABE_ITO[6], OKABE_ITO[2], OKABE_ITO[0])


def p_curves(data: StudyData) -> tuple[str, list[tuple[str, StudyData, pd.Series]]] | None:
    """The label set and trials `p_clean_noisy` draws: the one of the highest `plotted_rate` at which this study's best
    search trial logged p_clean or p_noisy, and (method, study, trial) for that trial, then the best DM and CCE trials
    of that label set (its noise kind and rate), from this study or another comparable one in its store
    (reports._compare), where it has no run of them."""
    method = _study_method(data)
    for key in sorted(reversed(label_set_keys(data)), key=lambda k: -plotted_rate(data, k)):
        own = _best_of(data, key, method)
        if own is None or not _has_p(data, own):
            continue
        drawn = [(method, data, own)]
        for other in ("dm", "cce"):
            if other != method:
                drawn += _best_elsewhere(data, key, other, _has_p)
        return key, drawn
    return None


def _best_elsewhere(data: StudyData, key: str, method: str,
                    usable: Callable[[StudyData, pd.Series], bool]) -> list[tuple[str, StudyData, pd.Series]]:
    """[(method, study, trial)] for the first study comparable to `data` (itself included) whose best search trial of
    `method` on `data`'s label set `key` (matched by noise kind and rate) is `usable`; [] where none is."""
    identity = identity_of(data, key)
    for study in comparable_studies(data):
        found = key_of(study, identity) if identity is not None else None
        trial = _best_of(study, found, method) if found is not None else None
        if trial is not None and usable(study, trial):
            return [(method, study, trial)]
    return []


def _study_method(data: StudyData) -> str:
    method = data.config.get("method") if isinstance(data.config, dict) else None
    return str(method or "dm")


def _best_of(data: StudyData, key: str, method: str) -> pd.Series | None:
    """The best search trial of `method` of the label set `key`, ties by the study's rule."""
    if method == "dm":
        return best_trial(data, key)
    trials = data.trials
    if "method" not in trials.columns:
        return None
    ranked = ranked_runs(search_runs(trials[trials["method"] == method], key, ())[0], searched_names(data))
    return None if ranked.empty else ranked.iloc[0]


def _has_p(data: StudyData, trial: pd.Series) -> bool:
    return _has_any(data, trial, ("p_clean", "p_noisy"))


def _has_auroc(data: StudyData, trial: pd.Series) -> bool:
    return _has_any(data, trial, [key for key, _, _ in _AUROCS])


def _has_any(data: StudyData, trial: pd.Series, keys: Sequence[str]) -> bool:
    history = run_history(data, trial["run_id"])
    return "epoch" in history.columns and any(has(history, key) for key in keys)


def _p_clean_noisy_figure(data: StudyData) -> Drawn:
    found = p_curves(data)
    if found is None:
        return None
    key, drawn = found
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    styles = ("-", "--", ":")
    labels = []
    for (method, study, trial), style in zip(drawn, styles):
        history = run_history(study, trial["run_id"])
        label = _method_label(method, trial) + ("" if study is data else f" [{study.name}]")
        labels.append(label)
        for metric, kind, colour, marker, size in (("p_clean", "clean", OKABE_ITO[4], "o", 8),
                                                   ("p_noisy", "noisy", OKABE_ITO[5], "x", 7)):
            if has(history, metric):  # a hollow circle and a cross stay apart where the two means coincide
                part = history.dropna(subset=[metric, "epoch"])
                ax.plot(part["epoch"], part[metric], ls=style, marker=marker, ms=size, mfc="none", mew=1.6,
                        color=colour, label=f"{label}: {kind}")
    ax.set_ylim(0, 1)
    _epoch_axis(ax, run_history(data, drawn[0][2]["run_id"])["epoch"])
    ax.set_ylabel("mean $p_i$ of the given label")
    ax.set_title(noise_label(data, key, "Noise {pct}"))
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    methods = {method for method, _, _ in drawn}
    absent = [name.upper() for name in ("dm", "cce") if name not in methods]
    gap = f"; no study in this MLflow store has a {' or '.join(absent)} trial at this rate" if absent else ""
    caption = (f"Mean probability p_i of the given label for clean (blue, circles) and mislabelled (vermilion, "
               "crosses) training examples over training, at the highest noise rate "
               f"({noise_label(data, key, '{pct}')}): {'; '.join(labels)}; each the best search trial by validation "
               f"accuracy (other studies named in brackets{gap}).")
    return fig, caption


def detection_curves(data: StudyData) -> list[tuple[str, list[tuple[str, StudyData, pd.Series]]]]:
    """What `noise_detection` draws: per label set of which this study's best search trial logged a detection AUROC,
    (key, [(method, study, trial)]) with that trial first, then the best CCE trial of that label set (its noise kind
    and rate) from a comparable study in its store (reports._compare) where this study is not of CCE and one logged
    them."""
    method = _study_method(data)
    curves = []
    for key in label_set_keys(data):
        own = _best_of(data, key, method)
        if own is not None and _has_auroc(data, own):
            curves.append((key, [(method, data, own)] + (_best_elsewhere(data, key, "cce", _has_auroc)
                                                            if method != "cce" else [])))
    return curves


_AUROCS = (("noise_auroc_p", "by 1 − $p_i$", "o"), ("noise_auroc_weight", "by the latest weight", "x"))


def _detection_figure(data: StudyData) -> Drawn:
    curves = detection_curves(data)
    if not curves:
        return None
    fig, axes = panel_grid(len(curves), 3.6, (3.0,), share_y=True)
    labels: dict[str, None] = {}  # in order of first appearance
    for index, ((ax,), (key, drawn)) in enumerate(zip(axes, curves)):
        for (method, study, trial), style in zip(drawn, ("-", "--")):
            history = run_history(study, trial["run_id"])
            label = _method_label(method, trial) + ("" if study is data else f" [{study.name}]")
            labels[label] = None
            for (metric, kind, marker), colour in zip(_AUROCS, (OKABE_ITO[4], OKABE_ITO[5])):
                if has(history, metric):
                    part = history.dropna(subset=[metric, "epoch"])
                    ax.plot(part["epoch"], part[metric], ls=style, marker=marker, ms=7, mfc="none", mew=1.6,
                            color=colour, label=f"{label}: {kind}")
        ax.axhline(0.5, color="#777777", lw=1, ls=":")
        ax.set_ylim(0, 1)
        _epoch_axis(ax, run_history(data, drawn[0][2]["run_id"])["epoch"])
        ax.set_title(noise_label(data, key, "Noise {pct}"))
        ax.grid(alpha=0.3)
        if first_in_row(index):
            ax.set_ylabel("AUROC at finding the\nmislabelled examples")
    found = {h.get_label(): h for ax, in axes for h in ax.get_lines() if not h.get_label().startswith("_")}
    legend_below(fig, list(found.values()), list(found), min(COLUMNS, len(axes)))
    cce = any(method == "cce" for _, drawn in curves for method, _, _ in drawn)
    gap = "" if cce else "; no comparable study in this MLflow store has a CCE trial that logged them"
    caption = (f"AUROC at telling the mislabelled training examples from the intact ones by 1 − p_i (blue, circles) "
               f"and by each example's most recent weight ‖∂L/∂z_i‖₁ (vermilion, crosses) per epoch at each "
               f"{axis_name(data)} (dotted: chance): {'; '.join(labels)}; each the best search trial by validation "
               f"accuracy (other studies named in brackets{gap}).")
    return fig, caption


def _method_label(method: str, trial: pd.Series) -> str:
    if method == "dm":
        return f"DM λ={fmt(trial.get('lam'))}, β={fmt(trial.get('beta'))}"
    return method.upper() if method in ("cce", "mae", "gce") else method


_FIGURES: tuple[tuple[str, Callable[[StudyData], Any]], ...] = (
    ("weighting_curves", _weighting_figure),
    ("dynamics", _dynamics_figure),
    ("mode_vs_noise", _mode_figure),
    ("p_clean_noisy", _p_clean_noisy_figure),
    ("noise_detection", _detection_figure),
)


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2)
