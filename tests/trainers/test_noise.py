"""Tests for trainers.noise: realised rates, flip targets of each noise kind, determinism and errors."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

import trainers
from trainers import ConfigError, NoisyLabels, corrupt_labels
from trainers.noise import CIFAR100_SUPERCLASS

N, C = 50_000, 10
RATES = (0.2, 0.4, 0.8)


@pytest.fixture(scope="module")
def balanced() -> torch.Tensor:
    """50,000 labels, 5,000 of each of 10 classes."""
    return torch.arange(N) % C


def test_noise_kinds_are_the_documented_seven() -> None:
    assert trainers.NOISE_KINDS == ("symmetric", "uniform", "pair", "asym-cifar10", "asym-cifar100", "instance",
                                    "given")


@pytest.mark.parametrize("kind", ["symmetric", "pair"])
@pytest.mark.parametrize("rate", RATES)
def test_realised_rate_matches_rate(balanced: torch.Tensor, kind: str, rate: float) -> None:
    noisy = corrupt_labels(balanced, rate, kind, C, seed=1)
    assert isinstance(noisy, NoisyLabels)
    realised = (noisy.labels != balanced).double().mean().item()
    assert abs(realised - rate) <= 0.01
    assert noisy.rate == pytest.approx(realised)


@pytest.mark.parametrize("rate", RATES)
def test_uniform_realised_rate_is_r_times_one_minus_one_over_c(balanced: torch.Tensor, rate: float) -> None:
    noisy = corrupt_labels(balanced, rate, "uniform", C, seed=2)
    realised = (noisy.labels != balanced).double().mean().item()
    assert abs(realised - rate * (1 - 1 / C)) <= 0.01
    # Some of the chosen labels drew their own class again: fewer changed than chosen.
    assert realised < rate - 0.005


@pytest.mark.parametrize("rate", RATES)
def test_symmetric_always_changes_a_chosen_label(balanced: torch.Tensor, rate: float) -> None:
    noisy = corrupt_labels(balanced, rate, "symmetric", C, seed=3)
    torch.testing.assert_close(noisy.is_noisy, noisy.labels != balanced)
    assert int(noisy.is_noisy.sum()) == round(rate * N)
    assert noisy.labels.min() >= 0 and noisy.labels.max() < C
    assert noisy.labels.dtype == torch.long


def test_symmetric_spreads_flips_over_the_other_classes(balanced: torch.Tensor) -> None:
    noisy = corrupt_labels(balanced, 0.8, "symmetric", C, seed=4)
    changed = noisy.is_noisy
    for src in range(C):
        from_src = changed & (balanced == src)
        targets = Counter(noisy.labels[from_src].tolist())
        assert src not in targets
        assert set(targets) == set(range(C)) - {src}
        expected = int(from_src.sum()) / (C - 1)
        for dst, count in targets.items():
            assert abs(count - expected) <= 0.2 * expected, (src, dst, count, expected)


@pytest.mark.parametrize("rate", RATES)
def test_pair_flips_to_the_next_class(balanced: torch.Tensor, rate: float) -> None:
    noisy = corrupt_labels(balanced, rate, "pair", C, seed=5)
    changed = noisy.labels != balanced
    torch.testing.assert_close(noisy.is_noisy, changed)
    assert torch.equal(noisy.labels[changed], (balanced[changed] + 1) % C)
    assert int(changed.sum()) == round(rate * N)


CIFAR10_MAP = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}  # truck→automobile, bird→airplane, deer→horse, cat↔dog


@pytest.mark.parametrize("rate", RATES)
def test_asym_cifar10_flips_by_the_class_map(balanced: torch.Tensor, rate: float) -> None:
    noisy = corrupt_labels(balanced, rate, "asym-cifar10", C, seed=6)
    changed = noisy.labels != balanced
    torch.testing.assert_close(noisy.is_noisy, changed)
    pairs = set(zip(balanced[changed].tolist(), noisy.labels[changed].tolist()))
    assert pairs == set(CIFAR10_MAP.items())
    for cls in (0, 1, 6, 7, 8):
        assert not changed[balanced == cls].any()
    for src in CIFAR10_MAP:
        share = changed[balanced == src].double().mean().item()
        assert abs(share - rate) <= 0.03, (src, share)
    # Only half the classes are eligible: the overall rate is r·5/10.
    assert abs(noisy.rate - rate / 2) <= 0.01


def test_cifar100_superclass_table_has_twenty_superclasses_of_five() -> None:
    assert len(CIFAR100_SUPERCLASS) == 100
    assert Counter(CIFAR100_SUPERCLASS) == {s: 5 for s in range(20)}


@pytest.mark.parametrize("seed", [0, 7])
def test_asym_cifar100_swaps_two_subclasses_per_superclass(seed: int) -> None:
    labels = torch.arange(100).repeat_interleave(500)
    noisy = corrupt_labels(labels, 0.4, "asym-cifar100", 100, seed=seed)
    changed = noisy.labels != labels
    torch.testing.assert_close(noisy.is_noisy, changed)
    pairs = set(zip(labels[changed].tolist(), noisy.labels[changed].tolist()))
    by_superclass: dict[int, set[tuple[int, int]]] = {}
    for src, dst in pairs:
        assert CIFAR100_SUPERCLASS[src] == CIFAR100_SUPERCLASS[dst], (src, dst)
        by_superclass.setdefault(CIFAR100_SUPERCLASS[src], set()).add((src, dst))
    assert set(by_superclass) == set(range(20))
    for found in by_superclass.values():
        (a, b), *_ = sorted(found)
        assert a != b
        assert found == {(a, b), (b, a)}
    involved = {src for src, _ in pairs}
    assert len(involved) == 40
    # 40 of 100 classes eligible: 0.4 of 20,000 labels flipped.
    assert int(changed.sum()) == round(0.4 * 40 * 500)


@pytest.mark.parametrize("kind", ["symmetric", "uniform", "pair", "asym-cifar10"])
def test_same_seed_same_labels_other_seed_other_labels(balanced: torch.Tensor, kind: str) -> None:
    first = corrupt_labels(balanced, 0.4, kind, C, seed=11)
    again = corrupt_labels(balanced, 0.4, kind, C, seed=11)
    other = corrupt_labels(balanced, 0.4, kind, C, seed=12)
    assert torch.equal(first.labels, again.labels)
    assert torch.equal(first.is_noisy, again.is_noisy)
    assert not torch.equal(first.labels, other.labels)


def test_asym_cifar100_same_seed_same_labels_other_seed_other_labels() -> None:
    labels = torch.arange(100).repeat_interleave(50)
    first = corrupt_labels(labels, 0.4, "asym-cifar100", 100, seed=3)
    again = corrupt_labels(labels, 0.4, "asym-cifar100", 100, seed=3)
    other = corrupt_labels(labels, 0.4, "asym-cifar100", 100, seed=4)
    assert torch.equal(first.labels, again.labels)
    assert not torch.equal(first.labels, other.labels)


def test_input_labels_are_not_modified(balanced: torch.Tensor) -> None:
    labels = balanced.clone()
    corrupt_labels(labels, 0.8, "symmetric", C, seed=0)
    assert torch.equal(labels, balanced)


def test_accepts_a_list_of_ints() -> None:
    noisy = corrupt_labels([0, 1, 2, 3] * 25, 0.5, "pair", 4, seed=0)
    assert noisy.labels.dtype == torch.long
    assert int(noisy.is_noisy.sum()) == 50


@pytest.mark.parametrize("kind", ["symmetric", "uniform", "pair", "asym-cifar10"])
def test_rate_zero_leaves_every_label(balanced: torch.Tensor, kind: str) -> None:
    noisy = corrupt_labels(balanced, 0.0, kind, C, seed=0)
    assert torch.equal(noisy.labels, balanced)
    assert not noisy.is_noisy.any()
    assert noisy.rate == 0.0


def test_empty_labels_have_rate_zero() -> None:
    noisy = corrupt_labels([], 0.3, "symmetric", C, seed=0)
    assert len(noisy.labels) == 0
    assert noisy.rate == 0.0


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan")])
def test_rate_outside_zero_one_is_a_config_error(balanced: torch.Tensor, rate: float) -> None:
    with pytest.raises(ConfigError) as err:
        corrupt_labels(balanced, rate, "symmetric", C, seed=0)
    assert err.value.field == "noise_rate"
    assert "noise_rate" in str(err.value)
    assert repr(rate) in str(err.value)


def test_unknown_kind_is_a_config_error(balanced: torch.Tensor) -> None:
    with pytest.raises(ConfigError) as err:
        corrupt_labels(balanced, 0.2, "gaussian", C, seed=0)
    assert err.value.field == "noise"
    assert "gaussian" in str(err.value)
    assert all(kind in str(err.value) for kind in trainers.NOISE_KINDS)


@pytest.mark.parametrize(("kind", "classes"), [("asym-cifar10", 100), ("asym-cifar10", 9), ("asym-cifar100", 10)])
def test_asymmetric_kind_with_wrong_class_count_is_a_config_error(kind: str, classes: int) -> None:
    with pytest.raises(ConfigError) as err:
        corrupt_labels(torch.arange(1000) % classes, 0.2, kind, classes, seed=0)
    assert err.value.field == "noise"
    assert kind in str(err.value)
