"""Emphasis over time: three DM studies of the same data (a fixed (λ, β) search, a searched ψ schedule, PBT) drawn as
ψ(t) and tabled by final test accuracy; the part absent where no study's best ψ varies. From stores logged as the
driver logs them (no Ray)."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from reports import load_study, write_report
from reports._emphasis import emphasis_curves, emphasis_table
from tests.reports.stores import log_study
from trainers.reparam import to_psi_rho

T = np.linspace(0, 1, 1001)
FIXED = {0.2: {"lam": 1.0, "beta": 8.0}, 0.4: {"lam": 0.25, "beta": 4.0}}
SCHEDULE = {0.2: "linear:0.5:0.2", 0.4: "linear:0.1:0.6"}
PBT = {0.2: "0.3", 0.4: "piecewise:0.2:0.5:0.4"}  # PBT's best.psi: a number, or the piecewise schedule it followed
FINALS = {"dm-fixed": [0.90, 0.91, 0.93], "dm-sched": [0.92, 0.95], "dm-pbt": [0.94, 0.94, 0.97, 0.96]}
TRIALS = {"dm-fixed": 3, "dm-sched": 2, "dm-pbt": 4}  # search trials per noise rate


def _studies(tmp: Path, name: str, studies: dict[str, tuple[dict, dict[float, dict]]]) -> str:
    """A store of `studies` (name: (config, best setting per noise rate)), each with TRIALS search trials (3 for one
    not listed there) and FINALS final retrains per noise rate (0.2 lower by 0.1); its tracking URI."""
    uri = f"sqlite:///{tmp}/{name}.db"
    client = MlflowClient(uri)
    for study, (config, best) in studies.items():
        finals = FINALS.get(study, [0.8, 0.81])
        log_study(client, str(tmp / name), study, config, {
            rate: {"best": setting, "search": [(setting, 0.5 + i / 100) for i in range(TRIALS.get(study, 3))],
                   "finals": [a - 0.1 if rate == 0.2 else a for a in finals]} for rate, setting in best.items()})
    return uri


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(tracking URI, folder) of a store of "dm-fixed" (best λ, β), "dm-sched" (best ψ a linear schedule, ρ), "dm-pbt"
    (search.mode pbt: best ψ a number at 0.2, a piecewise schedule at 0.4) and "cce", at noise rates 0.2 and 0.4."""
    tmp = tmp_path_factory.mktemp("emphasis")
    uri = _studies(tmp, "store", {
        "dm-fixed": ({"search": {"mode": "optuna", "parametrization": "lam_beta"}}, FIXED),
        "dm-sched": ({"search": {"mode": "optuna", "parametrization": "psi_schedule"}},
                     {rate: {"psi": psi, "rho": 4.0} for rate, psi in SCHEDULE.items()}),
        "dm-pbt": ({"search": {"mode": "pbt", "parametrization": "psi_rho"}},
                   {rate: {"psi": psi, "rho": 2.0} for rate, psi in PBT.items()}),
        "cce": ({"method": "cce", "search": {"mode": "grid"}}, {0.2: {}, 0.4: {}})})
    return uri, tmp


def expected_psi() -> dict[str, list[tuple[str, np.ndarray]]]:
    """ψ(t) of each study's best setting per noise rate, computed here: λ/(λ+1), the linear schedules written out, the
    piecewise schedule as PBT's policy."""
    return {f"{rate:g}": [("dm-fixed (fixed)", np.full_like(T, to_psi_rho(FIXED[rate]["lam"], FIXED[rate]["beta"])[0])),
                          ("dm-sched (schedule)", start + (end - start) * T),
                          ("dm-pbt (PBT)", pbt)]
            for rate, (start, end), pbt in ((0.2, (0.5, 0.2), np.full_like(T, 0.3)),
                                            (0.4, (0.1, 0.6), np.where(T < 0.5, 0.2, 0.4)))}


@pytest.mark.parametrize("study", ["dm-fixed", "dm-sched", "dm-pbt"])
def test_each_dm_study_s_best_psi_is_drawn_over_training(store: tuple[str, Path], study: str) -> None:
    curves = emphasis_curves(load_study(store[0], study))
    expected = expected_psi()
    assert list(curves) == list(expected)
    for key, drawn in curves.items():
        assert [label for label, _, _ in drawn] == [label for label, _ in expected[key]]
        for (_, t, psi), (_, want) in zip(drawn, expected[key]):
            assert t == pytest.approx(T)
            assert psi == pytest.approx(want)
    assert expected["0.2"][0][1][0] == 0.5 and expected["0.4"][0][1][0] == 0.2  # λ = 1 and λ = 0.25


def cell(values: list[float]) -> str:
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f} (n={len(values)})"


def test_the_table_has_a_row_per_dm_study_with_kind_trials_and_final_accuracy(store: tuple[str, Path]) -> None:
    table = emphasis_table(load_study(store[0], "dm-sched"))
    assert table.columns.tolist() == ["kind", "study", "search trials", "noise 0.2", "noise 0.4"]
    assert table["kind"].tolist() == ["fixed", "schedule", "PBT"]
    assert table["study"].tolist() == ["dm-fixed", "dm-sched", "dm-pbt"]
    assert table["search trials"].tolist() == [2 * TRIALS[s] for s in table["study"]]
    assert table["noise 0.2"].tolist() == [cell([a - 0.1 for a in FINALS[s]]) for s in table["study"]]
    assert table["noise 0.4"].tolist() == [cell(FINALS[s]) for s in table["study"]]


def test_the_report_shows_the_table_and_the_figure(store: tuple[str, Path]) -> None:
    uri, tmp = store
    out = write_report(uri, "dm-fixed", tmp / "report", log_artifacts=False).parent
    index = (out / "index.md").read_text()
    assert "## Emphasis over time: final test accuracy" in index and "## Emphasis over time: ψ(t)" in index
    assert "![Emphasis over time: ψ(t)](emphasis_psi_t.png)" in index
    assert (out / "emphasis_psi_t.png").is_file() and (out / "emphasis_psi_t.pdf").is_file()
    written = pd.read_csv(out / "emphasis_over_time.csv")
    assert written["study"].tolist() == ["dm-fixed", "dm-sched", "dm-pbt"]
    assert written["noise 0.4"].tolist() == [cell(FINALS[s]) for s in written["study"]]
    assert "Emphasis over time" in (out / "index.html").read_text()


def test_a_cce_study_s_report_has_no_emphasis_part(store: tuple[str, Path]) -> None:
    uri, tmp = store
    data = load_study(uri, "cce")
    assert emphasis_curves(data) == {} and emphasis_table(data).empty
    out = write_report(uri, "cce", tmp / "report-cce", log_artifacts=False).parent
    assert "Emphasis over time" not in (out / "index.md").read_text()


def test_the_part_is_absent_where_no_best_psi_varies(tmp_path: Path) -> None:
    """A fixed study, a schedule search whose best schedule is flat and a PBT study that kept ψ: nothing varies."""
    uri = _studies(tmp_path, "flat", {
        "dm-fixed": ({"search": {"mode": "optuna"}}, FIXED),
        "dm-flat": ({"search": {"mode": "optuna", "parametrization": "psi_schedule"}},
                    {0.2: {"psi": "linear:0.4:0.4", "rho": 4.0}}),
        "dm-pbt": ({"search": {"mode": "pbt"}}, {0.4: {"psi": "0.3", "rho": 2.0}})})
    data = load_study(uri, "dm-fixed")
    assert emphasis_curves(data) == {}
    assert "varies" in emphasis_table(data).attrs["note"]
    out = write_report(uri, "dm-fixed", tmp_path / "report", log_artifacts=False).parent
    assert "Emphasis over time" not in (out / "index.md").read_text()
    assert not list(out.glob("emphasis*"))
