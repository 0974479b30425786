"""Which failed trials Ray Tune retries: after a crash (its worker or node lost, an unexpected error), up to
FailureConfig.max_failures times from the last checkpoint; after an error that a retry would raise again, never."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from ray.tune.experiment import Trial

from study.tracking import error_reason
from trainers.errors import ConfigError

REPEATED = (FloatingPointError, ConfigError)  # the loss became NaN or inf; a setting not allowed: raised on every retry


def fails_again(error_file: str | None) -> bool:
    """Whether the last failure in a trial's Tune error file is one of REPEATED (its exception line names it)."""
    name = error_reason(error_file).partition(":")[0].rpartition(".")[2]
    return name in {error.__name__ for error in REPEATED}


@contextmanager
def retrying_crashes_only() -> Iterator[None]:
    """While it lasts, Ray Tune does not retry a trial that failed with one of REPEATED; other failures as before.

    Ray Tune 2.58 has no setting for this: TuneController._process_trial_failure retries a failed trial when
    `Trial.should_recover()` holds, and that compares only the trial's failure count with max_failures. So that rule is
    narrowed here, for the Tuner runs of a study (in its driver process), and given back after.
    """
    tune_rule = Trial.should_recover

    def should_recover(trial: Trial) -> bool:
        return tune_rule(trial) and not fails_again(trial.error_file)

    Trial.should_recover = should_recover
    try:
        yield
    finally:
        Trial.should_recover = tune_rule
