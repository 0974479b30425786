"""A study's console, without a study: a line at each stage's end where no bar shows how far the study is (a resumed
study counting from what it had done), Ray's, MLflow's and Optuna's routine lines silenced inside it only, and the Tune
callback that counts a stage's trials pickled without its console."""

from __future__ import annotations

import logging
import pickle
import re

import optuna

from study.console import Console


def test_each_stage_ends_with_a_line_of_the_trials_done_and_the_time_left() -> None:
    lines: list[str] = []
    with Console(10, 4, lines.append) as console:  # resumed: 4 trials were done before
        console.echo("noise rate 0.4: searching dm (3 trials)")
        console.stage()
        console.count(1)
        assert console.done == 5
        console.end_stage(3)
        console.stage()
        console.end_stage(3)
    assert lines[0] == "noise rate 0.4: searching dm (3 trials)"
    assert re.fullmatch(r"\[7/10 trials, 00:0\d elapsed, ~00:\d\d left\]", lines[1]), lines[1]
    assert re.fullmatch(r"\[10/10 trials, 00:0\d elapsed\]", lines[2]), lines[2]


def test_routine_lines_are_silenced_inside_unless_verbose() -> None:
    before = optuna.logging.get_verbosity(), logging.getLogger("ray").level, logging.getLogger("mlflow").level
    with Console(1, 0):
        assert optuna.logging.get_verbosity() == optuna.logging.WARNING
        assert logging.getLogger("ray").level == logging.getLogger("mlflow").level == logging.WARNING
        assert logging.getLogger("ray.tune.analysis.experiment_analysis").getEffectiveLevel() == logging.ERROR
    assert (optuna.logging.get_verbosity(), logging.getLogger("ray").level, logging.getLogger("mlflow").level) == before
    assert logging.getLogger("ray.tune.analysis.experiment_analysis").level == logging.NOTSET
    with Console(1, 0, verbose=True):
        assert optuna.logging.get_verbosity() == before[0]


def test_the_stage_counter_is_pickled_with_a_tuner_without_its_console() -> None:
    with Console(3, 0) as console:
        counter = console.stage()
        assert counter.console is console and pickle.loads(pickle.dumps(counter)).console is None
