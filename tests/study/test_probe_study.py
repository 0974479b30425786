"""Studies of L2R and IEG end to end on digits: a search with the probe set's size, an ablation grid of IEG's
components, MLflow's params and per-epoch weight metrics, and the report."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from reports import write_report
from study.config import load_study_config
from study.driver import run_study

pytestmark = pytest.mark.usefixtures("ray_session")
COMMON = ["noise_rates=[0.4]", "search.max_concurrent=2", "train.epochs=2", "train.lr=0.01", "final.n_seeds=1"]


def _trials(uri: str, name: str) -> list:
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(name).experiment_id], max_results=100)
    return [r for r in runs if r.data.tags.get("stage") in ("search", "final")]


def test_l2r_and_ieg_studies_are_tracked_and_reported(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    where = [f"tracking_uri={uri}", f"storage={tmp_path / 'ray'}"]
    l2r = load_study_config(None, ["name=digits-l2r", "method=l2r", "search.num_samples=2", *COMMON, *where])
    run_study(l2r, echo=lambda line: None)
    # IEG's paper coefficients (k = 20, meta step 0.1) collapse an MLP (configs/fashion_mnist_ieg.yaml); these train one
    ieg = load_study_config(None, ["name=digits-ieg", "method=ieg", "search.mode=grid",
                                   "method_params={aa: false, p: 1.0, k: 1.0, meta_lr: 0.01}",
                                   "search.grid={relabel: [true, false]}", *COMMON, *where])
    run_study(ieg, echo=lambda line: None)

    searched = _trials(uri, "digits-l2r")
    assert sorted(r.data.tags["stage"] for r in searched) == ["final", "search", "search"]
    for run in searched:
        params, metrics = run.data.params, run.data.metrics
        assert run.info.status == "FINISHED" and params["method"] == "l2r"
        assert metrics["weight_clean"] > 0 and 0 <= metrics["noisy_zero_weight"] <= 1
        assert "relabel_clean" not in metrics
    # the searched settings reach the trials: each search trial its own draw, the final run the rate run's best
    client = MlflowClient(uri)
    rate_run = client.search_runs([client.get_experiment_by_name("digits-l2r").experiment_id],
                                  "tags.stage = 'noise_rate'")[0]
    draws = {s: [(r.data.params["probe_per_class"], r.data.params["meta_lr"]) for r in searched
                 if r.data.tags["stage"] == s] for s in ("search", "final")}
    assert len(set(draws["search"])) == 2
    assert draws["final"] == [(rate_run.data.params["best.probe_per_class"], rate_run.data.params["best.meta_lr"])]
    assert draws["final"][0] in draws["search"]
    history = client.get_metric_history(searched[0].info.run_id, "weight_noisy")
    assert [m.step for m in history] == sorted(m.step for m in history) and len(history) == 2  # one per epoch

    cells = _trials(uri, "digits-ieg")
    search = [r for r in cells if r.data.tags["stage"] == "search"]
    assert sorted(r.data.params["relabel"] for r in search) == ["False", "True"]
    for run in cells:
        assert run.info.status == "FINISHED" and run.data.params["aa"] == "False"
        assert run.data.params["probe_per_class"] == "10" and run.data.metrics["weight_clean"] > 0  # the default
        relabels = "relabel_noisy" in run.data.metrics
        assert relabels == (run.data.params["relabel"] == "True")
        if relabels:
            assert 0 <= run.data.metrics["relabel_noisy"] <= 1 and 0 <= run.data.metrics["relabel_clean"] <= 1

    text = write_report(uri, "digits-ieg", tmp_path / "report", log_artifacts=False).read_text()
    assert "Noise rate 0.4: grid cells" in text and "| relabel | val_acc | test_acc |" in text
    assert "| ieg |" in text and "| l2r |" in text  # both studies in the methods compared
    summary = (tmp_path / "report" / "summary.csv").read_text().splitlines()
    assert summary[1].startswith("0.4,relabel=") and summary[1].endswith(",2,1,0,0")  # the chosen cell; none collapsed
    cells_csv = (tmp_path / "report" / "noise-0.4_grid_cells.csv").read_text().splitlines()
    assert cells_csv[0].startswith("relabel,val_acc,test_acc,weight_clean,weight_noisy,noisy_zero_weight")
    assert len(cells_csv) == 3
