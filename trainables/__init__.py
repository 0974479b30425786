"""trainables: the Ray Tune adapter around `trainers` (report every evaluation, checkpoint, resume)."""

from trainables._trial import (DIVERGED, POLICY, REPORTED_FILE, TRAIN_KEY, StorageError, cached_dataset, own_values,
                               train_config, train_trial)

__all__ = ["DIVERGED", "POLICY", "REPORTED_FILE", "TRAIN_KEY", "StorageError", "cached_dataset", "own_values",
           "train_config", "train_trial"]
