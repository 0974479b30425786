"""Noise-detection AUROCs: the rank computation against sklearn, and the trainer's two against a recomputation from
the model's predictions and from a hand-kept record of each step's per-example weights."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score

import trainers
from trainers import TrainConfig, Trainer
from trainers.detection import auroc

AUROCS = ("noise_auroc_p", "noise_auroc_weight")


@pytest.fixture(scope="module")
def digits() -> trainers.Dataset:
    return trainers.load_dataset("digits")


@pytest.mark.parametrize("levels", [3, 20, 10_000])  # few distinct scores: many ties; many: almost none
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_equals_sklearn_with_ties(levels: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    positive = torch.rand(2_000, generator=g) < 0.3
    scores = torch.randint(0, levels, (2_000,), generator=g).float() / levels + 0.2 * positive
    expected = roc_auc_score(positive.numpy(), scores.numpy())
    assert float(auroc(scores, positive)) == pytest.approx(expected, abs=1e-12)
    assert float(auroc(-scores, positive)) == pytest.approx(1 - expected, abs=1e-12)


def test_auroc_is_nan_without_both_classes() -> None:
    scores = torch.tensor([0.3, 0.1, 0.2])
    assert torch.isnan(auroc(scores, torch.zeros(3, dtype=torch.bool)))
    assert torch.isnan(auroc(scores, torch.ones(3, dtype=torch.bool)))


def test_noise_auroc_p_equals_sklearn_on_the_models_predictions(digits: trainers.Dataset) -> None:
    trainer = Trainer(TrainConfig(method="dm", method_params={"lam": 1.0, "beta": 4.0}, noise_rate=0.4, epochs=2,
                                  seed=1), digits)
    for metrics in trainer:
        p = trainer.predict(trainer.train_x).softmax(1).gather(1, trainer.train_y[:, None]).squeeze(1)
        expected = roc_auc_score(trainer.is_noisy.numpy(), (1 - p).numpy())
        assert metrics["noise_auroc_p"] == pytest.approx(expected, abs=1e-12)
    assert metrics["noise_auroc_p"] > 0.6  # a trained model finds the noise better than chance


def test_noise_auroc_weight_equals_sklearn_over_the_examples_seen(digits: trainers.Dataset) -> None:
    """Each step's ‖∂L/∂z_i‖₁ recorded by a hook on the logits' gradient, kept per example (latest wins), recomputed
    at each evaluation over the examples trained on so far; 12 steps of 128 cross an epoch boundary (9 steps)."""
    trainer = Trainer(TrainConfig(method="cce", noise_rate=0.4, epochs=None, iterations=12, eval_every=3, seed=2),
                      digits)
    batches: list[torch.Tensor] = []
    record = torch.full((len(trainer.train_y),), float("nan"))
    next_batch = trainer._next_batch

    def remembered() -> torch.Tensor:
        batches.append(next_batch())
        return batches[-1]

    def keep(_module: torch.nn.Module, _inputs: tuple, logits: torch.Tensor) -> None:
        if logits.requires_grad:
            idx = batches[-1]

            def norms(grad: torch.Tensor) -> None:
                record[idx] = grad.float().abs().sum(1)

            logits.register_hook(norms)

    trainer._next_batch = remembered
    trainer.model.register_forward_hook(keep)
    for metrics in trainer:
        seen = ~record.isnan()
        assert 0 < int(seen.sum()) == min(len(record), metrics["step"] * 128)
        expected = roc_auc_score(trainer.is_noisy[seen].numpy(), record[seen].numpy())
        assert metrics["noise_auroc_weight"] == pytest.approx(expected, abs=1e-12)


def test_aurocs_are_absent_without_noise(digits: trainers.Dataset) -> None:
    metrics = list(Trainer(TrainConfig(noise_rate=0.0, epochs=1), digits))
    assert metrics and not any(name in m for m in metrics for name in AUROCS)


def test_resume_mid_epoch_keeps_the_weights_of_the_examples_seen(digits: trainers.Dataset, resumed) -> None:
    config = TrainConfig(method="dm", method_params={"lam": 1.0, "beta": 4.0}, noise_rate=0.3, epochs=None,
                         iterations=12, eval_every=4, seed=4)
    whole, again, _ = resumed(config, digits, 1)
    assert all(name in m for m in whole for name in AUROCS)
    assert again == whole
