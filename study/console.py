"""A study's console: its own lines (one per stage, one per finished trial), one progress bar of all its trials, and
none of Ray Tune's, Optuna's or MLflow's routine lines unless asked for."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import ExitStack
from typing import Any, Callable

import optuna
from ray.tune import Callback
from ray.tune.experiment import Trial
from tqdm import tqdm

Echo = Callable[[str], None]
_CHATTY = ("ray", "mlflow")  # loggers with routine INFO lines: Ray started, Tune's state written, MLflow's tables made
# loggers whose warnings are routine in a study: a trial that a killed driver had just started has no results yet
_QUIET = ("ray.tune.analysis.experiment_analysis",)
_BAR = "{desc}{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} trials [{elapsed}<{remaining}]"


class Console:
    """The console of one run of a study with `total` trials (search trials and final retrains of every label set),
    `done` of them before it starts.

    Used as a context: inside, Ray's, MLflow's and Optuna's loggers say warnings and errors only (Tune's routine
    warning of a trial without results, errors only), unless `verbose` (which also shows Tune's status tables). From
    the first stage on, a progress bar on stderr counts the trials done, with the time elapsed and left, where `bar`;
    else `progress` and each stage's end say as much in a line. Lines go through `echo`, above the bar.
    """

    def __init__(self, total: int, done: int, echo: Echo = print, *, bar: bool = False, verbose: bool = False) -> None:
        self.total, self.done, self.verbose, self._echo, self._show_bar = total, done, verbose, echo, bar
        self._bar: tqdm | None = None
        self._start: float | None = None  # when its first stage started (time.monotonic)
        self._done_at_start = self._stage_start = done
        self._said: int | None = None  # the trials done when `progress` said it last
        self._exit = ExitStack()

    def __enter__(self) -> Console:
        if not self.verbose:
            for names, level in ((_CHATTY, logging.WARNING), (_QUIET, logging.ERROR)):
                for logger in map(logging.getLogger, names):
                    self._exit.callback(logger.setLevel, logger.level)
                    logger.setLevel(level)
            self._exit.callback(optuna.logging.set_verbosity, optuna.logging.get_verbosity())
            optuna.logging.set_verbosity(optuna.logging.WARNING)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._exit.close()

    def echo(self, line: str) -> None:
        """Say `line`, above the bar."""
        if self._bar is None:
            self._echo(line)
            return
        with self._bar.external_write_mode(file=sys.stdout):
            self._echo(line)

    def stage(self, before: int = 0) -> Callback:
        """A Tune callback that counts the trials of a new stage (one Tuner) as they end, those that a restored Tuner
        had ended too: `before` of them, counted in `done` already."""
        self._stage_start = self.done - before
        if self._start is None:  # the clock starts with the first stage, once Ray has started
            self._start = time.monotonic()
            if self._show_bar:
                self._bar = self._exit.enter_context(tqdm(total=self.total, initial=self.done, file=sys.stderr,
                                                          bar_format=_BAR, dynamic_ncols=True, smoothing=0))
        return _StageCount(self)

    def count(self, ended: int) -> None:
        """`ended` trials of the current stage have ended (the bar's clock moves on, also where none ended since)."""
        if self._bar is not None:
            self._bar.update(self._stage_start + ended - self.done)
        self.done = self._stage_start + ended

    def end_stage(self, trials: int) -> None:
        """The stage ran `trials` trials in all: count them, and say how far the study is (see `progress`) unless
        said already."""
        self.count(trials)
        if self._said != self.done:
            self.progress()

    def progress(self) -> None:
        """Say how far the study is, where no bar shows it: trials done, time elapsed and left."""
        if self._bar is None:
            elapsed = time.monotonic() - self._start
            ran, remaining = self.done - self._done_at_start, self.total - self.done
            left = f", ~{tqdm.format_interval(elapsed * remaining / ran)} left" if ran and remaining else ""
            self._echo(f"[{self.done}/{self.total} trials, {tqdm.format_interval(elapsed)} elapsed{left}]")
            self._said = self.done


class _StageCount(Callback):
    """Tells its Console how many of the stage's trials have ended, at each step of Tune's loop. Pickled (with the
    Tuner) without it: a copy counts nothing."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console

    def __getstate__(self) -> dict[str, Any]:
        return {"console": None}

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if self.console is not None:
            self.console.count(sum(trial.status in (Trial.TERMINATED, Trial.ERROR) for trial in trials))
