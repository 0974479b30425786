"""Fixtures for the study tests: what an uninterrupted run of a trial's setting ends with."""

from __future__ import annotations

from typing import Any, Callable

import pytest
import torch
from mlflow.entities import Run

import trainers


@pytest.fixture(scope="session")
def uninterrupted() -> Callable[[Run, trainers.TrainConfig], dict[str, Any]]:
    """A function: the last metrics of an uninterrupted, in-process run of a DM trial's setting (its MLflow run's
    method, λ, β, ε, noise rate and seed over the study's `train` settings), on one thread as in a Ray worker with one
    CPU (float reductions depend on the thread count)."""
    data: dict[str, trainers.Dataset] = {}

    def last(run: Run, train: trainers.TrainConfig) -> dict[str, Any]:
        params = run.data.params
        setting = {k: float(params[k]) for k in ("lam", "beta", "eps")}
        config = train.replace(method=params["method"], method_params=setting, noise_rate=float(params["noise_rate"]),
                               seed=int(params["seed"]))
        if config.dataset not in data:
            data[config.dataset] = trainers.load_dataset(config.dataset, config.data_root)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            *_, metrics = trainers.Trainer(config, data[config.dataset])
        finally:
            torch.set_num_threads(threads)
        return metrics

    return last
