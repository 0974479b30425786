"""trainers.methods and trainers.catalog: the names and hyperparameters known without torch, the same as what
trainers.losses, trainers.models and trainers.datasets register and build."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainers import ConfigError, TrainConfig, list_losses, make_loss
from trainers import methods
from trainers.methods import BUILT_IN, LOSSES, check_loss_params, learns_from_probe, loss_params
from trainers.registry import Registry

REPO = Path(__file__).resolve().parents[2]
REGISTERED = """
import json, sys
from trainers.catalog import DATASETS, MODELS
from trainers.methods import LOSSES
registries = (DATASETS, MODELS, LOSSES)
known = [r.names() for r in registries]
light = sorted({name.split(".")[0] for name in sys.modules} & {"torch", "torchvision", "sklearn"})
looked_up = [[r[name] is not None for name in r.names()] for r in registries]  # imports what registers them
print(json.dumps({"known": known, "light": light, "registered": [r.names() for r in registries],
                  "looked_up": looked_up}))
"""


def test_the_names_known_without_torch_are_exactly_those_registered() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", REGISTERED], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout)
    assert found["light"] == []
    assert found["registered"] == found["known"]
    assert all(all(row) for row in found["looked_up"])


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_each_builder_takes_its_specs_hyperparameters_in_order(name: str) -> None:
    signature = inspect.signature(LOSSES[name])
    assert list(signature.parameters) == list(BUILT_IN[name].params)
    assert all(p.kind is p.KEYWORD_ONLY and p.default is p.empty for p in signature.parameters.values())
    make_loss(name)  # the defaults are accepted


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_a_specs_probe_flag_is_what_the_module_needs(name: str) -> None:
    assert learns_from_probe(name, {}) == ("probe" in getattr(make_loss(name), "needs", ()))


@pytest.mark.parametrize(("name", "params", "field"), [
    ("dm", {"lam": -1.0}, "lam"), ("dm", {"normalize": "max"}, "normalize"), ("dm", {"eps": -1e-6}, "eps"),
    ("dm", {"beta": "8"}, "dm.beta"), ("dm", {"q": 0.5}, "dm.q"), ("dm-beta", {"eta": -1.0}, "eta"),
    ("gce", {"q": 0.0}, "q"), ("gce", {"truncate": 1.0}, "truncate"), ("mae", {"scale": 0.0}, "scale"),
    ("ls", {"epsilon": 1.5}, "epsilon"), ("boot-hard", {"beta": -0.1}, "beta"), ("gradsim", {"k": 2.5}, "k"),
    ("gradsim", {"a": float("inf")}, "gradsim.a"), ("gradsim", {"within_class": 1}, "within_class"),
    ("gradsim", {"drop": 1.0}, "drop"), ("l2r", {"layers": "first"}, "layers"), ("ieg", {"uc": "yes"}, "uc"),
])
def test_checked_without_building_as_when_built(name: str, params: dict, field: str) -> None:
    """check_loss_params refuses what make_loss refuses, on the same field with the same words."""
    with pytest.raises(ConfigError) as checked:
        check_loss_params(name, params)
    with pytest.raises(ConfigError) as built:
        make_loss(name, **params)
    assert checked.value.field == built.value.field == field
    assert str(checked.value) == str(built.value)


def test_check_loss_params_completes_the_defaults() -> None:
    assert check_loss_params("gradsim", {"k": 8}) == {**loss_params("gradsim"), "k": 8}


def test_a_loss_registered_from_python_is_checked_by_its_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(methods, "LOSSES", Registry("method"))

    class Probed(torch.nn.CrossEntropyLoss):
        needs = ("probe",)

    @methods.register_loss("mine")
    def build(*, scale: float = 1.0, probe: bool = False) -> torch.nn.Module:
        if not scale > 0:
            raise ConfigError("scale", scale, "a number > 0")
        return Probed() if probe else torch.nn.CrossEntropyLoss()

    assert "mine" in list_losses() and loss_params("mine") == {"scale": 1.0, "probe": False}
    with pytest.raises(ConfigError) as error:
        check_loss_params("mine", {"scale": -1.0})
    assert error.value.field == "scale"
    assert learns_from_probe("mine", {"probe": True}) and not learns_from_probe("mine", {})
    with pytest.raises(ConfigError) as error:
        TrainConfig(method="mine", method_params={"probe": True}, probe_per_class=0)
    assert error.value.field == "probe_per_class"


def test_a_built_in_name_cannot_be_registered_again() -> None:
    with pytest.raises(ValueError, match="already registered"):
        methods.register_loss("dm")(lambda: None)
