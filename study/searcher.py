"""One Ray Tune searcher for a whole study: every label set's search trials and, as soon as a label set's search has
ended, its final retrains, so that one Tuner runs them all at once (on a cluster: no waves, no barrier).

Each label set has its own plan: its budget, its Optuna study (TPE, seeded) or grid, its warm-start points and its
retrains. The next trial goes to a label set whose search has ended and whose retrains are not all handed out, else to
the searching label set with the fewest trials under way. A label set's search is warmed by its neighbour's (the label
set before it): once the neighbour has finished half its search trials, its best setting so far is enqueued into the
label set's Optuna study, unless that study has handed out all its trials or tried the setting already.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import optuna
from optuna.distributions import (BaseDistribution, FloatDistribution, IntDistribution, distribution_to_json,
                                  json_to_distribution)
from optuna.samplers import RandomSampler, TPESampler
from optuna.trial import FrozenTrial, TrialState, create_trial
from ray.tune.search import Searcher

import search_spaces
from study import choice
from study.label_sets import LabelSet
from trainables import POLICY, TRAIN_KEY, own_values

METRIC = "val_acc"
SEARCH, FINAL = "search", "final"
_NOT_SEARCHED = (TRAIN_KEY, "noise", "noise_rate", "split", "seed")  # a trial config's keys that are no setting
Echo = Callable[[str], None]


@dataclass
class Plan:
    """What a study does for one label set: `trials` search trials drawn from `space` (Optuna, TPE seeded `seed`,
    `points` tried first) or the grid's `cells` (one per trial, in order), then `finals` retrains of the best setting
    (seeds 0 … finals − 1); a `population` (PBT) is drawn from `space` at random, the
    points first, and its trials are given the space's own values (psi, rho), which PBT changes. `warm_names`: the names a neighbour's best is projected on to warm this search
    (`parametrization`: how they become the space's own); `neighbour`: the key of the label set that warms it."""

    label_set: LabelSet
    trials: int
    finals: int
    space: search_spaces.Space | None = None
    cells: list[dict[str, Any]] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 0
    warm_names: list[str] = field(default_factory=list)
    parametrization: str = "lam_beta"
    neighbour: str | None = None
    population: bool = False  # a PBT population: its trials drawn at random from `space`, all at once, told nothing

    @property
    def key(self) -> str:
        return self.label_set.key

    @property
    def warm_after(self) -> int:
        """Search trials this label set finishes before its best warms its neighbour's search."""
        return max(1, math.ceil(self.trials / 2))


def setting_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """The searched values of a trial config: its own values (a grid cell unpacked), without its label set, split and
    seed."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if key not in _NOT_SEARCHED:
            flat.update(value if isinstance(value, Mapping) else {key: value})
    return flat


def label_set_key(config: Mapping[str, Any], several: bool) -> str:
    """The key (LabelSet.key) of a trial's label set, from its config (its base settings overridden by its own values,
    a grid cell's too); `several`: its study has several noise kinds."""
    values = {**config.get(TRAIN_KEY, {}), **own_values(config)}
    return LabelSet(values["noise"], float(values["noise_rate"]), several).key


def stage_of(config: Mapping[str, Any]) -> str:
    """A trial's stage, from its config: FINAL for a final retrain, else SEARCH."""
    split = own_values(config).get("split", config.get(TRAIN_KEY, {}).get("split"))
    return FINAL if split == "final" else SEARCH


def scored(config: Mapping[str, Any], metrics: Mapping[str, Any] | None, errored: bool
           ) -> tuple[dict[str, Any], float] | None:
    """A search trial's (setting, last val_acc), or None where it failed or reported no finite val_acc: what the
    choice of a label set's best counts (the searcher's and the driver's alike). A PBT trial's setting is the
    schedule it followed (its results' POLICY values), not the values it started or ended with."""
    value = (metrics or {}).get(METRIC)
    if errored or value is None or not math.isfinite(value):
        return None
    followed = {key.removeprefix(POLICY): _number_or_text(v) for key, v in metrics.items() if key.startswith(POLICY)}
    return setting_of(config) | followed, float(value)


def _number_or_text(value: Any) -> Any:
    """A policy's value: a number where it is one ("4.0"), else the schedule's compact text."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def choose(outcomes: Iterable[tuple[Mapping[str, Any], Mapping[str, Any] | None, bool]]) -> choice.Ranked | None:
    """The best setting of a search's outcomes (each trial's config, last result, whether it failed) by the rule of
    `study.choice`, counting what `scored` counts; None where no trial scored."""
    ranking = choice.rank(filter(None, (scored(*outcome) for outcome in outcomes)))
    return ranking[0] if ranking else None


class StudySearcher(Searcher):
    """Hands out the trials of every label set's `plans` (see the module), as many as asked for: bound the trials
    under way with Tune's ConcurrencyLimiter, which also lets Tune start them at once. `echo` says a warm start's line
    (a restored searcher has none)."""

    def __init__(self, plans: Sequence[Plan], echo: Echo | None = None) -> None:
        super().__init__()  # no metric for Tune to demand: final retrains report no val_acc (METRIC is the score)
        self.plans = {plan.key: plan for plan in plans}
        self.echo = echo
        self._studies: dict[str, optuna.Study] = {}
        for plan in plans:
            if plan.space is not None:
                study = optuna.create_study(direction="maximize", sampler=_sampler(plan, plan.seed))
                for point in plan.points:
                    study.enqueue_trial(point)
                self._studies[plan.key] = study
        self._live: dict[str, tuple[str, str, int | None, dict[str, Any]]] = {}  # id → key, stage, number, config
        self._given = {key: {SEARCH: 0, FINAL: 0} for key in self.plans}
        self._ended = {key: 0 for key in self.plans}  # search trials ended
        self._scores: dict[str, list[tuple[dict[str, Any], float]]] = {key: [] for key in self.plans}
        self._warmed: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:  # pickled with the Tuner and in Tune's checkpoints: no console
        return {**self.__dict__, "echo": None}

    def best(self, key: str) -> choice.Ranked | None:
        """Label set `key`'s best setting so far (None: no search trial has a score yet)."""
        ranking = choice.rank(self._scores[key])
        return ranking[0] if ranking else None

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        plan = self._retraining() or self._searching()
        if plan is None:
            return Searcher.FINISHED if all(self._handed_out(key) for key in self.plans) else None
        ls = plan.label_set
        config: dict[str, Any] = {"noise": ls.noise, "noise_rate": ls.rate}
        number = None
        if self._search_ended(plan.key):
            config |= {"split": "final", "cell": self.best(plan.key).setting, "seed": self._given[plan.key][FINAL]}
            stage = FINAL
        elif plan.space is None:
            config |= plan.cells[self._given[plan.key][SEARCH]] if plan.cells else {}
            stage = SEARCH
        else:
            trial = self._studies[plan.key].ask()
            values = plan.space(trial) or {}  # first: it draws the trial's params
            config |= trial.params if plan.population else {**trial.params, **values}
            number, stage = None if plan.population else trial.number, SEARCH
        self._given[plan.key][stage] += 1
        self._live[trial_id] = (plan.key, stage, number, config)
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self._live:
            return
        key, stage, number, config = self._live.pop(trial_id)
        if stage != SEARCH:
            return
        score = scored(config, result, error)
        if number is not None:
            state = TrialState.COMPLETE if score else TrialState.FAIL if error else TrialState.PRUNED
            self._studies[key].tell(number, score[1] if score else None, state=state)
        if score:
            self._scores[key].append(score)
        self._ended[key] += 1
        self._warm_neighbours(key)

    def save(self, checkpoint_path: str) -> None:
        """Write what the searcher has done (JSON: no code is loaded back): its counts, the trials under way and each
        Optuna study's trials, asked, told and enqueued."""
        state = {"live": self._live, "given": self._given, "ended": self._ended, "scores": self._scores,
                 "warmed": sorted(self._warmed),
                 "studies": {key: [_trial_record(t) for t in study.get_trials(deepcopy=False)]
                             for key, study in self._studies.items()}}
        Path(checkpoint_path).write_text(json.dumps(state))

    def restore(self, checkpoint_path: str) -> None:
        """Go on from what `save` wrote: each Optuna study holds its trials again, in order, under their numbers; its
        sampler is seeded anew (from its seed and the number of trials it holds), so it does not draw its first
        points again."""
        state = json.loads(Path(checkpoint_path).read_text())
        self._live = {trial_id: (key, stage, number, config) for trial_id, (key, stage, number, config)
                      in state["live"].items()}
        self._given, self._ended, self._warmed = state["given"], state["ended"], set(state["warmed"])
        self._scores = {key: [(setting, value) for setting, value in scores] for key, scores in state["scores"].items()}
        for key, records in state["studies"].items():
            seed = int(np.random.SeedSequence([self.plans[key].seed, len(records)]).generate_state(1)[0])
            study = optuna.create_study(direction="maximize", sampler=_sampler(self.plans[key], seed))
            for record in records:
                if record["state"] == TrialState.WAITING.name:
                    study.enqueue_trial(record["fixed"])
                    continue
                distributions = {k: json_to_distribution(v) for k, v in record["distributions"].items()}
                study.add_trial(create_trial(state=TrialState[record["state"]], params=record["params"],
                                             distributions=distributions, value=record["value"]))
            self._studies[key] = study

    def _search_ended(self, key: str) -> bool:
        return self._ended[key] == self.plans[key].trials

    def _handed_out(self, key: str) -> bool:
        """Whether every trial of label set `key` has been handed out (no retrains where its search scored none)."""
        plan, given = self.plans[key], self._given[key]
        if given[SEARCH] < plan.trials:
            return False
        return self._search_ended(key) and (given[FINAL] == plan.finals or self.best(key) is None)

    def _retraining(self) -> Plan | None:
        """The first label set whose search has ended with a best setting and whose retrains are not all handed out."""
        return next((plan for plan in self.plans.values() if self._search_ended(plan.key)
                     and self._given[plan.key][FINAL] < plan.finals and self.best(plan.key) is not None), None)

    def _searching(self) -> Plan | None:
        """The label set with search trials left to hand out and the fewest under way (then the fewest handed out)."""
        live = [key for key, stage, _, _ in self._live.values() if stage == SEARCH]
        left = [plan for plan in self.plans.values() if self._given[plan.key][SEARCH] < plan.trials]
        return min(left, key=lambda plan: (live.count(plan.key), self._given[plan.key][SEARCH]), default=None)

    def _warm_neighbours(self, key: str) -> None:
        """Enqueue label set `key`'s best so far into each search it warms, once it has finished enough trials."""
        best = self.best(key)
        if best is None or self._ended[key] < self.plans[key].warm_after:
            return
        for plan in self.plans.values():
            if plan.neighbour != key or plan.key in self._warmed or plan.key not in self._studies:
                continue
            self._warmed.add(plan.key)
            if not plan.warm_names or not set(plan.warm_names) <= best.setting.keys():
                continue
            point = search_spaces.as_point({k: best.setting[k] for k in plan.warm_names}, plan.parametrization)
            study = self._studies[plan.key]
            point = within(plan.space, [point], lambda line: None)[0]
            tried = [t.params for t in study.get_trials(deepcopy=False)]
            if self._given[plan.key][SEARCH] < plan.trials and point not in tried:
                study.enqueue_trial(point)
                if self.echo is not None:
                    self.echo(f"{plan.label_set.name()}: warm start from {self.plans[key].label_set.name()}'s best "
                              f"so far, {choice.fmt_setting(point)}")


def _sampler(plan: Plan, seed: int) -> optuna.samplers.BaseSampler:
    """A plan's Optuna sampler: TPE, seeded; a population's, uniform at random."""
    return RandomSampler(seed=seed) if plan.population else TPESampler(seed=seed)


def _trial_record(trial: FrozenTrial) -> dict[str, Any]:
    """An Optuna trial as JSON: its state, value, params and their distributions, and an enqueued trial's values."""
    return {"state": trial.state.name, "value": trial.value, "params": trial.params,
            "distributions": {k: distribution_to_json(d) for k, d in trial.distributions.items()},
            "fixed": trial.system_attrs.get("fixed_params")}


def within(space: search_spaces.Space, points: list[dict[str, Any]], echo: Echo) -> list[dict[str, Any]]:
    """`points` clipped into the ranges of `space`, each one clipped said in a line; one that clipping makes a repeat
    of another is left out."""
    trial = optuna.create_study().ask()
    space(trial)  # the trial now holds the space's distributions
    kept: list[dict[str, Any]] = []
    for point in points:
        clipped = {k: _clip(v, trial.distributions.get(k)) for k, v in point.items()}
        again = clipped in kept
        if clipped != point:
            fate = (f"left out (clipped, it is {_fmt(clipped)}, tried already)" if again
                    else f"tried as {_fmt(clipped)}")
            echo(f"warm start {_fmt(point)} lies outside the search ranges: {fate}")
        if not again:
            kept.append(clipped)
    return kept


def _clip(value: Any, distribution: BaseDistribution | None) -> Any:
    """`value` clipped into a float or int `distribution`'s range (any other, or none: unchanged)."""
    if isinstance(distribution, (FloatDistribution, IntDistribution)):
        return min(max(value, distribution.low), distribution.high)
    return value


def _fmt(setting: dict[str, Any]) -> str:
    return choice.fmt_setting(setting) or "(defaults)"
