"""Scheduled hyperparameters: values checked by hand, one-line errors, configs, the trainer following a schedule
(exactly after a resume), the parameters in force as metrics, and the CLI; piecewise-constant schedules and `policy`,
the schedule a run followed, which retraces a run whose values changed between evaluations (as under PBT)."""

from __future__ import annotations

import io
import json
import math
from dataclasses import replace
from itertools import islice
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainers import ConfigError, TrainConfig, Trainer, load_dataset
from trainers.__main__ import _parser, config_from_args, main
from trainers.methods import checked_params, in_force, params_at
from trainers.param_schedules import ParamSchedule, policy

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


# Piecewise constant: values[j], j = the number of breakpoints <= t (a value takes over at its breakpoint).
@pytest.mark.parametrize(("text", "expected"), [
    ("piecewise:1:0.25:2:0.5:3", {-1.0: 1.0, 0.0: 1.0, 0.2499: 1.0, 0.25: 2.0, 0.2501: 2.0, 0.4999: 2.0, 0.5: 3.0,
                                  1.0: 3.0, 2.0: 3.0}),
    ("piecewise:0.5", {0.0: 0.5, 0.5: 0.5, 1.0: 0.5}),  # no breakpoint: a constant
    ("piecewise:1:0:2", {0.0: 2.0, 1.0: 2.0}),  # a breakpoint at 0: the second value from the start
    ("piecewise:1:1:2", {0.0: 1.0, 0.9999: 1.0, 1.0: 2.0}),  # at 1: only the end
    ("piecewise:0.2:0.3:0.5:0.6:0.2", {0.0: 0.2, 0.29: 0.2, 0.3: 0.5, 0.59: 0.5, 0.6: 0.2}),  # and back
])
def test_piecewise_values_at_and_around_breakpoints(text: str, expected: dict) -> None:
    schedule = ParamSchedule.parse("x", text)
    assert {t: schedule.value(t) for t in expected} == expected


def test_piecewise_at_a_step_count_takes_over_at_that_step() -> None:
    total = 240
    schedule = ParamSchedule.parse("psi", f"piecewise:0.2:{repr(7 / total)}:0.5")
    assert [schedule.value(s / total) for s in (6, 7, 8)] == [0.2, 0.5, 0.5]  # as the trainer reads it: step / total


def test_piecewise_forms_round_trip_exactly() -> None:
    text = "piecewise:0.2:0.25:0.4:0.5:0"
    schedule = ParamSchedule.parse("psi", text)
    assert schedule == ParamSchedule(0.2, 0.0, "piecewise", values=(0.2, 0.4, 0.0), breakpoints=(0.25, 0.5))
    assert schedule.to_dict() == {"shape": "piecewise", "values": [0.2, 0.4, 0.0], "at": [0.25, 0.5]}
    assert str(schedule) == text and schedule.ends() == (0.0, 0.4)
    assert ParamSchedule.parse("psi", schedule.to_dict()) == schedule
    assert ParamSchedule.parse("psi", json.loads(json.dumps(schedule.to_dict()))) == schedule
    exact = ParamSchedule.parse("psi", {"shape": "piecewise", "values": [1 / 3, 0.1 + 0.2], "at": [7 / 240]})
    assert str(exact) == f"piecewise:{1 / 3!r}:{7 / 240!r}:{0.1 + 0.2!r}"
    assert ParamSchedule.parse("psi", str(exact)) == exact  # no digit lost
    assert str(ParamSchedule.parse("psi", {"shape": "piecewise", "values": [0.5]})) == "piecewise:0.5"


@pytest.mark.parametrize(("value", "words"), [
    ("piecewise:1:0.6:2:0.5:3", "breakpoints 'at' rise strictly within [0, 1]"),
    ("piecewise:1:0.5:2:0.5:3", "breakpoints 'at' rise strictly within [0, 1]"),
    ("piecewise:1:1.5:2", "breakpoints 'at' rise strictly within [0, 1]"),
    ("piecewise:1:-0.1:2", "breakpoints 'at' rise strictly within [0, 1]"),
    ("piecewise:1:0.5", "an odd count of numbers"),
    ("piecewise", "an odd count of numbers"),
    ("piecewise:1:x:2", "breakpoint 'x' is not a number"),
    ("piecewise:1:0.5:nan", "'values' is a list of finite numbers"),
    ({"shape": "piecewise", "values": [1, 2], "at": [0.2, 0.5]}, "not 2 values and 2 breakpoints"),
    ({"shape": "piecewise", "values": [], "at": []}, "not 0 values and 0 breakpoints"),
    ({"shape": "piecewise", "values": [1, 2]}, "not 2 values and 0 breakpoints"),
    ({"shape": "piecewise", "at": [0.5]}, "needs 'values'"),
    ({"shape": "piecewise", "values": 1}, "'values' is a list of finite numbers"),
    ({"shape": "piecewise", "values": [1, 2], "at": 0.5}, "'at' is a list of finite numbers"),
    ({"shape": "piecewise", "values": [1, "2"], "at": [0.5]}, "'values' is a list of finite numbers"),
    ({"shape": "piecewise", "from": 1, "to": 2, "values": [1]}, "'from' is not for shape piecewise"),
    ({"shape": "piecewise", "values": [1], "b": 3}, "'b' is not for shape piecewise"),
    ({"from": 0, "to": 1, "values": [1]}, "'values' is for piecewise, not shape linear"),
])
def test_a_bad_piecewise_schedule_is_one_config_error_naming_the_field(value: object, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TrainConfig(method="dm", method_params={"lam": value})
    assert caught.value.field == "dm.lam" and caught.value.value == value and words in caught.value.allowed
    assert "\n" not in str(caught.value) and str(caught.value).startswith("dm.lam: ")


def test_piecewise_is_checked_at_its_least_and_greatest_value() -> None:
    with pytest.raises(ConfigError, match=r"^lam: -1\.0 is not allowed \(λ ≥ 0\)$"):
        TrainConfig(method="dm", method_params={"lam": "piecewise:1:0.3:-1:0.6:2"})
    with pytest.raises(ConfigError, match=r"^psi: 1\.0 is not allowed \(ψ in \[0, 1\)"):
        TrainConfig(method="dm", method_params={"psi": "piecewise:0.2:0.3:1:0.6:0.4", "rho": 4})


def test_piecewise_compact_form_works_where_a_schedule_is_taken() -> None:
    params = {"psi": "piecewise:0.2:0.5:0.4", "rho": 4.0}
    lam = [0.2 / 0.8, 0.4 / 0.6]  # λ = ψ/(1 − ψ)
    assert [params_at("dm", params, t)["lam"] for t in (0.4999, 0.5)] == pytest.approx(lam, rel=1e-15)
    assert [in_force("dm", params, t)["psi"] for t in (0.0, 0.4999, 0.5, 1.0)] == [0.2, 0.2, 0.4, 0.4]
    config = TrainConfig(method="dm", method_params=params)
    assert config.method_params["psi"] == {"shape": "piecewise", "values": [0.2, 0.4], "at": [0.5]}
    assert TrainConfig(**json.loads(json.dumps(config.to_dict()))) == config
    args = _parser().parse_args(["--method", "dm", "--psi", "piecewise:0.2:0.5:0.4", "--rho", "4"])
    assert config_from_args(args).method_params == {**config.method_params, "rho": 4.0}


def expected_value(history: list[dict], name: str, step: int) -> float:
    """The value that an evaluation history says the training step `step` (0-based) used: the one reported at the
    first evaluation after it (the last one's after the last evaluation)."""
    return next((m[name] for m in history if step < m["step"]), history[-1][name])


def test_policy_of_a_hand_made_history() -> None:
    rows = [(10, 0.2, 4.0), (20, 0.2, 4.0), (30, 0.5, 4.0), (40, 0.5, 4.0), (50, 0.3, 4.0), (60, 0.3, 4.0)]
    history = [{"step": s, "psi": psi, "rho": rho, "train_loss": 1.0} for s, psi, rho in rows]
    got = policy(history, ["psi", "rho"], 64)
    # psi: 0.2 for steps 0-19, 0.5 from step 20 (evaluation 2's step) on, 0.3 from step 40 on: 20/64, 40/64
    assert got == {"psi": "piecewise:0.2:0.3125:0.5:0.625:0.3", "rho": 4.0} and type(got["rho"]) is float
    schedule = ParamSchedule.parse("psi", got["psi"])
    assert [schedule.value(s / 64) for s in range(64)] == [expected_value(history, "psi", s) for s in range(64)]
    assert policy(history[:1], ["psi"], 64) == {"psi": 0.2}
    changing_first = [{"step": 3, "psi": 0.1}, {"step": 6, "psi": 0.4}]  # a change right after the first evaluation
    assert policy(changing_first, ["psi"], 7) == {"psi": f"piecewise:0.1:{3 / 7!r}:0.4"}
    with pytest.raises(ValueError, match="rise strictly"):
        policy([{"step": 10, "psi": 0.2}, {"step": 10, "psi": 0.3}], ["psi"], 64)


def without_time(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "time"} for m in history]


def pbt_run(config: TrainConfig, digits, segments: list[tuple[int | None, dict]]) -> Trainer:
    """A run whose method_params change between evaluations, as Population Based Training changes a trial's: each
    segment trains `evaluations` more evaluations (None: to the end) in a new Trainer with its params, which continues
    from the previous one's state_dict (through torch.save and torch.load, as a checkpoint)."""
    trainer = None
    for evaluations, params in segments:
        following = Trainer(replace(config, method_params=params), digits)
        if trainer is not None:
            buffer = io.BytesIO()
            torch.save(trainer.state_dict(), buffer)
            buffer.seek(0)
            following.load_state_dict(torch.load(buffer, weights_only=True))
        trainer = following
        list(islice(iter(trainer), evaluations))
    return trainer


PBT_CONFIG = dict(dataset="digits", model="mlp", method="dm", noise_rate=0.4, epochs=None, iterations=200,
                  eval_every=20, device="cpu", diag_subsample=0)


@pytest.mark.parametrize(("segments", "expected"), [
    ([(3, {"psi": 0.2, "rho": 4.0}), (None, {"psi": 0.5, "rho": 4.0})],
     {"psi": "piecewise:0.2:0.3:0.5", "rho": 4.0}),  # the switch at evaluation 3's step, 60 of 200
    ([(2, {"psi": 0.2, "rho": 4.0}), (3, {"psi": 0.5, "rho": 4.0}), (None, {"psi": 0.3, "rho": 6.0})],
     {"psi": "piecewise:0.2:0.2:0.5:0.5:0.3", "rho": "piecewise:4:0.5:6"}),
])
def test_the_policy_of_a_pbt_like_run_retraces_it_from_the_start(digits, segments: list, expected: dict) -> None:
    config = TrainConfig(**PBT_CONFIG)
    a = pbt_run(config, digits, segments)
    assert a.step == a.total_steps == 200 and len(a.history) == 10
    assert {"train_loss", "val_acc", "test_acc", "psi", "rho", "lam", "beta"} <= a.history[-1].keys()
    got = policy(a.history, ["psi", "rho"], a.total_steps)
    assert got == expected
    b = Trainer(replace(config, method_params=got), digits)
    list(b)
    assert without_time(b.history) == without_time(a.history)  # exactly: every metric of every evaluation


def test_a_breakpoint_one_step_off_does_not_retrace_the_run(digits) -> None:
    """The equality above is no accident of psi mattering little: one step later, the losses differ."""
    config = TrainConfig(**PBT_CONFIG)
    a = pbt_run(config, digits, [(3, {"psi": 0.2, "rho": 4.0}), (None, {"psi": 0.5, "rho": 4.0})])
    late = Trainer(replace(config, method_params={"psi": f"piecewise:0.2:{61 / 200!r}:0.5", "rho": 4.0}), digits)
    list(late)
    assert without_time(late.history[:3]) == without_time(a.history[:3])
    assert all(x["train_loss"] != y["train_loss"] for x, y in zip(late.history[3:], a.history[3:]))
