"""Scheduled hyperparameters: values checked by hand, one-line errors, configs, the trainer following a schedule
(exactly after a resume), the parameters in force as metrics, and the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from trainers import ConfigError, TrainConfig, Trainer, load_dataset
from trainers.__main__ import _parser, config_from_args, main
from trainers.methods import checked_params, in_force, params_at
from trainers.param_schedules import ParamSchedule

REPO = Path(__file__).resolve().parents[2]
PSI_SCHEDULE = {"psi": {"from": 0.5, "to": 0.2, "shape": "linear"}, "rho": 4.0}


def sched(**kw) -> ParamSchedule:
    return ParamSchedule.parse("x", kw)


# Values worked by hand: linear 0.5 → 0.2 is 0.5 − 0.3·t; the cosine's (1 − cos πt)/2 is 0, ½, 1 at t = 0, ½, 1 and
# (1 − √2/2)/2 = 0.14644660940672627 at ¼; the sigmoid 1/(1 + e^−x) is ½ at its midpoint and 1/(1 + e^8) =
# 3.353501304664781e-04 at b·(t − at) = −8.
@pytest.mark.parametrize(("schedule", "expected"), [
    (sched(**{"from": 0.5, "to": 0.2}), {0.0: 0.5, 0.5: 0.35, 1.0: 0.2}),
    (sched(**{"from": 0, "to": 1, "shape": "cosine"}), {0.0: 0.0, 0.25: 0.14644660940672627, 0.5: 0.5, 1.0: 1.0}),
    (sched(**{"from": 2, "to": 6, "shape": "cosine"}), {0.0: 2.0, 0.5: 4.0, 1.0: 6.0}),
    (sched(**{"from": 0, "to": 2, "shape": "step", "at": 0.25}), {0.0: 0.0, 0.2499: 0.0, 0.25: 2.0, 1.0: 2.0}),
    (sched(**{"from": 1, "to": 3, "shape": "step"}), {0.0: 1.0, 0.4999: 1.0, 0.5: 3.0, 1.0: 3.0}),
    (sched(**{"from": 0, "to": 1, "shape": "sigmoid"}),
     {0.0: 3.353501304664781e-04, 0.5: 0.5, 1.0: 1 - 3.353501304664781e-04}),
    (sched(**{"from": 1, "to": 0, "shape": "sigmoid", "at": 0.25, "b": 4}),  # 1 − σ(4(t − ¼)): σ(0) = ½, σ(3)
     {0.25: 0.5, 1.0: 1 - 1 / (1 + math.exp(-3))}),
])
def test_values_by_hand(schedule: ParamSchedule, expected: dict) -> None:
    assert {t: schedule.value(t) for t in expected} == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_progress_is_clipped_and_every_shape_stays_between_its_ends() -> None:
    for shape in ("linear", "cosine", "step", "sigmoid"):
        s = sched(**{"from": 3, "to": -1, "shape": shape})
        assert s.value(-1) == s.value(0) and s.value(2) == s.value(1)
        assert all(-1 <= s.value(i / 100) <= 3 for i in range(101))


def test_the_compact_form_and_the_mapping_are_the_same_schedule() -> None:
    text = ParamSchedule.parse("lam", "sigmoid:0:2:0.3:8")
    assert text == ParamSchedule(0.0, 2.0, "sigmoid", 0.3, 8.0)
    assert text.to_dict() == {"from": 0.0, "to": 2.0, "shape": "sigmoid", "at": 0.3, "b": 8.0}
    assert ParamSchedule.parse("lam", text.to_dict()) == text and ParamSchedule.parse("lam", str(text)) == text
    assert str(ParamSchedule.parse("psi", {"from": 0.5, "to": 0.2})) == "linear:0.5:0.2"
    exact = ParamSchedule(0.123456789012, 0.2)
    assert ParamSchedule.parse("psi", str(exact)) == exact  # the compact form loses no digits


@pytest.mark.parametrize(("value", "words"), [
    ({"from": 0, "to": 1, "shape": "exp"}, "shape is one of: linear, cosine, step, sigmoid"),
    ({"from": 0, "to": 1, "steepness": 3}, "not 'steepness'"),
    ({"from": 0}, "needs 'to'"),
    ({"from": "a", "to": 1}, "'from' is a finite number"),
    ({"from": 0, "to": math.inf}, "'to' is a finite number"),
    ({"from": 0, "to": 1, "shape": "step", "at": 1.5}, "in [0, 1]"),
    ({"from": 0, "to": 1, "shape": "sigmoid", "b": 0}, "'b' is a number > 0"),
    ({"from": 0, "to": 1, "b": 2}, "'b' is for sigmoid, not shape linear"),
    ({"from": 0, "to": 1, "at": 0.2}, "'at' is for step and sigmoid"),
    ("linear:0", "SHAPE:FROM:TO[:AT[:B]]"),
    ("linear:0:x", "to 'x' is not a number"),
    ([0, 1], "a finite number"),
])
def test_a_bad_schedule_is_one_config_error_naming_the_field(value: object, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TrainConfig(method="dm", method_params={"lam": value})
    assert caught.value.field == "dm.lam" and words in caught.value.allowed
    assert "\n" not in str(caught.value) and str(caught.value).startswith("dm.lam: ")


def test_schedules_are_checked_at_both_ends_and_only_for_numbers() -> None:
    with pytest.raises(ConfigError, match=r"^lam: -1\.0 is not allowed \(λ ≥ 0\)$"):
        TrainConfig(method="dm", method_params={"lam": "linear:1:-1"})
    with pytest.raises(ConfigError, match=r"^psi: 1\.0 is not allowed \(ψ in \[0, 1\)"):
        TrainConfig(method="dm", method_params={"psi": "linear:0.5:1", "rho": 4})
    with pytest.raises(ConfigError, match="only numeric hyperparameters take a schedule"):
        TrainConfig(method="dm", method_params={"normalize": {"from": 0, "to": 1}})
    with pytest.raises(ConfigError, match=r"^k: 'linear:2:8' is not allowed \(an integer ≥ 1\)$"):  # no schedule
        TrainConfig(method="gradsim", method_params={"k": "linear:2:8"})


def test_psi_and_rho_come_together_in_place_of_lam_and_beta() -> None:
    for params in ({"psi": 0.5}, {"rho": 4.0}, {"psi": 0.5, "rho": 4.0, "lam": 1.0}, {"psi": 0.5, "rho": 4, "beta": 2}):
        with pytest.raises(ConfigError, match="psi and rho together, in place of lam and beta"):
            TrainConfig(method="dm", method_params=params)
    with pytest.raises(ConfigError, match=r"^dm-exp\.psi: "):
        TrainConfig(method="dm-exp", method_params={"psi": 0.5, "rho": 4})
    assert params_at("dm", {"psi": 0.5, "rho": 4.0}, 0.7) == {"lam": 1.0, "beta": 16.0, "normalize": "sum",
                                                             "eps": 1e-6}


def test_train_config_keeps_the_canonical_mapping_and_plain_numbers_as_given() -> None:
    config = TrainConfig(method="dm", method_params={"psi": "linear:0.5:0.2", "rho": 4})
    assert config.method_params == {"psi": {"from": 0.5, "to": 0.2, "shape": "linear"}, "rho": 4}
    assert TrainConfig(**config.to_dict()) == config
    assert TrainConfig(**json.loads(json.dumps(config.to_dict()))) == config
    plain = TrainConfig(method="dm", method_params={"lam": 1, "beta": 8.0})
    assert plain.method_params == {"lam": 1, "beta": 8.0} and type(plain.method_params["lam"]) is int


def test_in_force_by_the_formulas() -> None:
    # ψ = λ/(λ+1), ρ = β·ψ^λ·(1 − ψ): λ = 3, β = 2 → ψ = ¾, ρ = 2·(¾)³·¼ = 27/128
    assert in_force("dm", {"lam": 3.0, "beta": 2.0}, 0.4) == pytest.approx(
        {"lam": 3.0, "beta": 2.0, "eps": 1e-6, "psi": 0.75, "rho": 27 / 128}, rel=1e-12)
    # ψ(½) = 0.35 on 0.5 → 0.2; λ = 0.35/0.65, β = 4/(0.35^λ·0.65)
    lam = 0.35 / 0.65
    got = in_force("dm", PSI_SCHEDULE, 0.5)
    assert got == pytest.approx({"lam": lam, "beta": 4 / (0.35**lam * 0.65), "eps": 1e-6, "psi": 0.35, "rho": 4.0},
                                rel=1e-12)
    assert in_force("gce", {"q": "step:0.2:0.8"}, 0.6) == {"q": 0.8, "truncate": 0.0}
    assert checked_params("dm", PSI_SCHEDULE)["psi"] == ParamSchedule(0.5, 0.2)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def scheduled_config(**changes) -> TrainConfig:
    base = dict(method="dm", method_params=PSI_SCHEDULE, noise_rate=0.4, epochs=2, eval_every=4, device="cpu",
                diag_subsample=0)
    return TrainConfig(**{**base, **changes})


def test_the_trainer_follows_the_schedule_and_reports_it(digits) -> None:
    trainer = Trainer(scheduled_config(), digits)
    total = trainer.total_steps
    seen = []
    for metrics in trainer:
        t = (metrics["step"] - 1) / total  # the values the last step used, as `lr`
        psi = 0.5 - 0.3 * t
        lam = psi / (1 - psi)
        assert {k: metrics[k] for k in ("psi", "rho", "lam", "beta")} == pytest.approx(
            {"psi": psi, "rho": 4.0, "lam": lam, "beta": 4.0 / (psi**lam * (1 - psi))}, rel=1e-9)
        assert trainer.loss_fn.emphasis.mode == pytest.approx(psi, rel=1e-9)  # the loss in use has that mode
        seen.append(metrics["psi"])
    assert len(seen) > 2 and seen == sorted(seen, reverse=True)


def test_a_constant_run_reports_flat_parameters(digits) -> None:
    rows = list(Trainer(scheduled_config(method_params={"lam": 3.0, "beta": 2.0}), digits))
    assert {(m["lam"], m["beta"], m["psi"], m["rho"]) for m in rows} == {(3.0, 2.0, 0.75, 27 / 128)}
    for name in ("train_loss", "test_acc", "lr", "step", "emphasis_var"):  # the existing metrics are all there
        assert name in rows[0]


def test_a_resumed_run_follows_the_same_schedule(digits, resumed) -> None:
    config = scheduled_config(method_params={"psi": "cosine:0.6:0.1", "rho": 3.0})
    whole, stitched, second = resumed(config, digits, 2)
    assert stitched == whole
    assert [m["psi"] for m in whole] == [ParamSchedule(0.6, 0.1, "cosine").value((m["step"] - 1) / second.total_steps)
                                         for m in whole]
    assert second.params_in_force(5) == Trainer(config, digits).params_in_force(5)


def test_the_study_tracker_logs_the_parameters_as_metrics(digits) -> None:
    tracking = pytest.importorskip("study.tracking")
    metrics = next(iter(Trainer(scheduled_config(), digits)))
    logged = tracking.metric_values({**metrics, "config/method_params/psi/from": 0.5})
    assert {"lam", "beta", "psi", "rho", "test_acc", "train_loss"} <= logged.keys()


def test_cli_flags_take_a_schedule() -> None:
    args = _parser().parse_args(["--method", "dm", "--psi", "linear:0.5:0.2", "--rho", "4"])
    config = config_from_args(args)
    assert config.method_params == {"psi": {"from": 0.5, "to": 0.2, "shape": "linear"}, "rho": 4.0}
    assert str(ParamSchedule.parse("psi", config.method_params["psi"])) == "linear:0.5:0.2"  # the round trip
    args = _parser().parse_args(["--method", "gce", "--q", "step:0.3:0.9:0.25"])
    assert config_from_args(args).method_params == {"q": {"from": 0.3, "to": 0.9, "shape": "step", "at": 0.25}}


def test_cli_bad_schedule_is_one_line_exit_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["--method", "dm", "--lam", "linear:0:oops", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: dm.lam: 'linear:0:oops' is not allowed") and "\n" not in err


def test_cli_run_reports_the_schedule() -> None:
    result = subprocess.run([sys.executable, "-m", "trainers", "--dataset", "digits", "--method", "dm", "--psi",
                             "linear:0.5:0.2", "--rho", "4", "--noise", "symmetric:0.4", "--epochs", "2", "--json"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    total = rows[-1]["step"]
    assert [r["psi"] for r in rows] == pytest.approx([0.5 - 0.3 * (r["step"] - 1) / total for r in rows])
    assert all(r["rho"] == pytest.approx(4.0) for r in rows)


def test_cli_lines_show_a_scheduled_parameter_in_force(capsys: pytest.CaptureFixture) -> None:
    """Each evaluation's line starts with the value of each scheduled parameter at that step; a fixed one is not
    shown."""
    assert main(["--dataset", "digits", "--method", "dm", "--psi", "linear:0.5:0.2", "--rho", "4",
                 "--epochs", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    psis = [float(row.split()[3]) for row in rows]
    assert [row.split()[2] for row in rows] == ["psi", "psi"] and "rho" not in rows[0]
    assert psis[0] > psis[1] and 0.2 <= psis[1] < 0.5


@pytest.mark.parametrize("name", ["trainers.param_schedules", "trainers.reparam", "trainers.methods"])
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
