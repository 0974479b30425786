"""The report of a real small study: tables equal to what MLflow holds, well-formed LaTeX, byte-identical regeneration,
an index naming every file, a study of another shape still reported, and the command line's one-line refusal."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from reports import load_study, write_report
from reports._tables import ablation_grid, best_beta_per_lambda, emphasis_mode_table, grid_cells_table, summary_table
from reports._write import write_table

RATES = (0.0, 0.4)


def logged_search_runs(uri: str, name: str) -> list[tuple[float, float, float, dict[str, float]]]:
    """(noise rate, λ, β, last metrics) of every search run, read straight from MLflow."""
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], "tags.stage = 'search'", max_results=1000)
    return [(float(r.data.tags["noise_rate"]), float(r.data.params["lam"]), float(r.data.params["beta"]),
             dict(r.data.metrics)) for r in runs]


def expected_cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f} (n=1)"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f} (n={len(values)})"


@pytest.fixture(scope="module")
def report_dir(report_study: tuple[str, Path]) -> Path:
    uri, tmp = report_study
    return write_report(uri, "rep", tmp / "report-a").parent


@pytest.mark.parametrize("metric", ["test_acc", "val_acc"])
def test_grid_cells_equal_the_logged_metrics(report_study: tuple[str, Path], metric: str) -> None:
    uri, _ = report_study
    trials = load_study(uri, "rep").trials
    logged = logged_search_runs(uri, "rep")
    for rate in RATES:
        cells: dict[tuple[float, float], list[float]] = defaultdict(list)
        for r, lam, beta, metrics in logged:
            if r == rate:
                cells[lam, beta].append(metrics[metric])
        grid = ablation_grid(trials, f"{rate:g}", metric)
        assert len(cells) == 4 and all(len(v) == 2 for v in cells.values()) and len(grid) == 2
        for lam, beta in cells:
            row = grid[grid["lam"] == f"{lam:g}"]
            assert row.iloc[0][f"beta={beta:g}"] == expected_cell(cells[lam, beta])
        filled = sum(v != "—" for v in grid.drop(columns="lam").to_numpy().ravel())
        assert filled == len(cells)


def test_best_beta_per_lambda_is_the_best_mean_val_acc(report_study: tuple[str, Path]) -> None:
    uri, _ = report_study
    trials = load_study(uri, "rep").trials
    for rate in RATES:
        by_setting: dict[tuple[float, float], list[float]] = defaultdict(list)
        for r, lam, beta, metrics in logged_search_runs(uri, "rep"):
            if r == rate:
                by_setting[lam, beta].append(metrics["val_acc"])
        table = best_beta_per_lambda(trials, f"{rate:g}")
        assert sorted(table["lam"]) == sorted({lam for lam, _ in by_setting})
        for row in table.itertuples():
            options = {beta: statistics.mean(v) for (lam, beta), v in by_setting.items() if lam == row.lam}
            best = max(options.values())
            assert row.val_acc == pytest.approx(best)
            assert min(b for b, v in options.items() if round(v, 9) == round(best, 9)) == row.beta
        modes = emphasis_mode_table(trials, f"{rate:g}")
        assert list(modes["beta"]) == list(table["beta"])
        assert modes["psi"].tolist() == pytest.approx([lam / (lam + 1) for lam in table["lam"]])


def test_latex_fragments_are_well_formed(report_dir: Path) -> None:
    fragments = sorted(report_dir.glob("*.tex"))
    assert fragments
    for path in fragments:
        lines = path.read_text().splitlines()
        assert lines[0].startswith(r"\begin{tabular}{l") and lines[-1] == r"\end{tabular}", path
        assert lines[1] == r"\toprule" and lines[-2] == r"\bottomrule"
        columns = len(re.match(r"\\begin\{tabular\}\{([lrc]+)\}", lines[0]).group(1))
        rows = [line for line in lines if line.endswith(r"\\")]
        assert len(rows) >= 2
        for row in rows:
            assert len(re.findall(r"(?<!\\)&", row)) == columns - 1, (path, row)
        text = path.read_text()
        assert text.count(r"\begin{") == text.count(r"\end{")
        assert "±" not in text and not re.search(r"(?<!\\)_", text)


def test_regeneration_is_byte_identical(report_study: tuple[str, Path], report_dir: Path) -> None:
    uri, tmp = report_study
    again = write_report(uri, "rep", tmp / "report-b", log_artifacts=False).parent
    first = sorted(p.name for p in report_dir.iterdir() if p.suffix in (".csv", ".md"))
    assert first == sorted(p.name for p in again.iterdir() if p.suffix in (".csv", ".md"))
    for name in first:
        assert (report_dir / name).read_bytes() == (again / name).read_bytes(), name


def test_index_names_every_table_and_figure(report_study: tuple[str, Path], report_dir: Path) -> None:
    index = (report_dir / "index.md").read_text()
    files = [p.name for p in report_dir.iterdir() if p.suffix in (".csv", ".tex", ".png", ".pdf") or
             (p.suffix == ".md" and p.name != "index.md")]
    for rate in RATES:
        for stem in ("grid_test_acc", "grid_val_acc", "best_beta", "emphasis_modes"):
            assert (report_dir / f"noise-{rate:g}_{stem}.csv").is_file()
    assert (report_dir / "summary.csv").is_file()
    assert all(f"({name})" in index for name in files), [n for n in files if f"({n})" not in index]
    html = (report_dir / "index.html").read_text()
    assert html.count("<img") == len(list(report_dir.glob("*.png")))
    assert "git commit" in index and "config hash" in index and "mlflow" in index and '"noise_rates"' in index
    uri, _ = report_study
    client = MlflowClient(uri)
    logged = {a.path for a in client.list_artifacts(load_study(uri, "rep").study_run_id, "report")}
    assert "report/index.md" in logged and "report/summary.csv" in logged


def test_summary_matches_the_rate_runs(report_study: tuple[str, Path]) -> None:
    uri, _ = report_study
    data = load_study(uri, "rep")
    summary = summary_table(data)
    assert summary["noise_rate"].tolist() == list(RATES)
    assert summary["trials"].tolist() == [8, 8] and summary["final_runs"].tolist() == [2, 2]
    for row, rate_row in zip(summary.itertuples(), data.rates.itertuples()):
        assert row.best_val_acc == pytest.approx(rate_row.best_val_acc)
        assert row.final_test_acc.startswith(f"{rate_row.final_test_acc_mean:.4f} ± ")


def test_a_study_without_lambda_beta_and_one_rate_is_still_reported(free_store: tuple[str, Path]) -> None:
    uri, folder = free_store
    index = write_report(uri, "cce1", folder / "report-cce", log_artifacts=False)
    text = index.read_text()
    assert "not applicable" in text and "lam or beta" in text
    assert (index.parent / "summary.csv").is_file() and (index.parent / "index.html").is_file()
    summary = pd.read_csv(index.parent / "summary.csv")
    assert summary["trials"].tolist() == [1] and summary["final_test_acc"].str.endswith("(n=1)").all()


def test_python_m_reports_with_a_missing_study_is_one_line_exit_2(report_study: tuple[str, Path],
                                                                   tmp_path: Path) -> None:
    uri, _ = report_study
    root = str(Path(__file__).resolve().parents[2])  # the repository, whether or not reports is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", "reports", "--tracking-uri", uri, "--study", "no-such-study"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "no-such-study" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_tables_of_odd_studies_never_raise(tmp_path: Path) -> None:
    empty = pd.DataFrame()
    other = pd.DataFrame({"run_id": ["a", "b"], "stage": ["search", "search"], "noise_rate": [0.2, 0.2],
                          "lr": [0.1, 0.2], "val_acc": [0.5, 0.6]})
    partial = pd.DataFrame({"run_id": ["a"], "stage": ["search"], "noise_rate": [0.2], "lam": [1.0], "beta": [2.0],
                            "val_acc": [0.7]})
    for trials in (empty, other, partial):
        for table in (ablation_grid(trials, "0.2", "test_acc"), best_beta_per_lambda(trials, "0.4"),
                      emphasis_mode_table(trials, "0.2"), grid_cells_table(trials, "0.2", ["uc", "lr"])):
            assert not table.empty or table.attrs["note"]
    cells = grid_cells_table(other, "0.2", ["lr"])  # one row per cell, best mean val_acc first
    assert cells["lr"].tolist() == ["0.2", "0.1"] and cells["val_acc"].tolist() == ["0.6000 (n=1)", "0.5000 (n=1)"]
    modes = emphasis_mode_table(partial, "0.2")
    assert modes["intact_acc"].isna().all() and modes["val_acc"].tolist() == [0.7]
    assert ablation_grid(partial, "0.2", "val_acc").iloc[0]["beta=2"] == "0.7000 (n=1)"
    paths = write_table(pd.DataFrame({"a_b": ["1 ± 2", "x%&#"], "c": [0.5, float("nan")]}), tmp_path, "t")
    tex = paths[2].read_text()
    assert r"a\_b" in tex and r"$\pm$" in tex and r"x\%\&\#" in tex and "---" in tex
