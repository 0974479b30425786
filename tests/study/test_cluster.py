"""A study sent to an existing two-node Ray cluster with --address (each node started here, stopped by its own PID)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from study.local_cluster import local_cluster


@pytest.mark.slow
def test_study_runs_on_a_two_node_cluster(tmp_path: Path) -> None:
    with local_cluster([1, 1]) as address:
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        overrides = ["name=cluster", "noise_rates=[0.2]", "search.num_samples=2", "search.max_concurrent=2",
                     "train.epochs=2", "final.n_seeds=0", f"tracking_uri={uri}", f"storage={tmp_path / 'shared'}"]
        result = subprocess.run([sys.executable, "-m", "study", "run", *sum((["--set", o] for o in overrides), []),
                                 "--address", address], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("cluster")
    runs = client.search_runs([experiment.experiment_id], "tags.stage = 'search'")
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    assert "0.2 | lam=" in result.stdout
