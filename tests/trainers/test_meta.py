"""The meta step of L2R and IEG (trainers.meta) against brute force and finite differences, in float64, tiny model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from trainers.ieg import IEG
from trainers.losses import loss_params, make_loss
from trainers.meta import meta_step, relabel_from, soft_cross_entropy, soft_targets, virtual_step, weights_from
from trainers.models import Classifier
from trainers.reweight import L2R

B, D, C, P = 8, 5, 3, 6
LR = 0.3


class Tiny(Classifier):
    """A linear layer, batch norm and tanh, then the head: small enough for per-example loops."""

    def __init__(self) -> None:
        super().__init__(dropout=0.0)
        self.body = nn.Sequential(nn.Linear(D, 7), nn.BatchNorm1d(7), nn.Tanh())
        self.head = nn.Linear(7, C)


@pytest.fixture()
def setup() -> tuple[Tiny, Tensor, Tensor, tuple[Tensor, Tensor], Tensor]:
    """A float64 model in training mode with non-trivial batch-norm statistics, a batch, a probe, pseudo-labels."""
    torch.manual_seed(0)
    model = Tiny().double().train()
    with torch.no_grad():
        model.body[1].running_mean.uniform_(-1, 1)
        model.body[1].running_var.uniform_(0.5, 2)
        model.body[1].weight.uniform_(0.5, 1.5)
    x, y = torch.randn(B, D, dtype=torch.float64), torch.randint(C, (B,))
    probe = (torch.randn(P, D, dtype=torch.float64), torch.arange(P) % C)
    pseudo = torch.rand(B, C, dtype=torch.float64).softmax(1)
    return model, x, y, probe, pseudo


def _params(model: nn.Module, layers: str) -> dict[str, Tensor]:
    return {n: p for n, p in model.named_parameters() if layers == "all" or n.startswith("head.")}


def _probe_loss_after_step(model: nn.Module, x: Tensor, y: Tensor, probe: tuple[Tensor, Tensor], pseudo: Tensor | None,
                           eps: Tensor, lam: Tensor, layers: str, momentum: float = 0.0,
                           buffers: dict[str, Tensor] | None = None) -> Tensor:
    """L_p(θ − α(μ·m + ∇Σ ε_i·CE(λ_i·y_i + (1−λ_i)·g_i, z_i))), all spelled out, on copies of the statistics."""
    params = _params(model, layers)
    stats = {n: b.clone() for n, b in model.named_buffers()}
    logits = functional_call(model, stats, (x,))
    targets = F.one_hot(y, C).double()
    if pseudo is not None:
        targets = lam[:, None] * targets + (1 - lam[:, None]) * pseudo
    loss = (eps * -(targets * logits.log_softmax(1)).sum(1)).sum()
    grads = torch.autograd.grad(loss, list(params.values()))
    moved = {n: p - LR * (g + momentum * (buffers or {}).get(n, 0)) for (n, p), g in zip(params.items(), grads)}
    probe_logits = functional_call(model, (moved, {n: b.clone() for n, b in model.named_buffers()}), (probe[0],))
    return F.cross_entropy(probe_logits, probe[1])


@pytest.mark.parametrize("layers", ["all", "last"])
def test_l2r_weights_equal_brute_force(setup: tuple, layers: str) -> None:
    """w = max(0, α·∇ℓ_i·∇L_p)/(Σ + 1e-5): per-example gradients by a loop, the probe's gradient by autograd."""
    model, x, y, probe, _ = setup
    params = _params(model, layers)
    stats = {n: b.clone() for n, b in model.named_buffers()}
    losses = F.cross_entropy(functional_call(model, stats, (x,)), y, reduction="none")
    probe_logits = functional_call(model, {n: b.clone() for n, b in model.named_buffers()}, (probe[0],))
    g_probe = torch.autograd.grad(F.cross_entropy(probe_logits, probe[1]), list(params.values()))
    dots = torch.stack([
        sum((g * h).sum() for g, h in zip(torch.autograd.grad(losses[i], list(params.values()), retain_graph=True),
                                         g_probe))
        for i in range(B)
    ])
    raw = (LR * dots).clamp_min(0)
    expected = raw / (raw.sum() + 1e-5)
    assert (expected > 0).any() and (expected == 0).any()  # a batch with helpful and unhelpful examples

    method = L2R(LR, layers)
    before = {n: t.clone() for n, t in model.state_dict().items()}
    logits, loss = method(x, y, model=model, probe=probe, noisy=torch.zeros(B, dtype=torch.bool))
    torch.testing.assert_close(method.last_scores, expected, rtol=1e-5, atol=1e-12)
    got = torch.autograd.grad(loss, list(model.parameters()))
    stats = [b.clone() for b in model.buffers()]
    # The batch's forward is the model's own: the statistics move once, by the batch, never by the probe.
    model.load_state_dict(before)
    plain = model(x)
    torch.testing.assert_close(logits, plain, rtol=1e-12, atol=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(stats, model.buffers()))
    # The loss is Σ w_i·CE_i, its gradient the plain forward's.
    weighted = (expected * F.cross_entropy(plain, y, reduction="none")).sum()
    for a, b in zip(got, torch.autograd.grad(weighted, list(model.parameters()))):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("layers", ["all", "last"])
def test_meta_gradients_match_finite_differences(setup: tuple, layers: str) -> None:
    """∂L_p/∂ε and ∂L_p/∂λ of IEG's virtual step (ε = 1/B, λ = 0.9, momentum) against central differences."""
    model, x, y, probe, pseudo = setup
    buffers = {n: torch.randn_like(p) for n, p in model.named_parameters()}
    eps, lam = torch.full((B,), 1 / B, dtype=torch.float64), torch.full((B,), 0.9, dtype=torch.float64)
    stats = {n: b.clone() for n, b in model.named_buffers()}
    features = functional_call(model.body, {n.removeprefix("body."): b for n, b in stats.items()}, (x,))
    logits = model.head(features) if layers == "last" else functional_call(model, stats, (x,))
    d_eps, d_lam = meta_step(model, x, logits, y, probe, weights=eps, relabel=lam, pseudo=pseudo, meta_lr=LR,
                             layers=layers, features=features, momentum=0.9, buffers=buffers)
    h = 1e-6

    def numeric(i: int, which: str) -> float:
        values = []
        for sign in (1, -1):
            e, lm = eps.clone(), lam.clone()
            (e if which == "eps" else lm)[i] += sign * h
            values.append(_probe_loss_after_step(model, x, y, probe, pseudo, e, lm, layers, 0.9, buffers))
        return float((values[0] - values[1]).detach() / (2 * h))

    torch.testing.assert_close(d_eps, torch.tensor([numeric(i, "eps") for i in range(B)], dtype=torch.float64),
                               rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(d_lam, torch.tensor([numeric(i, "lam") for i in range(B)], dtype=torch.float64),
                               rtol=1e-5, atol=1e-8)
    assert d_lam.abs().max() > 1e-4 and d_eps.abs().max() > 1e-4  # not trivially zero


def test_virtual_pass_leaves_the_model_unchanged(setup: tuple) -> None:
    model, x, y, probe, pseudo = setup
    logits = model(x)
    before = {n: t.clone() for n, t in model.state_dict().items()}
    meta_step(model, x, logits, y, probe, weights=torch.full((B,), 1 / B, dtype=torch.float64),
              relabel=torch.full((B,), 0.9, dtype=torch.float64), pseudo=pseudo, meta_lr=LR, momentum=0.9,
              buffers={n: torch.ones_like(p) for n, p in model.named_parameters()})
    after = model.state_dict()
    assert before.keys() == after.keys()
    for name, value in before.items():
        assert torch.equal(value, after[name]), name  # parameters, running mean and variance, batches tracked


def test_virtual_step_is_sgd_with_momentum() -> None:
    theta = {"w": torch.tensor([1.0, 2.0])}
    moved = virtual_step(theta, {"w": torch.tensor([0.5, -1.0])}, 0.1, 0.9, {"w": torch.tensor([1.0, 1.0])})
    torch.testing.assert_close(moved["w"], torch.tensor([1.0 - 0.1 * (0.9 + 0.5), 2.0 - 0.1 * (0.9 - 1.0)]))
    assert virtual_step(theta, {"w": torch.zeros(2)}, 0.1, 0.9)["w"].equal(theta["w"])  # no buffer: no momentum


def test_relabel_rule_and_weight_normalisation() -> None:
    assert relabel_from(torch.tensor([-1.0, 0.0, 2.0, -1e-9])).tolist() == [1.0, 0.0, 0.0, 1.0]
    w = weights_from(torch.tensor([-3.0, 1.0, -1.0, 0.0]))
    torch.testing.assert_close(w, torch.tensor([3.0, 0.0, 1.0, 0.0]) / (4 + 1e-5))
    assert weights_from(torch.tensor([1.0, 2.0])).tolist() == [0.0, 0.0]  # none helps: all weights 0


def test_soft_targets_mix_labels_and_pseudo_labels() -> None:
    pseudo = torch.tensor([[0.2, 0.8], [0.6, 0.4]])
    mixed = soft_targets(torch.tensor([0, 1]), pseudo, torch.tensor([1.0, 0.0]), 2)
    torch.testing.assert_close(mixed, torch.tensor([[1.0, 0.0], [0.6, 0.4]]))
    torch.testing.assert_close(soft_cross_entropy(torch.zeros(2, 2), mixed), torch.full((2,), 0.6931471805599453))


def test_ieg_meta_step_starts_at_uniform_weights_and_init_relabel(setup: tuple) -> None:
    """IEG's weights and relabel coefficients come from the meta step at ε = 1/B and λ = 0.9 by the sign rule."""
    assert loss_params("ieg")["init_relabel"] == 0.9 and loss_params("ieg")["meta_lr"] == 0.1
    model, x, y, probe, pseudo = setup
    method = make_loss("ieg", meta_lr=LR, meta_momentum=False)
    assert isinstance(method, IEG)
    logits = model(x)
    weights, relabel = method.meta(model, x, logits, y, probe, None, pseudo)
    start = torch.full((B,), 1 / B, dtype=torch.float64)
    numeric_eps, numeric_lam = [], []
    for i in range(B):
        for bucket, which in ((numeric_eps, "eps"), (numeric_lam, "lam")):
            values = []
            for sign in (1, -1):
                e, lam = start.clone(), torch.full((B,), 0.9, dtype=torch.float64)
                (e if which == "eps" else lam)[i] += sign * 1e-6
                values.append(_probe_loss_after_step(model, x, y, probe, pseudo, e, lam, "all"))
            bucket.append(float((values[0] - values[1]).detach() / 2e-6))
    raw = (-torch.tensor(numeric_eps, dtype=torch.float64)).clamp_min(0)
    torch.testing.assert_close(weights, raw / (raw.sum() + 1e-5), rtol=1e-5, atol=1e-8)
    assert relabel is not None
    assert relabel.tolist() == [1.0 if d < 0 else 0.0 for d in numeric_lam]
