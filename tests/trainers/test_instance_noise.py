"""Instance-dependent noise (Xia et al. 2020): the realised rate on real data, flips that depend on the image,
determinism from the seed, and the kind from the command line and a study config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import trainers
from trainers import ConfigError, TrainConfig, corrupt_labels, make_split
from trainers.__main__ import main
from trainers.noise import instance_flip_probabilities


@pytest.fixture(scope="module")
def digits() -> trainers.Dataset:
    return trainers.load_dataset("digits")


@pytest.mark.parametrize("rate", [0.2, 0.4])
def test_realised_rate_is_within_two_points_on_fashion_mnist(fashion_root: Path, rate: float) -> None:
    data = trainers.load_dataset("fashion_mnist", fashion_root, download=False)
    split = make_split(data, noise="instance", noise_rate=rate, seed=0)
    assert abs(split.noise_rate - rate) <= 0.02
    assert torch.equal(split.is_noisy, split.train_y != split.true_y)


def test_flip_probabilities_depend_on_the_image_not_only_the_class(digits: trainers.Dataset) -> None:
    """Two copies of one image: the same distribution; two other images of its class: different ones."""
    y = digits.train_y
    first, second = torch.nonzero(y == 3).squeeze(1)[:2].tolist()
    x = digits.train_x[[first, first, second]]
    q = torch.full((3,), 0.4, dtype=torch.float64)
    probs = instance_flip_probabilities(x, y[[first, first, second]], q, 10, seed=7)
    assert torch.equal(probs[0], probs[1])
    assert (probs[0] - probs[2]).abs().max() > 0.05
    assert torch.allclose(probs.sum(1), torch.ones(3, dtype=torch.float64))
    assert torch.equal(probs[:, 3], 1 - q)
    assert torch.equal(probs, instance_flip_probabilities(x, y[[first, first, second]], q, 10, seed=7))
    assert not torch.equal(probs, instance_flip_probabilities(x, y[[first, first, second]], q, 10, seed=8))


def test_flip_probabilities_are_xias_with_w_drawn_whole(digits: trainers.Dataset) -> None:
    """The reference computation of Xia et al.'s code: W of K × d × K drawn at once, one example at a time."""
    x, y = digits.train_x[:40], digits.train_y[:40]
    q = torch.linspace(0, 1, 40, dtype=torch.float64)
    w = torch.from_numpy(np.random.default_rng(3).standard_normal((10, x[0].numel(), 10)))
    for i in range(40):
        a = x[i].flatten().double() @ w[y[i]]
        a[y[i]] = -torch.inf
        expected = q[i] * a.softmax(0)
        expected[y[i]] = 1 - q[i]
        torch.testing.assert_close(instance_flip_probabilities(x, y, q, 10, seed=3)[i], expected)


def test_labels_are_deterministic_from_the_seed(digits: trainers.Dataset) -> None:
    x, y = digits.train_x, digits.train_y
    once = corrupt_labels(y, 0.4, "instance", 10, seed=1, inputs=x)
    assert torch.equal(once.labels, corrupt_labels(y, 0.4, "instance", 10, seed=1, inputs=x).labels)
    assert not torch.equal(once.labels, corrupt_labels(y, 0.4, "instance", 10, seed=2, inputs=x).labels)
    assert once.labels.min() >= 0 and once.labels.max() < 10
    assert torch.equal(once.is_noisy, once.labels != y)


def test_instance_noise_needs_the_inputs(digits: trainers.Dataset) -> None:
    with pytest.raises(ConfigError, match="inputs"):
        corrupt_labels(digits.train_y, 0.4, "instance", 10, seed=0)


def test_the_cli_runs_instance_noise_and_prints_the_aurocs(capsys: pytest.CaptureFixture) -> None:
    assert main(["--dataset", "digits", "--noise", "instance:0.4", "--iterations", "9", "--json"]) == 0
    out = capsys.readouterr()
    row = json.loads(out.out.splitlines()[-1])
    assert {"noise_auroc_p", "noise_auroc_weight"} <= set(row)
    assert "instance noise 0.397 realised" in out.err


def test_a_study_config_takes_instance_noise() -> None:
    from study.config import load_study_config

    config = load_study_config(None, ["noise=instance", "noise_rates=[0.2]"])
    assert config.noise == "instance"
    assert TrainConfig(noise="instance", noise_rate=0.4).noise == "instance"
