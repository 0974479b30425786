"""The papers' emphasis variance σ (seed 002 Definition 2) and its scaled kin: the definition against an independent
integral, and the trainer's per-step σ against the weights of the batch computed directly."""

import copy

import mpmath
import pytest
import torch

import trainers
from trainers import TrainConfig, Trainer, emphasis_variance, make_emphasis


@pytest.mark.parametrize(("lam", "beta", "sigma", "scaled"), [(0.0, 2.0, 3.19, 0.313), (1.0, 8.0, 4.55, 0.233)])
def test_sigma_orders_settings_unlike_the_scaled_variance(lam: float, beta: float, sigma: float,
                                                          scaled: float) -> None:
    """For p uniform on [0, 1]: σ = E(w²) − E(w)² by quadrature, against the batch formula on the midpoints of a fine
    grid of p."""
    n = 100_000
    w = make_emphasis("dm", lam=lam, beta=beta)((torch.arange(n, dtype=torch.float64) + 0.5) / n)
    got, got_scaled = emphasis_variance(w)

    def moment(k: int) -> mpmath.mpf:
        return mpmath.quad(lambda p: mpmath.exp(k * beta * p**lam * (1 - p)), [0, 1])

    want = moment(2) - moment(1) ** 2
    assert float(got) == pytest.approx(float(want), rel=1e-6)
    assert float(got_scaled) == pytest.approx(float(want / moment(1) ** 2), rel=1e-6)
    assert float(got) == pytest.approx(sigma, abs=0.011) and float(got_scaled) == pytest.approx(scaled, abs=0.0015)


def test_the_two_variances_rank_the_papers_settings_oppositely() -> None:
    """(λ, β) = (0, 2) against (1, 8) over p uniform on [0, 1]: σ ranks (1, 8) higher, the scaled variance lower."""
    p = (torch.arange(10_000, dtype=torch.float64) + 0.5) / 10_000
    hard, mid = (emphasis_variance(make_emphasis("dm", lam=lam, beta=beta)(p)) for lam, beta in ((0, 2), (1, 8)))
    assert hard[0] < mid[0] and hard[1] > mid[1]


@pytest.fixture(scope="module")
def digits() -> trainers.Dataset:
    return trainers.load_dataset("digits")


def first_step_weights(trainer: Trainer, weight) -> torch.Tensor:
    """The weights w_i = weight(p_i) of the trainer's next batch under its current model, found on a copy."""
    twin = copy.deepcopy(trainer)
    idx = twin._next_batch()
    with torch.no_grad():
        twin.model.train()
        p = twin.model(twin.train_x[idx]).double().softmax(1).gather(1, twin.train_y[idx, None]).squeeze(1)
    return weight(p)


@pytest.mark.parametrize(("method", "params", "weight"), [
    ("dm", {"lam": 1.0, "beta": 8.0}, lambda p: torch.exp(8.0 * p * (1 - p))),  # its own w_i, before normalising
    ("dm", {"lam": 0.0, "beta": 2.0, "normalize": "mean"}, lambda p: torch.exp(2.0 * (1 - p))),
    ("cce", {}, lambda p: 2 * (1 - p)),  # CCE's implicit weight ‖∂L/∂z_i‖₁ (seed 002 §3.1)
    ("mse", {}, lambda p: 4 * p * (1 - p) ** 2),
])
def test_the_trainer_logs_the_papers_sigma_of_each_batch(digits: trainers.Dataset, method: str, params: dict,
                                                         weight) -> None:
    trainer = Trainer(TrainConfig(method=method, method_params=params, noise_rate=0.4, eval_every=1, lr=0.05), digits)
    for _ in range(3):  # a few steps in, so that p has spread
        w = first_step_weights(trainer, weight)
        metrics = next(iter(trainer))
        want = w.var(unbiased=False).item()
        assert metrics["emphasis_var"] == pytest.approx(want, rel=2e-4)
        assert metrics["emphasis_var_scaled"] == pytest.approx(want / w.mean().item() ** 2, rel=2e-4)
