"""Tests for study.config: the default and the shipped configs load, YAML and --set merge, every mistake is named."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import yaml

from study.config import (
    DEFAULT_TRAIN,
    AshaConfig,
    SearchConfig,
    StudyConfig,
    load_study_config,
    study_config_from_dict,
)
from study.tracking import trial_params
from trainables import TRAIN_KEY
from trainers import ConfigError
from trainers.losses import loss_params
from search_spaces import paper_grid

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
GPU_CONFIGS = ("cifar10_resnet56_table3.yaml", "cifar100_resnet44_table7.yaml", "cifar10_lenet_gradsim.yaml",
               "cifar10_wrn28_ieg.yaml", "cifar100_resnet29_ieg_table7.yaml")


def write(tmp_path: Path, text: str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_embedded_default_is_valid_and_equals_default_yaml() -> None:
    config = load_study_config(None)
    assert config == StudyConfig()
    assert config.train == DEFAULT_TRAIN
    assert config.method == "dm" and config.noise_rates == (0.0, 0.2, 0.4, 0.6)
    assert load_study_config(CONFIGS / "default.yaml") == config
    assert load_study_config(str(CONFIGS / "default.yaml")).config_hash() == config.config_hash()


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path: Path) -> None:
    config = load_study_config(path, allow_missing_gpu=path.name in GPU_CONFIGS)
    assert path.read_text().startswith("#")
    assert f"study run configs/{path.name}" in path.read_text()
    assert study_config_from_dict(config.to_dict(), allow_missing_gpu=True) == config


def test_gpu_configs_say_what_they_regenerate() -> None:
    table3 = load_study_config(CONFIGS / GPU_CONFIGS[0], allow_missing_gpu=True)
    assert (table3.train.dataset, table3.train.model, table3.search.grid) == ("cifar10", "resnet56", "table3")
    assert table3.noise_rates == (0.0, 0.2, 0.4, 0.6, 0.8)
    assert (table3.train.iterations, table3.train.epochs, table3.train.milestones) == (20000, None,
                                                                                 (5000, 10000, 15000))
    assert table3.method_params == {} and table3.resources.gpus_per_trial == 0.25  # DM's own default
    table7 = load_study_config(CONFIGS / GPU_CONFIGS[1], allow_missing_gpu=True)
    assert (table7.train.dataset, table7.train.model, table7.search.grid) == ("cifar100", "resnet44", "table7")
    assert table7.noise_rates == (0.2, 0.4, 0.6)
    fashion = load_study_config(CONFIGS / "fashion_mnist.yaml")
    assert fashion.method_params == {} and fashion.search.num_samples == 8


def test_ieg_configs_say_what_they_regenerate() -> None:
    wrn = load_study_config(CONFIGS / "cifar10_wrn28_ieg.yaml", allow_missing_gpu=True)
    assert (wrn.method, wrn.train.dataset, wrn.train.model, wrn.noise) == ("ieg", "cifar10", "wrn28_10", "uniform")
    assert wrn.search.grid_cells() == [{"k": 20.0}] and wrn.train.probe_per_class == 10
    schedule = (wrn.train.schedule, wrn.train.cosine_period, wrn.train.cosine_mult, wrn.train.cosine_decay)
    assert schedule == ("cosine", 1, 1.5, 0.9) and wrn.train.schedule_unit == "epoch" and wrn.train.epochs == 170
    table7 = load_study_config(CONFIGS / "cifar100_resnet29_ieg_table7.yaml", allow_missing_gpu=True)
    assert (table7.train.dataset, table7.train.model, table7.search.grid) == ("cifar100", "resnet29", "ieg-table7")
    assert table7.noise_rates == (0.4, 0.8) and len(table7.search.grid_cells()) == 8
    fashion = load_study_config(CONFIGS / "fashion_mnist_ieg.yaml")
    assert fashion.noise_rates == (0.4, 0.8) and fashion.resources.gpus_per_trial == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_gpu_config_needs_a_gpu_unless_meant_for_a_cluster() -> None:
    with pytest.raises(ConfigError) as raised:
        load_study_config(CONFIGS / GPU_CONFIGS[0])
    assert raised.value.field == "resources.gpus_per_trial"


def test_round_trip_through_dict_json_and_yaml(tmp_path: Path) -> None:
    config = load_study_config(None, [
        "search.ranges={default: {lam: [0, 2], beta: [1, 8]}, 0.4: {lam: [0.5, 1.5]}}",
        "search.asha={grace_period: 3}", "method_params={eps: 1.0e-8}", "train.milestones=[5, 10]",
        "train.schedule=multistep", "noise_rates=[0.2, 0.4]", "tracking_uri=sqlite:///x.db",
    ])
    data = config.to_dict()
    assert data["noise_rates"] == [0.2, 0.4] and data["train"]["milestones"] == [5, 10]
    assert set(data["search"]["ranges"]) == {"default", "0.4"}
    assert study_config_from_dict(data) == config
    assert study_config_from_dict(json.loads(json.dumps(data))) == config
    assert load_study_config(write(tmp_path, yaml.safe_dump(data))) == config
    assert "method" not in data["train"] and "seed" not in data["train"]


def test_config_hash_is_stable_and_follows_values() -> None:
    a, b = load_study_config(None), load_study_config(None)
    assert a.config_hash() == b.config_hash()
    assert len(a.config_hash()) == 12 and int(a.config_hash(), 16) >= 0
    assert load_study_config(None, ["train.lr=0.02"]).config_hash() != a.config_hash()
    assert load_study_config(None, ["search.seed=1"]).config_hash() != a.config_hash()


def test_a_nested_mapping_merges_key_by_key(tmp_path: Path) -> None:
    config = load_study_config(write(tmp_path, "train: {epochs: 5}\nsearch: {num_samples: 3}\n"))
    assert config.train == DEFAULT_TRAIN.replace(epochs=5)
    assert config.search == SearchConfig(num_samples=3)
    assert config.noise_rates == StudyConfig().noise_rates


def test_overrides_apply_after_the_file_and_parse_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "search: {num_samples: 3, max_concurrent: 1}\nnoise_rates: [0.6]\n")
    config = load_study_config(path, [
        "search.num_samples=4", "noise_rates=[0.2,0.4]", "train.lr=0.05", "search.asha={}",
        "train.weight_decay=5e-4", "storage=null", "train.eval_every=10", "method_params.eps=1e-8",
    ])
    assert config.search.num_samples == 4 and config.search.max_concurrent == 1
    assert config.noise_rates == (0.2, 0.4)
    assert config.train.lr == 0.05 and config.train.weight_decay == 5e-4 and config.train.eval_every == 10
    assert config.search.asha == AshaConfig()
    assert config.storage is None and config.method_params == {"eps": 1e-8}
    later = load_study_config(path, ["search.num_samples=4", "search.num_samples=5"])
    assert later.search.num_samples == 5


def test_an_override_can_enable_asha_and_set_one_rate_s_range() -> None:
    config = load_study_config(None, ["search.asha.grace_period=3", "search.ranges.0.4.lam=[0, 1]"])
    assert config.search.asha == AshaConfig(grace_period=3)
    assert config.search.ranges == {0.4: {"lam": (0.0, 1.0)}}


def test_ranges_for_merges_default_and_the_rate_s_own(tmp_path: Path) -> None:
    path = write(tmp_path, 'search:\n  ranges:\n    default: {lam: [0, 2], beta: [1, 8]}\n'
                           '    0.4: {lam: [0.5, 1.5]}\n    "0.6": {beta: [2, 4]}\n')
    search = load_study_config(path).search
    assert search.ranges_for(0.0) == {"lam": (0.0, 2.0), "beta": (1.0, 8.0)}
    assert search.ranges_for(0.4) == {"lam": (0.5, 1.5), "beta": (1.0, 8.0)}
    assert search.ranges_for(0.6 + 1e-12) == {"lam": (0.0, 2.0), "beta": (2.0, 4.0)}
    assert SearchConfig(ranges={0.2: {"lam": [0, 1]}}).ranges_for(0.2) == {"lam": (0.0, 1.0)}
    assert SearchConfig().ranges_for(0.2) == {}


def test_dataclasses_are_frozen() -> None:
    config = StudyConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.name = "other"  # type: ignore[misc]


NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: 0.5 of one is allowed")

# (YAML text or None for the default, --set overrides, the expected field, a text the message must contain)
BAD = [
    ("noise_rate: 0.4\n", (), "noise_rate", "did you mean 'noise_rates'"),
    ("search: {num_sampels: 3}\n", (), "search.num_sampels", "did you mean 'num_samples'"),
    ("train: {epoch: 3}\n", (), "train.epoch", "did you mean 'epochs'"),
    ("colour: red\n", (), "colour", "'red'"),
    ("method: dmx\n", (), "method", "'dmx'"),
    ("train: {dataset: mnist}\n", (), "train.dataset", "'mnist'"),
    ("method_params: {lam: -1}\n", (), "method_params.lam", "-1"),
    ("method_params: {lamb: 1}\n", (), "method_params.lamb", "did you mean 'lam'"),
    ("method_params: {eps: fine}\n", (), "method_params.eps", "'fine'"),
    ("noise_rates: [0.2, 1.0]\n", (), "noise_rates", "1.0"),
    ("noise_rates: [-0.1]\n", (), "noise_rates", "-0.1"),
    ("noise_rates: []\n", (), "noise_rates", "[]"),
    ("noise_rates: [0.2, 0.4, 0.2]\n", (), "noise_rates", "0.2"),
    ("noise_rates: 0.4\n", (), "noise_rates", "0.4"),
    ("noise: asym-cifar10\n", (), "noise", "'asym-cifar10'"),
    ("noise: salt\n", (), "noise", "'salt'"),
    ("noise: []\n", (), "noise", "[]"),
    ("noise: [symmetric, salt]\n", (), "noise", "'salt'"),
    ("noise: [pair, pair]\n", (), "noise", "given twice"),
    ("noise: [cifar10n-worst, cifar100n]\ntrain: {dataset: cifar10}\n", (), "noise", "'cifar100n'"),
    ("noise: [cifar10n-aggre, cifar10n-worst]\ntrain: {dataset: cifar10}\nnoise_rates: [0.2]\n", (), "noise_rates",
     "one label set each"),
    ("train: {batch_size: 0}\n", (), "train.batch_size", "0"),
    ("train: {batch_size: -8}\n", (), "train.batch_size", "-8"),
    ("train: {lr: fast}\n", (), "train.lr", "'fast'"),
    ("train: {method: cce}\n", (), "train.method", "top-level key"),
    ("train: {noise_rate: 0.2}\n", (), "train.noise_rate", "noise_rates"),
    ("train: [1, 2]\n", (), "train", "[1, 2]"),
    ("search: {num_samples: 0}\n", (), "search.num_samples", "0"),
    ("search: {num_samples: many}\n", (), "search.num_samples", "'many'"),
    ("search: {num_samples: true}\n", (), "search.num_samples", "True"),
    ("search: {max_concurrent: 0}\n", (), "search.max_concurrent", "0"),
    ("search: [1, 2]\n", (), "search", "[1, 2]"),
    ("search: {mode: grid}\n", (), "search.grid", "None"),
    ("search: {grid: table3}\n", (), "search.grid", "'table3'"),
    ("search: {mode: grid, grid: table9}\n", (), "search.grid", "'table9'"),
    ("method: cce\nsearch: {mode: grid, grid: table3}\n", (), "search.mode", "'cce'"),
    ("search: {mode: grid, grid: {lam: [0, 1]}}\n", (), "search.grid", "'lam'"),
    ("search: {mode: grid, grid: {lam: [0, -1], beta: [2]}}\n", (), "search.grid.lam", "-1"),
    ("search: {mode: grid, grid: {lam: [0], beta: []}}\n", (), "search.grid.beta", "[]"),
    ("search: {mode: grid, grid: {lam: [1, 1], beta: [2]}}\n", (), "search.grid.lam", "[1, 1]"),
    ("search: {mode: grid, grid: table3, repeats: 0}\n", (), "search.repeats", "0"),
    ("method: ieg\nsearch: {mode: grid, grid: table3}\n", (), "search.mode", "'ieg'"),
    ("search: {mode: grid, grid: ieg-table7}\n", (), "search.mode", "'dm'"),
    ("method: ieg\nsearch: {mode: grid, grid: {uc: [true], lam: [1]}}\n", (), "search.grid.lam", "[1]"),
    ("method: ieg\nsearch: {mode: grid, grid: {p: [1, -1]}}\n", (), "search.grid.p", "-1"),
    ("method: ieg\nsearch: {mode: grid, grid: {uc: []}}\n", (), "search.grid.uc", "[]"),
    ("method: ieg\nsearch: {mode: grid, grid: {uc: [true, true]}}\n", (), "search.grid.uc", "[True, True]"),
    ("method: ieg\nsearch: {mode: grid, grid: {uc: [[1]]}}\n", (), "search.grid.uc", "[[1]]"),
    ("method: ieg\nsearch: {mode: grid, grid: {probe_per_class: [1, 0]}}\n", (), "search.grid.probe_per_class", "0"),
    ("method: ieg\nsearch: {mode: grid, grid: {seed: [1, 2]}}\n", (), "search.grid.seed", "[1, 2]"),
    ("search: {repeats: 3}\n", (), "search.repeats", "3"),
    ("method: gce\nsearch: {parametrization: psi_rho}\n", (), "search.parametrization", "'gce'"),
    ("search: {asha: {reduction_factor: 1}}\n", (), "search.asha.reduction_factor", "1"),
    ("search: {asha: {grace_period: 0}}\n", (), "search.asha.grace_period", "0"),
    ("search: {ranges: {default: {lam: [2, 1]}}}\n", (), "search.ranges.default.lam", "[2, 1]"),
    ("search: {ranges: {1.5: {lam: [0, 1]}}}\n", (), "search.ranges.1.5", "1.5"),
    ("search: {ranges: {0.4: {lam: [0, .nan]}}}\n", (), "search.ranges.0.4.lam", "nan"),
    ("search: {ranges: {default: {gamma: [0, 1]}}}\n", (), "search.ranges.default.gamma", "lam, beta"),
    ("search: {ranges: {default: {lam: [0, 1]}, 0.4: {lam: [-1, 1]}}}\n", (), "search.ranges.0.4.lam", "λ ≥ 0"),
    ("method: gradsim\nsearch: {ranges: {default: {k: [2, 7.5]}}}\n", (), "search.ranges.default.k", "whole"),
    ("search: {parametrization: psi_rho, ranges: {0.4: {lam: [0, 1]}}}\n", (), "search.ranges.0.4.lam", "psi, rho"),
    ("search: {mode: grid, grid: table3, tune_weight_decay: true}\n", (), "search.tune_weight_decay", "mode grid"),
    pytest.param("resources: {gpus_per_trial: 0.5}\n", (), "resources.gpus_per_trial", "0.5", marks=NO_GPU),
    ("resources: {gpus_per_trial: 1.5}\n", (), "resources.gpus_per_trial", "1.5"),
    ("resources: {cpus_per_trial: 0}\n", (), "resources.cpus_per_trial", "0"),
    ("train: {device: cuda}\n", (), "train.device", "'cuda'"),
    ("train: {ema: 1.5}\n", (), "train.ema", "1.5"),
    (None, ("train.ema=true",), "train.ema", "True"),
    ("final: {n_seeds: -1}\n", (), "final.n_seeds", "-1"),
    ("checkpoint_every_s: -1\n", (), "checkpoint_every_s", "-1"),
    ("checkpoint_every_s: often\n", (), "checkpoint_every_s", "'often'"),
    ("name: my study\n", (), "name", "'my study'"),
    ("tracking_uri: 5\n", (), "tracking_uri", "5"),
    ("a: [1, 2\n", (), "config", "study.yaml"),
    ("a: 1\na: 2\n", (), "config", "study.yaml"),
    ("- 1\n- 2\n", (), "config", "study.yaml"),
    (None, ("search.num_samples",), "--set", "'search.num_samples'"),
    (None, ("=3",), "--set", "'=3'"),
    (None, ("search.num_samples=[1",), "--set", "[1"),
    (None, ("search.num_samples=0",), "search.num_samples", "0"),
    (None, ("noise_rates.x=1",), "noise_rates", "noise_rates"),  # no default list to descend into
    (None, ("serach.num_samples=4",), "serach", "did you mean 'search'"),
    (None, ("search.asha={}", "search.asha.reduction_factor=0.5"), "search.asha.reduction_factor", "0.5"),
]


@pytest.mark.parametrize(("text", "overrides", "field", "shown"), BAD)
def test_a_bad_config_is_a_one_line_error_naming_the_key(tmp_path: Path, text: str | None,
                                                         overrides: tuple[str, ...], field: str, shown: str) -> None:
    path = None if text is None else write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_study_config(path, overrides)
    message = str(raised.value)
    assert raised.value.field == field, message
    assert shown in message
    assert "\n" not in message


def test_train_ema_reaches_the_trials_config(tmp_path: Path) -> None:
    """`train.ema`: a decay, false for the raw weights, or absent for the method's default (IEG's 0.999)."""
    assert load_study_config(write(tmp_path, "method: ieg\ntrain: {ema: 0.99}\n")).train.ema == 0.99
    assert load_study_config(None, ["train.ema=false"]).train.ema == 0.0
    assert load_study_config(None, ["method=ieg"]).train.replace(method="ieg").resolved_ema() == 0.999


def test_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as raised:
        load_study_config(missing)
    assert raised.value.field == "config" and str(missing) in str(raised.value)
    assert "no such file" in str(raised.value) and "\n" not in str(raised.value)


def test_a_folder_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="folder") as raised:
        load_study_config(tmp_path)
    assert raised.value.field == "config"


def test_an_empty_file_means_all_defaults(tmp_path: Path) -> None:
    assert load_study_config(write(tmp_path, "# nothing but a comment\n")) == StudyConfig()


def test_from_dict_refuses_a_non_mapping_and_keeps_defaults_for_missing_keys() -> None:
    with pytest.raises(ConfigError) as raised:
        study_config_from_dict([1, 2])  # type: ignore[arg-type]
    assert raised.value.field == "config"
    assert study_config_from_dict({"search": {"num_samples": 2}}).search.num_samples == 2


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ConfigError) as raised:
        StudyConfig(train=DEFAULT_TRAIN.replace(method="dm"))
    assert raised.value.field == "train.method"
    with pytest.raises(ConfigError) as raised:
        SearchConfig(num_samples=0)
    assert raised.value.field == "num_samples"


def test_a_study_keeps_the_trainers_method_defaults() -> None:
    """One default everywhere: a study adds no method_params of its own, so its DM trials run the trainer's default,
    the authors' guard (1e-6 on 2(1 − p)), and log it as a param; a config's own value still wins."""
    for method in ("dm", "dm-normal", "dm-exp", "dm-beta", "gce"):
        config = load_study_config(None, [f"method={method}"])
        assert config.method_params == {}
        params = trial_params({TRAIN_KEY: config.train.replace(method=method).to_dict()})
        assert {k: params[k] for k in loss_params(method)} == {k: str(v) for k, v in loss_params(method).items()}
    assert trial_params({TRAIN_KEY: load_study_config(None).train.replace(method="dm").to_dict()})["eps"] == "1e-06"
    exact = load_study_config(None, ["method_params={eps: 0}"])
    assert trial_params({TRAIN_KEY: exact.train.replace(method="dm", method_params=exact.method_params).to_dict()
                         })["eps"] == "0"


def test_a_grid_of_lists_is_every_lambda_with_every_beta_and_repeats_multiply_the_trials() -> None:
    config = load_study_config(None, ["search.mode=grid", "search.grid={lam: [0, 0.5], beta: [2, 4, 8]}",
                                      "search.repeats=2"])
    cells = config.search.grid_cells()
    assert cells == [{"lam": lam, "beta": beta} for lam in (0.0, 0.5) for beta in (2.0, 4.0, 8.0)]
    assert study_config_from_dict(config.to_dict()) == config
    paper = load_study_config(None, ["search.mode=grid", "search.grid=table3"])
    assert paper.search.grid_cells() == paper_grid("table3") and paper.search.repeats == 1


def test_a_grid_of_another_methods_parameters_is_every_combination() -> None:
    config = load_study_config(None, ["method=ieg", "search.mode=grid", "search.grid={uc: [true, false], p: [1, 5]}"])
    assert config.search.grid_cells() == [{"uc": True, "p": 1}, {"uc": True, "p": 5}, {"uc": False, "p": 1},
                                          {"uc": False, "p": 5}]
    assert study_config_from_dict(config.to_dict()) == config
    probe = load_study_config(None, ["method=ieg", "search.mode=grid", "search.grid={probe_per_class: [1, 5, 10]}"])
    assert probe.search.grid_cells() == [{"probe_per_class": k} for k in (1, 5, 10)]  # a training setting too
    table7 = load_study_config(None, ["method=ieg", "search.mode=grid", "search.grid=ieg-table7"])
    assert table7.search.grid_cells() == paper_grid("ieg-table7") and len(paper_grid("ieg-table7")) == 8



def test_a_human_noise_kind_is_one_label_set_without_rates() -> None:
    config = load_study_config(None, ["noise=cifar10n-worst", "train.dataset=cifar10", "train.model=lenet"])
    assert config.noise_rates == (0.0,)
    assert study_config_from_dict(config.to_dict()) == config  # a saved study reads back
    assert load_study_config(None, ["noise=pair"]).noise_rates == (0.0, 0.2, 0.4, 0.6)
    with pytest.raises(ConfigError) as error:
        load_study_config(None, ["noise=cifar10n-worst", "train.dataset=cifar10", "noise_rates=[0.0, 0.4]"])
    assert error.value.field == "noise_rates"


def test_several_noise_kinds_read_back_and_cross_rates_with_synthetic_kinds_only() -> None:
    config = load_study_config(None, ["noise=[cifar10n-worst, cifar10n-worst-synthetic, symmetric]",
                                      "train.dataset=cifar10", "noise_rates=[0.2, 0.4]"])
    assert config.noise == ("cifar10n-worst", "cifar10n-worst-synthetic", "symmetric")
    assert [(ls.noise, ls.rate) for ls in config.label_sets] == [
        ("cifar10n-worst", 0.0), ("cifar10n-worst-synthetic", 0.0), ("symmetric", 0.2), ("symmetric", 0.4)]
    assert study_config_from_dict(config.to_dict()) == config and config.to_dict()["noise"][0] == "cifar10n-worst"
    human = load_study_config(None, ["noise=[cifar10n-aggre, cifar10n-worst]", "train.dataset=cifar10"])
    assert [ls.key for ls in human.label_sets] == ["cifar10n-aggre", "cifar10n-worst"]
