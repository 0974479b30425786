"""The training loop: a Trainer that yields metrics at each evaluation and can be checkpointed and resumed."""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterator

import torch
from torch import Tensor

from trainers.augment import crop_flip
from trainers.config import TrainConfig
from trainers.datasets import Dataset, load_dataset
from trainers.detection import detection_aurocs
from trainers.emphasis import emphasis_variance
from trainers.ema import WeightAverage
from trainers.errors import ConfigError
from trainers.gradsim import noisy_among_extremes
from trainers.losses import WeightedCE, make_loss
from trainers.methods import checked_params, has_schedule, in_force, params_at
from trainers.models import create_model
from trainers.reweight import ProbeMethod
from trainers.schedules import Schedule
from trainers.splits import derive_seeds, make_split
from trainers.subsample import stratified_subsample

Metrics = dict[str, float]
# Images per inference chunk, by device type: large batches fill a GPU; on the CPU a chunk of 128 stays in the cache
# (ResNet-20 predicts about 3× faster than in chunks of 1,024; see docs/BENCHMARKS.md, "Evaluation cost")
EVAL_BATCH = {"cuda": 1024, "cpu": 128}
EXTREMES = 10  # noisy_top10 and noisy_bottom10: noisy examples among this many highest- and lowest-ranked per batch
# What each step adds up for the next evaluation: the loss; the papers' emphasis variance σ = Var(w_i) and the same
# scaled, Var(w)/E(w)²; the noisy examples' and all examples' share of the step's gradient (‖∂L/∂z_i‖₁ over its mean);
# the steps.
SUMS = ("loss", "var", "var_scaled", "noisy_share", "share", "batches")
# The metrics that need the true training labels: absent where they are unknown (own data without y_train_true)
TRUE_LABEL_METRICS = ("intact_acc", "noisy_fit_acc", "p_clean", "p_noisy", "noisy_weight_share", "noisy_top10",
                      "noisy_bottom10", "weight_clean", "weight_noisy", "relabel_clean", "relabel_noisy")


def resolve_device(name: str) -> torch.device:
    """"auto" → CUDA where available, else the CPU; "cuda" without a GPU is a ConfigError."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", name, "no CUDA device is visible here; use cpu or auto")
    return torch.device("cuda" if name != "cpu" and torch.cuda.is_available() else "cpu")


class Trainer:
    """One run of `config`: iterate it for the metrics of each evaluation; `state_dict()` checkpoints it.

    Example:
        >>> trainer = Trainer(TrainConfig(dataset="digits", method="dm", method_params={"lam": 1, "beta": 4}))
        >>> for metrics in trainer:
        ...     print(metrics["epoch"], metrics["test_acc"])
    """

    def __init__(self, config: TrainConfig, data: Dataset | None = None) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        data = data if data is not None else load_dataset(config.dataset, config.data_root)
        split = make_split(data, noise=config.noise, noise_rate=config.noise_rate, split=config.split,
                           val_fraction=config.val_fraction, probe_per_class=config.resolved_probe_per_class(),
                           seed=config.seed, val_labels=config.val_labels, data_root=config.data_root)
        seeds = derive_seeds(config.seed)
        dev = self.device
        self.train_x, self.train_y = split.train_x.to(dev), split.train_y.to(dev)
        self.true_known = split.true_y is not None
        self.true_y = split.true_y.to(dev) if self.true_known else None
        # unknown: a mask of none noisy stands in for the steps; the metrics it would give are left out
        unknown = torch.zeros_like(split.train_y, dtype=torch.bool)
        self.is_noisy = (split.is_noisy if self.true_known else unknown).to(dev)
        self.val = (split.val_x.to(dev), split.val_y.to(dev)) if split.val_x is not None else None
        # where the true labels are known, the validation accuracy by the clean and by the noisy labels, both
        self.val_by = {name: y.to(dev) for name, y in (("val_acc_clean", split.val_clean_y),
                                                       ("val_acc_noisy", split.val_noisy_y))
                       if y is not None and self.true_known}
        self.test = (split.test_x.to(dev), split.test_y.to(dev))
        self.probe = (split.probe_x.to(dev), split.probe_y.to(dev)) if split.probe_x is not None else None
        self.augment = data.augment if config.augment is None else config.augment
        self.channels_last = dev.type == "cuda"
        # how `predict` runs the model: chunks of `eval_batch` images in `eval_format` (channels-last inputs are faster
        # on the CPU too, for the same logits up to rounding)
        self.eval_batch, self.eval_format = EVAL_BATCH[dev.type], torch.channels_last

        torch.manual_seed(seeds.init)  # initialisation, then dropout, draw from the global generator
        model = create_model(config.model, in_shape=data.in_shape, num_classes=data.num_classes, dropout=config.dropout)
        self.model = model.to(dev, memory_format=torch.channels_last if self.channels_last else torch.preserve_format)
        decay = config.resolved_ema()
        self.ema = WeightAverage(self.model, decay) if decay else None  # evaluated in place of the model where set
        # the method's hyperparameters, checked, schedules parsed; the builder's keywords the loss has now
        self.method_params = checked_params(config.method, config.method_params)
        self._scheduled = has_schedule(self.method_params)
        self._built_with = params_at(config.method, self.method_params, 0.0)
        self.loss_fn = make_loss(config.method, **self._built_with).to(dev)
        self._needs: tuple[str, ...] = tuple(getattr(self.loss_fn, "needs", ()))  # see trainers.losses.WeightedCE
        self._runs_model = isinstance(self.loss_fn, ProbeMethod)
        self._ranks = isinstance(self.loss_fn, (WeightedCE, ProbeMethod))
        params, lr, wd = self.model.parameters(), config.lr, config.weight_decay
        self.optimizer = (
            torch.optim.SGD(params, lr=lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=wd)
            if config.optimizer == "sgd" else torch.optim.Adam(params, lr=lr, weight_decay=wd)
        )
        n, b = len(self.train_y), config.batch_size
        self.steps_per_epoch = n // b + (n % b > 1)  # a last batch of one would break batch norm: dropped
        self.total_steps = config.iterations or config.epochs * self.steps_per_epoch
        self.schedule = Schedule.from_config(config, self.steps_per_epoch, self.total_steps)
        self.eval_every = config.eval_every or self.steps_per_epoch
        self._order = torch.Generator().manual_seed(seeds.order)
        self._aug = torch.Generator(dev).manual_seed(seeds.order ^ 0x5EED)
        self.step, self.history = 0, []
        self._perm, self._pos = torch.empty(0, dtype=torch.long), 0
        # per-step sums (SUMS); for a WeightedCE or a ProbeMethod, the noisy at either end of the ranking too
        self._sums = torch.zeros(len(SUMS) + 2 * self._ranks, device=dev)
        self._last_weight = torch.full((n,), math.nan, device=dev)  # each example's latest ‖∂L/∂z_i‖₁ (NaN: unseen)
        # the training examples of each evaluation's training-set metrics but the last, and their weights (see README)
        self._diag: tuple[Tensor | slice, Tensor | None] = (slice(None), None)
        if config.diag_subsample and config.diag_subsample < n:
            strata = self.train_y * 2 + self.is_noisy  # by given label and, where known, corrupted or intact
            diag = torch.Generator().manual_seed(seeds.order ^ 0xD1A6)
            self._diag = tuple(t.to(dev) for t in stratified_subsample(strata, config.diag_subsample, diag))
        self._clock = time.perf_counter()
        self.info = {"noise_rate_realised": split.noise_rate, "train_size": n,
                     "val_size": 0 if self.val is None else len(self.val[1]), "test_size": len(self.test[1]),
                     "probe_size": 0 if self.probe is None else len(self.probe[1]),
                     "num_classes": data.num_classes,
                     "diag_size": n if self._diag[1] is None else len(self._diag[0]),
                     "steps_per_epoch": self.steps_per_epoch, "total_steps": self.total_steps,
                     "device": str(dev), "parameters": sum(p.numel() for p in self.model.parameters()),
                     "eval_weights": "ema" if self.ema else "raw", "ema_decay": decay}

    def __iter__(self) -> Iterator[Metrics]:
        while self.step < self.total_steps:
            self._train_step()
            if self.step % self.eval_every == 0 or self.step == self.total_steps:
                yield self._evaluate()

    def _next_batch(self) -> Tensor:
        b = self.config.batch_size
        if len(self._perm) - self._pos < 2:  # new epoch (a remainder of one is dropped)
            self._perm, self._pos = torch.randperm(len(self.train_y), generator=self._order), 0
        idx = self._perm[self._pos : self._pos + b]
        self._pos += b
        return idx.to(self.device)

    def _train_step(self) -> None:
        idx = self._next_batch()
        x, y = self.train_x[idx], self.train_y[idx]
        if self.augment:
            x = crop_flip(x, self._aug)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * self.schedule(self.step)
        if self._scheduled:
            self._follow_schedules()
        self.model.train()
        features, noisy = None, self.is_noisy[idx]
        extras = {"inputs": x, "model": self.model, "noisy": noisy, "probe": self.probe, "optimizer": self.optimizer}
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16):
            if self._runs_model:  # the method runs the model itself (trainers.reweight): the batch's logits, the loss
                logits, loss = self.loss_fn(x, y, **{name: extras[name] for name in self._needs})
            elif "features" in self._needs:  # the same forward as the model's own, keeping the final layer's input
                features = self.model.dropout(self.model.features(x))
                logits = self.model.head(features)
            else:
                logits = self.model(x)
        logits.retain_grad()
        if not self._runs_model:
            extras["features"] = features
            loss = self.loss_fn(logits, y, **{name: extras[name] for name in self._needs})
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model, self.step + 1)
        with torch.no_grad():
            norms = logits.grad.float().abs().sum(1)  # ‖∂L/∂z_i‖₁: the weight each example had in this step
            self._last_weight[idx] = norms
            share = norms / norms.mean().clamp_min(torch.finfo(norms.dtype).tiny)
            var, var_scaled = emphasis_variance(self._paper_weights(norms))
            sums = [torch.stack([loss.detach().float(), var, var_scaled, share[noisy].sum(), share.sum(),
                                 torch.ones((), device=norms.device)])]
            if self._ranks:
                sums.append(noisy_among_extremes(self.loss_fn.last_scores, noisy, EXTREMES).float())
            self._sums += torch.cat(sums)
        self.step += 1

    def progress(self, step: int | None = None) -> float:
        """Training progress t = step / total_steps in [0, 1] (the method's schedules' clock); None: this step's."""
        return (self.step if step is None else step) / self.total_steps

    def params_in_force(self, step: int | None = None) -> dict[str, float]:
        """The method's numeric hyperparameters that the training step `step` (0-based; None: the next) uses, at
        t = step / total_steps: each float hyperparameter, DM's lam, beta, psi and rho (trainers.methods.in_force)."""
        return in_force(self.config.method, self.method_params, self.progress(step))

    def _follow_schedules(self) -> None:
        """Rebuild the loss where its scheduled hyperparameters have moved since it was built, carrying its state
        (buffers: a probe method's sums and position) over; read from the step count alone, so exact after a resume."""
        now = params_at(self.config.method, self.method_params, self.progress())
        if now != self._built_with:
            loss_fn = make_loss(self.config.method, **now).to(self.device)
            loss_fn.load_state_dict(self.loss_fn.state_dict())
            self.loss_fn, self._built_with = loss_fn, now

    def _paper_weights(self, norms: Tensor) -> Tensor:
        """Seed 002's w_i (Definition 1), whose batch variance is its emphasis variance σ (Definition 2): an emphasis
        loss's own w_i = t(p_i), before normalising; else B·‖∂L/∂z_i‖₁, the weight a mean-reduced loss gives (CCE's
        2(1 − p_i), MAE's 2p_i(1 − p_i); a method's weights summing to 1 count as 1/B each)."""
        own = getattr(self.loss_fn, "last_weights", None)
        return own.float() if own is not None else norms * len(norms)

    @torch.inference_mode()
    def predict(self, x: Tensor) -> Tensor:
        """Float32 logits for inputs x, in chunks, of the evaluated model (the weight average where there is one, else
        the model) in evaluation mode."""
        model = self.ema.model if self.ema is not None else self.model
        model.eval()
        out = []
        for chunk in x.split(self.eval_batch):
            chunk = chunk.contiguous(memory_format=self.eval_format)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16):
                out.append(model(chunk).float())
        return torch.cat(out)

    def _evaluate(self) -> Metrics:
        sums = dict(zip(SUMS, self._sums.tolist()))
        extremes = self._sums[len(SUMS):].tolist()
        batches = sums["batches"]
        self._sums.zero_()
        if not math.isfinite(sums["loss"]):
            raise FloatingPointError(f"the training loss became {sums['loss']} before step {self.step}")
        idx, weight = (slice(None), None) if self.step == self.total_steps else self._diag  # the last: all
        logits = self.predict(self.train_x[idx])
        given, noisy = self.train_y[idx], self.is_noisy[idx]
        pred = logits.argmax(1)
        fit = pred == given
        p_given = logits.softmax(1).gather(1, given[:, None]).squeeze(1)
        metrics: Metrics = {
            "step": self.step,
            "epoch": self.step / self.steps_per_epoch,
            "lr": self.optimizer.param_groups[0]["lr"],
            "ema_decay": self.info["ema_decay"],
            "train_loss": sums["loss"] / batches,
            "emphasis_var": sums["var"] / batches,
            "emphasis_var_scaled": sums["var_scaled"] / batches,
            "noisy_weight_share": sums["noisy_share"] / sums["share"],
            **({"noisy_top10": extremes[0] / batches, "noisy_bottom10": extremes[1] / batches} if self._ranks else {}),
            "fit_acc": _mean(fit, weight),
            "intact_acc": _mean(pred == self.true_y[idx], weight) if self.true_known else math.nan,
            "noisy_fit_acc": _mean(fit, weight, noisy),
            "p_clean": _mean(p_given, weight, ~noisy),
            "p_noisy": _mean(p_given, weight, noisy),
            **detection_aurocs(p_given, noisy, weight, self._last_weight, self.is_noisy),
        }
        if self._runs_model:
            metrics.update(self.loss_fn.epoch_metrics())
        if self.val is not None:
            val_logits = self.predict(self.val[0])
            metrics["val_acc"] = _accuracy(val_logits, self.val[1])
            metrics.update({name: _accuracy(val_logits, y) for name, y in self.val_by.items()})
        if not self.true_known:
            metrics = {k: v for k, v in metrics.items() if k not in TRUE_LABEL_METRICS}
        metrics["test_acc"] = _accuracy(self.predict(self.test[0]), self.test[1])
        metrics.update(self._bests(metrics))
        # the hyperparameters the last step used (as `lr`): flat lines for constants, a schedule's course
        metrics.update({k: v for k, v in self.params_in_force(self.step - 1).items() if k not in metrics})
        metrics["time"] = (self.history[-1]["time"] if self.history else 0.0) + time.perf_counter() - self._clock
        self._clock = time.perf_counter()
        self.history.append(metrics)
        return metrics

    def _bests(self, now: Metrics) -> Metrics:
        runs = [*self.history, now]
        best = {"best_test_acc": max(m["test_acc"] for m in runs)}
        if "val_acc" in now:
            at = max(runs, key=lambda m: m["val_acc"])
            best |= {"best_val_acc": at["val_acc"], "test_acc_at_best_val": at["test_acc"]}
        return best

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run bit-exactly: weights (and their average), optimiser, position,
        generators, history."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "perm": self._perm,
            "pos": self._pos,
            "sums": self._sums,
            "last_weight": self._last_weight,
            "order_rng": self._order.get_state(),
            "aug_rng": self._aug.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "history": self.history,
            "method": self.loss_fn.state_dict(),
            "ema": self.ema.model.state_dict() if self.ema is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a `state_dict()`."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self._perm, self._pos = state["step"], state["perm"], state["pos"]
        self._sums = state["sums"].to(self.device)
        self._last_weight = state.get("last_weight", self._last_weight).to(self.device)
        self._order.set_state(state["order_rng"])
        self._aug.set_state(state["aug_rng"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.history = list(state["history"])
        self.loss_fn.load_state_dict(state.get("method", {}))
        if self.ema is not None:
            self.ema.model.load_state_dict(state["ema"])
        self._clock = time.perf_counter()


def train(config: TrainConfig, *, data: Dataset | None = None,
          callback: Callable[[Metrics], None] | None = None) -> Metrics:
    """Run `config` to the end, handing each evaluation's metrics to `callback`; returns the last metrics."""
    trainer = Trainer(config, data)
    for metrics in trainer:
        if callback is not None:
            callback(metrics)
    return trainer.history[-1]


def _mean(values: Tensor, weight: Tensor | None = None, part: Tensor | None = None) -> float:
    """The mean of `values` (over the mask `part` where given) weighted by `weight` (None: plain); NaN where empty."""
    if part is not None:
        values, weight = values[part], None if weight is None else weight[part]
    if not values.numel():
        return math.nan
    return float(values.float().mean() if weight is None else (values.double() * weight).sum() / weight.sum())


def _accuracy(logits: Tensor, labels: Tensor) -> float:
    return _mean(logits.argmax(1) == labels)
