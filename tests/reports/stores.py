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


def log_study(client: MlflowClient, folder: str, name: str, config: dict, label_sets: dict[float, dict]) -> None:
    """A finished study of one synthetic noise kind on digits with an MLP, logged as the driver logs it: a study run
    (tags dataset, noise, method; study_config.json: `config` completed with those), and per noise rate of
    `label_sets` a run (tags noise_rate, label_set, noise; params best.<name> of its "best" setting; metric trials)
    holding its "search" trials (a list of (params, val_acc)) and its final retrains, one per test accuracy in
    "finals" (seeds 0, 1, …, the best setting's params)."""
    method, noise = config.get("method", "dm"), config.get("noise", "symmetric")
    config = {"method": method, "noise": noise, "noise_rates": list(label_sets),
              "train": {"dataset": "digits", "model": "mlp"}, **config}
    common = {"dataset": "digits", "noise": noise, "method": method}
    experiment = client.create_experiment(name, artifact_location=f"{folder}/{name}")
    study = client.create_run(experiment, tags={**common, "stage": "study"}).info.run_id
    client.log_dict(study, config, "study_config.json")
    for rate, runs in label_sets.items():
        tags = {**common, "noise_rate": f"{rate:g}", "label_set": f"{rate:g}"}
        rate_run = log_run(client, experiment, {**tags, "stage": "noise_rate", "mlflow.parentRunId": study},
                           {f"best.{k}": v for k, v in runs["best"].items()}, {"trials": len(runs["search"])})
        for params, val_acc in runs["search"]:
            log_run(client, experiment, {**tags, "stage": "search", "mlflow.parentRunId": rate_run},
                    {**params, "seed": 0}, {"val_acc": val_acc, "test_acc": val_acc - 0.01})
        for seed, test_acc in enumerate(runs["finals"]):
            log_run(client, experiment, {**tags, "stage": "final", "mlflow.parentRunId": rate_run},
                    {**runs["best"], "seed": seed}, {"test_acc": test_acc})
    client.set_terminated(study)
