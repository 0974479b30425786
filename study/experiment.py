"""A study's MLflow experiment as MLflow's UI shows it: a description of the study in words, the classic runs page
("Model training"), and a runs table with the study's scores and searched parameters."""

from __future__ import annotations

import json
from typing import Sequence

from study.config import StudyConfig

VIEW = "study"  # the experiment's shared view of its runs: ?viewStateShareKey=study on its page
_SCORES = ("best_val_acc", "final_test_acc_mean", "val_acc", "test_acc")  # label set runs' scores, then trials'


def experiment_tags(config: StudyConfig, tracking_uri: str, params: Sequence[str]) -> dict[str, str]:
    """The tags of the experiment of study `config`, whose trials vary `params`: its description, its kind (model
    training, not GenAI) and a view of its runs (VIEW): grouped by label set, the best of each group in its first row,
    with the scores and `params` as columns."""
    view = {"selectedColumns": [*(f"metrics.`{name}`" for name in _SCORES), *(f"params.`{name}`" for name in params)],
            "groupBy": {"aggregateFunction": "max", "groupByKeys": [{"mode": "tag", "groupByData": "label_set"}]}}
    return {"mlflow.note.content": description(config, tracking_uri),
            "mlflow.experimentKind": "custom_model_development",
            f"mlflow.sharedViewState.{VIEW}": json.dumps(view)}


def description(config: StudyConfig, tracking_uri: str) -> str:
    """What study `config` does, in Markdown: method, data, noise and label sets, how it searches and retrains, how
    its runs nest, and how to write its report."""
    train, search = config.train, config.search
    sets = f"{len(config.label_sets)} label set{'s' * (len(config.label_sets) > 1)}: " + ", ".join(
        ls.name() for ls in config.label_sets)
    if search.mode == "grid":
        searched = f"a grid of {len(search.grid_cells())} settings" + (f", {search.repeats} runs each"
                                                                          if search.repeats > 1 else "")
    else:
        searched = f"{search.num_samples} Optuna trials"
    kinds = config.noise if isinstance(config.noise, str) else ", ".join(config.noise)
    if train.val_labels == "trusted":
        split = "validated on the data set's trusted examples"
    else:
        split = (f"on {1 - train.val_fraction:.0%} of the training set, validated on the other "
                 f"{train.val_fraction:.0%} ({train.val_labels} labels)")
    seeds = config.final.n_seeds
    final = (f"its best setting is then trained on the whole training set with {seeds} seed{'s' * (seeds > 1)}, "
             "scored by test accuracy" if seeds else "no final retraining")
    return "\n".join([
        f"Study {config.name}: method {config.method} on {train.dataset} (model {train.model}) with {kinds} label "
        f"noise, {sets}.",
        "",
        f"Each label set: {searched} {split}; {final}. All label sets run at once, in one Ray Tune run.",
        "",
        f"Runs: `study {config.name}` › `noise <label set>` (best_val_acc, final_test_acc_mean) › "
        "`search <label set> #n` and `final <label set> seed s` (val_acc, test_acc per evaluation).",
        "",
        f"Report: `study report --tracking-uri {tracking_uri} --study {config.name}` writes it to "
        f"./report/{config.name}; `study run` logs it under the study run's artifacts (report/) at its end.",
    ])


def runs_page(tracking_uri: str, experiment_id: str) -> str:
    """How to open the runs page of experiment `experiment_id` in MLflow's UI, with the study's view."""
    page = f"#/experiments/{experiment_id}/runs?workflowType=machine_learning&viewStateShareKey={VIEW}"
    if tracking_uri.startswith(("http://", "https://")):
        return f"{tracking_uri.rstrip('/')}/{page}"
    return f"mlflow ui --backend-store-uri {tracking_uri}, then http://127.0.0.1:5000/{page}"
