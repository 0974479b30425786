"""A study of several noise kinds: one search and one set of final retrains per label set, each logged under its own
label set's run and trained on its own kind of noise (real Ray, Optuna and MLflow)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from study.config import load_study_config
from study.driver import run_study, summary_table
from study.label_sets import LabelSet, label_sets
from tests.study.test_study_run import runs_by_stage

pytestmark = pytest.mark.usefixtures("ray_session")


@pytest.mark.parametrize(("noise", "keys", "names"), [
    ("symmetric", ["0", "0.4"], ["noise rate 0", "noise rate 0.4"]),
    (["symmetric", "pair"], ["symmetric-0", "symmetric-0.4", "pair-0", "pair-0.4"],
     ["symmetric 0%", "symmetric 40%", "pair 0%", "pair 40%"]),
    (["cifar10n-worst", "symmetric"], ["cifar10n-worst", "symmetric-0", "symmetric-0.4"],
     ["cifar10n-worst", "symmetric 0%", "symmetric 40%"]),
])
def test_label_sets_cross_synthetic_kinds_with_rates(noise, keys: list[str], names: list[str]) -> None:
    sets = label_sets(noise, [0.0, 0.4])
    assert [ls.key for ls in sets] == keys and [ls.name() for ls in sets] == names
    assert len({ls.key for ls in sets}) == len(sets)


def test_a_list_of_one_kind_is_that_kind() -> None:
    listed = load_study_config(None, ["noise=[pair]"])
    assert listed.noise == "pair" and listed.config_hash() == load_study_config(None, ["noise=pair"]).config_hash()


def test_each_label_set_is_searched_and_retrained_on_its_own_noise(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = load_study_config(None, [
        "name=kinds", "noise=[symmetric, pair]", "noise_rates=[0.4]", "search.num_samples=2",
        "search.max_concurrent=2", "train.epochs=1", "final.n_seeds=2", f"tracking_uri={uri}",
        f"storage={tmp_path / 'ray'}"])
    lines: list[str] = []
    state = run_study(config, echo=lines.append)

    assert list(state.rates) == ["symmetric-0.4", "pair-0.4"]
    stages = runs_by_stage(uri, "kinds")
    (study,) = stages["study"]
    assert study.data.tags["noise"] == "symmetric,pair"
    sets = {r.info.run_id: r.data.tags for r in stages["noise_rate"]}
    assert sorted(tags["label_set"] for tags in sets.values()) == ["pair-0.4", "symmetric-0.4"]
    assert {tags["mlflow.runName"] for tags in sets.values()} == {"noise pair-0.4", "noise symmetric-0.4"}
    for stage, per_set in (("search", 2), ("final", 2)):
        for run in stages[stage]:
            parent = sets[run.data.tags["mlflow.parentRunId"]]
            assert run.data.tags["label_set"] == parent["label_set"]
            assert run.data.params["noise"] == run.data.tags["noise"] == parent["noise"]  # trained on its own kind
            assert float(run.data.params["noise_rate"]) == 0.4
        for run_id in sets:
            assert sum(r.data.tags["mlflow.parentRunId"] == run_id for r in stages[stage]) == per_set
    assert sorted(r.info.run_name for r in stages["final"]) == [
        f"final {key} seed {seed}" for key in ("pair-0.4", "symmetric-0.4") for seed in (0, 1)]
    client = MlflowClient(uri)
    for key, rs in state.rates.items():
        final = [r for r in stages["final"] if r.data.tags["label_set"] == key]
        assert sorted(r.data.metrics["test_acc"] for r in final) == pytest.approx(rs.final_test)
        assert client.get_run(rs.run_id).data.metrics["final_test_acc_mean"] == pytest.approx(
            sum(rs.final_test) / len(rs.final_test))
    # each kind corrupts about its rate of the labels
    realised = {r.data.tags["label_set"]: r.data.metrics["noise_rate_realised"] for r in stages["final"]}
    assert all(0.3 < value < 0.5 for value in realised.values())

    assert "symmetric 40%: searching dm (2 trials)" in lines and "pair 40%: searching dm (2 trials)" in lines
    finals = [line for line in lines if line.lstrip().startswith("final ")]
    assert len(finals) == 4 and sum("pair 40%, " in line for line in finals) == 2
    assert all("noise_rate=" not in line and "noise=" not in line for line in finals)
    table = summary_table(state).splitlines()
    assert table[0].startswith("label set |")
    assert [row.split(" | ")[0] for row in table[2:]] == ["symmetric 40%", "pair 40%"]


def test_the_label_set_of_a_final_retrain_routes_it() -> None:
    """ByLabelSet finds a final trial's label set from its config: the base settings overridden by its grid cell."""
    from study.tracking import ByLabelSet
    from trainables import TRAIN_KEY

    base = load_study_config(None, ["noise=[symmetric, cifar10n-worst]", "train.dataset=cifar10",
                                    "noise_rates=[0.2]"]).train.replace(noise="symmetric", noise_rate=0.2).to_dict()
    router = ByLabelSet({}, several=True)
    assert router.key({TRAIN_KEY: base, "cell": {"noise": "symmetric", "noise_rate": 0.2, "lam": 1.0}}) == \
        LabelSet("symmetric", 0.2, True).key == "symmetric-0.2"
    assert router.key({TRAIN_KEY: base, "cell": {"noise": "cifar10n-worst", "noise_rate": 0.0}}) == "cifar10n-worst"
