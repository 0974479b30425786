"""Losses: DM's gradient identity against a 60-digit reference, the common losses' weightings (seed 002 Eq. 5–6),
derivative normalisation, the baselines' formulas, and finite gradients at extreme logits."""

import math

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainers import ConfigError, EmphasisLoss, list_losses, loss_params, make_loss
from trainers.emphasis import Emphasis, make_emphasis
from trainers.reweight import ProbeMethod

mpmath.mp.dps = 60
C = 10
# Margins of the target logit over the others: from a wrong confident prediction, through the range where
# 1 − p underflows float32 (≈ 17) and float64 (≈ 37), to logits of 1e4.
# The losses of logits; the methods that run the model themselves are tested in test_meta.py and test_ieg.py.
LOGIT_LOSSES = [name for name in list_losses() if not isinstance(make_loss(name), ProbeMethod)]
MARGINS = [-1e4, -30.0, -3.0, 0.0, 0.5, 3.0, 10.0, 17.0, 20.0, 40.0, 100.0, 1e4]
# The authors' released layer (GR_caffe_layer/unified_weight_loss_layer.cpp): (p − onehot)·w_i/(2 − 2p_i + 1e-6),
# divided by 1e-8 + Σ_j w_j. Written here as numbers, independently of trainers.losses' constants.
GUARD, SUM_GUARD = 1e-6, 1e-8


def batch(dtype: torch.dtype = torch.float32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (one row per margin) and targets."""
    g = torch.Generator().manual_seed(seed)
    z = torch.rand(len(MARGINS), C, generator=g, dtype=torch.float64) * 2 - 1
    y = torch.randint(0, C, (len(MARGINS),), generator=g)
    for i, m in enumerate(MARGINS):
        z[i, y[i]] = m
    return z.to(dtype), y


def reference(z: torch.Tensor, y: torch.Tensor, weight) -> tuple[list, list]:
    """Per row, in 60 digits: the weight w_i = weight(p_i) and CCE's direction (p − onehot)/(2(1 − p_i))."""
    weights, directions = [], []
    for row, t in zip(z.double().tolist(), y.tolist()):
        e = [mpmath.exp(mpmath.mpf(v)) for v in row]
        total = mpmath.fsum(e)
        p = [v / total for v in e]
        one_minus = mpmath.fsum(p[j] for j in range(C) if j != t)
        weights.append(weight(p[t], one_minus))
        # p_t − 1 = −Σ_{j≠t} p_j: exact even where 60 digits round p_t to 1 (margin 1e4)
        directions.append([(-one_minus if j == t else p[j]) / (2 * one_minus) for j in range(C)])
    return weights, directions


def expected_grad(weights: list, directions: list, normalize: str) -> torch.Tensor:
    scale = {"sum": 1 / (SUM_GUARD + mpmath.fsum(weights)), "mean": mpmath.mpf(1) / len(weights),
             "none": mpmath.mpf(1)}[normalize]
    return torch.tensor([[float(scale * w * d) for d in row] for w, row in zip(weights, directions)],
                        dtype=torch.float64)


def call(loss: torch.nn.Module, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """loss(z, y) with what its `needs` asks the trainer for: features of the final layer, a noise mask."""
    extras = {"features": torch.randn(len(y), 8, generator=torch.Generator().manual_seed(3)),
              "noisy": torch.arange(len(y)) % 3 == 0}
    return loss(z, y, **{name: extras[name] for name in getattr(loss, "needs", ())})


def logit_grad(loss: torch.nn.Module, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    z = z.clone().requires_grad_()
    (g,) = torch.autograd.grad(call(loss, z, y), z)
    return g


def dm_ref(lam: float, beta: float):
    return lambda p, r: mpmath.exp(beta * p**lam * r)


@pytest.mark.parametrize("normalize", ["sum", "mean", "none"])
@pytest.mark.parametrize(("lam", "beta"), [(0.0, 1.0), (0.5, 8.0), (1.0, 16.0), (2.0, 24.0), (1.0, -4.0)])
def test_dm_gradient_identity_float32(lam: float, beta: float, normalize: str) -> None:
    """The exact gradient (eps 0): ‖∂L/∂z_i‖₁ = s·w_i and the direction is CCE's, for every margin, in float32."""
    z, y = batch(torch.float32)
    g = logit_grad(make_loss("dm", lam=lam, beta=beta, normalize=normalize, eps=0.0), z, y).double()
    weights, directions = reference(z, y, dm_ref(lam, beta))
    want = expected_grad(weights, directions, normalize)
    torch.testing.assert_close(g.abs().sum(1), want.abs().sum(1), rtol=2e-6, atol=0)
    torch.testing.assert_close(g, want, rtol=2e-6, atol=1e-30)
    unit = g / g.abs().sum(1, keepdim=True)
    torch.testing.assert_close(unit, expected_grad([1] * len(weights), directions, "none"), rtol=1e-6, atol=1e-30)
    if normalize == "sum":
        assert g.abs().sum().item() == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("eps", [GUARD, 1e-8, 1e-3])
def test_dm_with_eps_is_the_authors_guarded_gradient(eps: float) -> None:
    """eps > 0: w_i/(2(1 − p_i) + ε)·(p − onehot)/(1e-8 + Σw), as the authors' code, without its float32 round-off."""
    z, y = batch(torch.float32)
    g = logit_grad(make_loss("dm", lam=1.0, beta=8.0, normalize="sum", eps=eps), z, y).double()
    weights, directions = reference(z, y, dm_ref(1.0, 8.0))
    total = SUM_GUARD + mpmath.fsum(weights)
    want = []
    for row, t in zip(z.double().tolist(), y.tolist()):
        e = [mpmath.exp(mpmath.mpf(v)) for v in row]
        p = [v / mpmath.fsum(e) for v in e]
        r = mpmath.fsum(p[j] for j in range(C) if j != t)
        c = mpmath.exp(8.0 * p[t] * r) / (2 * r + eps) / total
        want.append([float(c * (-r if j == t else p[j])) for j in range(C)])
    torch.testing.assert_close(g, torch.tensor(want, dtype=torch.float64), rtol=2e-6, atol=1e-30)
    confident = torch.tensor(MARGINS) >= 40  # 1 − p ≪ ε: the guarded gradient fades out
    assert (g[confident].abs().sum(1) < 1e-6).all()


AUTHORS_WEIGHTS = {  # each DM variant's w(p) (seed 002 §3–4), written out in float64
    "dm": ({"lam": 0.5, "beta": 8.0}, lambda p: np.exp(8.0 * np.sqrt(p) * (1 - p))),
    "dm-normal": ({"psi": 0.5, "beta": 4.0}, lambda p: np.exp(-4.0 * p * (p - 1.0))),
    "dm-exp": ({"beta": 1.0}, lambda p: np.exp(1.0 * (1 - p))),
    "dm-beta": ({"alpha": 2.0, "eta": 3.0}, lambda p: p * (1 - p) ** 2),
}


def authors_layer(z: np.ndarray, y: np.ndarray, weight) -> np.ndarray:
    """The logit gradient of the authors' UnifiedWeightLoss layer, line by line, in float64: diff = p; diff[y] −= 1;
    diff /= 2 − 2p_y + 1e-6; diff *= w; diff *= 1/(1e-8 + Σw)."""
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    rows = np.arange(len(y))
    w = weight(p[rows, y])
    diff = p.copy()
    diff[rows, y] -= 1
    diff /= (2 - 2 * p[rows, y] + 1e-6)[:, None]
    diff *= w[:, None]
    return diff / (1e-8 + w.sum())


@pytest.mark.parametrize("method", sorted(AUTHORS_WEIGHTS))
def test_every_dm_variant_defaults_to_the_authors_layer(method: str) -> None:
    """The default of every DM variant is the authors' layer: at ordinary logits and at confident ones (1 − p_i down to
    about 1e-10, where the 1e-6 guard fades the gradient), in float64 and in float32."""
    params, weight = AUTHORS_WEIGHTS[method]
    assert loss_params(method)["eps"] == GUARD and loss_params(method)["normalize"] == "sum"
    g = torch.Generator().manual_seed(5)
    margins = [-3.0, 0.0, 0.5, 2.0, 5.0, 10.0, 14.0, 17.0, 20.0, 25.0]
    z = torch.rand(len(margins), C, generator=g, dtype=torch.float64) * 2 - 1
    y = torch.randint(0, C, (len(margins),), generator=g)
    z[torch.arange(len(margins)), y] = torch.tensor(margins, dtype=torch.float64)
    want = torch.from_numpy(authors_layer(z.numpy(), y.numpy(), weight))
    loss = make_loss(method, **params)
    torch.testing.assert_close(logit_grad(loss, z, y), want, rtol=1e-6, atol=1e-300)
    torch.testing.assert_close(logit_grad(loss, z.float(), y).double(), want, rtol=2e-5, atol=1e-30)
    faded = want.abs().sum(1)[-1] / want.abs().sum(1)[3]  # margin 25 against margin 2: the guard's doing
    assert faded < 1e-3


def test_dm_gradient_identity_float64() -> None:
    z, y = batch(torch.float64)
    g = logit_grad(make_loss("dm", lam=1.0, beta=8.0, normalize="none", eps=0.0), z, y)
    weights, directions = reference(z, y, dm_ref(1.0, 8.0))
    torch.testing.assert_close(g, expected_grad(weights, directions, "none"), rtol=1e-12, atol=1e-300)


def test_guarded_weighted_ce_gets_confident_examples_wrong() -> None:
    """Why the stable form matters: the ε-guarded form c_i·CE_i gets confident examples' gradient norm wrong."""
    z, y = batch(torch.float32)
    p = z.softmax(1).gather(1, y[:, None]).squeeze(1)
    c = torch.exp(8.0 * p * (1 - p)) / (2 * (1 - p) + 1e-8)
    zz = z.clone().requires_grad_()
    (guarded,) = torch.autograd.grad((c.detach() * F.cross_entropy(zz, y, reduction="none")).sum(), zz)
    exact = logit_grad(make_loss("dm", lam=1.0, beta=8.0, normalize="none", eps=0.0), z, y)
    confident = torch.tensor(MARGINS) >= 20
    assert ((guarded[confident].abs().sum(1) - 1).abs() > 0.3).all()  # the exact norm is w_i ≈ 1
    torch.testing.assert_close(exact[confident].abs().sum(1), torch.ones(int(confident.sum())), rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", LOGIT_LOSSES)
def test_finite_gradients_at_extreme_logits(name: str, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(1)
    z = ((torch.rand(64, C, generator=g) * 2 - 1) * 1e4).to(dtype)
    y = torch.randint(0, C, (64,), generator=g)
    value_and_grad = logit_grad(make_loss(name), z, y)
    assert value_and_grad.dtype == dtype
    assert torch.isfinite(value_and_grad.float()).all()
    assert torch.isfinite(call(make_loss(name), z, y)).all()


@pytest.mark.parametrize("name", ["dm", "cce-dn", "mae", "sce", "boot-soft"])
def test_bf16_autocast_gives_float32_loss_and_finite_parameter_gradients(name: str) -> None:
    layer = torch.nn.Linear(16, C)
    x = torch.randn(32, 16) * 1e3
    y = torch.randint(0, C, (32,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = layer(x)
        loss = make_loss(name)(logits, y)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


COMMON = {  # loss → its implicit weight w(p) (seed 002 Eq. 6), and its gradient as a multiple of CCE's (Eq. 5)
    "cce": (lambda p, r: 2 * r, lambda p: 1.0),
    "mae": (lambda p, r: 2 * p * r, lambda p: p),
    "mse": (lambda p, r: 4 * p * r**2, lambda p: 2 * p * (1 - p)),
    "gce": (lambda p, r: 2 * p**0.7 * r, lambda p: p**0.7),
}


def moderate_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return torch.randn(16, C, generator=g, dtype=torch.float64) * 3, torch.randint(0, C, (16,), generator=g)


@pytest.mark.parametrize("name", sorted(COMMON))
def test_common_losses_are_their_weighting_times_cce_direction(name: str) -> None:
    z, y = moderate_batch()
    weight, factor = COMMON[name]
    params = {"q": 0.7} if name == "gce" else {}
    g = logit_grad(make_loss(name, **params), z, y) * len(y)  # undo the mean over the batch
    weights, directions = reference(z, y, weight)
    torch.testing.assert_close(g, expected_grad(weights, directions, "none"), rtol=1e-10, atol=1e-14)
    p = z.softmax(1).gather(1, y[:, None])
    cce = logit_grad(make_loss("cce"), z, y) * len(y)
    torch.testing.assert_close(g, factor(p) * cce, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", sorted(COMMON))
def test_derivative_normalised_variants(name: str) -> None:
    """"-dn": the loss's own gradient divided by 1e-8 + the batch sum of its weights (the authors' sumW layers)."""
    z, y = moderate_batch()
    params = {"q": 0.7} if name == "gce" else {}
    g = logit_grad(make_loss(f"{name}-dn", **params), z, y)
    weights, directions = reference(z, y, COMMON[name][0])
    torch.testing.assert_close(g, expected_grad(weights, directions, "sum"), rtol=1e-10, atol=1e-14)
    own = logit_grad(make_loss(name, **params), z, y) * len(y)
    torch.testing.assert_close(g, own / float(SUM_GUARD + mpmath.fsum(weights)), rtol=1e-10, atol=1e-14)


def _target_p(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """p_i = exp(z_iy)/Σ_j exp(z_ij), written out (moderate float64 logits), differentiable."""
    e = z.exp()
    return e.gather(1, y[:, None]).squeeze(1) / e.sum(1)


def test_mae_scale_2_is_seed_000s_mae_with_gradient_norm_4p_1_minus_p() -> None:
    z, y = moderate_batch()
    leaf = z.clone().requires_grad_()
    p = _target_p(leaf, y)
    (want,) = torch.autograd.grad((2 * (1 - p)).sum(), leaf)  # seed 000: L = 2(1 − p_i)
    g = logit_grad(make_loss("mae", scale=2.0), z, y) * len(y)  # undo the mean over the batch
    torch.testing.assert_close(g, want, rtol=1e-12, atol=1e-15)
    p = p.detach()
    torch.testing.assert_close(g.abs().sum(1), 4 * p * (1 - p), rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(logit_grad(make_loss("mae"), z, y).abs().sum(1) * len(y), 2 * p * (1 - p),
                               rtol=1e-12, atol=1e-15)  # seed 002's 1 − p_i, the default


def test_truncated_gce_is_constant_below_k() -> None:
    """Zhang & Sabuncu 2018, seed 000 Eq. 5: L_q(p_i) where p_i > k, else L_q(k), with L_q(γ) = (1 − γ^q)/q."""
    q, k = 0.7, 0.5
    z, y = moderate_batch()
    leaf = z.clone().requires_grad_()
    p = _target_p(leaf, y)
    above = p.detach() > k
    assert above.any() and not above.all()
    lq = [(1 - max(pi, k) ** q) / q for pi in p.tolist()]
    loss = make_loss("gce", q=q, truncate=k)
    torch.testing.assert_close(loss(z, y), torch.tensor(math.fsum(lq) / len(lq), dtype=torch.float64),
                               rtol=1e-13, atol=0)
    (want,) = torch.autograd.grad(((1 - p**q) / q)[above].sum(), leaf)  # rows at or below k: no term, gradient 0
    g = logit_grad(loss, z, y) * len(y)
    torch.testing.assert_close(g, want, rtol=1e-12, atol=1e-15)
    assert (g[~above] == 0).all() and (g[above] != 0).all()
    torch.testing.assert_close(make_loss("gce", q=q, truncate=0.0)(z, y), make_loss("gce", q=q)(z, y), rtol=0, atol=0)


def test_label_smoothing() -> None:
    z, y = moderate_batch()
    logp = z.log_softmax(1)
    want = (0.8 * -logp.gather(1, y[:, None]).squeeze(1) + 0.2 * -logp.mean(1)).mean()
    torch.testing.assert_close(make_loss("ls", epsilon=0.2)(z, y), want)


def test_bootstrapping_soft_and_hard() -> None:
    z, y = moderate_batch()
    p, logp, onehot = z.softmax(1), z.log_softmax(1), F.one_hot(y, C).double()
    soft = -((0.95 * onehot + 0.05 * p) * logp).sum(1).mean()
    hard = -((0.8 * onehot + 0.2 * F.one_hot(p.argmax(1), C).double()) * logp).sum(1).mean()
    torch.testing.assert_close(make_loss("boot-soft")(z, y), soft)
    torch.testing.assert_close(make_loss("boot-hard")(z, y), hard)


def test_symmetric_cross_entropy_matches_the_reference_formula() -> None:
    z, y = moderate_batch()
    pred = z.softmax(1).clamp(1e-7, 1.0)
    rce = -(pred * F.one_hot(y, C).double().clamp(1e-4, 1.0).log()).sum(1)
    want = 0.1 * F.cross_entropy(z, y) + 1.0 * rce.mean()
    torch.testing.assert_close(make_loss("sce")(z, y), want)


def test_dm_weights_are_constants() -> None:
    """No gradient flows through w: the second derivative along the weights' path would change ∂L/∂z."""
    z, y = batch(torch.float64)
    z = z[2:9]  # moderate margins
    y = y[2:9]
    loss = make_loss("dm", lam=1.0, beta=8.0, normalize="sum", eps=0.0)
    zz = z.clone().requires_grad_()
    (g,) = torch.autograd.grad(loss(zz, y), zz)
    weights, directions = reference(z, y, dm_ref(1.0, 8.0))
    torch.testing.assert_close(g, expected_grad(weights, directions, "sum"), rtol=1e-12, atol=1e-300)


def autograd_emphasis_loss(loss: EmphasisLoss, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """EmphasisLoss written plainly, for autograd to differentiate: ½Σ s·w_i·(log Σ_{j≠y_i} e^{z_j} − z_{y_i}),
    s·w_i (with the ε fade-out) held constant."""
    log_all = z.logsumexp(1)
    log_others = z.masked_fill(F.one_hot(y, z.shape[1]).bool(), -math.inf).logsumexp(1)
    target_logit = z.gather(1, y[:, None]).squeeze(1)
    with torch.no_grad():
        r = (log_others - log_all).exp()
        w = loss.emphasis((target_logit - log_all).exp(), r)
        w = {"sum": w / (SUM_GUARD + w.sum()), "mean": w / len(w), "none": w}[loss.normalize]
        w = w * (2 * r / (2 * r + loss.eps)) if loss.eps > 0 else w
    return 0.5 * (w * (log_others - target_logit)).sum()


EMPHASES = [("dm", {"lam": 0.5, "beta": 8.0}), ("dm", {"lam": 2.0, "beta": -4.0}),
            ("normal", {"psi": 0.5, "beta": 4.0}),
            ("exponential", {"beta": 1.0}), ("beta", {"alpha": 2.0, "eta": 3.0}), ("cce", {}), ("mse", {}),
            ("gce", {"q": 0.7})]


@pytest.mark.parametrize("eps", [0.0, 1e-8, 1e-3])
@pytest.mark.parametrize("normalize", ["sum", "mean", "none"])
@pytest.mark.parametrize(("emphasis", "params"), EMPHASES)
def test_emphasis_loss_value_and_gradient_equal_autograd_through_the_formula(emphasis: str, params: dict,
                                                                              normalize: str, eps: float) -> None:
    loss = EmphasisLoss(make_emphasis(emphasis, **params), normalize, eps)
    extreme, y_extreme = batch(torch.float64)
    moderate, y_moderate = moderate_batch()
    for z, y in [(extreme, y_extreme), (moderate, y_moderate)]:
        ours, plain = z.clone().requires_grad_(), z.clone().requires_grad_()
        value, want = loss(ours, y), autograd_emphasis_loss(loss, plain, y)
        (-3 * value).backward()  # the chain rule's factor reaches the logits
        (-3 * want).backward()
        torch.testing.assert_close(value, want, rtol=1e-13, atol=0)
        torch.testing.assert_close(ours.grad, plain.grad, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("normalize", ["sum", "mean", "none"])
def test_emphasis_loss_gradient_is_the_derivative_of_its_value_where_the_weights_are_constant(normalize: str) -> None:
    """gradcheck: with weights that do not depend on p (here fixed ones), the value's derivative is the gradient."""
    z, y = moderate_batch()
    fixed = torch.rand(len(y), generator=torch.Generator().manual_seed(4), dtype=torch.float64) + 0.1
    loss = EmphasisLoss(Emphasis("fixed", lambda p, r: fixed.reshape(p.shape), math.nan), normalize)
    assert torch.autograd.gradcheck(lambda logits: loss(logits, y), (z.clone().requires_grad_(),))
    drifting = EmphasisLoss(make_emphasis("dm", lam=1.0, beta=8.0), normalize)  # the weights' own slope left out
    assert not torch.autograd.gradcheck(lambda logits: drifting(logits, y), (z.clone().requires_grad_(),),
                                        raise_exception=False)


def test_emphasis_loss_in_float32_is_the_float64_loss_rounded() -> None:
    z, y = moderate_batch()
    loss = make_loss("dm", lam=1.0, beta=8.0)
    single, double = z.float().requires_grad_(), z.clone().requires_grad_()
    value, want = loss(single, y), loss(double, y)
    value.backward()
    want.backward()
    assert value.dtype == single.grad.dtype == torch.float32
    torch.testing.assert_close(value.double(), want, rtol=1e-6, atol=0)
    torch.testing.assert_close(single.grad.double(), double.grad, rtol=1e-5, atol=1e-9)


def test_loss_params_and_errors() -> None:
    assert loss_params("dm") == {"lam": 0.5, "beta": 8.0, "normalize": "sum", "eps": GUARD}  # seed 000 Table 6
    assert loss_params("cce") == {}
    with pytest.raises(ConfigError, match="one of: .*cce"):
        make_loss("nope")
    with pytest.raises(ConfigError, match="parameters of dm: lam, beta, normalize, eps") as err:
        make_loss("dm", q=0.5)
    assert err.value.field == "dm.q"
    with pytest.raises(ConfigError, match="normalize"):
        make_loss("dm", normalize="max")
    with pytest.raises(ConfigError, match="q"):
        make_loss("gce", q=0.0)
    for name, params in [("mae", {"scale": 0.0}), ("gce", {"truncate": 1.0}), ("gce", {"truncate": -0.1})]:
        with pytest.raises(ConfigError) as err:
            make_loss(name, **params)
        assert err.value.field == next(iter(params))


def test_every_method_is_a_module_returning_a_scalar() -> None:
    z, y = moderate_batch()
    for name in LOGIT_LOSSES:
        out = call(make_loss(name), z, y)
        assert isinstance(make_loss(name), torch.nn.Module) and out.shape == () and math.isfinite(out.item())
