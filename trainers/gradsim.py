"""Gradient-similarity example weighting (seed 004): up-weight examples whose gradients agree with others'.

w_i ∝ Σ over the k j ≠ i with the highest cos(g_i, g_j) of exp(a·cos(g_i, g_j)), g_i the gradient of example
i's cross-entropy loss. The weights are constants (no gradient flows through them) and sum to 1 over the batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from trainers.emphasis import at_least_float32
from trainers.errors import ConfigError
from trainers.methods import FINITE, K_NEIGHBOURS


def gradsim_weights(features: Tensor, logits: Tensor, targets: Tensor, a: float, k: int, *,
                    within_class: bool = False) -> Tensor:
    """Per-example weights (B,) from the cosines of the final linear layer's gradients (see `weights_from_cosines`).

    `features` (B×D) are the inputs of the final layer, `logits` (B×C) its outputs, `targets` the given labels;
    `within_class` compares each example only with those of the same given label.
    """
    cos = last_layer_cosines(features, logits, targets)
    return weights_from_cosines(cos, a, k, groups=targets if within_class else None)


@torch.no_grad()
def last_layer_cosines(features: Tensor, logits: Tensor, targets: Tensor) -> Tensor:
    """B×B cosines between the examples' cross-entropy gradients w.r.t. the final linear layer's weight and bias.

    ⟨g_i, g_j⟩ = (δ_i·δ_j)(h_i·h_j + 1) with δ = softmax(logits) − onehot(targets) and h = features, so no
    per-example gradient is formed. Float32 at least.
    """
    dtype = torch.promote_types(at_least_float32(features).dtype, at_least_float32(logits).dtype)
    h, z = features.detach().to(dtype), logits.detach().to(dtype)
    delta = z.softmax(1).scatter_add_(1, targets[:, None], z.new_full((len(z), 1), -1.0))
    return cosines_from_gram((h @ h.T).add_(1).mul_(delta @ delta.T))


def per_example_cosines(model: nn.Module, inputs: Tensor, targets: Tensor,
                        params: dict[str, Tensor] | None = None) -> Tensor:
    """B×B cosines between the examples' cross-entropy gradients w.r.t. `params` (default: all of `model`'s).

    Forms every per-example gradient (torch.func.vmap of grad), so it is for analysis on small batches; parameters
    left out of `params` are held fixed. Each example runs through `model` alone: use eval mode for batch norm.
    """
    params = dict(model.named_parameters()) if params is None else params
    params = {name: p.detach() for name, p in params.items()}
    buffers = dict(model.named_buffers())

    def loss(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(functional_call(model, (p, buffers), (x[None],)), y[None])

    grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, inputs, targets)
    flat = torch.cat([at_least_float32(g).reshape(len(inputs), -1) for g in grads.values()], 1)
    return cosines_from_gram(flat @ flat.T)


def cosines_from_gram(gram: Tensor) -> Tensor:
    """Cosines from a Gram matrix of inner products, norms from its diagonal; 0 where either norm is 0."""
    norms = gram.diagonal().clamp_min(0).sqrt()
    outer = norms[:, None] * norms[None, :]
    return torch.where(outer > 0, gram / outer, 0.0).clamp_(-1, 1)


@torch.no_grad()
def weights_from_cosines(cos: Tensor, a: float, k: int, *, groups: Tensor | None = None) -> Tensor:
    """Weights (B,) summing to 1, w_i ∝ Σ over the k j ≠ i with the highest cos_ij of exp(a·cos_ij).

    With `groups` (e.g. the given labels) only j in i's group count. k is clipped to the others available.
    An example with no other to compare with (alone in its group, or B = 1) gets the mean weight 1/B, as there
    is no evidence either way; the others share the rest in proportion to their scores.
    """
    check_a_k(a, k)
    n = cos.shape[0]
    scores = at_least_float32(cos.detach()).clone().fill_diagonal_(-math.inf)
    if groups is None and n > 1:  # every example has n − 1 others: no masks needed
        return (a * scores.topk(min(k, n - 1), dim=1, sorted=False).values).logsumexp(1).softmax(0)
    others = ~torch.eye(n, dtype=torch.bool, device=cos.device)
    if groups is not None:
        others &= groups[:, None] == groups[None, :]
    top = scores.masked_fill(~others, -math.inf).topk(min(k, n - 1), dim=1, sorted=False).values
    log_score = torch.where(top > -math.inf, a * top, -math.inf).logsumexp(1)
    alone = ~others.any(1)  # no host sync below: where all are alone, the NaN of an empty softmax is overwritten
    weights = log_score.masked_fill(alone, -math.inf).softmax(0) * (1 - alone.to(log_score.dtype).mean())
    return weights.masked_fill(alone, 1 / n)


def check_a_k(a: float, k: int) -> None:
    """ConfigError unless a is a finite number and k an integer ≥ 1."""
    K_NEIGHBOURS.check("k", k)
    FINITE.check("a", a)


def ranking_only_weights(scores: Tensor, drop_fraction: float) -> Tensor:
    """Weight 0 on the ⌊drop_fraction·B⌋ lowest-scored examples (ties: the lower index first), uniform on the rest.

    At least one example is kept; the weights sum to 1.
    """
    if not 0 <= drop_fraction < 1:
        raise ConfigError("drop_fraction", drop_fraction, "a number in [0, 1)")
    n = scores.numel()
    dropped = scores.detach().argsort(stable=True)[: min(math.floor(drop_fraction * n + 1e-9), n - 1)]
    weights = torch.ones(n, device=scores.device)
    weights[dropped] = 0
    return weights / weights.sum()


def random_uniform_weights(batch_size: int, generator: torch.Generator | None = None,
                           device: torch.device | str | None = None) -> Tensor:
    """The paper's random baseline: weights drawn independently from U[0, 2/B), not renormalised (mean 1/B).

    Drawn on `device` from `generator` (None: the device's global generator).
    """
    return torch.rand(batch_size, generator=generator, device=device) * (2 / batch_size)


def oracle_weights(noisy_mask: Tensor) -> Tensor:
    """Reads the noise mask (analysis only): weight 0 on noisy examples, uniform on the rest (all noisy: uniform)."""
    clean = ~noisy_mask.bool()
    keep = clean | ~clean.any()  # no host sync
    return keep.float() / keep.sum()


def noisy_among_extremes(weights: Tensor, noisy_mask: Tensor, n: int = 10) -> Tensor:
    """How many noisy examples are among the n highest- and among the n lowest-weighted (ties: lower index higher).

    The two counts as a tensor on the weights' device, so that a training loop can add them up without a host sync.
    """
    order = weights.detach().argsort(descending=True, stable=True)
    n = min(n, len(order))
    ends = order.as_strided((2, n), (len(order) - n, 1))  # rows: the first n of the order and the last n
    return noisy_mask.bool()[ends].sum(1)
