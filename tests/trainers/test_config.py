"""Tests for trainers.TrainConfig: the default is valid, every bad setting is a ConfigError naming its field."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from trainers import ConfigError, TrainConfig, list_datasets, list_losses, list_models


def test_default_is_valid() -> None:
    config = TrainConfig()
    assert config.dataset in list_datasets()
    assert config.model in list_models()
    assert config.method in list_losses()
    assert (config.epochs is None) != (config.iterations is None)


def test_a_full_valid_config() -> None:
    config = TrainConfig(dataset="digits", method="dm", method_params={"lam": 1.0, "beta": 8.0}, noise="pair",
                         noise_rate=0.45, split="final", optimizer="adam", lr=1e-3, batch_size=64, epochs=None,
                         iterations=300, schedule="cosine", schedule_unit="iteration", cosine_period=100,
                         cosine_mult=2.0, cosine_decay=0.5, warmup=10, dropout=0.5, device="cpu", seed=3)
    assert config.method_params == {"lam": 1.0, "beta": 8.0}
    assert config.iterations == 300


def test_method_params_and_milestones_are_copied() -> None:
    params = {"lam": 1.0}
    config = TrainConfig(method="dm", method_params=params, milestones=[5, 10], schedule="multistep")
    params["beta"] = 2.0
    assert config.method_params == {"lam": 1.0}
    assert config.milestones == (5, 10)


BAD: list[tuple[dict[str, Any], str, str]] = [
    # (settings, field, the bad value as the message shows it)
    ({"dataset": "foo"}, "dataset", "'foo'"),
    ({"model": "bar"}, "model", "'bar'"),
    ({"method": "nope"}, "method", "'nope'"),
    ({"method": "dm", "method_params": {"q": 1}}, "dm.q", "1"),
    ({"method": "cce", "method_params": {"lam": 1.0}}, "cce.lam", "1.0"),
    ({"method": "gce", "method_params": {"q": 0}}, "q", "0"),
    ({"method": "dm", "method_params": {"lam": -1.0}}, "lam", "-1.0"),
    ({"method": "dm", "method_params": {"normalize": "max"}}, "normalize", "'max'"),
    ({"noise": "bad"}, "noise", "'bad'"),
    ({"noise_rate": 1.0}, "noise_rate", "1.0"),
    ({"noise_rate": -0.1}, "noise_rate", "-0.1"),
    ({"noise": "asym-cifar10", "dataset": "digits"}, "noise", "'asym-cifar10'"),
    ({"noise": "asym-cifar100", "dataset": "cifar10"}, "noise", "'asym-cifar100'"),
    ({"split": "x"}, "split", "'x'"),
    ({"val_fraction": 0.0}, "val_fraction", "0.0"),
    ({"optimizer": "rmsprop"}, "optimizer", "'rmsprop'"),
    ({"lr": 0}, "lr", "0"),
    ({"lr": -0.5}, "lr", "-0.5"),
    ({"lr": float("nan")}, "lr", "nan"),
    ({"lr": float("inf")}, "lr", "inf"),
    ({"lr": "1e-3"}, "lr", "'1e-3'"),
    ({"noise_rate": "0.4"}, "noise_rate", "'0.4'"),
    ({"milestones": 5}, "milestones", "5"),
    ({"method_params": None}, "method_params", "None"),
    ({"nesterov": "yes"}, "nesterov", "'yes'"),
    ({"cosine_decay": -1.0}, "cosine_decay", "-1.0"),
    ({"method": "dm", "method_params": {"beta": float("nan")}}, "dm.beta", "nan"),
    ({"method": "dm", "method_params": {"lam": "1"}}, "dm.lam", "'1'"),
    ({"method": "dm", "method_params": {"eps": -1e-8}}, "eps", "-1e-08"),
    ({"weight_decay": -1e-4}, "weight_decay", "-0.0001"),
    ({"batch_size": 0}, "batch_size", "0"),
    ({"batch_size": 1.5}, "batch_size", "1.5"),
    ({"batch_size": True}, "batch_size", "True"),
    ({"epochs": 0}, "epochs", "0"),
    ({"epochs": 2.5}, "epochs", "2.5"),
    ({"epochs": None, "iterations": None}, "epochs", "None"),
    ({"epochs": 5, "iterations": 5}, "epochs", "5"),
    ({"epochs": None, "iterations": 0}, "iterations", "0"),
    ({"eval_every": 0}, "eval_every", "0"),
    ({"diag_subsample": -1}, "diag_subsample", "-1"),
    ({"diag_subsample": 500.0}, "diag_subsample", "500.0"),
    ({"diag_subsample": True}, "diag_subsample", "True"),
    ({"dropout": 1.0}, "dropout", "1.0"),
    ({"dropout": -0.1}, "dropout", "-0.1"),
    ({"seed": -1}, "seed", "-1"),
    ({"seed": 1.0}, "seed", "1.0"),
    ({"schedule": "step"}, "schedule", "'step'"),
    ({"schedule_unit": "batch"}, "schedule_unit", "'batch'"),
    ({"milestones": (10, 0)}, "milestones", "(10, 0)"),
    ({"gamma": 0}, "gamma", "0"),
    ({"cosine_period": 0}, "cosine_period", "0"),
    ({"cosine_mult": 0.5}, "cosine_mult", "0.5"),
    ({"warmup": -1}, "warmup", "-1"),
    ({"momentum": 1.0}, "momentum", "1.0"),
    ({"device": "tpu"}, "device", "'tpu'"),
    ({"probe_per_class": -1}, "probe_per_class", "-1"),
    ({"probe_per_class": 2.0}, "probe_per_class", "2.0"),
    ({"probe_per_class": True}, "probe_per_class", "True"),
    ({"ema": 1.0}, "ema", "1.0"),
    ({"ema": -0.1}, "ema", "-0.1"),
    ({"ema": True}, "ema", "True"),
    ({"ema": "0.999"}, "ema", "'0.999'"),
    ({"ema": float("nan")}, "ema", "nan"),
]


@pytest.mark.parametrize(("settings", "field", "shown"), BAD, ids=[f"{f}={s}" for _, f, s in BAD])
def test_bad_setting_is_a_config_error(settings: dict[str, Any], field: str, shown: str) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(**settings)
    assert err.value.field == field
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{field}: ")
    assert shown in message


def test_unknown_choice_lists_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(method="nope")
    assert all(name in str(err.value) for name in list_losses())
    with pytest.raises(ConfigError) as err:
        TrainConfig(dataset="foo")
    assert all(name in str(err.value) for name in list_datasets())


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        TrainConfig(lr=0)


def test_config_is_frozen() -> None:
    config = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 0.5  # type: ignore[misc]


def test_replace_applies_changes() -> None:
    config = TrainConfig(method="dm", method_params={"lam": 1.0, "beta": 4.0}, lr=0.05, noise_rate=0.2)
    changed = config.replace(lr=0.01, noise_rate=0.4)
    assert (changed.lr, changed.noise_rate) == (0.01, 0.4)
    assert (config.lr, config.noise_rate) == (0.05, 0.2)
    assert changed.method_params == {"lam": 1.0, "beta": 4.0}


@pytest.mark.parametrize(("changes", "field"), [
    ({"lr": 0}, "lr"),
    ({"dataset": "foo"}, "dataset"),
    ({"noise_rate": 1.0}, "noise_rate"),
    ({"iterations": 100}, "epochs"),  # epochs still set
    ({"method": "gce"}, "gce.lam"),  # dm's method_params kept; the first key that gce lacks is named
])
def test_replace_validates(changes: dict[str, Any], field: str) -> None:
    config = TrainConfig(method="dm", method_params={"lam": 1.0, "beta": 4.0})
    with pytest.raises(ConfigError) as err:
        config.replace(**changes)
    assert err.value.field == field


def test_replace_to_iterations_when_epochs_cleared() -> None:
    config = TrainConfig().replace(epochs=None, iterations=100)
    assert (config.epochs, config.iterations) == (None, 100)


@pytest.mark.parametrize("config", [
    TrainConfig(),
    TrainConfig(method="dm", method_params={"lam": 0.5, "beta": 8.0, "normalize": "mean"}, noise="pair",
                noise_rate=0.3, schedule="multistep", milestones=(10, 15), gamma=0.2, epochs=None, iterations=20,
                schedule_unit="iteration", augment=True, bf16=True, device="cpu", data_root="/tmp/x", seed=9),
])
def test_to_dict_round_trips(config: TrainConfig) -> None:
    d = config.to_dict()
    assert set(d) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert isinstance(d["method_params"], dict)
    assert d["lr"] == config.lr and d["seed"] == config.seed
    again = TrainConfig(**d)
    assert again == config
    assert again.to_dict() == d


def test_nesterov_without_momentum_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(nesterov=True, momentum=0.0)
    assert err.value.field in ("nesterov", "momentum")


def test_ema_is_a_decay_off_or_the_methods_default() -> None:
    assert [TrainConfig(ema=v).ema for v in (None, 0, 0.0, False, 0.999)] == [None, 0, 0.0, 0.0, 0.999]
    assert TrainConfig(ema=False).to_dict()["ema"] == 0.0  # one spelling of "off" in the MLflow params
