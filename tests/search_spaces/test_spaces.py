"""make_space: every method's searched names and ranges, real Optuna sampling, (ψ, ρ), warm starts, bad input."""

import math
import pickle
import statistics

import optuna
import pytest
from optuna.trial import FixedTrial

from search_spaces import PARAMETRIZATIONS, as_point, default_ranges, make_space, paper_best, to_psi_rho
from trainers import ConfigError, TrainConfig, list_losses, make_loss
from trainers.methods import params_at

optuna.logging.set_verbosity(optuna.logging.WARNING)

BETA = (0.5, 12.0, True)
# The specification: method → searched name → (low, high, log scale); integer ranges have int ends.
SPEC = {
    "dm": {"lam": (0.0, 2.0, False), "beta": BETA},
    "dm-normal": {"psi": (0.0, 1.0, False), "beta": BETA},
    "dm-exp": {"beta": BETA},
    "dm-beta": {"alpha": (1.0, 4.0, False), "eta": (1.0, 4.0, False)},
    "gce": {"q": (0.1, 1.0, False)},
    "gce-dn": {"q": (0.1, 1.0, False)},
    "ls": {"epsilon": (0.0, 0.5, False)},
    "boot-soft": {"beta": (0.5, 1.0, False)},
    "boot-hard": {"beta": (0.5, 1.0, False)},
    "sce": {"alpha": (0.01, 1.0, True), "beta": (0.1, 2.0, False)},
    "gradsim": {"a": (1.0, 16.0, True), "k": (2, 128, True)},
    "l2r": {"meta_lr": (0.01, 1.0, True), "probe_per_class": (1, 20, True)},
    "ieg": {"p": (0.5, 20.0, True), "k": (1.0, 50.0, True), "meta_lr": (0.01, 1.0, True),
            "probe_per_class": (1, 20, True)},
    **{name: {} for name in ("cce", "mae", "mse", "cce-dn", "mae-dn", "mse-dn", "gradsim-random", "gradsim-oracle")},
}
PSI_RHO = {"psi": (0.0, 2 / 3, False), "rho": (0.5, 8.0, True)}
TRAINING = {"lr": (1e-3, 0.1, True), "weight_decay": (1e-5, 1e-3, True)}
TRAIN_FIELDS = {"lr", "weight_decay", "probe_per_class"}  # what the trainer reads from TrainConfig, not the method
# (method, parametrization, its Optuna names and ranges)
SPACES = [(m, "lam_beta", SPEC[m]) for m in sorted(SPEC)] + [("dm", "psi_rho", PSI_RHO)]


def midpoint(ranges: dict) -> dict:
    return {name: (low + high) // 2 if isinstance(low, int) else (low + high) / 2
            for name, (low, high, _) in ranges.items()}


def test_every_method_has_a_space() -> None:
    assert sorted(SPEC) == list_losses()
    assert PARAMETRIZATIONS == ("lam_beta", "psi_rho", "psi_schedule")


@pytest.mark.parametrize(("method", "parametrization", "ranges"), SPACES)
def test_default_ranges(method: str, parametrization: str, ranges: dict) -> None:
    expected = {name: (low, high) for name, (low, high, _) in ranges.items()}
    assert default_ranges(method, parametrization) == expected


@pytest.mark.parametrize("method", sorted(SPEC))
@pytest.mark.parametrize("tune", [False, True])
def test_space_returns_the_trainer_names(method: str, tune: bool) -> None:
    training = TRAINING if tune else {}
    space = make_space(method, tune_lr=tune, tune_weight_decay=tune)
    returned = space(FixedTrial(midpoint({**SPEC[method], **training})))
    if not SPEC[method] and not tune:
        assert returned is None
        return
    assert returned.keys() == SPEC[method].keys() | training.keys()
    make_loss(method, **{k: v for k, v in returned.items() if k not in TRAIN_FIELDS})
    TrainConfig(method=method, method_params={k: v for k, v in returned.items() if k not in TRAIN_FIELDS},
                **{k: v for k, v in returned.items() if k in TRAIN_FIELDS})


def test_nothing_to_search_suggests_nothing() -> None:
    trial = optuna.create_study().ask()
    assert make_space("cce")(trial) is None and trial.params == {}


def test_psi_rho_space_returns_lam_beta() -> None:
    space = make_space("dm", parametrization="psi_rho", tune_lr=True)
    returned = space(FixedTrial({"psi": 0.5, "rho": 4.0, "lr": 0.01}))
    assert returned == {"lam": 1.0, "beta": 16.0, "lr": 0.01}
    make_loss("dm", lam=returned["lam"], beta=returned["beta"])


def draws(space, n: int = 200) -> list[tuple[dict, dict]]:
    """(Optuna's params, the space's return) for n asks of a seeded random search."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trials = [study.ask() for _ in range(n)]
    returned = [space(trial) for trial in trials]
    return [(trial.params, r) for trial, r in zip(trials, returned)]


@pytest.mark.parametrize(("method", "parametrization", "ranges"), [s for s in SPACES if s[2]])
def test_random_draws_stay_in_range_on_their_scale(method: str, parametrization: str, ranges: dict) -> None:
    space = make_space(method, parametrization=parametrization, tune_lr=True, tune_weight_decay=True)
    samples = [params for params, _ in draws(space)]
    for name, (low, high, log) in {**ranges, **TRAINING}.items():
        values = [params[name] for params in samples]
        assert low <= min(values) and max(values) <= high
        assert all(isinstance(v, int) for v in values) == isinstance(low, int)
        median, middle = statistics.median(values), (low + high) / 2
        if log:  # near the geometric midpoint, far below the arithmetic one
            assert median < middle and abs(math.log(median / math.sqrt(low * high))) < 0.25 * math.log(high / low)
        else:
            assert abs(median - middle) < 0.15 * (high - low)


def test_psi_rho_draws_map_back() -> None:
    for params, returned in draws(make_space("dm", parametrization="psi_rho"), 50):
        assert returned.keys() == {"lam", "beta"}
        assert to_psi_rho(returned["lam"], returned["beta"]) == pytest.approx((params["psi"], params["rho"]), rel=1e-9)


def test_ranges_override_the_defaults() -> None:
    space = make_space("dm", ranges={"lam": [0.5, 1.0], "beta": (4, 16)})  # lists too, as YAML gives them
    for params, returned in draws(space, 50):
        assert params == returned and 0.5 <= params["lam"] <= 1.0 and 4 <= params["beta"] <= 16
    trial = optuna.create_study().ask()
    make_space("sce", ranges={"alpha": (0.1, 0.1)}, tune_lr=True)(trial)
    assert trial.distributions["alpha"] == optuna.distributions.FloatDistribution(0.1, 0.1, log=True)
    assert trial.params["alpha"] == 0.1


def test_probe_size_is_an_integer_training_setting() -> None:
    trial = optuna.create_study().ask()
    returned = make_space("ieg", ranges={"probe_per_class": [5.0, 10.0]})(trial)
    assert trial.distributions["probe_per_class"] == optuna.distributions.IntDistribution(5, 10, log=True)
    assert isinstance(returned["probe_per_class"], int) and 5 <= returned["probe_per_class"] <= 10


def test_gradsim_k_is_an_integer_up_to_the_batch_size() -> None:
    assert default_ranges("gradsim", batch_size=32) == {"a": (1.0, 16.0), "k": (2, 32)}
    assert default_ranges("dm", batch_size=32) == default_ranges("dm")  # only k follows the batch
    trial = optuna.create_study().ask()
    returned = make_space("gradsim", batch_size=32)(trial)
    assert trial.distributions["k"] == optuna.distributions.IntDistribution(2, 32, log=True)
    assert isinstance(returned["k"], int) and 2 <= returned["k"] <= 32
    make_loss("gradsim", **returned)
    trial = optuna.create_study().ask()
    make_space("gradsim", ranges={"k": [4.0, 16.0]}, batch_size=32)(trial)  # whole floats, as YAML ranges give them
    assert trial.distributions["k"] == optuna.distributions.IntDistribution(4, 16, log=True)
    assert default_ranges("gradsim", batch_size=1)["k"] == (2, 2)


@pytest.mark.parametrize(("dataset", "rate"), [("cifar10", r) for r in (0, 0.2, 0.4, 0.6, 0.8)]
                         + [("cifar100", r) for r in (0.2, 0.4, 0.6)])
@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_warm_start_from_paper_best(dataset: str, rate: float, parametrization: str) -> None:
    best = paper_best(dataset, rate)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(as_point({**best, "lr": 0.05}, parametrization))
    returned = make_space("dm", parametrization=parametrization, tune_lr=True)(study.ask())
    if parametrization == "psi_schedule":  # a flat schedule of ψ at the paper's: its (λ, β) at every step
        assert returned["psi"].startswith("linear:")
        for t in (0.0, 0.5, 1.0):
            at = params_at("dm", {k: returned[k] for k in ("psi", "rho")}, t)
            assert {"lam": at["lam"], "beta": at["beta"], "lr": returned["lr"]} == pytest.approx(
                {**best, "lr": 0.05}, rel=1e-9, abs=1e-12)
        return
    assert returned == pytest.approx({**best, "lr": 0.05}, rel=1e-9, abs=1e-12)


def test_space_survives_pickling() -> None:
    space = make_space("dm", parametrization="psi_rho", ranges={"rho": (1.0, 4.0)}, tune_lr=True)
    fixed = {"psi": 0.25, "rho": 2.0, "lr": 0.01}
    assert pickle.loads(pickle.dumps(space))(FixedTrial(fixed)) == space(FixedTrial(fixed))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"method": "dmm"}, "method"),
        ({"method": "dm", "parametrization": "psi_beta"}, "parametrization"),
        ({"method": "gce", "parametrization": "psi_rho"}, "parametrization"),
        ({"method": "dm", "ranges": {"gamma": (0, 1)}}, "ranges.gamma"),
        ({"method": "dm", "parametrization": "psi_rho", "ranges": {"lam": (0, 1)}}, "ranges.lam"),
        ({"method": "cce", "ranges": {"lr": (0.01, 0.1)}}, "ranges.lr"),  # lr not tuned
        ({"method": "dm", "ranges": {"lam": (2, 1)}}, "ranges.lam"),
        ({"method": "dm", "ranges": {"lam": (0, math.inf)}}, "ranges.lam"),
        ({"method": "dm", "ranges": {"lam": (0, math.nan)}}, "ranges.lam"),
        ({"method": "dm", "ranges": {"lam": (0, 1, 2)}}, "ranges.lam"),
        ({"method": "dm", "ranges": {"lam": "01"}}, "ranges.lam"),
        ({"method": "dm", "ranges": {"beta": (0, 8)}}, "ranges.beta"),  # log scale
        ({"method": "dm", "ranges": {"lam": (-1, 1)}}, "ranges.lam"),  # the trainer refuses λ < 0
        ({"method": "gce", "ranges": {"q": (0, 1)}}, "ranges.q"),  # and q = 0
        ({"method": "dm", "parametrization": "psi_rho", "ranges": {"psi": (0, 1)}}, "ranges.psi"),
        ({"method": "dm", "tune_lr": True, "ranges": {"lr": (0.1, 0.01)}}, "ranges.lr"),
        ({"method": "gradsim", "ranges": {"k": (2, 7.5)}}, "ranges.k"),  # whole numbers
        ({"method": "gradsim", "ranges": {"k": (0, 8)}}, "ranges.k"),  # log scale
        ({"method": "gradsim", "ranges": {"a": (-1, 4)}}, "ranges.a"),
        ({"method": "gradsim", "batch_size": 0}, "batch_size"),
        ({"method": "ieg", "ranges": {"probe_per_class": (0, 10)}}, "ranges.probe_per_class"),  # log scale: ≥ 1
        ({"method": "ieg", "ranges": {"probe_per_class": (1, 2.5)}}, "ranges.probe_per_class"),
        ({"method": "ieg", "ranges": {"k": (-1, 20)}}, "ranges.k"),
        ({"method": "gradsim", "batch_size": 64.0}, "batch_size"),
    ],
)
def test_bad_settings_are_config_errors(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        make_space(**kwargs)
    assert error.value.field == field


def test_psi_schedule_searches_the_ends_of_a_linear_psi_schedule_and_rho() -> None:
    assert default_ranges("dm", "psi_schedule") == {"psi_from": (0.0, 2 / 3), "psi_to": (0.0, 2 / 3), "rho": (0.5, 8.0)}
    space = make_space("dm", parametrization="psi_schedule")
    setting = space(FixedTrial({"psi_from": 0.6, "psi_to": 0.1, "rho": 2.0}))
    assert setting == {"rho": 2.0, "psi": "linear:0.6:0.1"}
    config = TrainConfig(method="dm", method_params=setting)
    assert config.method_params["psi"] == {"from": 0.6, "to": 0.1, "shape": "linear"}
    # back to the space's own names, and (λ, β) at the start, middle and end by ψ = λ/(λ+1), ρ = β·ψ^λ·(1 − ψ)
    assert as_point(setting, "psi_schedule") == {"rho": 2.0, "psi_from": 0.6, "psi_to": 0.1}
    for t, psi in ((0.0, 0.6), (0.5, 0.35), (1.0, 0.1)):
        lam = params_at("dm", setting, t)["lam"]
        assert lam == pytest.approx(psi / (1 - psi)) and to_psi_rho(lam, params_at("dm", setting, t)["beta"]) == \
            pytest.approx((psi, 2.0))


def test_psi_schedule_sampled_by_optuna_with_rho_fixed() -> None:
    space = make_space("dm", parametrization="psi_schedule", ranges={"rho": (4.0, 4.0), "psi_to": (0.0, 0.3)})
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    for _ in range(8):
        trial = study.ask()
        setting = space(trial)
        assert setting["rho"] == 4.0 and 0 <= trial.params["psi_to"] <= 0.3
        assert TrainConfig(method="dm", method_params=setting).method_params["psi"]["to"] == trial.params["psi_to"]
        study.tell(trial, trial.params["psi_from"] - trial.params["psi_to"])


def test_psi_schedule_bad_input() -> None:
    with pytest.raises(ConfigError, match=r"^ranges\.psi_to: .*ψ in \[0, 1\)"):
        make_space("dm", parametrization="psi_schedule", ranges={"psi_to": (0.0, 1.0)})
    with pytest.raises(ConfigError, match="psi_schedule is for dm only"):
        make_space("gce", parametrization="psi_schedule")
    with pytest.raises(ConfigError, match="not allowed"):
        make_space("dm", parametrization="psi_schedule", ranges={"psi": (0.0, 0.5)})
