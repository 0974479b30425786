"""Population Based Training (search.mode pbt): the config's checks, a PBT study end to end (exploitations copy weights
and values together and are recorded; the best is the schedule its trial followed, and its retrain replays it), a
diverged trial replaced, and a killed driver resumed with its population."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
import torch
from mlflow.tracking import MlflowClient
from ray import tune

from study.cli import main
from study.config import load_study_config
from study.driver import TRIALS, StudyState, run_study, study_folder
from study.population import EXPLOITED, LabelSetPBT
from study.scheduler import PerLabelSet
from trainables import TRAIN_KEY, train_trial
from trainers import ConfigError
from trainers.param_schedules import ParamSchedule

EPOCHS = 8
BASE = ["noise_rates=[0.4]", "search.mode=pbt", "search.num_samples=4", "search.parametrization=psi_rho",
        f"train.epochs={EPOCHS}", "final.n_seeds=1", "search.pbt={perturbation_interval: 1, quantile_fraction: 0.5}"]


@pytest.mark.parametrize(("overrides", "field", "words"), [
    (["search.num_samples=1"], "search.num_samples", "a population"),
    (["search.asha={}"], "search.asha", "PBT replaces the worst trials itself"),
    (["search.tune_lr=true"], "search.tune_lr", "PBT perturbs the method's parameters"),
    (["search.parametrization=psi_schedule"], "search.parametrization", "lam_beta or psi_rho"),
    (["search.pbt={perturbation_interval: 0}"], "search.pbt.perturbation_interval", "an integer ≥ 1"),
    (["search.pbt={quantile_fraction: 0.7}"], "search.pbt.quantile_fraction", "(0, 0.5]"),
    (["method=cce"], "search.mode", "PBT needs parameters of the method to perturb"),
])
def test_a_pbt_config_mistake_is_one_line(overrides: list[str], field: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_study_config(None, ["search.mode=pbt", *overrides])
    assert raised.value.field == field and words in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(ConfigError, match="only with mode pbt"):
        load_study_config(None, ["search.pbt={}"])
    assert load_study_config(None, ["search.mode=pbt"]).search.pbt.perturbation_interval == 2  # the defaults


def _history(path: Path) -> list[dict]:
    return torch.load(path, weights_only=True)["history"]


def _final_state(trial: Path) -> Path:
    return max(trial.glob("checkpoint_*"), key=lambda p: int(p.name.split("_")[1])) / "state.pt"


@pytest.mark.usefixtures("ray_session")
def test_a_pbt_study_copies_weights_with_values_and_retrains_the_schedule_its_best_followed(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = load_study_config(None, [*BASE, "name=pbt", f"tracking_uri={uri}", f"storage={tmp_path / 'ray'}"])
    lines: list[str] = []
    state = run_study(config, echo=lines.append)
    experiment = study_folder(config) / TRIALS
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("pbt").experiment_id], "tags.stage = 'search'")
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    folders = {p.name.split("_")[2]: p for p in experiment.glob("train_trial_*")}

    # each exploitation is a tag of the exploiting trial's run and a console line; its trial goes on from the copied
    # state (its history starts with the copy's whole history) with the values the tag names
    exploited = [(r, k, v) for r in runs for k, v in r.data.tags.items() if k.startswith("exploit.")]
    assert exploited, "a population of 4 ranked at every evaluation, half of it replaced: no exploitation"
    assert sum("goes on from step" in line for line in lines) == len(exploited)
    for run in runs:
        tags = sorted((int(k.split(".")[1]), v) for k, v in run.data.tags.items() if k.startswith("exploit."))
        assert [n for n, _ in tags] == list(range(1, len(tags) + 1))
        if not tags:
            continue
        source = tags[-1][1].split("trial ")[1].split(":")[0]
        step = int(tags[-1][1].split()[1])
        copies = [_history(c / "state.pt") for c in experiment.glob(f"{EXPLOITED}/{source}-*")]
        trial = folders[run.data.tags["ray_trial_id"]]
        mine = _history(_final_state(trial))
        assert any(copy[-1]["step"] == step and mine[:len(copy)] == copy for copy in copies)
        logged = {(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "psi")}
        assert {(e["step"], e["psi"]) for e in mine if e["step"] > step} <= logged  # from the copy on, all in MLflow
        last = json.loads((trial / "result.json").read_text().splitlines()[-1])
        values = dict(part.split("=") for part in tags[-1][1].split(": ", 1)[1].split(", "))
        assert {k: float(v) for k, v in values.items()} == pytest.approx(
            {k: last["config"][k] for k in values}, rel=1e-3)

    # every search trial ran to its end; the label set's best is the schedule its trial followed (its history's
    # values, lineage included), and the retrain follows it step by step
    best = state.rates["0.4"].best
    trials = {p: json.loads((p / "result.json").read_text().splitlines()[-1]) for p in folders.values()}
    searched = {p: r for p, r in trials.items() if "search" in p.name}
    assert all(r["step"] == r["total_steps"] for r in searched.values())
    followed = {k: str(v) for k, v in best.items() if k in ("psi", "rho")}
    (winner, *_) = [p for p, r in searched.items() if {k: r[f"policy.{k}"] for k in followed} == followed]
    assert searched[winner]["val_acc"] == max(r["val_acc"] for r in searched.values())  # ties: the study's rule
    schedule = ParamSchedule.parse("psi", best["psi"] if isinstance(best["psi"], str) else f"piecewise:{best['psi']}")
    followed = _history(_final_state(winner))
    total = searched[winner]["total_steps"]
    for before, evaluation in zip([{"step": 0}, *followed], followed):  # each value held since the evaluation before
        assert schedule.value(before["step"] / total) == pytest.approx(evaluation["psi"], abs=1e-12)
    final = next(p for p in trials if "final" in p.name)  # on the whole training set: more steps, the same course
    for evaluation in _history(_final_state(final)):  # each evaluation's values: its last step's
        progress = (evaluation["step"] - 1) / trials[final]["total_steps"]
        assert evaluation["psi"] == pytest.approx(schedule.value(progress), abs=1e-12)


def _diverging(config: dict) -> None:
    """train_trial; the trial with `diverge` set trains at lr × 1e6 from its fourth epoch on."""
    if config.get("diverge"):
        config = {**config, "schedule": "multistep", "milestones": [3], "gamma": 1e6}
    train_trial({k: v for k, v in config.items() if k != "diverge"}, population=["psi", "rho"])


@pytest.mark.usefixtures("ray_session")
def test_a_diverged_trial_is_replaced_by_a_copy_not_copied(tmp_path: Path) -> None:
    base = load_study_config(None, ["noise_rates=[0.4]", "train.epochs=6"]).train.replace(
        method="dm", noise="symmetric", noise_rate=0.4, split="search").to_dict()
    bounds = {"psi": (0.0, 2 / 3, False), "rho": (0.5, 8.0, True)}
    scheduler = PerLabelSet(lambda key: LabelSetPBT(metric="val_acc", perturbation_interval=100, bounds=bounds,
                                                    quantile_fraction=0.5, resample_probability=0.0),
                            ["0.4"], several=False)
    space = {TRAIN_KEY: base, "noise": "symmetric", "noise_rate": 0.4, "psi": 0.5, "rho": 4.0,
             "diverge": tune.grid_search([False, False, True])}
    tuner = tune.Tuner(tune.with_resources(_diverging, {"cpu": 0.5}), param_space=space,
                       tune_config=tune.TuneConfig(scheduler=scheduler),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), name="diverge", verbose=0))
    results = {r.metrics["trial_id"]: r for r in tuner.fit()}
    (bad,) = [trial_id for trial_id in results if trial_id.endswith("_00002")]  # the grid's third: diverge set
    copies = list((tmp_path / "diverge" / EXPLOITED).iterdir())
    assert len(copies) == 1 and not copies[0].name.startswith(bad)  # one exploitation (no other perturbation)
    replaced = results[bad]
    assert replaced.error is None and replaced.metrics["step"] == replaced.metrics["total_steps"]
    assert replaced.config["diverge"] is False  # it went on with the copied trial's config (no lr blow-up)
    copied = _history(copies[0] / "state.pt")  # and from its state: the copy's history, then its own evaluations
    assert _history(Path(replaced.checkpoint.path) / "state.pt")[:len(copied)] == copied


def test_pbt_state_survives_pickling_by_trial_id() -> None:
    import pickle

    scheduler = LabelSetPBT(metric="val_acc", perturbation_interval=2, bounds={"psi": (0.0, 0.5, False)},
                            quantile_fraction=0.25, resample_probability=0.25)
    scheduler.exploits.append({"trial": "a", "source": "b", "iteration": 2, "step": 18, "values": {}})
    scheduler._saved["a"] = {"orig_tag": "1", "last_score": 0.5, "last_checkpoint": None,
                             "last_perturbation_time": 2, "last_train_time": 2, "last_result": {"val_acc": 0.5}}
    restored = pickle.loads(pickle.dumps(scheduler))
    assert restored.exploits == scheduler.exploits and restored._saved == scheduler._saved
    assert restored._trial_state == {}


@pytest.mark.usefixtures("ray_session")
def test_a_killed_pbt_study_resumes_with_its_population(tmp_path: Path, monkeypatch, driver_env) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = [*BASE, "name=pbt-killed", "train.epochs=12", f"tracking_uri={uri}", f"storage={tmp_path / 'ray'}"]
    config = load_study_config(None, overrides)
    experiment = study_folder(config) / TRIALS
    address = ray.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "study", "run", *sum((["--set", o] for o in overrides), []), "--address", address]
    with (tmp_path / "driver.log").open("w") as out:
        driver = subprocess.Popen(command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                  env=driver_env)
    try:
        deadline = time.monotonic() + 240
        while len(list(experiment.glob(f"{EXPLOITED}/*"))) < 2:
            assert driver.poll() is None and time.monotonic() < deadline, "no exploitation before the driver ended"
            time.sleep(0.1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name("pbt-killed").experiment_id
    before = {r.data.tags["ray_trial_id"]: dict(r.data.tags) for r in client.search_runs([experiment_id],
                                                                                         "tags.stage = 'search'")}
    monkeypatch.chdir(tmp_path)
    assert main(["resume", str(study_folder(config)), "--address", address]) == 0
    runs = client.search_runs([experiment_id], "tags.stage = 'search'")
    assert len(runs) == 4 and {r.data.tags["ray_trial_id"] for r in runs} == set(before)  # the same population
    assert all(r.info.status == "FINISHED" for r in runs)
    for run in runs:  # the exploitations recorded before the kill are kept, and later ones numbered after them
        tags = {k: v for k, v in run.data.tags.items() if k.startswith("exploit.")}
        old = {k: v for k, v in before[run.data.tags["ray_trial_id"]].items() if k.startswith("exploit.")}
        assert tags.items() >= old.items()
        assert sorted(int(k.split(".")[1]) for k in tags) == list(range(1, len(tags) + 1))
        sources = {v.split("trial ")[1].split(":")[0] for v in tags.values()}
        assert sources <= set(before)
    state = StudyState.load(study_folder(config))
    assert state.finished and state.rates["0.4"].trials == 4
    result = json.loads(next(experiment.glob("train_trial_*_final-*")).joinpath("result.json").read_text()
                        .splitlines()[-1])
    assert result["step"] == result["total_steps"]
