"""The training-set metrics' subsample: stratified, fixed by the seed (across a resume too), its metrics a weighted
recomputation on the same examples, unbiased; validation and test accuracies and the last evaluation exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import trainers
from tests.trainers.conftest import without_time
from trainers import TrainConfig, Trainer
from trainers.detection import auroc
from trainers.subsample import stratified_subsample

NOISY = TrainConfig(method="dm", method_params={"lam": 1.0, "beta": 4.0}, noise_rate=0.4, epochs=None,
                    iterations=24, eval_every=8, diag_subsample=300, seed=3)
EXACT = ("val_acc", "val_acc_clean", "val_acc_noisy", "test_acc", "train_loss", "noise_auroc_weight")
SAMPLED = ("fit_acc", "intact_acc", "noisy_fit_acc", "p_clean", "p_noisy", "noise_auroc_p")


@pytest.fixture(scope="module")
def digits() -> trainers.Dataset:
    return trainers.load_dataset("digits")


def test_the_subsample_is_stratified_by_label_and_noise_and_weighted_by_share(digits: trainers.Dataset) -> None:
    trainer = Trainer(NOISY, digits)
    idx, weight = trainer._diag
    strata = (trainer.train_y * 2 + trainer.is_noisy).numpy()
    counts, taken = np.bincount(strata), np.bincount(strata[idx.numpy()], minlength=len(np.bincount(strata)))
    assert abs(len(idx) - 300) <= len(counts) and len(set(idx.tolist())) == len(idx)
    assert np.all(np.abs(taken - counts * len(idx) / len(strata)) <= 1.5) and np.all(taken[counts > 0] >= 1)
    np.testing.assert_allclose(weight.numpy(), (counts / np.maximum(taken, 1))[strata[idx.numpy()]])
    assert float(weight.sum()) == pytest.approx(len(strata))
    assert trainer.info["diag_size"] == len(idx)


def test_the_subsample_is_fixed_by_the_seed(digits: trainers.Dataset) -> None:
    first, again = Trainer(NOISY, digits)._diag[0], Trainer(NOISY, digits)._diag[0]
    assert torch.equal(first, again)
    assert not torch.equal(first, Trainer(NOISY.replace(seed=4), digits)._diag[0])


def test_a_resumed_run_keeps_the_subsample_and_every_metric(digits: trainers.Dataset, resumed) -> None:
    whole, parts, second = resumed(NOISY, digits, 1)
    assert parts == whole
    assert torch.equal(second._diag[0], Trainer(NOISY, digits)._diag[0])


def test_subsample_metrics_equal_a_weighted_recomputation_and_the_last_the_whole_set(
        digits: trainers.Dataset) -> None:
    trainer = Trainer(NOISY, digits)
    idx, weight = trainer._diag
    for metrics in trainer:
        last = metrics["step"] == trainer.total_steps
        at, w = (slice(None), None) if last else (idx, weight.numpy())
        p = trainer.predict(trainer.train_x[at]).softmax(1).numpy()
        given, true, noisy = (t[at].numpy() for t in (trainer.train_y, trainer.true_y, trainer.is_noisy))
        p_given, pred = p[np.arange(len(given)), given], p.argmax(1)
        part = (lambda mask: None) if last else (lambda mask: w[mask])
        expected = {
            "fit_acc": np.average(pred == given, weights=w),
            "intact_acc": np.average(pred == true, weights=w),
            "noisy_fit_acc": np.average((pred == given)[noisy], weights=part(noisy)),
            "p_clean": np.average(p_given[~noisy], weights=part(~noisy)),
            "p_noisy": np.average(p_given[noisy], weights=part(noisy)),
            "noise_auroc_p": roc_auc_score(noisy, 1 - p_given, sample_weight=w),
        }
        assert {k: metrics[k] for k in expected} == pytest.approx(expected, abs=1e-6)


def test_validation_test_and_the_last_evaluation_match_the_whole_set_option(digits: trainers.Dataset) -> None:
    sampled = [without_time(m) for m in Trainer(NOISY, digits)]
    whole = [without_time(m) for m in Trainer(NOISY.replace(diag_subsample=0), digits)]
    assert [{k: m[k] for k in EXACT} for m in sampled] == [{k: m[k] for k in EXACT} for m in whole]
    assert sampled[-1] == whole[-1]
    assert any(s[k] != w[k] for s, w in zip(sampled[:-1], whole[:-1]) for k in SAMPLED)  # the subsample is used


@pytest.mark.parametrize("size", [None, 0, 10**6])
def test_the_whole_set_option_is_the_plain_mean_over_every_training_example(digits: trainers.Dataset,
                                                                             size: int | None) -> None:
    trainer = Trainer(NOISY.replace(diag_subsample=size), digits)
    assert trainer._diag[1] is None and trainer.info["diag_size"] == len(trainer.train_y)
    for metrics in trainer:
        p = trainer.predict(trainer.train_x).softmax(1)
        p_given = p.gather(1, trainer.train_y[:, None]).squeeze(1)
        noisy = trainer.is_noisy
        assert metrics["fit_acc"] == float((p.argmax(1) == trainer.train_y).float().mean())
        assert metrics["p_noisy"] == float(p_given[noisy].mean())
        assert metrics["noise_auroc_p"] == float(auroc(1 - p_given, noisy))


def test_weighted_auroc_equals_sklearns_with_sample_weights() -> None:
    g = torch.Generator().manual_seed(0)
    positive = torch.rand(1_000, generator=g) < 0.3
    scores = torch.randint(0, 7, (1_000,), generator=g).float() + positive
    weight = torch.rand(1_000, generator=g).double() * 3
    expected = roc_auc_score(positive.numpy(), scores.numpy(), sample_weight=weight.numpy())
    assert float(auroc(scores, positive, weight)) == pytest.approx(expected, abs=1e-12)


def test_weighted_estimates_from_the_subsample_are_unbiased() -> None:
    """Over many draws the weighted means and AUROC average to the whole population's, within a few standard errors,
    on a population whose strata differ in size and in value (a plain mean over the subsample would be off)."""
    g = torch.Generator().manual_seed(0)
    strata = torch.cat([torch.zeros(700), torch.ones(270), torch.full((30,), 2)]).long()
    values = torch.rand(1_000, generator=g).double() + strata
    positive = strata == 2
    means, plain, aurocs = [], [], []
    for _ in range(400):
        idx, weight = stratified_subsample(strata, 20, g)  # 14, 5 and 1 (a share of 0.6 rounded up)
        means.append(float((values[idx] * weight).sum() / weight.sum()))
        plain.append(float(values[idx].mean()))
        aurocs.append(float(auroc(values[idx] - 2 * positive[idx], positive[idx], weight)))
    assert np.mean(means) == pytest.approx(float(values.mean()), abs=3 * np.std(means) / 20)
    assert np.mean(plain) - float(values.mean()) > 5 * np.std(plain) / 20
    assert np.mean(aurocs) == pytest.approx(float(auroc(values - 2 * positive, positive)), abs=3 * np.std(aurocs) / 20)
