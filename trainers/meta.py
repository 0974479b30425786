"""The meta step of learning to reweight (Ren et al. 2018) and IEG (seed 003): per-example loss weights ε and relabel
coefficients λ from one virtual SGD step, judged by the loss on a trusted probe set.

The batch's loss is Σ_i ε_i·CE(t_i, z_i) with t_i = λ_i·onehot(y_i) + (1 − λ_i)·g_i (g the pseudo-labels). A virtual
step θ' = θ − α·(μ·m + ∇_θ Σ_i ε_i·CE(t_i, z_i)) (m the optimiser's momentum buffer) moves the model, and the probe
loss L_p(θ') says which examples helped. With u = J_θ z · ∇L_p(θ') (the change of the batch's logits along the probe
gradient, one forward-mode pass) and δ_i = softmax(z_i) − t_i, exactly:

    ∂L_p/∂ε_i = −α·δ_i·u_i,        ∂L_p/∂λ_i = α·ε_i·(onehot(y_i) − g_i)·u_i.

So no second-order backward is needed. At ε = 0 without momentum, θ' = θ and −∂L_p/∂ε_i = α·∇ℓ_i·∇L_p, L2R's rule.
The virtual pass runs the model on copies of its batch-norm statistics: it never changes the model. The optimiser's
weight decay is left out of the virtual step and of L_p (the authors' code has it in both; at 1e-4 to 5e-4 it moves θ'
by α·wd·θ).
"""

from __future__ import annotations

import torch
import torch.autograd.forward_ad as fwad
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from trainers.emphasis import at_least_float32
from trainers.methods import Layers

NORMALISER = 1e-5  # the weights' normaliser Σ max(−∂L_p/∂ε, 0) + this, as the authors' code
Params = dict[str, Tensor]


def meta_params(model: nn.Module, layers: Layers) -> Params:
    """The parameters the virtual step moves: all of `model`'s, or its final linear layer's (`model.head`)."""
    params = dict(model.named_parameters())
    return params if layers == "all" else {name: p for name, p in params.items() if name.startswith("head.")}


def virtual_step(params: Params, grads: Params, meta_lr: float, momentum: float = 0.0,
                 buffers: Params | None = None) -> Params:
    """θ' = θ − meta_lr·(momentum·m + g) for each named parameter, detached (m: `buffers`, missing ones 0)."""
    out = {}
    for name, p in params.items():
        step = grads[name].detach()
        if momentum and buffers is not None and buffers.get(name) is not None:
            step = step + momentum * buffers[name]
        out[name] = (p.detach() - meta_lr * step).detach()
    return out


def momentum_of(optimizer: torch.optim.Optimizer | None, model: nn.Module) -> tuple[float, Params]:
    """The SGD momentum μ and each parameter's momentum buffer (by name) of `optimizer`; (0, {}) for the others."""
    if not isinstance(optimizer, torch.optim.SGD):
        return 0.0, {}
    buffers = {name: optimizer.state[p].get("momentum_buffer") for name, p in model.named_parameters()
               if p in optimizer.state}
    return float(optimizer.param_groups[0]["momentum"]), {k: v for k, v in buffers.items() if v is not None}


def probe_gradient(model: nn.Module, params: Params, probe: tuple[Tensor, Tensor]) -> Params:
    """∇ of the probe's mean cross-entropy with respect to `params` (names of `model`'s parameters, at these values;
    the others held at the model's own), the model run in its current mode on copies of its buffers."""
    leaves = {name: p.detach().requires_grad_() for name, p in params.items()}
    fixed = {name: p.detach() for name, p in model.named_parameters() if name not in leaves}
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    with torch.enable_grad():
        logits = functional_call(model, (leaves, fixed, buffers), (probe[0],))
        loss = F.cross_entropy(at_least_float32(logits), probe[1])
        grads = torch.autograd.grad(loss, list(leaves.values()))
    return dict(zip(leaves, grads))


def logits_along(model: nn.Module, inputs: Tensor, tangent: Params, *, copy_buffers: bool) -> tuple[Tensor, Tensor]:
    """The model's logits for `inputs` and their derivative u = J_θ z · tangent along the named parameter directions
    (one forward-mode pass). The logits keep their autograd graph where grad is enabled, so this can be the batch's
    own forward; `copy_buffers` runs it on copies of the batch-norm statistics instead (a second pass)."""
    buffers = {name: b.clone() for name, b in model.named_buffers()} if copy_buffers else {}
    with fwad.dual_level():
        duals = {name: fwad.make_dual(p, tangent[name].to(p.dtype)) if name in tangent else p
                 for name, p in model.named_parameters()}
        primal, u = fwad.unpack_dual(functional_call(model, (duals, buffers), (inputs,)))
    return primal, u.detach()


def head_logits_along(features: Tensor, tangent: Params) -> Tensor:
    """u = J z · tangent for a final linear layer `head` with input `features`: features·dWᵀ + db (float32 at least)."""
    with torch.autocast(features.device.type, enabled=False):
        h = at_least_float32(features.detach())
        return h @ tangent["head.weight"].to(h.dtype).T + tangent["head.bias"].to(h.dtype)


def meta_derivatives(logits: Tensor, u: Tensor, labels: Tensor, pseudo: Tensor | None, weights: Tensor,
                     relabel: Tensor, meta_lr: float) -> tuple[Tensor, Tensor]:
    """(∂L_p/∂ε, ∂L_p/∂λ) at the batch's weights ε and relabel coefficients λ (module docstring), in float32 at least.

    `labels` are the given labels (B,), `pseudo` the pseudo-labels (B×C; None: the given labels, so ∂L_p/∂λ = 0).
    """
    z = at_least_float32(logits.detach())
    onehot = F.one_hot(labels, z.shape[1]).to(z.dtype)
    other = onehot if pseudo is None else pseudo.to(z.dtype)
    lam = relabel.to(z.dtype)[:, None]
    delta = z.softmax(1) - (lam * onehot + (1 - lam) * other)
    u = u.to(z.dtype)
    return -meta_lr * (delta * u).sum(1), meta_lr * weights.to(z.dtype) * ((onehot - other) * u).sum(1)


def meta_step(model: nn.Module, inputs: Tensor, logits: Tensor, labels: Tensor, probe: tuple[Tensor, Tensor], *,
              weights: Tensor, relabel: Tensor, pseudo: Tensor | None, meta_lr: float, layers: Layers = "all",
              features: Tensor | None = None, momentum: float = 0.0,
              buffers: Params | None = None) -> tuple[Tensor, Tensor]:
    """(∂L_p/∂ε, ∂L_p/∂λ) at `weights` ε and `relabel` λ after the virtual step from the batch's `logits` (computed by
    `model` from `inputs`, their graph kept; for layers "last", from `features` by `model.head`).

    The step is θ' = θ − meta_lr·(momentum·m + ∇ Σ ε_i·CE(t_i, z_i)), m the momentum `buffers` by parameter name; the
    directional derivative at θ is a second pass of the batch on copies of the batch-norm statistics (with its own
    dropout draw, where the model has dropout). The model is left as it was.
    """
    params = meta_params(model, layers)
    with torch.autocast(logits.device.type, enabled=False):
        loss = (weights * soft_cross_entropy(logits, soft_targets(labels, pseudo, relabel, logits.shape[1]))).sum()
        grads = torch.autograd.grad(loss, list(params.values()), retain_graph=True)
    tangent = probe_gradient(model, virtual_step(params, dict(zip(params, grads)), meta_lr, momentum, buffers), probe)
    if layers == "last":
        u = head_logits_along(features, tangent)
    else:
        with torch.no_grad():
            u = logits_along(model, inputs, tangent, copy_buffers=True)[1]
    return meta_derivatives(logits, u, labels, pseudo, weights, relabel, meta_lr)


def weights_from(d_weight: Tensor) -> Tensor:
    """The new weights max(−∂L_p/∂ε, 0), normalised by their sum + NORMALISER (all 0 where none helps)."""
    w = (-d_weight).clamp_min(0)
    return w / (w.sum() + NORMALISER)


def relabel_from(d_relabel: Tensor) -> Tensor:
    """The sign rule: λ = 1 (keep the given label) where ∂L_p/∂λ < 0, else 0 (take the pseudo-label)."""
    return (d_relabel < 0).to(d_relabel.dtype)


def soft_targets(labels: Tensor, pseudo: Tensor | None, relabel: Tensor | float, num_classes: int) -> Tensor:
    """λ·onehot(labels) + (1 − λ)·pseudo, per example (the given labels alone where `pseudo` is None)."""
    onehot = F.one_hot(labels, num_classes).float()
    if pseudo is None:
        return onehot
    lam = relabel[:, None] if isinstance(relabel, Tensor) else relabel
    return lam * onehot + (1 - lam) * pseudo.float()


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Per-example cross-entropy −Σ_c t_c·log softmax(z)_c against soft targets, in float32 at least."""
    return -(targets.to(at_least_float32(logits).dtype) * at_least_float32(logits).log_softmax(1)).sum(1)
