"""One run's settings: a frozen dataclass whose field names are the search-space keys and MLflow params."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from trainers.catalog import (HUMAN_NOISE_DATASETS, HUMAN_NOISE_KINDS, NOISE_KINDS, PROBE_PER_CLASS, VAL_LABELS,
                              is_own_data, list_datasets, list_models)
from trainers.errors import ConfigError
from trainers.methods import canonical_params, learns_from_probe

_CHOICES: dict[str, tuple[str, ...]] = {
    "split": ("search", "final"),
    "optimizer": ("sgd", "adam"),
    "schedule": ("constant", "multistep", "exponential", "cosine"),
    "schedule_unit": ("epoch", "iteration"),
    "device": ("auto", "cpu", "cuda"),
    "noise": NOISE_KINDS + HUMAN_NOISE_KINDS,
    "val_labels": VAL_LABELS,
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; units in comments. The same config and seed give the same run."""

    # what
    dataset: str = "digits"                # a registered name, or your own data: npz:PATH or folder:PATH
    data_root: str | None = None           # None: $NOISY_DATA_ROOT or ~/.cache/noisy-data
    model: str = "mlp"
    dropout: float = 0.0                   # before the final linear layer
    method: str = "cce"                    # a loss from trainers.list_losses()
    method_params: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"lam": 1.0, "beta": 8.0}; a numeric one
                                           # may be a schedule over training progress, kept as its canonical
                                           # mapping, e.g. {"from": 0.5, "to": 0.2, "shape": "linear"} (see
                                           # trainers.param_schedules); DM takes psi, rho in place of lam, beta
    # noise and split
    noise: str = "symmetric"
    noise_rate: float = 0.0                # share of training labels corrupted, in [0, 1) (a human kind: 0, unused)
    split: Literal["search", "final"] = "search"  # search: 80% noisy train, 20% clean validation
    val_fraction: float = 0.2
    val_labels: Literal["clean", "noisy", "trusted"] = "clean"  # the validation part's labels: true, noisy (as the
                                           # training part's), or the data set's trusted examples in its stead
    probe_per_class: int | None = None     # trusted examples per class held out before the noise as the probe set
                                           # (None: 10, the paper's, for the methods that use one (l2r, ieg), else 0)
    # optimisation
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.01                       # the papers' 0.1 suits batch-normalised ResNets; see DESIGN §2
    momentum: float = 0.9                  # SGD only
    nesterov: bool = False
    weight_decay: float = 1e-4
    batch_size: int = 128
    epochs: int | None = 20                # length: epochs, or iterations (then set epochs to None)
    iterations: int | None = None
    # learning-rate schedule, in `schedule_unit`s
    schedule: Literal["constant", "multistep", "exponential", "cosine"] = "constant"
    schedule_unit: Literal["epoch", "iteration"] = "epoch"
    milestones: tuple[float, ...] = ()     # multistep: multiply by `gamma` at each
    gamma: float = 0.1                     # exponential: multiply by it after each schedule_unit
    cosine_period: float | None = None     # cosine: first period (None: the whole run)
    cosine_mult: float = 1.0               # each period this much longer (warm restarts)
    cosine_decay: float = 1.0              # each restart's peak this much lower
    warmup: float = 0.0                    # linear warm-up from 0
    # evaluation
    ema: float | None = None               # evaluate an exponential moving average of the weights with this decay
                                           # per step (0 or false: the raw weights; None: the method's default,
                                           # 0.999 for ieg as its authors, else the raw weights)
    diag_subsample: int | None = 5000      # training examples the training-set metrics are computed from at each
                                           # evaluation but the last: a fixed stratified subsample of this many
                                           # (0 or None: the whole training part, as at the last evaluation)
    # running
    eval_every: int | None = None          # iterations between evaluations (None: once per epoch)
    augment: bool | None = None            # None: the data set's default (crop and flip for CIFAR)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bf16: bool = False                     # bf16 autocast
    seed: int = 0

    def __post_init__(self) -> None:
        _check("method_params", self.method_params, isinstance(self.method_params, Mapping), "a mapping of name: value")
        _check("milestones", self.milestones, isinstance(self.milestones, (list, tuple)), "a list of numbers")
        object.__setattr__(self, "method_params", dict(self.method_params))
        object.__setattr__(self, "milestones", tuple(self.milestones))
        for name in ("nesterov", "bf16"):
            _check(name, getattr(self, name), isinstance(getattr(self, name), bool), "true or false")
        if self.ema is False:
            object.__setattr__(self, "ema", 0.0)
        _check("ema", self.ema, self.ema is None or _finite(self.ema) and 0 <= self.ema < 1,
               "a decay in [0, 1) (0 or false: evaluate the raw weights), or null for the method's default")
        _check("augment", self.augment, self.augment is None or isinstance(self.augment, bool), "true, false or null")
        _check("data_root", self.data_root, self.data_root is None or isinstance(self.data_root, str), "a path")
        for name in _NUMBERS:
            value = getattr(self, name)
            _check(name, value, value is None and name == "cosine_period" or _finite(value), "a finite number")
        for m in self.milestones:
            _check("milestones", self.milestones, _finite(m) and m > 0, "positive numbers")
        if not (isinstance(self.dataset, str) and is_own_data(self.dataset)):
            _one_of("dataset", self.dataset, (*list_datasets(), "npz:PATH", "folder:PATH"))
        _one_of("model", self.model, tuple(list_models()))
        for name, allowed in _CHOICES.items():
            _one_of(name, getattr(self, name), allowed)
        object.__setattr__(self, "method_params", canonical_params(self.method, self.method_params))
        probe = self.probe_per_class
        _check("probe_per_class", probe, probe is None or _int(probe) and probe >= 0, "an integer ≥ 0, or None")
        _check("probe_per_class", probe, probe != 0 or not learns_from_probe(self.method, self.method_params),
               f"an integer ≥ 1, or None for {PROBE_PER_CLASS}: {self.method} learns from a trusted probe set")
        needed = {"asym-cifar10": "cifar10", "asym-cifar100": "cifar100", **HUMAN_NOISE_DATASETS}.get(self.noise)
        if needed and self.dataset != needed:
            raise ConfigError("noise", self.noise, f"fits only the data set {needed}, not {self.dataset}")
        _check("noise_rate", self.noise_rate, 0 <= self.noise_rate < 1, "a number in [0, 1)")
        _check("noise_rate", self.noise_rate, self.noise != "given" or self.noise_rate == 0,
               "0: noise 'given' keeps the labels as given and adds none")
        _check("noise_rate", self.noise_rate, self.noise not in HUMAN_NOISE_KINDS or self.noise_rate == 0,
               f"0 or unset: {self.noise} takes its labels, and so its rate, from its CIFAR-N file")
        _check("val_fraction", self.val_fraction, 0 < self.val_fraction < 1, "a number in (0, 1)")
        _check("dropout", self.dropout, 0 <= self.dropout < 1, "a number in [0, 1)")
        _check("lr", self.lr, self.lr > 0, "a number > 0")
        _check("momentum", self.momentum, 0 <= self.momentum < 1, "a number in [0, 1)")
        _check("nesterov", self.nesterov, not self.nesterov or self.momentum > 0, "true only with momentum > 0")
        _check("weight_decay", self.weight_decay, self.weight_decay >= 0, "a number ≥ 0")
        _check("batch_size", self.batch_size, _int(self.batch_size) and self.batch_size > 0, "an integer > 0")
        if (self.epochs is None) == (self.iterations is None):
            raise ConfigError("epochs", self.epochs, "set exactly one of epochs and iterations")
        length = "epochs" if self.epochs is not None else "iterations"
        value = getattr(self, length)
        _check(length, value, _int(value) and value > 0, "an integer > 0")
        _check("eval_every", self.eval_every, self.eval_every is None or (_int(self.eval_every) and self.eval_every > 0),
               "an integer > 0, or None for once per epoch")
        _check("diag_subsample", self.diag_subsample,
               self.diag_subsample is None or _int(self.diag_subsample) and self.diag_subsample >= 0,
               "an integer ≥ 0, or None; 0 and None take the whole training part")
        _check("gamma", self.gamma, self.gamma > 0, "a number > 0")
        _check("cosine_period", self.cosine_period, self.cosine_period is None or self.cosine_period > 0, "a number > 0")
        _check("cosine_mult", self.cosine_mult, self.cosine_mult >= 1, "a number ≥ 1")
        _check("cosine_decay", self.cosine_decay, 0 < self.cosine_decay <= 1, "a number in (0, 1]")
        _check("warmup", self.warmup, self.warmup >= 0, "a number ≥ 0")
        _check("seed", self.seed, _int(self.seed) and self.seed >= 0, "an integer ≥ 0")

    def resolved_probe_per_class(self) -> int:
        """The probe set's examples per class: `probe_per_class`, or where it is None PROBE_PER_CLASS for the methods
        that learn from a probe and 0 for the others."""
        if self.probe_per_class is not None:
            return self.probe_per_class
        return PROBE_PER_CLASS if learns_from_probe(self.method, self.method_params) else 0

    def resolved_ema(self) -> float:
        """The decay of the weight average evaluated (0: the raw weights): `ema`, or where it is None the method's
        `default_ema` (0.999 for ieg) or 0."""
        if self.ema is not None:
            return float(self.ema)
        from trainers.losses import make_loss  # torch: for training, not for checking a config

        return float(getattr(make_loss(self.method, **self.method_params), "default_ema", 0.0))

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with `changes` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain values, e.g. to log as params; `method_params` nested."""
        return dataclasses.asdict(self)


_NUMBERS = ("noise_rate", "val_fraction", "dropout", "lr", "momentum", "weight_decay", "gamma", "cosine_period",
            "cosine_mult", "cosine_decay", "warmup")


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _one_of(field_name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(field_name, value, "one of: " + ", ".join(allowed))


def _check(field_name: str, value: object, ok: bool, allowed: str) -> None:
    if not ok:
        raise ConfigError(field_name, value, allowed)
