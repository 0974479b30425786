"""`python -m trainers`: a short training run and --help as real subprocesses; bad invocations give one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainers import TrainConfig, list_datasets, list_losses, loss_params
from trainers.__main__ import METHOD_FLAGS, _parser, config_from_args, main

REPO = Path(__file__).resolve().parents[2]
TRAIN = ["--dataset", "digits", "--method", "dm", "--lam", "1", "--beta", "8", "--noise", "symmetric:0.4",
         "--epochs", "2"]


def python_m(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainers", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_training_run_prints_a_row_per_epoch_and_the_final_line() -> None:
    result = python_m(*TRAIN)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [["epoch", "1.00"], ["epoch", "2.00"]]
    assert lines[-1].startswith("final test_acc ")
    assert "dm {'lam': 1.0, 'beta': 8.0}" in result.stderr and "Traceback" not in result.stderr


def test_json_rows_parse_and_match_the_python_api(capsys: pytest.CaptureFixture) -> None:
    assert main([*TRAIN, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["epoch"] for r in rows] == [1.0, 2.0]
    import trainers

    config = trainers.TrainConfig(method="dm", method_params={"lam": 1.0, "beta": 8.0}, noise_rate=0.4, epochs=2)
    expected = [{k: v for k, v in m.items() if k != "time"} for m in trainers.Trainer(config)]
    assert [{k: v for k, v in r.items() if k != "time"} for r in rows] == expected


def test_gradsim_flags_and_the_exponential_schedule_reach_the_config() -> None:
    args = _parser().parse_args(["--method", "gradsim", "--a", "8", "--k", "16", "--within-class", "--drop", "0.2",
                                 "--layers", "all", "--schedule", "exponential", "--gamma", "0.85"])
    config = config_from_args(args)
    assert config.method_params == {"a": 8.0, "k": 16, "within_class": True, "layers": "all", "drop": 0.2}
    assert (config.schedule, config.gamma) == ("exponential", 0.85)
    assert config_from_args(_parser().parse_args(["--method", "gradsim"])).method_params == {}


def test_mae_scale_and_gce_truncate_reach_the_config() -> None:
    assert config_from_args(_parser().parse_args(["--method", "mae", "--scale", "2"])).method_params == {"scale": 2.0}
    args = _parser().parse_args(["--method", "gce", "--q", "0.7", "--truncate", "0.5"])
    assert config_from_args(args).method_params == {"q": 0.7, "truncate": 0.5}


def test_diag_subsample_reaches_the_config() -> None:
    assert config_from_args(_parser().parse_args(["--diag-subsample", "0"])).diag_subsample == 0
    assert config_from_args(_parser().parse_args([])).diag_subsample == TrainConfig().diag_subsample


def test_every_method_parameter_has_a_flag() -> None:
    assert {name for m in list_losses() for name in loss_params(m)} <= set(METHOD_FLAGS)


def test_ieg_switches_probe_and_warm_restarts_reach_the_config() -> None:
    args = _parser().parse_args(["--method", "ieg", "--k", "1.5", "--p", "2", "--no-uc", "--aa", "--meta-lr", "0.01",
                                 "--probe-per-class", "5", "--schedule", "cosine", "--cosine-decay", "0.9"])
    config = config_from_args(args)
    assert config.method_params == {"k": 1.5, "p": 2.0, "uc": False, "aa": True, "meta_lr": 0.01}
    assert (config.probe_per_class, config.cosine_decay) == (5, 0.9)


def test_help_lists_every_method_and_dataset() -> None:
    result = python_m("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for name in [*list_losses(), *list_datasets()]:
        assert name in text


def test_a_bad_value_in_a_real_process_is_one_line_without_traceback() -> None:
    result = python_m("--dataset", "mnist3d")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: dataset: 'mnist3d' is not allowed (one of: cifar10, cifar100, digits, fashion_mnist, vehicles10, "
        "npz:PATH, folder:PATH)"]


# (id, arguments, fragments the one stderr line must contain)
BAD = [
    ("unknown-dataset", ["--dataset", "mnist3d"], ("dataset", "mnist3d")),
    ("unknown-method", ["--method", "nope"], ("method", "nope")),
    ("flag-method-lacks", ["--method", "cce", "--lam", "1"], ("lam",)),
    ("noise-rate-not-number", ["--noise", "symmetric:abc"], ("symmetric:abc",)),
    ("noise-rate-too-big", ["--noise", "symmetric:1.5"], ("noise_rate", "1.5")),
    ("noise-kind-unknown", ["--noise", "gaussian:0.2"], ("noise", "gaussian")),
    ("epochs-zero", ["--epochs", "0"], ("epochs", "0")),
    ("epochs-not-int", ["--epochs", "abc"], ("--epochs", "abc")),
    ("epochs-and-iterations", ["--epochs", "1", "--iterations", "3"], ("epochs",)),
    ("batch-size-negative", ["--batch-size", "-1"], ("batch_size", "-1")),
    ("lr-zero", ["--lr", "0"], ("lr", "0")),
    ("lr-infinite", ["--lr", "inf"], ("lr", "inf")),
    ("beta-nan", ["--method", "dm", "--beta", "nan"], ("beta", "nan")),
    ("milestones-not-numbers", ["--milestones", "5,x"], ("--milestones", "5,x")),
    ("unknown-flag", ["--tau", "0.1"], ("--tau",)),
    ("k-not-a-number", ["--method", "ieg", "--k", "x"], ("--k", "x")),
    ("gradsim-k-not-whole", ["--method", "gradsim", "--k", "1.5"], ("k", "1.5")),
    ("probe-method-without-probe", ["--method", "l2r", "--probe-per-class", "0"], ("probe_per_class", "0")),
    ("asym-noise-wrong-dataset", ["--noise", "asym-cifar10:0.2"], ("noise", "asym-cifar10")),
    ("human-noise-wrong-dataset", ["--noise", "cifar10n-aggre"], ("noise", "cifar10n-aggre", "cifar10")),
    ("human-noise-with-rate", ["--noise", "cifar10n-worst:0.4"], ("--noise", "without a rate")),
    ("synthetic-noise-without-rate", ["--noise", "symmetric"], ("--noise", "needs a rate")),
    ("nesterov-without-momentum", ["--nesterov", "--momentum", "0"], ("nesterov", "momentum")),
    ("eps-negative", ["--method", "dm", "--eps", "-1"], ("eps", "-1")),
    ("device-cuda-absent", ["--device", "cuda"], ("device", "cuda")),
]


@pytest.mark.parametrize(("args", "fragments"), [pytest.param(a, f, id=i) for i, a, f in BAD])
def test_bad_invocation_is_one_line_and_exit_2(args: list[str], fragments: tuple[str, ...],
                                               capsys: pytest.CaptureFixture) -> None:
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    try:
        code = main(["--dataset", "digits", "--iterations", "1", *args] if "--epochs" not in args else
                    ["--dataset", "digits", *args])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    for fragment in fragments:
        assert fragment in lines[0]
    assert captured.out == ""
