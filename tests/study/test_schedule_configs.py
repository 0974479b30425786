"""Schedules in study configs: YAML method_params, the psi_schedule search, a trial's TrainConfig and MLflow params."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import FixedTrial

from search_spaces import make_space
from study.config import load_study_config, study_config_from_dict
from study.tracking import trial_params
from trainables import TRAIN_KEY, train_config
from trainers import ConfigError

YAML = """
method: dm
method_params:
  psi: {from: 0.5, to: 0.2, shape: linear}
  rho: 4
"""


def test_yaml_method_params_take_a_schedule(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(YAML, encoding="utf-8")
    config = load_study_config(path)
    assert config.method_params == {"psi": {"from": 0.5, "to": 0.2, "shape": "linear"}, "rho": 4}
    assert study_config_from_dict(config.to_dict()) == config
    compact = load_study_config(None, ["method_params={psi: 'linear:0.5:0.2', rho: 4}"])
    assert compact.method_params == config.method_params and compact.config_hash() == config.config_hash()


def test_plain_numbers_keep_their_config_hash() -> None:
    """The hashes of main before schedules existed: a config of plain numbers names the same study."""
    assert load_study_config(None).config_hash() == "613ce79051bd"
    assert load_study_config(None, ["method_params={lam: 1, beta: 8.0}"]).config_hash() == "fe557454e1e4"


@pytest.mark.parametrize(("params", "field", "words"), [
    ("{psi: {from: 0.5, to: 0.2, shape: wavy}, rho: 4}", "method_params.psi", "shape is one of"),
    ("{psi: {from: 0.5, to: 0.2}}", "method_params.rho", "psi and rho together"),  # rho missing
    ("{lam: {from: 0, to: 1, at: 2, shape: step}}", "method_params.lam", "'at' is a point of training progress"),
    ("{psy: 0.5}", "method_params.psy", "did you mean 'psi'?"),
])
def test_a_bad_schedule_in_a_study_is_one_line(params: str, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_study_config(None, [f"method_params={params}"])
    assert raised.value.field == field and words in str(raised.value) and "\n" not in str(raised.value)


def test_the_psi_schedule_search_is_for_dm_and_makes_scheduled_trials() -> None:
    config = load_study_config(None, ["search.parametrization=psi_schedule", "search.ranges.default.rho=[4, 4]"])
    with pytest.raises(ConfigError, match="psi_schedule reparametrises DM's lam and beta"):
        load_study_config(None, ["method=gce", "search.parametrization=psi_schedule"])
    space = make_space("dm", parametrization="psi_schedule", ranges=config.search.ranges_for(0.4))
    drawn = {"psi_from": 0.6, "psi_to": 0.1, "rho": 4.0}
    trial = {TRAIN_KEY: config.train.replace(method="dm").to_dict(), "noise": "symmetric", "noise_rate": 0.4, **drawn,
             **space(FixedTrial(drawn))}  # as the study's searcher makes it: the drawn values, then the setting
    train = train_config(trial)
    assert train.method_params == {"psi": {"from": 0.6, "to": 0.1, "shape": "linear"}, "rho": 4.0}
    params = trial_params(trial)
    assert params["psi"] == "linear:0.6:0.1" and params["psi_from"] == "0.6" and params["rho"] == "4.0"
    assert "lam" not in params and "beta" not in params  # no defaults of the names psi and rho stand in for
    final = {TRAIN_KEY: config.train.replace(method="dm").to_dict(), "noise": "symmetric", "noise_rate": 0.4,
             "split": "final", "cell": {**drawn, "psi": "linear:0.6:0.1", "rho": 4.0}, "seed": 0}  # the best's retrain
    assert train_config(final).method_params == train.method_params


def test_a_psi_rho_trial_still_trains_its_lam_and_beta() -> None:
    config = load_study_config(None, ["search.parametrization=psi_rho"])
    trial = {TRAIN_KEY: config.train.replace(method="dm").to_dict(), "noise": "symmetric", "noise_rate": 0.4,
             "psi": 0.5, "rho": 4.0, "lam": 1.0, "beta": 16.0}
    assert train_config(trial).method_params == {"lam": 1.0, "beta": 16.0}
