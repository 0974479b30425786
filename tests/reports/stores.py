"""Building blocks of the MLflow stores the report tests write as the driver logs a study."""

from __future__ import annotations

from mlflow.tracking import MlflowClient


def log_run(client: MlflowClient, experiment: str, tags: dict, params: dict, metrics: dict) -> str:
    """A finished run of `experiment` with `tags`, `params` (as strings) and `metrics`; its id."""
    run = client.create_run(experiment, tags=tags).info.run_id
    for key, value in params.items():
        client.log_param(run, key, str(value))
    for key, value in metrics.items():
        client.log_metric(run, key, value)
    client.set_terminated(run)
    return run
