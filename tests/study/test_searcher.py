"""The study's one searcher, without Ray running: every label set's trials handed out at once, the fewest under way
first, a label set's retrains as soon as its search has ended, a neighbour's best warming a search, failed trials, a
save and restore that go on exactly; and ASHA within each label set only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher

import search_spaces
from study.label_sets import LabelSet
from study.scheduler import PerLabelSet
from study.searcher import FINAL, SEARCH, Plan, StudySearcher, label_set_key, setting_of, stage_of

RATES = (0.2, 0.4, 0.6)


def plans(trials: int = 4, finals: int = 2, warm: bool = False) -> list[Plan]:
    """DM searches of (λ, β) at RATES, each TPE seeded by its place; each warmed by the rate before where `warm`."""
    made = []
    for index, rate in enumerate(RATES):
        made.append(Plan(LabelSet("symmetric", rate), trials, finals, space=search_spaces.make_space("dm"),
                         seed=index, warm_names=["lam", "beta"] if warm else [],
                         neighbour=f"{RATES[index - 1]:g}" if warm and index else None))
    return made


def score(config: dict) -> float:
    """A made-up validation accuracy: best at λ = 1 and β = 4, lower at higher noise."""
    return 1 - config["noise_rate"] - 0.1 * abs(config["lam"] - 1) - 0.01 * abs(config["beta"] - 4)


def test_every_label_set_is_searched_at_once_and_retrained_as_soon_as_its_search_ends() -> None:
    searcher = ConcurrencyLimiter(StudySearcher(plans()), max_concurrent=6)  # as the driver bounds it
    given = {f"t{i}": searcher.suggest(f"t{i}") for i in range(6)}
    assert searcher.suggest("t6") is None  # six under way: the limit
    assert sorted(c["noise_rate"] for c in given.values()) == [0.2, 0.2, 0.4, 0.4, 0.6, 0.6]
    assert all(stage_of(c) == SEARCH and set(setting_of(c)) == {"lam", "beta"} for c in given.values())
    assert [c["noise_rate"] for c in given.values()] == [0.2, 0.4, 0.6, 0.2, 0.4, 0.6]  # the fewest under way first
    # 0.2 ends its first two trials: its last two go out, then (its search ended) its retrains, while 0.4 and 0.6
    # still search
    for trial_id in ("t0", "t3"):
        searcher.on_trial_complete(trial_id, {"val_acc": score(given[trial_id])})
    more = {f"u{i}": searcher.suggest(f"u{i}") for i in range(2)}
    assert [c["noise_rate"] for c in more.values()] == [0.2, 0.2]
    for trial_id, config in more.items():
        searcher.on_trial_complete(trial_id, {"val_acc": score(config)})
    best = searcher.searcher.best("0.2")
    assert best.score == max(score(c) for c in [given["t0"], given["t3"], *more.values()])
    finals = [searcher.suggest(f"f{i}") for i in range(2)]
    assert [(stage_of(c), c["cell"], c["seed"], c["noise_rate"]) for c in finals] == [
        (FINAL, best.setting, 0, 0.2), (FINAL, best.setting, 1, 0.2)]
    assert searcher.suggest("f2") is None  # six under way again
    # the rest: everything handed out once, then FINISHED
    live = {k: v for k, v in {**given, **{f"f{i}": c for i, c in enumerate(finals)}}.items() if k not in ("t0", "t3")}
    counts = {(c["noise_rate"], stage_of(c)): 0 for c in live.values()}
    step = 0
    while live:
        trial_id, config = next(iter(live.items()))
        del live[trial_id]
        searcher.on_trial_complete(trial_id, {"val_acc": score(config)} if stage_of(config) == SEARCH else {})
        while (new := searcher.suggest(f"n{step}")) not in (None, Searcher.FINISHED):
            live[f"n{step}"] = new
            counts[new["noise_rate"], stage_of(new)] = counts.get((new["noise_rate"], stage_of(new)), 0) + 1
            step += 1
    assert searcher.suggest("last") == Searcher.FINISHED
    assert {k: v for k, v in counts.items() if v} == {(0.4, SEARCH): 2, (0.6, SEARCH): 2, (0.4, FINAL): 2,
                                                      (0.6, FINAL): 2}


def test_a_neighbour_s_best_warms_a_search_once_it_has_finished_half_its_trials() -> None:
    lines: list[str] = []
    searcher = StudySearcher(plans(trials=4, warm=True), lines.append)
    first = searcher.suggest("a")  # 0.2's first trial
    assert first["noise_rate"] == 0.2
    searcher.on_trial_complete("a", {"val_acc": 0.5})
    assert not lines  # one of 0.2's four trials ended: not yet
    second = searcher.suggest("b")
    assert second["noise_rate"] == 0.4
    searcher.on_trial_complete("b", {"val_acc": 0.1})
    third = searcher.suggest("c")
    assert third["noise_rate"] == 0.6
    searcher.on_trial_complete("c", {"val_acc": 0.1})
    fourth = searcher.suggest("d")
    assert fourth["noise_rate"] == 0.2
    searcher.on_trial_complete("d", {"val_acc": 0.4})  # two of 0.2's trials ended: its best so far is the first
    assert lines == [f"noise rate 0.4: warm start from noise rate 0.2's best so far, lam={first['lam']:.4g}, "
                     f"beta={first['beta']:.4g}"]
    fifth = searcher.suggest("e")
    assert fifth["noise_rate"] == 0.4 and (fifth["lam"], fifth["beta"]) == (first["lam"], first["beta"])


def test_a_trial_holds_the_space_s_own_values_and_the_trainer_s() -> None:
    """Under DM's (ψ, ρ) parametrization a trial's config holds ψ and ρ (what the search drew) and λ and β (what the
    trainer reads), consistent with each other."""
    plan = Plan(LabelSet("symmetric", 0.4), 2, 0, space=search_spaces.make_space("dm", parametrization="psi_rho"))
    config = StudySearcher([plan]).suggest("a")
    assert {"psi", "rho", "lam", "beta"} <= set(config)
    assert search_spaces.from_psi_rho(config["psi"], config["rho"]) == pytest.approx((config["lam"], config["beta"]))


def test_failed_trials_count_for_no_best_and_a_search_without_a_score_is_not_retrained() -> None:
    searcher = StudySearcher(plans(trials=2, finals=1)[:1])
    configs = [searcher.suggest("a"), searcher.suggest("b")]
    searcher.on_trial_complete("a", {"val_acc": 0.9}, error=True)  # failed after reporting: not counted
    searcher.on_trial_complete("b", {"val_acc": float("nan")})
    assert searcher.best("0.2") is None
    assert searcher.suggest("c") == Searcher.FINISHED
    assert [t.state.name for t in searcher._studies["0.2"].trials] == ["FAIL", "PRUNED"]
    assert len(configs) == 2


def test_a_restored_searcher_holds_what_the_saved_one_did_and_goes_on(tmp_path: Path) -> None:
    searcher = StudySearcher(plans(warm=True))
    for i in range(5):
        config = searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"val_acc": score(config)})
    searcher.on_trial_complete(f"f{0}", {})  # an id it never gave: nothing happens
    open_config = searcher.suggest("open")  # one under way when saved
    searcher.save(str(tmp_path / "searcher.json"))
    json.loads((tmp_path / "searcher.json").read_text())  # JSON: nothing but data is loaded back
    copies = []
    for _ in range(2):
        restored = StudySearcher(plans(warm=True))
        restored.restore(str(tmp_path / "searcher.json"))
        copies.append(restored)
    for one in copies:
        assert one._given == searcher._given and one._ended == searcher._ended and one._warmed == searcher._warmed
        assert {k: one.best(k) for k in one.plans} == {k: searcher.best(k) for k in searcher.plans}
        for key, study in one._studies.items():
            mine = searcher._studies[key].trials
            assert [(t.number, t.state, t.params, t.value) for t in study.trials] == [
                (t.number, t.state, t.params, t.value) for t in mine]
    for one in (searcher, *copies):
        one.on_trial_complete("open", {"val_acc": score(open_config)})  # the trial under way ends after the restore
    ahead = [copies[0].suggest(f"n{i}") for i in range(3)]
    assert [copies[1].suggest(f"n{i}") for i in range(3)] == ahead and all(isinstance(c, dict) for c in ahead)
    tried = {(t.params["lam"], t.params["beta"]) for study in searcher._studies.values() for t in study.trials}
    assert not [c for c in ahead if (c["lam"], c["beta"]) in tried]  # the new sampler does not draw old points


def test_asha_compares_a_trial_only_with_its_own_label_set() -> None:
    def asha(key: str = "") -> ASHAScheduler:  # PerLabelSet makes one per label set key
        return ASHAScheduler(metric="val_acc", mode="max", time_attr="training_iteration", max_t=4, grace_period=1,
                             reduction_factor=2)

    def trial(trial_id: str, rate: float, split: str = "search") -> Trial:
        return Trial("train_trial", config={"noise": "symmetric", "noise_rate": rate, "split": split},
                     trial_id=trial_id, stub=True)

    def results(scheduler: TrialScheduler, trials: list[Trial], values: list[float]) -> list[str]:
        for one in trials:
            scheduler.on_trial_add(None, one)
        return [scheduler.on_trial_result(None, one, {"val_acc": v, "training_iteration": 1})
                for one, v in zip(trials, values)]

    strong = [trial(f"a{i}", 0.2) for i in range(4)]
    weak = trial("b0", 0.6)
    # one ASHA for all label sets stops the high-noise trial (below the low-noise ones' rung); one per label set not
    assert results(asha(), [*strong, weak], [0.9, 0.9, 0.9, 0.9, 0.3])[-1] == TrialScheduler.STOP
    per = PerLabelSet(asha, ["0.2", "0.6"], several=False)
    assert results(per, [*strong, weak], [0.9, 0.9, 0.9, 0.9, 0.3])[-1] == TrialScheduler.CONTINUE
    assert results(per, [trial("c0", 0.6)], [0.1]) == [TrialScheduler.STOP]  # below 0.6's own rung
    final = trial("f0", 0.6, "final")
    assert per.on_trial_result(None, final, {"training_iteration": 1}) == TrialScheduler.CONTINUE


@pytest.mark.parametrize(("config", "several", "key"), [
    ({"noise": "symmetric", "noise_rate": 0.4, "lam": 1.0}, False, "0.4"),
    ({"noise": "pair", "noise_rate": 0.2, "split": "final", "cell": {"lam": 1.0}, "seed": 2}, True, "pair-0.2"),
    ({"train": {"noise": "cifar10n-worst", "noise_rate": 0.0, "split": "search"}, "cell": {"lam": 1.0}}, True,
     "cifar10n-worst"),
])
def test_a_trial_config_names_its_label_set_stage_and_setting(config: dict, several: bool, key: str) -> None:
    assert label_set_key(config, several) == key
    assert stage_of(config) == (FINAL if config.get("split") == "final" else SEARCH)
    assert setting_of(config) == {"lam": 1.0}

