"""The study config: typed frozen dataclasses read from YAML with `--set` overrides, validated before any Ray work.

    >>> from study.config import load_study_config
    >>> config = load_study_config(None, ["search.num_samples=4", "noise_rates=[0.2, 0.4]"])
    >>> config.search.num_samples, config.noise_rates
    (4, (0.2, 0.4))

Every mistake is a `trainers.ConfigError` naming the dotted key (e.g. `search.num_samples`), the value and what
is allowed, in one line. Loading imports no torch, Ray or MLflow (torch only to see a GPU that the config asks for)
and writes nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

from search_spaces import GRIDS, PARAMETRIZATIONS, default_ranges, grid_method, make_space, paper_grid
from study._yaml import RATE_TOLERANCE, apply_override, as_rate, merge, one_line, read_yaml
from study.label_sets import LabelSet, label_sets, noise_kinds
from trainers.catalog import HUMAN_NOISE_KINDS, NOISE_KINDS
from trainers.config import TrainConfig
from trainers.errors import ConfigError
from trainers.methods import accepted_names, canonical_params, list_losses, loss_params

__all__ = [
    "DEFAULT_TRAIN",
    "GRIDS",
    "PARAMETRIZATIONS",
    "AshaConfig",
    "PbtConfig",
    "FinalConfig",
    "ResourcesConfig",
    "SearchConfig",
    "StudyConfig",
    "load_study_config",
    "study_config_from_dict",
]

SEARCH_MODES = ("optuna", "grid", "pbt")
DEFAULT_RATES = (0.0, 0.2, 0.4, 0.6)
DEFAULT_TRAIN = TrainConfig(dataset="digits", model="mlp", epochs=20, lr=0.01, batch_size=128)

# TrainConfig fields the study sets per trial: a `train:` mapping may not set them (why, for each).
STUDY_SET = {
    "method": "set by the study: use the top-level key 'method'",
    "method_params": "set by the study: use the top-level key 'method_params'",
    "noise": "set by the study: use the top-level key 'noise'",
    "noise_rate": "set by the study: use the top-level key 'noise_rates'",
    "split": "set by the study: search trials train on 80% and validate on 20%, final retrains use everything",
    "seed": "set by the study per trial: see search.seed and final.n_seeds",
}
_TRAIN_DEFAULTS = TrainConfig()
_NAME = re.compile(r"[A-Za-z0-9._-]+")
# Other spellings of a key that difflib would not match: the did-you-mean of an unknown key.
_ALIASES = {"learning_rate": "lr", "num_epochs": "epochs", "n_epochs": "epochs", "wd": "weight_decay",
            "bs": "batch_size", "trials": "num_samples", "n_trials": "num_samples", "seeds": "n_seeds"}


@dataclass(frozen=True)
class AshaConfig:
    """ASHA early stopping of search trials (Ray Tune's ASHAScheduler); lengths in evaluations."""

    grace_period: int = 2  # evaluations before a trial can be stopped
    reduction_factor: float = 2.0  # keep the best 1/reduction_factor at each rung

    def __post_init__(self) -> None:
        _check("grace_period", self.grace_period, _is_int(self.grace_period) and self.grace_period >= 1,
               "an integer ≥ 1, in evaluations")
        factor = self.reduction_factor
        _check("reduction_factor", factor, _is_number(factor) and factor > 1, "a number > 1")
        object.__setattr__(self, "reduction_factor", float(self.reduction_factor))


@dataclass(frozen=True)
class PbtConfig:
    """Population Based Training of each label set's population (Ray Tune's PopulationBasedTraining): every
    `perturbation_interval` evaluations, a trial in the lowest `quantile_fraction` takes the weights and values of one
    in the highest, its values then perturbed (× 0.8 or × 1.2, or with `resample_probability` drawn anew)."""

    perturbation_interval: int = 2  # evaluations between two rankings of a trial
    quantile_fraction: float = 0.25  # share of the population that is copied (and that is replaced)
    resample_probability: float = 0.25  # chance that a copied value is drawn from its range instead of perturbed

    def __post_init__(self) -> None:
        interval = self.perturbation_interval
        _check("perturbation_interval", interval, _is_int(interval) and interval >= 1, "an integer ≥ 1, in evaluations")
        fraction, resample = self.quantile_fraction, self.resample_probability
        _check("quantile_fraction", fraction, _is_number(fraction) and 0 < fraction <= 0.5, "a number in (0, 0.5]")
        _check("resample_probability", resample, _is_number(resample) and 0 <= resample <= 1, "a number in [0, 1]")
        object.__setattr__(self, "quantile_fraction", float(fraction))
        object.__setattr__(self, "resample_probability", float(resample))


@dataclass(frozen=True)
class SearchConfig:
    """How each noise rate is searched: an Optuna search over `ranges`, or one of the papers' grids."""

    mode: Literal["optuna", "grid", "pbt"] = "optuna"  # pbt: a population of num_samples per noise rate
    # mode grid: one of GRIDS, or {param: [values], ...} of the method's parameters (every combination, the first
    # key outermost; DM's: {lam: [...], beta: [...]}); required then, refused otherwise
    grid: str | Mapping[str, Sequence[Any]] | None = None
    repeats: int = 1  # mode grid: runs of each cell, with seeds seed … seed + repeats − 1
    # psi_rho: DM's (mode, spread); psi_schedule: a linear schedule of the mode, psi_from → psi_to, and the spread rho;
    # method dm only
    parametrization: Literal["lam_beta", "psi_rho", "psi_schedule"] = "lam_beta"
    # "default" or a noise rate → {param: (low, high)}; rates are stored as floats
    ranges: Mapping[str | float, Mapping[str, tuple[float, float]]] = field(default_factory=dict)
    tune_lr: bool = False
    tune_weight_decay: bool = False
    num_samples: int = 6  # Optuna trials per noise rate (mode pbt: the population's size)
    max_concurrent: int | None = None  # trials under way at once, of every label set; None: every trial slot
    seed: int = 0  # the sampler's seed
    warm_start: bool = True  # first try the papers' best, and the best so far of the label set before
    asha: AshaConfig | None = None  # None: every trial runs to the end
    pbt: PbtConfig | None = None  # mode pbt's settings (None there: the defaults); null with the other modes

    def __post_init__(self) -> None:
        _one_of("mode", self.mode, SEARCH_MODES)
        if self.mode == "grid":
            object.__setattr__(self, "grid", _grid(self.grid))
        else:
            _check("grid", self.grid, self.grid is None, "only with mode grid; null with mode optuna")
        _check("repeats", self.repeats, _is_int(self.repeats) and self.repeats >= 1, "an integer ≥ 1")
        _check("repeats", self.repeats, self.repeats == 1 or self.mode == "grid",
               "1 with mode optuna (repeated seeds per cell are for mode grid)")
        _one_of("parametrization", self.parametrization, PARAMETRIZATIONS)
        object.__setattr__(self, "ranges", _ranges(self.ranges))
        for name in ("tune_lr", "tune_weight_decay", "warm_start"):
            _check(name, getattr(self, name), isinstance(getattr(self, name), bool), "true or false")
        for name, low in (("num_samples", 1), ("max_concurrent", 1), ("seed", 0)):
            value = getattr(self, name)
            if name != "max_concurrent" or value is not None:
                _check(name, value, _is_int(value) and value >= low,
                       f"an integer ≥ {low}" + (", or null (every trial slot)" if name == "max_concurrent" else ""))
        _check("asha", self.asha, self.asha is None or isinstance(self.asha, AshaConfig),
               "null, or a mapping of grace_period and reduction_factor")
        if self.mode == "pbt":
            self._check_pbt()
        else:
            given = dataclasses.asdict(self.pbt) if isinstance(self.pbt, PbtConfig) else self.pbt
            _check("pbt", given, self.pbt is None, "only with mode pbt; null with mode " + self.mode)

    def _check_pbt(self) -> None:
        """Mode pbt: a population of at least 2, no ASHA, only the method's parameters perturbed (a copied optimiser
        keeps its own learning rate), and a parametrization of values, not of schedule ends."""
        object.__setattr__(self, "pbt", PbtConfig() if self.pbt is None else self.pbt)
        _check("pbt", self.pbt, isinstance(self.pbt, PbtConfig),
               "null, or a mapping of perturbation_interval, quantile_fraction and resample_probability")
        _check("num_samples", self.num_samples, self.num_samples >= 2, "an integer ≥ 2 with mode pbt (a population)")
        _check("asha", self.asha, self.asha is None, "null with mode pbt: PBT replaces the worst trials itself")
        for name in ("tune_lr", "tune_weight_decay"):
            _check(name, True, not getattr(self, name), "false with mode pbt: PBT perturbs the method's parameters")
        _check("parametrization", self.parametrization, self.parametrization != "psi_schedule",
               "lam_beta or psi_rho with mode pbt (PBT makes its own schedule of psi)")

    def grid_cells(self) -> list[dict[str, Any]]:
        """Mode grid: the cells (a paper's in its order; of a mapping, every combination, the first key outermost:
        DM's λ-major); [] with mode optuna."""
        if self.grid is None:
            return []
        if isinstance(self.grid, str):
            return paper_grid(self.grid)
        return [dict(zip(self.grid, values)) for values in itertools.product(*self.grid.values())]

    def ranges_for(self, noise_rate: float | None) -> dict[str, tuple[float, float]]:
        """The ranges for `noise_rate`: "default" updated by the rate's own entry (rates match within 1e-9); None (a
        human label set, whose rate is no synthetic one): "default" alone."""
        merged = dict(self.ranges.get("default", {}))
        for key, params in self.ranges.items():
            if key != "default" and noise_rate is not None and abs(key - noise_rate) <= RATE_TOLERANCE:
                merged.update(params)
        return merged


@dataclass(frozen=True)
class FinalConfig:
    """The final retrains of each noise rate's best setting on the whole training set."""

    n_seeds: int = 3  # retrains per noise rate (seeds 0 … n_seeds − 1); 0: none

    def __post_init__(self) -> None:
        _check("n_seeds", self.n_seeds, _is_int(self.n_seeds) and self.n_seeds >= 0, "an integer ≥ 0")


@dataclass(frozen=True)
class ResourcesConfig:
    """What Ray reserves for each trial; fractions of a GPU share one GPU among trials."""

    cpus_per_trial: float = 1.0  # > 0
    gpus_per_trial: float = 0.0  # in [0, 1] or a whole number

    def __post_init__(self) -> None:
        cpus, gpus = self.cpus_per_trial, self.gpus_per_trial
        _check("cpus_per_trial", cpus, _is_number(cpus) and cpus > 0, "a number > 0")
        _check("gpus_per_trial", gpus, _is_number(gpus) and gpus >= 0 and (gpus <= 1 or float(gpus).is_integer()),
               "a number in [0, 1] or a whole number")
        object.__setattr__(self, "cpus_per_trial", float(cpus))
        object.__setattr__(self, "gpus_per_trial", float(gpus))


@dataclass(frozen=True)
class StudyConfig:
    """One study: a method searched on each label set (a noise kind at a rate), then retrained; every field a YAML
    key."""

    name: str = "digits-dm"  # MLflow experiment and storage folder name
    method: str = "dm"  # one of trainers.list_losses()
    method_params: Mapping[str, Any] | None = None  # fixed, not searched; the rest keep the method's defaults
    # one of trainers.NOISE_KINDS or trainers.HUMAN_NOISE_KINDS (CIFAR-N: no rates), or a list of them (a tuple here;
    # a list of one is that kind): each synthetic kind at each of noise_rates, each human kind once
    noise: str | tuple[str, ...] = "symmetric"
    noise_rates: tuple[float, ...] | None = None  # one search (and final retrains) per rate of each synthetic kind;
    # None: DEFAULT_RATES, or where every kind is human [0] (each one label set, whose rate is the file's)
    train: TrainConfig = field(default_factory=lambda: DEFAULT_TRAIN)  # the study sets STUDY_SET's fields per trial
    search: SearchConfig = field(default_factory=SearchConfig)
    final: FinalConfig = field(default_factory=FinalConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    checkpoint_every_s: float = 10.0  # a trial saves its state at its first evaluation this long after its last save,
    # and at its end; 0: at every evaluation
    tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db
    storage: str | None = None  # None: <cwd>/ray_results; else a folder or a URI

    def __post_init__(self) -> None:
        _check("name", self.name, isinstance(self.name, str) and bool(_NAME.fullmatch(self.name))
               and self.name.strip(".") != "", "letters, digits, '.', '_' and '-' only, e.g. digits-dm")
        _one_of("method", self.method, tuple(list_losses()))
        params = {} if self.method_params is None else self.method_params
        object.__setattr__(self, "method_params", _method_params(self.method, params))
        object.__setattr__(self, "noise", _noise(self.noise))
        object.__setattr__(self, "noise_rates", _noise_rates(self.noise_rates, noise_kinds(self.noise)))
        for name, kind in (("train", TrainConfig), ("search", SearchConfig), ("final", FinalConfig),
                           ("resources", ResourcesConfig)):
            _check(name, getattr(self, name), isinstance(getattr(self, name), kind), f"a {kind.__name__}")
        for name, why in STUDY_SET.items():
            value = getattr(self.train, name)
            _check(f"train.{name}", value, value == getattr(_TRAIN_DEFAULTS, name), why)
        _check("checkpoint_every_s", self.checkpoint_every_s,
               _is_number(self.checkpoint_every_s) and self.checkpoint_every_s >= 0, "a number of seconds ≥ 0")
        object.__setattr__(self, "checkpoint_every_s", float(self.checkpoint_every_s))
        for name in ("tracking_uri", "storage"):
            value = getattr(self, name)
            _check(name, value, value is None or isinstance(value, str) and value != "", "a non-empty string or null")
        if self.search.mode == "grid":
            _check_grid(self.method, self.method_params, self.train, self.search)
        _check("search.parametrization", self.search.parametrization,
               self.search.parametrization == "lam_beta" or self.method == "dm",
               f"{self.search.parametrization} reparametrises DM's lam and beta; method {self.method!r} needs "
               "lam_beta")
        _check_search_space(self.method, self.train, self.search)
        _check("search.mode", "pbt", self.search.mode != "pbt" or bool(default_ranges(self.method)),
               f"optuna or grid for {self.method}: PBT needs parameters of the method to perturb")
        _check("train.device", self.train.device, self.train.device != "cuda" or self.resources.gpus_per_trial > 0,
               "cuda needs resources.gpus_per_trial > 0: a trial that asks Ray for no GPU sees none")
        for label_set in self.label_sets:  # the data set, noise and method together, as each trial gets them
            try:
                self.train.replace(method=self.method, method_params=self.method_params, noise=label_set.noise,
                                   noise_rate=label_set.rate)
            except ConfigError as error:
                where = {"noise": "noise", "noise_rate": "noise_rates"}.get(error.field, f"train.{error.field}")
                raise ConfigError(where, error.value, error.allowed) from None

    @property
    def label_sets(self) -> tuple[LabelSet, ...]:
        """The label sets the study searches and retrains, in order."""
        return label_sets(self.noise, self.noise_rates)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested values (lists, not tuples; rate keys as strings) that `study_config_from_dict` reads back."""
        search = dataclasses.asdict(self.search)
        search["ranges"] = {_rate_name(key): dict(params) for key, params in self.search.ranges.items()}
        return _plain({
            "name": self.name,
            "method": self.method,
            "method_params": self.method_params,
            "noise": self.noise,
            "noise_rates": self.noise_rates,
            "train": {k: v for k, v in self.train.to_dict().items() if k not in STUDY_SET},
            "search": search,
            "final": dataclasses.asdict(self.final),
            "resources": dataclasses.asdict(self.resources),
            "checkpoint_every_s": self.checkpoint_every_s,
            "tracking_uri": self.tracking_uri,
            "storage": self.storage,
        })

    def config_hash(self) -> str:
        """12 hex digits naming these settings: sha256 of `to_dict()` as canonical JSON (search.pbt left out where it
        is null, so that a study of the modes before PBT keeps its name)."""
        data = self.to_dict()
        if data["search"].get("pbt") is None:
            data["search"].pop("pbt", None)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_study_config(path: str | Path | None = None, overrides: Sequence[str] = (), *,
                      allow_missing_gpu: bool = False) -> StudyConfig:
    """The study config of YAML file `path` (None: the embedded default) with `--set` `overrides` applied after it.

    The file's keys override the defaults, nested mappings key by key; each override "dotted.key=value" replaces
    one value, parsed as YAML. `allow_missing_gpu`: accept gpus_per_trial > 0 on a machine without a GPU (for a
    config sent to a cluster).
    """
    data = _defaults() if path is None else merge(_defaults(), read_yaml(path))
    for text in [overrides] if isinstance(overrides, str) else overrides:
        apply_override(data, text)
    return study_config_from_dict(data, allow_missing_gpu=allow_missing_gpu)


def study_config_from_dict(data: Mapping[str, Any], *, allow_missing_gpu: bool = False) -> StudyConfig:
    """The study config of `data` (e.g. `to_dict()`'s output, or part of it: missing keys keep their defaults)."""
    if not isinstance(data, Mapping):
        raise ConfigError("config", data, "a mapping of study settings")
    sections: dict[str, Callable[[Any, str], Any]] = {
        "train": lambda value, key: _section(TrainConfig, value, key, "training settings", refused=STUDY_SET),
        "search": lambda value, key: _section(SearchConfig, value, key, "search settings",
                                             {"asha": _asha, "pbt": _pbt}),
        "final": lambda value, key: _section(FinalConfig, value, key, "final-retrain settings"),
        "resources": lambda value, key: _section(ResourcesConfig, value, key, "per-trial resources"),
    }
    config = _section(StudyConfig, merge(_defaults(), data), "", "study settings", sections)
    gpus = config.resources.gpus_per_trial
    if gpus > 0 and not allow_missing_gpu and not _cuda_available():
        raise ConfigError("resources.gpus_per_trial", gpus, "no GPU is visible here (torch.cuda.is_available() is "
                          "False): use 0, or send the study to a cluster (--address)")
    return config


def _cuda_available() -> bool:
    import torch  # here: only a config that asks for a GPU needs torch to check

    return torch.cuda.is_available()


# --- building sections from mappings ---------------------------------------------------------------------------


def _section(cls: type, data: Any, prefix: str, what: str,
             nested: Mapping[str, Callable[[Any, str], Any]] | None = None,
             refused: Mapping[str, str] | None = None) -> Any:
    """`cls(**data)` once every key is known; the errors of `cls`'s own checks get `prefix` on their field."""
    nested, refused = nested or {}, refused or {}
    if not isinstance(data, Mapping):
        raise ConfigError(prefix, data, f"a mapping of {what}")
    allowed = [f.name for f in dataclasses.fields(cls) if f.name not in refused]
    kwargs = {}
    for key, value in data.items():
        dotted = _join(prefix, key)
        if key in refused:
            raise ConfigError(dotted, value, refused[key])
        if key not in allowed:
            alias = _ALIASES.get(key)
            close = [alias] if alias in allowed else difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(allowed)
            raise ConfigError(dotted, value, "unknown key; " + hint)
        kwargs[key] = nested[key](value, dotted) if key in nested else value
    try:
        return cls(**kwargs)
    except ConfigError as error:
        raise ConfigError(_join(prefix, error.field), error.value, error.allowed) from None
    except (TypeError, ValueError) as error:  # a guard: the checks above should leave none
        raise ConfigError(prefix or "config", dict(data), one_line(str(error))) from None


def _asha(value: Any, key: str) -> AshaConfig | None:
    if value is None:
        return None
    return _section(AshaConfig, value, key, "ASHA settings (grace_period, reduction_factor), or null")


def _pbt(value: Any, key: str) -> PbtConfig | None:
    if value is None:
        return None
    return _section(PbtConfig, value, key, "PBT settings (perturbation_interval, quantile_fraction, "
                    "resample_probability), or null")


def _method_params(method: str, params: Any) -> dict[str, Any]:
    """`params` checked against the method's own: unknown names, then their values (trainers.methods)."""
    _check("method_params", params, isinstance(params, Mapping), f"a mapping of {method}'s parameters")
    allowed = accepted_names(method)
    for key, value in params.items():
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "its parameters: " + (", ".join(allowed) or "none")
            raise ConfigError(f"method_params.{key}", value, f"not a parameter of {method}; {hint}")
    try:
        return canonical_params(method, params)  # a schedule as its canonical mapping; numbers as given
    except ConfigError as error:
        name = error.field.removeprefix(f"{method}.")
        raise ConfigError(f"method_params.{name}", error.value, error.allowed) from None
    except (TypeError, ValueError) as error:
        raise ConfigError("method_params", dict(params), one_line(str(error))) from None


def _grid(grid: Any) -> str | dict[str, list[Any]]:
    """A paper grid's name; {"lam": [...], "beta": [...]} of distinct finite numbers ≥ 0; or another mapping of names to
    non-empty lists of distinct numbers, booleans or strings (the method's parameters: see `_check_grid`)."""
    allowed = (f"mode grid needs one of: {', '.join(GRIDS)}, or {{param: [values], ...}} such as "
               "{lam: [...], beta: [...]}")
    if isinstance(grid, str):
        _check("grid", grid, grid in GRIDS, allowed)
        return grid
    _check("grid", grid, isinstance(grid, Mapping) and len(grid) > 0 and all(isinstance(k, str) for k in grid), allowed)
    if set(grid) != {"lam", "beta"}:
        for name, values in grid.items():
            ok = (isinstance(values, (list, tuple)) and len(values) > 0 and len(set(map(repr, values))) == len(values)
                  and all(isinstance(v, (bool, str)) or _is_number(v) for v in values))
            _check(f"grid.{name}", values, ok, "a non-empty list of distinct numbers, true/false or names")
        return {name: list(values) for name, values in grid.items()}
    out: dict[str, list[float]] = {}
    for name in ("lam", "beta"):
        values = grid[name]
        ok = (isinstance(values, (list, tuple)) and len(values) > 0 and all(_is_number(v) and v >= 0 for v in values)
              and len(set(values)) == len(values))
        _check(f"grid.{name}", values, ok, "a non-empty list of distinct numbers ≥ 0")
        out[name] = [float(v) for v in values]
    return out


def _check_grid(method: str, method_params: Mapping[str, Any], train: TrainConfig, search: SearchConfig) -> None:
    """A grid fits `method`: a paper's grid is of its settings; a mapping names its parameters or training settings
    (DM's: lam and beta, which the report's λ × β tables read), and every cell is a setting the trainer accepts."""
    if isinstance(search.grid, str):
        owner = grid_method(search.grid)
        _check("search.mode", "grid", owner == method,
               f"the grid {search.grid} holds {owner}'s settings; method {method!r} needs mode optuna or its own grid")
        return
    _check("search.grid", dict(search.grid), method != "dm" or set(search.grid) == {"lam", "beta"},
           "for dm: {lam: [...], beta: [...]}, every λ with every β")
    params = list(loss_params(method))
    fields = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in STUDY_SET]
    for name in search.grid:
        _check(f"search.grid.{name}", search.grid[name], name in params or name in fields,
               f"neither a parameter of {method} ({', '.join(params) or 'none'}) nor a training setting")
    for cell in search.grid_cells():
        try:
            own = {k: v for k, v in cell.items() if k in params}
            train.replace(method=method, method_params={**method_params, **own},
                          **{k: v for k, v in cell.items() if k not in own})
        except ConfigError as error:
            name = error.field.removeprefix(f"{method}.")
            raise ConfigError(f"search.grid.{name}", error.value, error.allowed) from None


def _check_search_space(method: str, train: TrainConfig, search: SearchConfig) -> None:
    """Mode optuna: each entry of `search.ranges`, merged as its label sets get it, makes a space that `make_space`
    accepts for `method` (it names only what is searched, log scales start above 0, integers stay whole, the ends are
    settings the trainer takes), checked without Optuna. Mode grid: no ranges, nothing tuned (the cells fix it)."""
    if search.mode == "grid":
        _check("search.ranges", _plain(search.ranges), not search.ranges,
               "{} with mode grid: its cells are the settings tried (mode optuna searches ranges)")
        for setting in ("lr", "weight_decay"):
            _check(f"search.tune_{setting}", True, not getattr(search, f"tune_{setting}"),
                   f"false with mode grid: put {setting} in the grid, e.g. {{{setting}: [...]}}")
        return
    for key in search.ranges:
        try:
            make_space(method, ranges=search.ranges_for(None if key == "default" else key),
                       parametrization=search.parametrization, tune_lr=search.tune_lr,
                       tune_weight_decay=search.tune_weight_decay, batch_size=train.batch_size)
        except ConfigError as error:
            name = error.field.removeprefix("ranges.")
            entry = key if name in search.ranges[key] else "default"  # a rate's entry names its own, else default's
            value = list(error.value) if isinstance(error.value, tuple) else error.value
            raise ConfigError(f"search.ranges.{_rate_name(entry)}.{name}", value, error.allowed) from None


def _noise(noise: Any) -> str | tuple[str, ...]:
    """One noise kind, or a tuple of several (each once); a list of one is that kind."""
    kinds = NOISE_KINDS + HUMAN_NOISE_KINDS
    if isinstance(noise, str):
        _one_of("noise", noise, kinds)
        return noise
    _check("noise", noise, isinstance(noise, (list, tuple)) and len(noise) > 0,
           "a noise kind or a list of them, e.g. [cifar10n-aggre, cifar10n-worst]")
    seen: list[str] = []
    for kind in noise:
        _one_of("noise", kind, kinds)
        _check("noise", kind, kind not in seen, "each noise kind once: given twice")
        seen.append(kind)
    return seen[0] if len(seen) == 1 else tuple(seen)


def _noise_rates(rates: Any, kinds: tuple[str, ...]) -> tuple[float, ...]:
    if all(kind in HUMAN_NOISE_KINDS for kind in kinds):
        what = (f"{kinds[0]} is one label set, its rate the file's" if len(kinds) == 1
                else f"{', '.join(kinds)} are one label set each, its rate its file's")
        _check("noise_rates", rates, rates is None or _plain(rates) in ([0], [0.0]), f"none: omit it ({what})")
        return (0.0,)
    if rates is None:
        return DEFAULT_RATES
    _check("noise_rates", rates, isinstance(rates, (list, tuple)), "a list of noise rates in [0, 1), e.g. [0.2, 0.4]")
    _check("noise_rates", rates, len(rates) > 0, "at least one noise rate in [0, 1)")
    seen: list[float] = []
    for rate in rates:
        _check("noise_rates", rate, _is_number(rate) and 0 <= rate < 1, "each a number in [0, 1)")
        _check("noise_rates", rate, all(abs(rate - s) > RATE_TOLERANCE for s in seen), "each rate once: given twice")
        seen.append(float(rate))
    return tuple(seen)


def _ranges(ranges: Any) -> dict[str | float, dict[str, tuple[float, float]]]:
    """{"default" or a rate (float): {param: (low, high)}}, from keys that may be rates as strings."""
    _check("ranges", ranges, isinstance(ranges, Mapping),
           "a mapping of 'default' or a noise rate to {param: [low, high]}")
    out: dict[str | float, dict[str, tuple[float, float]]] = {}
    for key, params in ranges.items():
        where = f"ranges.{key}"
        rate = "default" if key == "default" else as_rate(key)
        _check(where, key, rate is not None and (rate == "default" or 0 <= rate < 1),
               "'default' or a noise rate in [0, 1), e.g. 0.4")
        _check(where, key, rate == "default" or all(k == "default" or abs(k - rate) > RATE_TOLERANCE for k in out),
               "each noise rate once: given twice")
        _check(where, params, isinstance(params, Mapping), "a mapping of parameter: [low, high]")
        bounds: dict[str, tuple[float, float]] = {}
        for name, pair in params.items():
            ok = (isinstance(name, str) and isinstance(pair, (list, tuple)) and len(pair) == 2
                  and all(_is_number(x) for x in pair) and pair[0] <= pair[1])
            _check(f"{where}.{name}", pair, ok, "[low, high]: two finite numbers with low ≤ high")
            bounds[name] = (float(pair[0]), float(pair[1]))
        out[rate] = bounds
    return out


def _defaults() -> dict[str, Any]:
    """The embedded default, less its method_params and noise_rates: those follow the method and the noise kind a file
    or --set chooses."""
    defaults = StudyConfig().to_dict()
    del defaults["method_params"], defaults["noise_rates"]
    return defaults


# --- small helpers -----------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _rate_name(key: str | float) -> str:
    return key if key == "default" else repr(float(key))


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _one_of(name: str, value: object, allowed: tuple[str, ...]) -> None:
    _check(name, value, isinstance(value, str) and value in allowed, "one of: " + ", ".join(allowed))


def _check(name: str, value: object, ok: bool, allowed: str) -> None:
    if not ok:
        raise ConfigError(name, value, allowed)
