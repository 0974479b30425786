"""A study's report folder: every table (CSV, Markdown, LaTeX), the figures, index.md and a self-contained index.html.

    >>> write_report("sqlite:///mlflow.db", "digits-dm")  # doctest: +SKIP
    PosixPath('.../report/digits-dm/index.md')
"""

from __future__ import annotations

import base64
import html
import importlib.metadata
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from reports import _tables
from reports._compare import comparable_studies, comparison_table, published_comparison, setup
from reports._emphasis import TABLE, emphasis_figures, emphasis_studies, emphasis_table
from reports._load import StudyData, load_study
from reports._search import importance_caveat, importance_table
from reports._ties import searched_names
from reports._write import to_html, to_markdown, write_table
from study.choice import RULE

PACKAGES = ("torch", "ray", "optuna", "mlflow")
FEW_RUNS = 3  # a table whose cells average fewer runs than this says so
_RUNS = re.compile(r"\(n=(\d+)\)")  # "mean ± std (n=k)" in a cell
FIGURE_TITLES = {"weighting_curves": "Weighting curves w(p)", "dynamics": "Learning dynamics",
                 "mode_vs_noise": "Emphasis mode against noise rate",
                 "p_clean_noisy": "p_i of clean and noisy examples", "noise_detection": "Noise detection (AUROC)",
                 "search_lam_beta": "The sampled λ and β",
                 "search_history": "Optimisation history", "param_importances": "Parameter importances, drawn"}


@dataclass
class _Section:
    """One table or figure of the report: its heading, the sentence on what it shows, what it points to, and notes
    shown below it."""

    title: str
    sentence: str
    table: pd.DataFrame | None = None
    stem: str | None = None
    figure: Path | None = None
    notes: tuple[str, ...] = ()


def write_report(tracking_uri: str, study: str | None = None, out: Path | None = None, *,
                 log_artifacts: bool = True) -> Path:
    """Write the report of `study` (default: the most recent) into `out` (default ./report/<study name>); the path of
    its index.md. With `log_artifacts` the folder is also logged under report/ of the study's MLflow run."""
    data = load_study(tracking_uri, study)
    out = Path(out) if out is not None else Path.cwd() / "report" / data.name
    out.mkdir(parents=True, exist_ok=True)
    sections = _table_sections(data, out) + _figure_sections(data, out)
    (out / "index.md").write_text(_index_md(data, sections), encoding="utf-8")
    (out / "index.html").write_text(_index_html(data, sections), encoding="utf-8")
    if log_artifacts:
        from mlflow.tracking import MlflowClient

        MlflowClient(tracking_uri).log_artifacts(data.study_run_id, str(out), "report")
    return out / "index.md"


def _table_sections(data: StudyData, out: Path) -> list[_Section]:
    trials = data.trials
    sections = []
    axis = _tables.axis_name(data)
    summary = _tables.summary_table(data)
    sections.append(_table(out, "summary", "Summary", summary, f"Per {axis}, the setting the search chose, its "
                           "validation accuracy, how many settings tie at it (tied; 1: none other), the final "
                           "retrains' test accuracy (mean ± sample std over seeds), the number of search trials, and "
                           f"of runs that collapsed or failed; {_evaluated(trials)}.",
                           [f"Ties: the study (choosing the setting to retrain) and every table and figure here break "
                            f"them by one rule: {RULE}.", *_tables.tie_notes(data)]))
    studies = comparable_studies(data)
    names = ", ".join(d.name for d in studies)
    dataset, model, kinds = setup(data)
    sections.append(_table(out, "comparison", "Methods compared", comparison_table(studies),
                           "The final retrains' test accuracy (%, mean ± sample std over seeds) of every study in "
                           f"this MLflow store on {dataset} with {model} under {', '.join(kinds)} noise ({names}), "
                           f"per {axis}: the form of seed 000's Table 4 and seed 002's Table 1."))
    sections.append(_table(out, "comparison_published", "Against the papers' published numbers",
                           published_comparison(studies),
                           "Our final test accuracy beside each paper's published number for the same method, data "
                           "set, model, noise kind and rate (the paper's best row of that method), and the difference "
                           "in percentage points."))
    sections += _emphasis_sections(data, out)
    sections.append(_table(out, "param_importances", "Parameter importances", importance_table(data),
                           "The share of the variation in validation accuracy that each searched parameter explains, "
                           f"per {axis} (Optuna's fANOVA evaluator over the search trials, seed 0)"
                           f"{importance_caveat(data)}."))
    sections.append(_table(out, "validation_choice", "Noisy against clean validation",
                           _tables.validation_choice_table(data),
                           f"Per {axis}, the setting that validating by the noisy labels would choose against the one "
                           "clean validation chooses (each by its mean last validation accuracy, ties by the tie "
                           "rule), with its test accuracy and, where it is the one retrained, the final retrains' test "
                           "accuracy: what the study loses without clean labels."))
    searched = searched_names(data, ())
    for key in _tables.label_set_keys(data, trials_only=True):
        tag = f"noise-{_tables.file_key(key)}"
        title, label = _tables.noise_label(data, key, "Noise rate {rate:g}"), _tables.noise_label(data, key)
        grid = data.grid_search
        if _tables.note(_tables.ablation_grid(trials, key, "test_acc", grid)) is None:
            for metric, words in (("test_acc", "final test accuracy"), ("val_acc", "validation accuracy")):
                sections.append(_table(out, f"{tag}_grid_{metric}", f"{title}: λ × β grid of {metric}",
                                       _tables.ablation_grid(trials, key, metric, grid),
                                       f"The search trials' {words} at {label} for each λ (rows) and β "
                                       "(columns), as mean ± sample std over the runs of that cell (n runs)."))
            sections.append(_table(out, f"{tag}_best_beta", f"{title}: best β per λ",
                                   _tables.best_beta_per_lambda(trials, key, grid),
                                   f"For each λ at {label}, the β with the best mean validation accuracy, "
                                   "with that setting's mean validation and test accuracy (the form of seed 000's "
                                   "Table 7)."))
        elif grid:
            sections.append(_table(out, f"{tag}_grid_cells", f"{title}: grid cells",
                                   _tables.grid_cells_table(trials, key, searched),
                                   f"Each cell of the grid at {label}, best validation accuracy first: "
                                   "its validation and test accuracy as mean ± sample std over its runs (n runs) and, "
                                   "for the methods that learn from a probe set, the last epoch's mean weight of clean "
                                   "and noisy examples (in units of the uniform 1/B), the share of noisy examples with "
                                   "weight 0 and the mean relabel coefficients (1: the given label kept; the form of "
                                   "seed 003's Table 7 and Fig. 2)."))
        else:
            sections.append(_table(out, f"{tag}_search_trials", f"{title}: search trials",
                                   _tables.search_trials_table(trials, key, searched),
                                   f"Every search trial at {label}, best validation accuracy first (ties by the "
                                   "tie rule), with its setting, test accuracy and how it ended (the search drew its "
                                   "settings freely, so there is no λ × β grid)."))
        sections.append(_table(out, f"{tag}_emphasis_modes", f"{title}: emphasis modes",
                               _tables.emphasis_mode_table(trials, key, grid),
                               f"For each emphasis mode ψ = λ/(λ+1) at {label} (a grid's λ, or a quarter "
                               "of [0, 1] for a free search), the best setting by validation accuracy (ties by the "
                               "tie rule) and its best and final test accuracy, its accuracy on the corrupted training "
                               "labels (fit_acc) and on the intact training examples (intact_acc): the form of seed "
                               "000's Table 3."))
    return sections


def _emphasis_sections(data: StudyData, out: Path) -> list[_Section]:
    """The emphasis-over-time table and ψ(t) figure, where a comparable DM study's best ψ varies over training; none
    otherwise."""
    title = "Emphasis over time"
    try:
        studies = emphasis_studies(data)
        if not studies:
            return []
        names = ", ".join(d.name for d in studies)
        sections = [_table(out, TABLE, f"{title}: final test accuracy", emphasis_table(data),
                           f"The DM studies of this comparison ({names}), each by how its emphasis mode ψ was "
                           "chosen (kind): a fixed setting, a searched schedule of ψ over training, or Population "
                           "Based Training's policy; with its number of search trials and, per "
                           f"{_tables.axis_name(data)}, the final retrains' test accuracy (%, mean ± sample std over "
                           "seeds; n: the seeds).")]
        figures = emphasis_figures(data, out)
    except Exception as error:  # the emphasis part must not cost the rest of the report
        return [_Section(title, f"No emphasis over time: reading or drawing it failed ({type(error).__name__}: "
                                f"{error}).")]
    return sections + [_Section(f"{title}: ψ(t)", caption, figure=Path(png)) for png, caption in figures]


def _table(out: Path, stem: str, title: str, table: pd.DataFrame, sentence: str,
           notes: Sequence[str] = ()) -> _Section:
    missing = _tables.note(table)
    if missing is not None or table.empty:
        return _Section(title, missing or "This table has no rows.")
    write_table(table, out, stem)
    return _Section(title, sentence.removesuffix(".") + _few_runs(table) + ".", table=table, stem=stem,
                    notes=tuple(notes))


def _few_runs(table: pd.DataFrame) -> str:
    """The clause that flags a table whose means rest on fewer than FEW_RUNS runs ("" where none does): cells written
    "… (n=k)" and an n column."""
    counts = [int(n) for value in table.to_numpy().ravel() if isinstance(value, str) for n in _RUNS.findall(value)]
    counts += pd.to_numeric(table["n"], errors="coerce").dropna().astype(int).tolist() if "n" in table else []
    fewest = min(counts, default=FEW_RUNS)
    if fewest >= FEW_RUNS:
        return ""
    single = "; n=1 is a single run, shown without a spread" if fewest == 1 else ""
    return (f"; caution: some values average fewer than {FEW_RUNS} runs (as few as n={fewest}), too few to judge how "
            f"much runs vary{single}")


def _figure_sections(data: StudyData, out: Path) -> list[_Section]:
    try:
        from reports._figures import make_figures
    except ImportError:
        return [_Section("Figures", "No figures: this installation has no reports._figures module.")]
    try:
        figures = make_figures(data, out)
    except Exception as error:  # a figure must not cost the tables
        return [_Section("Figures", f"No figures: drawing them failed ({type(error).__name__}: {error}).")]
    if not figures:
        return [_Section("Figures", "No figures: the study holds nothing they could draw.")]
    return [_Section(_figure_title(data, Path(png).stem), caption, figure=Path(png)) for png, caption in figures]


def _figure_title(data: StudyData, stem: str) -> str:
    grids = {f"grid_{_tables.file_key(key)}": key for key in _tables.label_set_keys(data)}
    if stem in grids:
        return f"{_tables.noise_label(data, grids[stem], 'Noise rate {rate:g}')}: λ × β heatmap"
    return FIGURE_TITLES.get(stem, stem.replace("_", " ").capitalize())


def _evaluated(trials: pd.DataFrame) -> str:
    """Which weights the accuracies are of: the raw ones, or an EMA of them (the trials' ema_decay metric)."""
    decays = sorted({float(d) for d in trials.get("ema_decay", pd.Series(dtype=float)).dropna() if float(d) > 0})
    if not decays:
        return "every accuracy is of the trained weights themselves"
    each = " or ".join(f"{d:g}" for d in decays)
    some = "every" if trials["ema_decay"].fillna(0).gt(0).all() else "where a trial's ema_decay is above 0, its"
    return (f"{some} accuracy is of an exponential moving average of the weights (decay {each}), as IEG's authors "
            "evaluate")


def _provenance(data: StudyData) -> list[tuple[str, str]]:
    tags = data.study_tags
    rows = [("git commit", tags.get("git_commit", "not recorded")),
            ("config hash", tags.get("config_hash", "not recorded"))]
    for package in PACKAGES:
        try:
            rows.append((package, importlib.metadata.version(package)))
        except importlib.metadata.PackageNotFoundError:
            rows.append((package, "not installed"))
    rows += [("MLflow tracking URI", data.tracking_uri), ("experiment id", data.experiment_id),
             ("study run id", data.study_run_id)]
    return rows


def _config_text(data: StudyData) -> str:
    return json.dumps(data.config, indent=2, sort_keys=True) if data.config else ""


def _index_md(data: StudyData, sections: list[_Section]) -> str:
    keys = _tables.label_set_keys(data, trials_only=True)
    names = ", ".join(_tables.noise_label(data, key, "{rate:g}") for key in keys)
    lines = [f"# Study report: {data.name}", "",
             f"{len(data.trials)} trial runs over {_tables.axis_name(data)}s {names or 'none'}, read from MLflow.", ""]
    for section in sections:
        lines += [f"## {section.title}", "", section.sentence, ""]
        if section.table is not None:
            lines += [to_markdown(section.table).rstrip("\n"), "",
                      *(f"- {note}" for note in section.notes), *([""] if section.notes else []),
                      f"Files: [{section.stem}.csv]({section.stem}.csv), [{section.stem}.md]({section.stem}.md), "
                      f"[{section.stem}.tex]({section.stem}.tex)", ""]
        if section.figure is not None:
            pdf = section.figure.with_suffix(".pdf").name
            lines += [f"![{section.title}]({section.figure.name})", "",
                      f"Files: [{section.figure.name}]({section.figure.name}), [{pdf}]({pdf})", ""]
    lines += ["## Configuration", ""]
    config = _config_text(data)
    lines += ["```json", config, "```", ""] if config else ["The study run holds no study_config.json.", ""]
    lines += ["## Provenance", "", "| item | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in _provenance(data)]
    return "\n".join(lines) + "\n"


def _index_html(data: StudyData, sections: list[_Section]) -> str:
    e = html.escape
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Study report: {e(data.name)}</title>",
             "<style>body{font-family:sans-serif;max-width:75em;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
             "img{display:block;max-width:100%;height:auto}</style></head><body>",
             f"<h1>Study report: {e(data.name)}</h1>"]
    for section in sections:
        parts += [f"<h2>{e(section.title)}</h2>", f"<p>{e(section.sentence)}</p>"]
        if section.table is not None:
            parts.append(to_html(section.table))
        if section.notes:
            parts.append("<ul>" + "".join(f"<li>{e(note)}</li>" for note in section.notes) + "</ul>")
        if section.figure is not None and section.figure.is_file():  # full size up to the page's width; a click: all
            encoded = base64.b64encode(section.figure.read_bytes()).decode("ascii")
            parts.append(f"<a href=\"{e(section.figure.name)}\"><img alt=\"{e(section.title)}\" "
                         f"src=\"data:image/png;base64,{encoded}\"></a>")
    config = _config_text(data)
    parts += ["<h2>Configuration</h2>",
              f"<pre>{e(config)}</pre>" if config else "<p>The study run holds no study_config.json.</p>",
              "<h2>Provenance</h2>", to_html(pd.DataFrame(_provenance(data), columns=["item", "value"])),
              "</body></html>"]
    return "\n".join(parts) + "\n"
