"""IEG (seed 003, google-research `ieg`): meta re-weighting and re-labelling from a trusted probe set, with
pseudo-labels from augmented views, MixUp of the probe set with the training batch, and a consistency loss.

One step, as the authors' code has it (switches in brackets, seed 003 Table 7's UC, MC, AA and λ):
1. logits z of the batch and z' of one augmented view of it (already cropped and flipped where the data set is
   augmented), `IEG.view`: [aa] AutoAugment with a sub-policy per image, then pad-crop and flip, then cutout;
2. pseudo-labels g: the mean over the K = 2 views of softmax(z / RMS(z)), sharpened by temperature T;
3. the meta step (trainers.meta) at weights ε = 1/B and relabel coefficients λ = `init_relabel`, through a virtual step
   with the optimiser's momentum and a fixed step size: w = max(−∂L_p/∂ε, 0)/(Σ + 1e-5); [relabel] λ* = 1 where
   ∂L_p/∂λ < 0, else 0 (the pseudo-label);
4. the loss ½[mean CE(λ*·y + (1−λ*)·g, z) + Σ w·CE(λ0·y + (1−λ0)·g, z)] ([relabel] off: Σ w·CE(y, z)),
   [mc] + CE(mixed probe) + p·CE(mixed batch and view), [uc] + k·KL(softmax z ‖ softmax z').
The probe batch is the next slice of the class-interleaved probe set (trainers.reweight.ProbeMethod.probe_batch), and
the model is evaluated as an average of its weights by default (trainers.ema), both as the authors'.
With every switch off this is L2R with IEG's virtual step (ε = 1/B, momentum), Table 7's row 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainers.augment import auto_augment, crop_flip, cutout
from trainers.emphasis import at_least_float32
from trainers.meta import (
    meta_step,
    momentum_of,
    relabel_from,
    soft_cross_entropy,
    soft_targets,
    weights_from,
)
from trainers.methods import FLAG, LOSS_WEIGHT, POSITIVE, UNIT, Layers
from trainers.reweight import ProbeMethod

RMS_EPS = 1e-8  # logit normalisation z / sqrt(mean(z²) + this), as the authors' code


class IEG(ProbeMethod):
    """IEG's step (module docstring). p: MixUp loss weight of the training part; k: consistency loss weight;
    temperature: sharpening of the pseudo-labels; init_relabel: λ0; mixup_alpha: α of the mixing weights
    (`mixing_weights`, the authors' stand-in for Beta(α, α))."""

    default_ema = 0.999  # evaluated with an EMA of the weights by default, as the authors' (`use_ema`, trainers.ema)

    def __init__(self, *, meta_lr: float, p: float, k: float, temperature: float, init_relabel: float,
                 meta_momentum: bool, mixup_alpha: float, uc: bool, mc: bool, aa: bool, relabel: bool,
                 layers: Layers) -> None:
        super().__init__(meta_lr, layers)
        checks = (("p", p, LOSS_WEIGHT), ("k", k, LOSS_WEIGHT), ("temperature", temperature, POSITIVE),
                  ("init_relabel", init_relabel, UNIT), ("mixup_alpha", mixup_alpha, POSITIVE),
                  ("meta_momentum", meta_momentum, FLAG), ("uc", uc, FLAG), ("mc", mc, FLAG), ("aa", aa, FLAG),
                  ("relabel", relabel, FLAG))
        for name, value, allowed in checks:
            allowed.check(name, value)
        self.p, self.k, self.temperature, self.init_relabel = p, k, temperature, init_relabel
        self.meta_momentum, self.mixup_alpha = meta_momentum, mixup_alpha
        self.uc, self.mc, self.aa, self.relabels = uc, mc, aa, relabel

    def forward(self, inputs: Tensor, targets: Tensor, *, model: nn.Module, probe: tuple[Tensor, Tensor],
                optimizer: torch.optim.Optimizer | None = None, noisy: Tensor) -> tuple[Tensor, Tensor]:
        features = model.dropout(model.features(inputs)) if self.layers == "last" else None
        logits = model.head(features) if features is not None else model(inputs)
        view = view_logits = pseudo = None
        if self.uc or self.mc or self.relabels:
            view = self.view(inputs)
            with torch.set_grad_enabled(self.uc):
                view_logits = model(view)
            if self.mc or self.relabels:
                pseudo = pseudo_labels([logits, view_logits], self.temperature)
        probe = self.probe_batch(probe, len(targets))
        weights, relabel = self.meta(model, inputs, logits, targets, probe, optimizer, pseudo, features)
        self.record(weights, relabel, noisy)
        extra = self.mixup_loss(model, probe, inputs, view, pseudo) if self.mc else 0.0
        with torch.autocast(logits.device.type, enabled=False):
            if relabel is not None:
                kept = soft_cross_entropy(logits, soft_targets(targets, pseudo, relabel, logits.shape[1])).mean()
                start = soft_cross_entropy(logits, soft_targets(targets, pseudo, self.init_relabel, logits.shape[1]))
                loss = 0.5 * (kept + (weights * start).sum())
            else:
                loss = (weights * F.cross_entropy(at_least_float32(logits), targets, reduction="none")).sum()
            if self.uc:
                loss = loss + self.k * consistency(logits, view_logits)
            return logits, loss + extra

    def view(self, inputs: Tensor) -> Tensor:
        """The batch's augmented view, built as the authors' (`apply_autoaugment`): [aa] AutoAugment, a sub-policy per
        image, then pad-crop (by an eighth of the height: their 4 for 32×32) and flip, then cutout of half the height;
        from the global generator."""
        return cutout(crop_flip(auto_augment(inputs) if self.aa else inputs, pad=inputs.shape[2] // 8))

    def meta(self, model: nn.Module, inputs: Tensor, logits: Tensor, targets: Tensor, probe: tuple[Tensor, Tensor],
             optimizer: torch.optim.Optimizer | None, pseudo: Tensor | None,
             features: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """The batch's weights and (relabelling) relabel coefficients from the meta step at ε = 1/B, λ = λ0, on the
        probe batch `probe`."""
        b = len(targets)
        momentum, buffers = momentum_of(optimizer, model) if self.meta_momentum else (0.0, {})
        start = torch.full((b,), 1 / b, device=logits.device)
        lam = torch.full((b,), self.init_relabel if self.relabels else 1.0, device=logits.device)
        d_weight, d_relabel = meta_step(model, inputs, logits, targets, probe, weights=start, relabel=lam,
                                        pseudo=pseudo if self.relabels else None, meta_lr=self.meta_lr,
                                        layers=self.layers, features=features, momentum=momentum, buffers=buffers)
        return weights_from(d_weight), relabel_from(d_relabel) if self.relabels else None

    def mixup_loss(self, model: nn.Module, probe: tuple[Tensor, Tensor], inputs: Tensor, view: Tensor,
                   pseudo: Tensor) -> Tensor:
        """CE(mixed probe) + p·CE(mixed batch and view): B examples drawn with replacement from the probe batch (as the
        authors'), the batch and its view (both with the pseudo-labels) mixed over the whole pool; each part's logits
        RMS-normalised."""
        b, num_classes = len(inputs), pseudo.shape[1]
        drawn = torch.randint(len(probe[1]), (b,), device=inputs.device)
        pool = torch.cat([probe[0][drawn], inputs, view])
        targets = torch.cat([F.one_hot(probe[1][drawn], num_classes).float(), pseudo, pseudo])
        mixed, mixed_targets = mixup(pool, targets, self.mixup_alpha)
        parts = [rms_normalised(z) for z in model(mixed).split(b)]
        with torch.autocast(inputs.device.type, enabled=False):
            probe_loss = soft_cross_entropy(parts[0], mixed_targets[:b]).mean()
            batch_loss = soft_cross_entropy(torch.cat(parts[1:]), mixed_targets[b:]).mean()
            return probe_loss + self.p * batch_loss


def rms_normalised(logits: Tensor) -> Tensor:
    """logits / sqrt(mean(logits²) + 1e-8), the mean over the whole batch (the authors' logit normalisation)."""
    z = at_least_float32(logits)
    return z * (z.square().mean() + RMS_EPS).rsqrt()


def pseudo_labels(views: list[Tensor], temperature: float) -> Tensor:
    """The mean over the views' logits of softmax(z / RMS(z)), sharpened: q^(1/T) / Σ q^(1/T); constant (no grad)."""
    with torch.no_grad():
        q = torch.stack([rms_normalised(z.detach()).softmax(1) for z in views]).mean(0)
        sharp = q.pow(1 / temperature)
        return sharp / sharp.sum(1, keepdim=True)


def consistency(logits: Tensor, view_logits: Tensor) -> Tensor:
    """KL(softmax z ‖ softmax z') per example, averaged, z held constant: the view learns to agree with the batch."""
    log_p = at_least_float32(logits.detach()).log_softmax(1)
    return (log_p.exp() * (log_p - at_least_float32(view_logits).log_softmax(1))).sum(1).mean()


def mixing_weights(n: int, alpha: float, device: torch.device | str | None = None) -> Tensor:
    """n MixUp weights as the authors draw them (MixMode.augment_pair, "approximate Beta distribution"):
    m = max(u, 1 − u) with u = U^(1/α)/2, U ~ U(0, 1) from the global generator; u ≤ ½, so m = 1 − U^(1/α)/2, in
    [½, 1] with P(m ≤ t) = 1 − (2(1 − t))^α (mean 5/6 at α = ½), not max(β, 1 − β) of a Beta(α, α)."""
    return 1 - torch.rand(n, device=device).pow(1 / alpha) / 2


def mixup(x: Tensor, targets: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """Each example mixed with a random one of the batch (a permutation), its own share the larger: m·a + (1 − m)·b
    for the inputs and the soft targets, m = `mixing_weights` one per example, from the global generator."""
    n = len(x)
    other = torch.randperm(n, device=x.device)
    m = mixing_weights(n, alpha, x.device)
    w = m.view(-1, *[1] * (x.dim() - 1)).to(x.dtype)
    return w * x + (1 - w) * x[other], m[:, None] * targets + (1 - m[:, None]) * targets[other]
