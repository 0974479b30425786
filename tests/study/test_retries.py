"""Which failures a retry would repeat, read from Tune's error files as Ray writes them; the retry rule given back."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest
from ray.exceptions import ActorDiedError, RayTaskError
from ray.train._internal.storage import StorageContext
from ray.tune.experiment import Trial

from study.retries import fails_again, retrying_crashes_only
from trainers.errors import ConfigError


def raised_in_a_worker(exception: Exception) -> str:
    """What Tune writes of a trial whose function raised `exception` in a Ray worker (str of the RayTaskError)."""
    try:
        raise exception
    except Exception as error:
        return str(RayTaskError("ImplicitFunc.train", traceback.format_exc(), error))


CRASH = str(ActorDiedError())  # the worker process killed: "The actor died unexpectedly before finishing this task."
NAN = raised_in_a_worker(FloatingPointError("the training loss became nan before step 9"))
BAD_SETTING = raised_in_a_worker(ConfigError("lam", -1.0, "a number ≥ 0"))
OTHER = raised_in_a_worker(RuntimeError("CUDA error: an illegal memory access was encountered"))


def error_file(folder: Path, *failures: str) -> str:
    path = folder / "error.txt"
    path.write_text("".join(f"Failure # {i} (occurred at 2026-01-01_00-00-0{i})\n{text}\n"
                            for i, text in enumerate(failures, 1)))
    return str(path)


@pytest.mark.parametrize(("failures", "again"), [
    ((NAN,), True), ((BAD_SETTING,), True), ((CRASH,), False), ((OTHER,), False),
    ((CRASH, NAN), True),  # killed, retried from its checkpoint, then diverged
    ((NAN, CRASH), False),  # an errored trial resumed by `study resume`, then killed: the last failure counts
])
def test_a_diverging_loss_or_a_bad_setting_fails_again_a_crash_does_not(tmp_path: Path, failures: tuple[str, ...],
                                                                        again: bool) -> None:
    assert fails_again(error_file(tmp_path, *failures)) is again


def test_no_error_file_is_no_repeated_failure(tmp_path: Path) -> None:
    assert not fails_again(None) and not fails_again(str(tmp_path / "missing.txt"))


def failed_trial(folder: Path, exception: Exception) -> Trial:
    """A trial of at most 2 retries that has failed once with `exception`, as Tune's controller records it."""
    storage = StorageContext(storage_path=str(folder), experiment_dir_name="search",
                             trial_dir_name=type(exception).__name__)
    trial = Trial("train_trial", config={}, stub=True, max_failures=2, storage=storage)
    trial.init_local_path()
    trial.handle_error(exception)
    return trial


def test_tune_retries_a_crash_not_a_diverging_loss_while_the_narrowed_rule_lasts(ray_session: None,
                                                                                 tmp_path: Path) -> None:
    """(Ray runs: a trial's storage needs its session folder.)"""
    tune_rule = Trial.should_recover
    killed = failed_trial(tmp_path, ActorDiedError())
    diverged = failed_trial(tmp_path, RayTaskError("ImplicitFunc.train", NAN, FloatingPointError("nan")))
    assert killed.num_failures == diverged.num_failures == 1
    assert killed.should_recover() and diverged.should_recover()  # Tune's own rule: 1 failure of at most 2 retries
    with pytest.raises(KeyError):
        with retrying_crashes_only():
            assert killed.should_recover() and not diverged.should_recover()
            raise KeyError("the Tuner failed")
    assert Trial.should_recover is tune_rule and diverged.should_recover()  # given back, also after an error
