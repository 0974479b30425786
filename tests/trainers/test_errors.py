"""Tests for trainers.errors: a user's error survives a pickle round trip (Ray re-raises a trial's error so)."""

from __future__ import annotations

import pickle

from trainers import ConfigError, DataError


def test_a_config_error_pickles_with_its_field_value_and_allowed() -> None:
    error = ConfigError("train.val_labels", "clean", "noisy or trusted: the data set has no true labels")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ConfigError
    assert (copy.field, copy.value, copy.allowed) == (error.field, error.value, error.allowed)
    assert str(copy) == str(error)


def test_a_data_error_pickles_with_its_line() -> None:
    copy = pickle.loads(pickle.dumps(DataError("npz file /x.npz: no array 'y_test'")))
    assert type(copy) is DataError and str(copy) == "npz file /x.npz: no array 'y_test'"
