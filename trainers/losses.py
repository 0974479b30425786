"""Losses chosen by name: derivative manipulation, its derivative-normalised kin, gradient similarity, the methods
that learn from a trusted probe set (L2R, IEG), the baselines."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainers.emphasis import Emphasis, at_least_float32, make_emphasis
from trainers.gradsim import (
    check_a_k,
    last_layer_cosines,
    oracle_weights,
    per_example_cosines,
    random_uniform_weights,
    ranking_only_weights,
    weights_from_cosines,
)
from trainers.ieg import IEG
from trainers.methods import (  # noqa: F401 (list_losses, loss_params, register_loss: re-exported)
    DROP,
    EPS,
    FLAG,
    LAYERS,
    LOSSES,
    NORMALIZE,
    UNIT,
    Layers,
    Normalize,
    params_at,
    list_losses,
    loss_params,
    register_loss,
)
from trainers.reweight import L2R

# The authors' released layer (GR_caffe_layer/unified_weight_loss_layer.cpp, XinshaoAmosWang/DerivativeManipulation):
# ∂L/∂z_i = (p − onehot)·w_i/(2 − 2p_i + 1e-6), divided by 1e-8 + Σ_j w_j over the batch (the 1e-6:
# trainers.methods.AUTHORS_EPS).
SUM_EPS = 1e-8  # the guard on Σw: every "sum" normalisation
LossBuilder = Callable[..., nn.Module]


def make_loss(name: str, **hyperparameters: object) -> nn.Module:
    """A module mapping (logits, targets, and any `needs`) to a scalar, e.g. `make_loss("dm", lam=1.0, beta=8.0)`.

    The hyperparameters are checked first (trainers.methods); the others keep their defaults. A schedule counts at its
    start (t = 0; the Trainer rebuilds the loss as it moves); DM's psi, rho become lam, beta.
    """
    return LOSSES[name](**params_at(name, hyperparameters, 0.0))


def _target_prob(z: Tensor, y: Tensor) -> Tensor:
    return z.log_softmax(1).gather(1, y[:, None]).squeeze(1).exp()


class EmphasisLoss(nn.Module):
    """Per example, ∂L/∂z_i = s·w_i·½(q_i − onehot(y_i)), q_i the softmax over the classes other than y_i.

    ½(q_i − onehot(y_i)) is CCE's direction (p − onehot)/(2(1 − p_i)) in a form that stays exact where
    1 − p_i underflows, so ‖∂L/∂z_i‖₁ = s·w_i with w_i = emphasis(p_i), held constant, in float32.
    s is 1/(1e-8 + Σw) over the batch ("sum", the authors' normaliser), 1/B ("mean") or 1 ("none"). The value is
    ½Σ s·w_i·log((1 − p_i)/p_i), whose gradient this is.

    `eps` > 0 gives the authors' released layer's s·w_i·(p − onehot)/(2(1 − p_i) + ε) instead (ε = 1e-6 there),
    computed stably: the norm s·w_i·2(1 − p_i)/(2(1 − p_i) + ε) fades out once 1 − p_i ≪ ε, which caps the margin
    near log(1/ε). `eps` 0 is the exact gradient. `last_weights` keeps the last batch's w_i (seed 002's weights,
    before any normalising or guard), from which the trainer measures the papers' emphasis variance.
    """

    def __init__(self, emphasis: Emphasis, normalize: Normalize = "sum", eps: float = 0.0) -> None:
        super().__init__()
        NORMALIZE.check("normalize", normalize)
        EPS.check("eps", eps)
        self.emphasis, self.normalize, self.eps = emphasis, normalize, eps
        self.last_weights: Tensor | None = None

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        with torch.autocast(logits.device.type, enabled=False):
            return _EmphasisFunction.apply(at_least_float32(logits), targets, self._weights)

    def _weights(self, p: Tensor, one_minus_p: Tensor) -> Tensor:
        """s·w_i, with the fade-out factor 2(1 − p_i)/(2(1 − p_i) + ε) where ε > 0."""
        w = self.last_weights = self.emphasis(p, one_minus_p)
        if self.normalize == "sum":
            w = w / (w.sum() + SUM_EPS)
        elif self.normalize == "mean":
            w = w / len(w)
        if self.eps > 0:
            w = w * (2 * one_minus_p / (2 * one_minus_p + self.eps))
        return w


class _EmphasisFunction(torch.autograd.Function):
    """½Σ c_i·log((1 − p_i)/p_i) with c = weigh(p, 1 − p) held constant; ∂/∂z_i = c_i·½(q_i − onehot(y_i)).

    One pass without a graph. q_i, the softmax over the classes other than y_i, is e_i/Σe_i with e_i = exp of
    those logits less their maximum; log Σ_{j≠y_i} exp(z_ij) with z_{i,y_i} gives p_i and 1 − p_i, both exact in
    z's dtype.
    The backward writes the gradient from e, Σe and c.
    """

    @staticmethod
    def forward(ctx: Any, z: Tensor, targets: Tensor, weigh: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        target = targets[:, None]  # B×1 throughout: no reshaping between the steps
        others = z.scatter(1, target, -math.inf)
        top = others.amax(1, keepdim=True)
        e = (others - top).exp_()
        total = e.sum(1, keepdim=True)
        log_others = total.log().add_(top)
        target_logit = z.gather(1, target)
        log_all = torch.logaddexp(log_others, target_logit)
        half_c = 0.5 * weigh((target_logit - log_all).exp_(), (log_others - log_all).exp_())
        ctx.save_for_backward(e, total, target, half_c)
        return (half_c * (log_others - target_logit)).sum()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        e, total, target, half_c = ctx.saved_tensors
        scale = half_c * grad
        return (e * (scale / total)).scatter_(1, target, scale.neg()), None, None


class _PLoss(nn.Module):
    """A mean over the batch of a function of log p_i alone (MAE, MSE, GCE of seed 002 §3.1; finite at any logits)."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        with torch.autocast(logits.device.type, enabled=False):
            return self.fn(at_least_float32(logits).log_softmax(1).gather(1, targets[:, None]).squeeze(1)).mean()


class _Bootstrap(nn.Module):
    """Reed et al. 2015: cross-entropy to β·label + (1−β)·prediction (soft) or its argmax (hard)."""

    def __init__(self, beta: float, hard: bool) -> None:
        super().__init__()
        UNIT.check("beta", beta)
        self.beta, self.hard = beta, hard

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        with torch.autocast(logits.device.type, enabled=False):
            logp = at_least_float32(logits).log_softmax(1)
            label = F.one_hot(targets, logp.shape[1]).float()
            pred = F.one_hot(logp.argmax(1), logp.shape[1]).float() if self.hard else logp.exp()
            return -((self.beta * label + (1 - self.beta) * pred) * logp).sum(1).mean()


class _SymmetricCE(nn.Module):
    """Wang et al. 2019: α·CE + β·RCE, RCE = −Σ_j p_j·log(max(onehot_j, 1e-4)) = −log(1e-4)·(1 − p_i)."""

    def __init__(self, alpha: float, beta: float) -> None:
        super().__init__()
        self.alpha, self.beta = alpha, beta

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        with torch.autocast(logits.device.type, enabled=False):
            z = at_least_float32(logits)
            rce = -math.log(1e-4) * (1 - _target_prob(z, targets))
            return self.alpha * F.cross_entropy(z, targets) + self.beta * rce.mean()


class WeightedCE(nn.Module):
    """Σ_i w_i·CE_i with per-example weights w held constant: w = `weights(scores(...))`, in float32 at least.

    `needs` names what the trainer passes to `forward` besides (logits, targets), as keyword arguments: "features"
    (the final linear layer's input as this step used it, after dropout), "inputs" and "model" (the batch and the
    network), "noisy" (the batch's noise mask; for analysis only). `last_scores` keeps the last batch's scores, by
    which the trainer ranks its examples (the noisy_top10 and noisy_bottom10 metrics).
    """

    needs: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.last_scores: Tensor | None = None

    def scores(self, logits: Tensor, targets: Tensor, **extras: Any) -> Tensor:
        """Per-example scores (B,), higher for the examples to trust more."""
        raise NotImplementedError

    def weights(self, scores: Tensor) -> Tensor:
        """The weights (B,) from the scores: the scores themselves unless a method says otherwise."""
        return scores

    def forward(self, logits: Tensor, targets: Tensor, **extras: Any) -> Tensor:
        with torch.autocast(logits.device.type, enabled=False):
            z = at_least_float32(logits)
            with torch.no_grad():
                self.last_scores = self.scores(z, targets, **extras)
                w = self.weights(self.last_scores).to(z.dtype)
            return (w * F.cross_entropy(z, targets, reduction="none")).sum()


class GradSimLoss(WeightedCE):
    """Seed 004: scores from the cosines between the examples' gradients (trainers.gradsim), summing to 1.

    `layers` "last": the final linear layer's gradients, from two B×B products; "all": every parameter's, one
    per-example gradient each, in eval mode (slow: for measuring the difference). `within_class`: compare only
    examples of the same given label. `drop` > 0: ranking only, weight 0 on the ⌊drop·B⌋ lowest-scored examples and
    uniform weight on the rest.
    """

    def __init__(self, a: float, k: int, *, within_class: bool, layers: Layers, drop: float) -> None:
        super().__init__()
        check_a_k(a, k)
        FLAG.check("within_class", within_class)
        LAYERS.check("layers", layers)
        DROP.check("drop", drop)
        self.a, self.k, self.within_class, self.layers, self.drop = a, k, within_class, layers, drop
        self.needs = ("features",) if layers == "last" else ("inputs", "model")

    def scores(self, logits: Tensor, targets: Tensor, *, features: Tensor | None = None, inputs: Tensor | None = None,
               model: nn.Module | None = None) -> Tensor:
        if self.layers == "last":
            cos = last_layer_cosines(features, logits, targets)
        else:
            training = model.training
            model.eval()
            try:
                cos = per_example_cosines(model, inputs, targets)
            finally:
                model.train(training)
        return weights_from_cosines(cos, self.a, self.k, groups=targets if self.within_class else None)

    def weights(self, scores: Tensor) -> Tensor:
        return ranking_only_weights(scores, self.drop) if self.drop > 0 else scores


class _RandomWeights(WeightedCE):
    """Seed 004's random baseline: weights drawn from U[0, 2/B) per batch, from the global generator (resumable)."""

    def scores(self, logits: Tensor, targets: Tensor) -> Tensor:
        return random_uniform_weights(len(targets), device=logits.device)


class _OracleWeights(WeightedCE):
    """Reads the noise mask, so for analysis only: weight 0 on the corrupted examples, uniform on the rest."""

    needs = ("noisy",)

    def scores(self, logits: Tensor, targets: Tensor, *, noisy: Tensor) -> Tensor:
        return oracle_weights(noisy)


# The builders: keyword-only hyperparameters, in the order and with the defaults and checks of their specs in
# trainers.methods (BUILT_IN), which make_loss applies first.


@register_loss("dm")
def _dm(*, lam: float, beta: float, normalize: Normalize, eps: float) -> nn.Module:
    return EmphasisLoss(make_emphasis("dm", lam=lam, beta=beta), normalize, eps)


@register_loss("dm-normal")
def _dm_normal(*, psi: float, beta: float, normalize: Normalize, eps: float) -> nn.Module:
    return EmphasisLoss(make_emphasis("normal", psi=psi, beta=beta), normalize, eps)


@register_loss("dm-exp")
def _dm_exp(*, beta: float, normalize: Normalize, eps: float) -> nn.Module:
    return EmphasisLoss(make_emphasis("exponential", beta=beta), normalize, eps)


@register_loss("dm-beta")
def _dm_beta(*, alpha: float, eta: float, normalize: Normalize, eps: float) -> nn.Module:
    return EmphasisLoss(make_emphasis("beta", alpha=alpha, eta=eta), normalize, eps)


@register_loss("cce")
def _cce() -> nn.Module:
    return nn.CrossEntropyLoss()


@register_loss("mae")
def _mae(*, scale: float) -> nn.Module:
    """scale·(1 − p_i): 1 is seed 002's MAE (gradient L1 norm 2p(1 − p)), 2 seed 000's 2(1 − p) (norm 4p(1 − p)).

    `mae-dn` divides by the batch sum of the norms, so it is the same for either.
    """
    return _PLoss(lambda log_p: scale * (1 - log_p.exp()))


@register_loss("mse")
def _mse() -> nn.Module:
    return _PLoss(lambda log_p: (1 - log_p.exp()) ** 2)


@register_loss("gce")
def _gce(*, q: float, truncate: float) -> nn.Module:
    """Generalised cross entropy L_q(p_i) = (1 − p_i^q)/q (Zhang & Sabuncu 2018).

    `truncate` k > 0: their truncated loss L_q(max(p_i, k)), constant (gradient 0) where p_i ≤ k (seed 000 Eq. 5; the
    paper's k is 0.5). Only the truncation is implemented, not the paper's pruning schedule (the alternating convex
    search that seed 000 §3.1 describes).
    """
    floor = math.log(truncate) if truncate > 0 else -math.inf
    return _PLoss(lambda log_p: (1 - (q * torch.where(log_p > floor, log_p, floor)).exp()) / q)


def _derivative_normalised(emphasis: str) -> LossBuilder:
    """The -dn variants: the authors' sumW layers write (p − onehot)·(w_i/2(1 − p_i)) in closed form, so no guard."""

    def build() -> nn.Module:
        return EmphasisLoss(make_emphasis(emphasis), "sum")

    return build


for _name in ("cce", "mae", "mse"):
    register_loss(f"{_name}-dn")(_derivative_normalised(_name))


@register_loss("gce-dn")
def _gce_dn(*, q: float) -> nn.Module:
    return EmphasisLoss(make_emphasis("gce", q=q), "sum")


@register_loss("ls")
def _label_smoothing(*, epsilon: float) -> nn.Module:
    return nn.CrossEntropyLoss(label_smoothing=epsilon)


@register_loss("boot-soft")
def _boot_soft(*, beta: float) -> nn.Module:
    return _Bootstrap(beta, hard=False)


@register_loss("boot-hard")
def _boot_hard(*, beta: float) -> nn.Module:
    return _Bootstrap(beta, hard=True)


@register_loss("sce")
def _sce(*, alpha: float, beta: float) -> nn.Module:
    return _SymmetricCE(alpha, beta)


@register_loss("gradsim")
def _gradsim(*, a: float, k: int, within_class: bool, layers: Layers, drop: float) -> nn.Module:
    return GradSimLoss(a, k, within_class=within_class, layers=layers, drop=drop)


@register_loss("gradsim-random")
def _gradsim_random() -> nn.Module:
    return _RandomWeights()


@register_loss("gradsim-oracle")
def _gradsim_oracle() -> nn.Module:
    """Reads the noise mask: an upper bound for analysis, not a method."""
    return _OracleWeights()


@register_loss("l2r")
def _l2r(*, meta_lr: float, layers: Layers) -> nn.Module:
    """Learning to reweight from a trusted probe set; meta_lr: the authors' fixed virtual step size."""
    return L2R(meta_lr, layers)


@register_loss("ieg")
def _ieg(*, meta_lr: float, p: float, k: float, temperature: float, init_relabel: float, meta_momentum: bool,
         mixup_alpha: float, uc: bool, mc: bool, aa: bool, relabel: bool, layers: Layers) -> nn.Module:
    """IEG with switches for seed 003 Table 7's components."""
    return IEG(meta_lr=meta_lr, p=p, k=k, temperature=temperature, init_relabel=init_relabel,
               meta_momentum=meta_momentum, mixup_alpha=mixup_alpha, uc=uc, mc=mc, aa=aa, relabel=relabel,
               layers=layers)
