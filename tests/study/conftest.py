"""Fixtures for the study tests: what an uninterrupted run of a trial's setting ends with, and the environment of a
second driver that joins the session's Ray."""

from __future__ import annotations

import itertools
import os
from typing import Any, Callable

import pytest
import torch
from mlflow.entities import Run

import trainers


@pytest.fixture(scope="session")
def uninterrupted() -> Callable[..., dict[str, Any]]:
    """A function: the last metrics of an uninterrupted, in-process run of a DM trial's setting (its MLflow run's
    method, λ, β, ε, noise rate and seed over the study's `train` settings), or its metrics at its `evaluations`th
    evaluation, on one thread as in a Ray worker with one CPU (float reductions depend on the thread count)."""
    data: dict[str, trainers.Dataset] = {}

    def last(run: Run, train: trainers.TrainConfig, evaluations: int | None = None) -> dict[str, Any]:
        params = run.data.params
        setting = {k: float(params[k]) for k in ("lam", "beta", "eps")}
        config = train.replace(method=params["method"], method_params=setting, noise_rate=float(params["noise_rate"]),
                               seed=int(params["seed"]))
        if config.dataset not in data:
            data[config.dataset] = trainers.load_dataset(config.dataset, config.data_root)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            *_, metrics = itertools.islice(trainers.Trainer(config, data[config.dataset]), evaluations)
        finally:
            torch.set_num_threads(threads)
        return metrics

    return last


@pytest.fixture(scope="session")
def driver_env() -> dict[str, str]:
    """The environment of a second driver process (`python -m study … --address`) that joins the session's Ray.

    That Ray listens on 127.0.0.1 only: the driver needs Ray's cluster switch off too, else its ray.init turns
    127.0.0.1 into this machine's outward IP, where nothing answers (as `ray start` does: its clusters are found there
    by every driver, whatever address they are given)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
