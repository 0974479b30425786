"""The benchmark suite: every benchmark in --quick mode writes a well-formed record and its Markdown section (no timing
is asserted: these machines are shared), gpu_check's in a process that cannot import ray, optuna or mlflow (as on
the device machine); the timing helpers and the search lattice against independent computations; bad input refused
in one line."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import bench
import search_spaces
from bench import NO_GPU, list_benchmarks
from bench._cli import main
from bench._record import REQUIRED
from bench._timing import interleaved, median_ms, p95_ms
from bench.search_efficiency import GRID, _snap
from bench.weighting_overhead import METHODS
from trainers import list_losses

GPU_FIGURES = ("gpu_throughput", "trial_packing")


@pytest.fixture(scope="module")
def tiny_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated stand-in for gpu_check's CIFAR-10 subset: random 32×32×3 images, every class in both splits."""
    rng = np.random.default_rng(0)
    sizes = {"train": 300, "test": 40}  # enough for the probe that l2r and ieg hold out (PROBE_PER_CLASS per class)
    arrays = {f"x_{split}": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8) for split, n in sizes.items()}
    arrays |= {f"y_{split}": np.arange(n) % 10 for split, n in sizes.items()}
    path = tmp_path_factory.mktemp("subset") / "tiny.npz"
    np.savez(path, **arrays, y_train_true=arrays["y_train"])
    return path


QUICK = ["--quick", "--threads", "1"]
ABSENT_ON_THE_DEVICE = ("ray", "optuna", "mlflow")  # the lent GPU machine has torch, torchvision and numpy only


@pytest.fixture(scope="module")
def device_like_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a Python that cannot import ray, optuna or mlflow, as on the device machine: packages of
    those names that raise ModuleNotFoundError, first on PYTHONPATH (before this repository)."""
    blocked = tmp_path_factory.mktemp("blocked")
    for name in ABSENT_ON_THE_DEVICE:
        (blocked / name).mkdir()
        (blocked / name / "__init__.py").write_text(f"raise ModuleNotFoundError('blocked', name={name!r})\n")
    path = [str(blocked), str(Path(bench.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}


@pytest.fixture(scope="module")
def quick_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the --quick records."""
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="module")
def gpu_check_run(quick_out: Path, tiny_subset: Path, device_like_env: dict[str, str]) -> subprocess.CompletedProcess:
    """`python -m bench gpu_check` with --quick and one torch thread on the tiny subset, as on the device machine:
    in a process that cannot import ray, optuna or mlflow."""
    command = [sys.executable, "-m", "bench", *QUICK, "--out", str(quick_out), "--subset", str(tiny_subset),
               "gpu_check"]
    return subprocess.run(command, env=device_like_env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def quick_run(quick_out: Path, gpu_check_run: subprocess.CompletedProcess, fashion_root: Path, ray_session) -> Path:
    """Every registered benchmark run once with --quick and one torch thread (gpu_check in gpu_check_run, the others
    here); the folder of its records."""
    threads = torch.get_num_threads()
    try:
        code = main([*QUICK, "--out", str(quick_out), "--data-root", str(fashion_root),
                     *(name for name in list_benchmarks() if name != "gpu_check")])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return quick_out


def record(out: Path, name: str) -> dict:
    return json.loads((out / f"{name}.json").read_text())


def test_every_record_has_its_fields_and_finite_positive_ratios(quick_run: Path) -> None:
    for name in list_benchmarks():
        r = record(quick_run, name)
        assert [key for key in REQUIRED if key not in r] == []
        assert r["name"] == name and r["quick"] is True and r["met"] is None
        assert isinstance(r["measured"], str) and r["measured"]
        if name in GPU_FIGURES and not torch.cuda.is_available():
            assert r["measured"] == NO_GPU
        assert r["versions"]["torch"] == importlib.metadata.version("torch") and r["machine"]["cores"] >= 1
        assert r["machine"]["torch_threads"] == 1
        assert r["command"].startswith("python -m bench --quick --threads 1") and name in r["command"]
        assert datetime.datetime.fromisoformat(r["date"]).tzinfo is not None
        assert all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in r["ratios"].values()), r["ratios"]
        for table in r["tables"]:
            assert all(len(row) == len(table["header"]) for row in table["rows"])


def test_markdown_has_the_top_table_and_one_section_per_record(quick_run: Path) -> None:
    text = (quick_run / "BENCHMARKS.md").read_text()
    sections = [line.removeprefix("## ") for line in text.splitlines() if line.startswith("## ")]
    records = [record(quick_run, name) for name in list_benchmarks()]
    assert sections == [f"{r['figure']}. {r['title']}" if r["figure"] else r["title"] for r in records]
    top = [line for line in text.split("\n## ")[0].splitlines() if line.startswith("| ")]
    assert len(top) == 1 + len(records)  # the header row, then one per figure
    for r in records:
        assert f"`{r['command']}`" in text and r["date"] in text


def test_report_only_writes_the_report_again_with_the_notes_where_they_belong(quick_run: Path, tmp_path: Path) -> None:
    notes = quick_run / "notes"
    notes.mkdir(exist_ok=True)
    (notes / "intro.md").write_text("Intro note.")
    (notes / "mlflow_cost.md").write_text("MLflow note.")
    report = tmp_path / "report.md"
    assert main(["--report-only", "--out", str(quick_run), "--markdown", str(report)]) == 0
    text = report.read_text()
    intro, sections = text.split("\n## ")[0], text.split("\n## ")[1:]
    assert "Intro note." in intro and "| figure | target |" in intro.split("Intro note.")[1]
    assert [s.split("\n")[0] for s in sections if "MLflow note." in s] == ["7. MLflow cost per reported epoch"]
    assert sorted(p.name for p in quick_run.glob("*.json")) == sorted(f"{n}.json" for n in list_benchmarks())


def test_weighting_overhead_ratios_are_each_methods_median_over_cces(quick_run: Path) -> None:
    r = record(quick_run, "weighting_overhead")
    rows = [dict(zip(r["tables"][0]["header"], row)) for row in r["tables"][0]["rows"]]
    cce = {row["model/data"]: row["median ms"] for row in rows if row["method"] == "cce"}
    assert set(cce) == {"mlp/digits", "lenet/digits"}
    timed = [row for row in rows if row["model/data"] in cce and row["method"] != "cce"]
    assert {row["method"] for row in timed} == {label for label, (m, _, _) in METHODS.items() if m in list_losses()}
    for row in timed:
        assert row["× CCE"] == pytest.approx(row["median ms"] / cce[row["model/data"]])
        assert r["ratios"][f"{row['model/data']} cpu {row['method']}"] == pytest.approx(row["× CCE"])
    missing = [label for label, (m, _, _) in METHODS.items() if m not in list_losses()]
    assert r["details"]["not_implemented"] == missing
    assert ("not implemented yet" in r["measured"]) == bool(missing) and all(m in r["measured"] for m in missing)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU stand-in of the GPU figures")
def test_gpu_figures_check_their_code_paths_on_the_cpu(quick_run: Path) -> None:
    flags = record(quick_run, "gpu_throughput")["details"]["cpu_check"]
    assert {name: (f["bf16"], f["channels_last"], f["weights_channels_last"], f["compiled"])
            for name, f in flags.items()} == {
        "fp32 eager": (False, False, False, False),
        "bf16 + channels-last": (True, True, True, False),
        "bf16 + channels-last + torch.compile": (True, True, True, True),
    }
    assert all(f["steps_run"] == 3 for f in flags.values())  # one untimed step, one block of two
    packing = record(quick_run, "trial_packing")["details"]["cpu_check"]
    assert [row[0] for row in packing] == [1, 2] and all(row[1] > 0 for row in packing)


def test_gpu_check_runs_where_ray_optuna_and_mlflow_cannot_be_imported(
        gpu_check_run: subprocess.CompletedProcess, device_like_env: dict[str, str], quick_out: Path) -> None:
    for name in ABSENT_ON_THE_DEVICE:
        tried = subprocess.run([sys.executable, "-c", f"import {name}"], env=device_like_env, capture_output=True,
                               text=True)
        assert tried.returncode == 1 and "ModuleNotFoundError: blocked" in tried.stderr
    assert gpu_check_run.returncode == 0, gpu_check_run.stderr
    parts = [line.strip().split(":")[0] for line in gpu_check_run.stdout.splitlines() if "part " in line]
    assert parts == ["part 1", "part 2", "part 3", "part 4"]
    assert record(quick_out, "gpu_check")["measured"] == NO_GPU


def test_gpu_check_ran_every_part_on_the_cpu_and_recorded_it(quick_run: Path, tiny_subset: Path) -> None:
    r = record(quick_run, "gpu_check")
    d = r["details"]
    assert r["measured"] == NO_GPU and d["gpu"] == NO_GPU and d["subset"] == str(tiny_subset)
    captions = [t["caption"].split(",")[0] for t in r["tables"]]
    assert captions == ["One trial", "Packed trials", "Step time against CCE's", "lenet", "Wall time per part"]
    positive = [d["subset_mib"], d["total_s"], *d["wall_s"].values(), *d["step_ms"].values(),
                *d["packed_images_s"].values(), d["noise_run_steps"]]
    assert all(math.isfinite(x) and x > 0 for x in positive), positive
    assert list(d["wall_s"]) == ["throughput", "packing", "weighting", "noise run"]
    assert sum(d["wall_s"].values()) == pytest.approx(d["total_s"])
    assert set(d["test_accuracy"]) == {"cce", "dm"} and all(0 <= a <= 1 for a in d["test_accuracy"].values())
    assert set(d["step_ms"]) == {"cce", *(label for label, (m, _, _) in METHODS.items() if m in list_losses())}
    assert list(d["packed_images_s"]) == ["1", "4"]  # JSON keys
    assert {name: (f["bf16"], f["channels_last"], f["compiled"]) for name, f in d["variants"].items()} == {
        "bf16 + channels-last": (True, True, False), "bf16 + channels-last + torch.compile": (True, True, True)}
    assert {"bf16 + channels-last + torch.compile ÷ bf16 + channels-last", "4 packed trials ÷ 1",
            "dm ÷ cce step"} <= set(r["ratios"])


def test_study_overhead_ran_the_quick_studys_trials_both_ways(quick_run: Path) -> None:
    r = record(quick_run, "study_overhead")
    (only,) = r["details"]["rounds"]
    assert only["trials"] == 2 and only["study s"] > 0 and only["plain s"] > 0
    assert r["ratios"]["study ÷ plain"] == pytest.approx(only["study s"] / only["plain s"])


def test_cluster_utilisation_is_the_trials_busy_time_over_the_slots_span(quick_run: Path) -> None:
    r = record(quick_run, "cluster_utilisation")
    (design,) = r["details"]["designs"]  # quick: this code only, on the test session's Ray
    spans = design["spans"]
    assert len(spans) == design["trials"] == 3  # the quick study's two search trials and one final retrain
    assert all(0 <= start < end for start, end in spans) and min(start for start, _ in spans) == 0
    busy, span = sum(end - start for start, end in spans), max(end for _, end in spans)
    assert design["slots"] == 2 and 1 <= design["peak"] <= design["slots"]
    assert 0 < busy <= design["slots"] * span and 0 <= design["none running s"] < span
    assert design["utilisation"] == pytest.approx(busy / (design["slots"] * span))
    assert r["ratios"] == {"one Tuner (this code) utilisation": design["utilisation"]}


def test_search_efficiency_counts_are_trials_within_budget_and_their_medians(quick_run: Path) -> None:
    d = record(quick_run, "search_efficiency")["details"]
    trials, cells = d["sizes"]["trials"], len(search_spaces.paper_grid(GRID))
    for name, counts in d["trials_needed"].items():
        assert len(counts) == d["sizes"]["seeds"]
        limit = cells if name.startswith("the grid") else trials
        assert all(n is None or 1 <= n <= limit for n in counts)
        assert d["median"][name] == statistics.median(trials + 1 if n is None else n for n in counts)
    cached = json.loads((quick_run / "cache" / "search_efficiency.json").read_text())
    assert d["grid_best_val_acc"] in [c["val_acc"] for c in cached.values()]
    assert len(cached) == d["lattice_points_scored"] == d["trained_now"]
    assert d["scored_within_tolerance"] == sum(c["val_acc"] >= d["grid_best_val_acc"] - 0.005 for c in cached.values())


def test_mlflow_cost_logged_every_report_in_both_stores(quick_run: Path) -> None:
    d = record(quick_run, "mlflow_cost")["details"]
    assert set(d["stores"]) == {"SQLite", "mlflow server"}
    for store in d["stores"].values():
        assert store["epochs_logged"] == d["reports"] + 1  # the untimed first report and the timed ones
        assert store["metrics_per_epoch"] > 10 and 0 < store["median_ms"] <= store["p95_ms"]


def test_every_cell_of_the_searched_grid_is_a_point_of_the_lattice() -> None:
    cells = [(c["lam"], c["beta"]) for c in search_spaces.paper_grid(GRID)]
    assert [_snap(lam, beta) for lam, beta in cells] == cells


def test_interleaved_rotates_the_order_and_times_the_slow_one_every_nth_round() -> None:
    calls: list[str] = []
    times = interleaved({n: (lambda n=n: calls.append(n)) for n in "abc"}, rounds=6, warmup=2, every={"c": 3})
    assert {n: len(t) for n, t in times.items()} == {"a": 6, "b": 6, "c": 2}
    # rounds 0 … 7 start at a, b, c, a, …; c runs in rounds 2 and 5, the first and the fourth timed
    assert "".join(calls) == "ab" "ba" "cab" "ab" "ba" "cab" "ab" "ba"


def test_median_and_p95_against_numpy() -> None:
    seconds = list(np.random.default_rng(0).exponential(0.01, 37))
    assert median_ms(seconds) == pytest.approx(1000 * np.median(seconds))
    assert p95_ms(seconds) == pytest.approx(1000 * np.percentile(seconds, 95, method="inverted_cdf"))


@pytest.mark.parametrize("argv, field", [(["no_such_figure"], "benchmark"), (["--threads", "0"], "--threads"),
                                         (["--data-root", "/no/such/folder"], "--data-root")])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                          argv: list[str], field: str) -> None:
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {field}")
    assert not (tmp_path / "out").exists()


def test_the_numbered_figures_are_issue_8s_seven() -> None:
    figures = [bench.get_benchmark(n).figure for n in list_benchmarks(figures_only=True)]
    assert figures == [1, 2, 3, 4, 5, 6, 7]
