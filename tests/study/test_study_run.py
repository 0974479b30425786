"""A small real study (Ray Tune, Optuna, MLflow on SQLite): runs nested study → noise rate → trial, params and metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from study import driver
from study.cli import main
from study.config import load_study_config
from trainers import ConfigError
from study.driver import StudyState, run_study, study_folder, summary_table

pytestmark = pytest.mark.usefixtures("ray_session")


def small_study(tmp_path: Path, name: str, *extra: str):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = [f"name={name}", "noise_rates=[0.0, 0.4]", "search.num_samples=3", "search.max_concurrent=2",
                 "train.epochs=2", "final.n_seeds=1", f"tracking_uri={uri}", f"storage={tmp_path / 'ray'}", *extra]
    return load_study_config(None, overrides), uri


def runs_by_stage(uri: str, name: str) -> dict[str, list]:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    stages: dict[str, list] = {}
    for run in runs:
        stages.setdefault(run.data.tags.get("stage"), []).append(run)
    return stages


def test_small_study_leaves_nested_runs_with_params_and_epoch_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture) -> None:
    config, uri = small_study(tmp_path, "small")
    lines: list[str] = []
    state = run_study(config, echo=lines.append)
    stages = runs_by_stage(uri, "small")

    (study,) = stages["study"]
    rates = stages["noise_rate"]
    assert sorted(r.data.tags["noise_rate"] for r in rates) == ["0", "0.4"]
    assert all(r.data.tags["mlflow.parentRunId"] == study.info.run_id for r in rates)
    rate_ids = {r.info.run_id: r.data.tags["noise_rate"] for r in rates}

    search = stages["search"]
    assert len(search) == 6
    client = MlflowClient(uri)
    for run in search:
        assert run.data.tags["mlflow.parentRunId"] in rate_ids
        assert run.data.tags["noise_rate"] == rate_ids[run.data.tags["mlflow.parentRunId"]]
        assert {"lam", "beta", "dataset", "model", "noise_rate", "split", "seed"} <= set(run.data.params)
        assert run.data.params["split"] == "search"
        assert float(run.data.params["noise_rate"]) == float(run.data.tags["noise_rate"])
        assert run.info.status == "FINISHED"
        assert run.data.tags["seed"] == run.data.params["seed"] == "0"  # search.seed
        assert {"method", "dataset", "noise", "config_hash", "git_commit"} <= set(run.data.tags)
        history = client.get_metric_history(run.info.run_id, "val_acc")
        assert len(history) == 2 and sorted(m.step for m in history) == [9, 18]
        assert {"test_acc", "fit_acc", "p_clean", "emphasis_var"} <= set(run.data.metrics)
    for rate_run in rates:
        assert sum(r.data.tags["mlflow.parentRunId"] == rate_run.info.run_id for r in search) == 3
    # the paper's best at 0.4 (λ 1, β 16) tried first, clipped into the default range of β (up to 12)
    assert "noise rate 0.4: warm start lam=1, beta=16 lies outside the search ranges: tried as lam=1, beta=12" in lines
    at_04 = [(float(r.data.params["lam"]), float(r.data.params["beta"])) for r in search
             if r.data.tags["noise_rate"] == "0.4"]
    assert (1.0, 12.0) in at_04 and all(0.5 <= beta <= 12 for _, beta in at_04)
    names = {stage: sorted(r.info.run_name for r in runs) for stage, runs in stages.items()}
    assert names["study"] == ["study small"] and names["noise_rate"] == ["noise 0", "noise 0.4"]
    assert names["search"] == [f"search {rate} #{n}" for rate in ("0", "0.4") for n in (1, 2, 3)]

    final = stages["final"]
    assert len(final) == 2 and all(r.data.params["split"] == "final" for r in final)
    assert sorted(r.info.run_name for r in final) == ["final 0 seed 0", "final 0.4 seed 0"]
    assert all(r.data.tags["seed"] == "0" and "test_acc" in r.data.metrics for r in final)
    for key, rs in state.rates.items():
        assert rs.trials == 3 and len(rs.final_test) == 1 and set(rs.best) >= {"lam", "beta"}
        rate_run = client.get_run(rs.run_id)
        assert rate_run.data.metrics["best_val_acc"] == pytest.approx(rs.best_val_acc)
        assert rate_run.data.metrics["final_test_acc_mean"] == pytest.approx(rs.final_test[0])
    assert StudyState.load(study_folder(config)).rates.keys() == state.rates.keys()
    assert (tmp_path / "mlartifacts" / "small").is_dir()  # artifacts beside the store, never ./mlruns
    assert "noise rate | best setting" in summary_table(state)
    assert sum(line.lstrip().startswith("search ") for line in lines) == 6

    # the experiment tells what the study is, opens on its runs, and has a view of them with their scores
    experiment = client.get_experiment_by_name("small")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    note = experiment.tags["mlflow.note.content"]
    assert all(words in note for words in ("Study small: method dm on digits", "symmetric label noise",
                                           "noise rate 0.4", "3 Optuna trials", "with 1 seed,", "study report"))
    view = json.loads(experiment.tags["mlflow.sharedViewState.study"])
    assert view["selectedColumns"][:2] == ["metrics.`best_val_acc`", "metrics.`final_test_acc_mean`"]
    assert {"params.`lam`", "params.`beta`"} <= set(view["selectedColumns"])
    assert view["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": "label_set"}]

    # the same settings again, by run_study and `study resume`: the study is finished, nothing starts, nothing changes
    def written() -> dict[str, tuple]:
        return {r.info.run_id: (r.info.status, r.info.end_time, r.data.tags, r.data.metrics)
                for runs in runs_by_stage(uri, "small").values() for r in runs}

    def refuse(*args, **kwargs):
        raise AssertionError("a finished study started something")

    before = written()
    monkeypatch.setattr(driver, "connect", refuse)
    monkeypatch.setattr(driver, "study_data", refuse)
    again = run_study(config, echo=lines.append)
    assert lines[-1] == "study small is finished: nothing to run" and again.rates.keys() == state.rates.keys()
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["resume", str(study_folder(config))]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "study small is finished: nothing to run"
    assert "noise rate | best setting | val_acc | final test_acc | trials" in out
    assert out[-1] == f"report: {tmp_path / 'report' / 'small' / 'index.md'}"
    assert written() == before and client.get_experiment_by_name("small").tags == experiment.tags
    changed, _ = small_study(tmp_path, "small", "search.num_samples=4")
    with pytest.raises(ConfigError, match="other settings"):
        run_study(changed)


@pytest.mark.parametrize("cpus, slots", [(0.5, 4), (1, 2), (2 / 3, 3), (3, 1)])
def test_trial_slots_are_the_sessions_cpus_over_a_trials(cpus: float, slots: int) -> None:
    config = load_study_config(None, [f"resources.cpus_per_trial={cpus}"])
    assert driver.trial_slots(config) == slots  # the test session's Ray has two CPUs


def test_a_study_without_max_concurrent_runs_a_trial_in_every_slot(tmp_path: Path) -> None:
    """Left to itself, Tune starts a custom searcher's trials one at a time: trials shorter than an actor's start
    would then never overlap."""
    config, uri = small_study(tmp_path, "slots", "noise_rates=[0.4]", "search.num_samples=4",
                              "search.max_concurrent=null", "final.n_seeds=0")
    run_study(config, echo=lambda line: None)
    spans = [(r.info.start_time, r.info.end_time) for r in runs_by_stage(uri, "slots")["search"]]
    assert len(spans) == 4
    assert max(sum(s <= start < e for s, e in spans) for start, _ in spans) == 2


def test_the_console_of_a_small_study_is_calm(tmp_path: Path, driver_env: dict[str, str]) -> None:
    """`study run` (its output not a terminal) says a line per stage and per finished trial and, at each label set's
    stage's end, how far the study is: no status tables of Ray Tune, no Ray temporary folders, no Optuna, no best final retrain
    across label sets."""
    import ray

    overrides = ["name=calm", "noise_rates=[0.0, 0.4]", "search.num_samples=2", "train.epochs=1", "final.n_seeds=1",
                 f"tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}", f"storage={tmp_path / 'ray'}"]
    command = [sys.executable, "-m", "study", "run", *sum((["--set", o] for o in overrides), []), "--no-report",
               "--address", ray.get_runtime_context().gcs_address]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=driver_env)
    assert result.returncode == 0, result.stdout + result.stderr
    console = result.stdout + result.stderr
    for chatter in ("== Status ==", "Result logdir", "session_", "A new study created", "Current best trial",
                    " INFO ", "Warning"):
        assert chatter not in console, console
    lines = result.stdout.splitlines()
    assert lines[:1] == ["noise rate 0: searching dm (2 trials)"] and "noise rate 0.4: searching dm (2 trials)" in lines
    assert sum(line.startswith("  search ") for line in lines) == 4
    assert sum(line.startswith("  final ") for line in lines) == 2
    # how far the study is, at each label set's search end and retrains' end: 4 lines, the last at 6/6
    progress = [int(line[1:].split("/")[0]) for line in lines if line.startswith("[")]
    assert len(progress) == 4 and progress == sorted(progress) and progress[-1] == 6


def test_asha_stops_weak_trials_and_they_are_tagged(tmp_path: Path) -> None:
    """Trials run one at a time (so ASHA's decisions are reproducible); a stopped trial has fewer epochs and the tag."""
    config, uri = small_study(tmp_path, "asha", "noise_rates=[0.4]", "search.num_samples=6", "search.max_concurrent=1",
                              "train.epochs=4", "final.n_seeds=0", "search.seed=3",
                              "search.asha={grace_period: 1, reduction_factor: 3}")
    run_study(config, echo=lambda line: None)
    client = MlflowClient(uri)
    search = runs_by_stage(uri, "asha")["search"]
    assert len(search) == 6 and all(r.info.status == "FINISHED" and r.data.params["seed"] == "3" for r in search)
    epochs = {r.info.run_id: len(client.get_metric_history(r.info.run_id, "val_acc")) for r in search}
    stopped = {r.info.run_id for r in search if r.data.tags.get("early_stopped") == "true"}
    assert stopped and stopped == {run_id for run_id, n in epochs.items() if n < 4}


def test_grid_mode_runs_the_papers_cells(tmp_path: Path) -> None:
    """search.mode grid: one trial per cell of seed 000 Table 3, each trained with its own (λ, β)."""
    import search_spaces

    config, uri = small_study(tmp_path, "grid", "noise_rates=[0.4]", "search.mode=grid", "search.grid=table3",
                              "train.epochs=1", "final.n_seeds=0")
    state = run_study(config, echo=lambda line: None)
    search = runs_by_stage(uri, "grid")["search"]
    cells = sorted((c["lam"], c["beta"]) for c in search_spaces.paper_grid("table3"))
    assert sorted((float(r.data.params["lam"]), float(r.data.params["beta"])) for r in search) == cells
    assert set(state.rates["0.4"].best) >= {"lam", "beta"} and state.rates["0.4"].trials == 16
