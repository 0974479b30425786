"""Tests for trainers.splits on the embedded digits data: stratified clean validation, noise on train only, seeds."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from trainers import ConfigError, Dataset, load_dataset, make_split, stratified_split
from trainers.splits import Seeds, class_interleaved, derive_seeds, per_class_split


@pytest.fixture(scope="module")
def data() -> Dataset:
    return load_dataset("digits")


def _rows(x: torch.Tensor, y: torch.Tensor) -> Counter[tuple[bytes, int]]:
    """The multiset of (image bytes, label) pairs."""
    flat = x.reshape(len(x), -1).contiguous().numpy()
    return Counter((row.tobytes(), int(label)) for row, label in zip(flat, y))


def test_search_split_partitions_the_training_set(data: Dataset) -> None:
    split = make_split(data, noise="symmetric", noise_rate=0.4, split="search", seed=3)
    assert split.val_x is not None and split.val_y is not None
    assert len(split.train_x) + len(split.val_x) == len(data.train_x)
    assert len(split.train_y) == len(split.true_y) == len(split.is_noisy) == len(split.train_x)
    assert len(split.val_y) == len(split.val_x)
    # Every training image with its true label lands in exactly one part: train (true_y) or val (val_y).
    assert _rows(split.train_x, split.true_y) + _rows(split.val_x, split.val_y) == _rows(data.train_x, data.train_y)
    assert split.num_classes == data.num_classes == 10


def test_search_split_holds_out_a_fifth_of_each_class(data: Dataset) -> None:
    split = make_split(data, noise="symmetric", noise_rate=0.4, split="search", val_fraction=0.2, seed=3)
    assert split.val_y is not None
    per_class = Counter(data.train_y.tolist())
    held = Counter(split.val_y.tolist())
    kept = Counter(split.true_y.tolist())
    for c, n_c in per_class.items():
        assert held[c] == int(np.floor(0.2 * n_c + 0.5)), c
        assert kept[c] == n_c - held[c], c


def test_search_split_rows_follow_the_stratified_indices(data: Dataset) -> None:
    seed = 5
    split = make_split(data, noise="pair", noise_rate=0.3, split="search", seed=seed)
    keep, held = stratified_split(data.train_y, 0.2, derive_seeds(seed).split)
    assert split.val_x is not None and split.val_y is not None
    assert torch.equal(split.train_x, data.train_x[keep])
    assert torch.equal(split.val_x, data.train_x[held])
    assert torch.equal(split.true_y, data.train_y[keep])
    assert torch.equal(split.val_y, data.train_y[held])


def test_noise_only_on_the_train_part(data: Dataset) -> None:
    labels_before = data.train_y.clone()
    split = make_split(data, noise="symmetric", noise_rate=0.4, split="search", seed=2)
    assert torch.equal(split.is_noisy, split.train_y != split.true_y)
    assert abs(split.noise_rate - 0.4) <= 0.01
    assert split.noise_rate == pytest.approx((split.train_y != split.true_y).float().mean().item())
    # Validation labels are the true ones (checked as a multiset of rows above); the data set itself is not touched.
    assert torch.equal(data.train_y, labels_before)


def test_test_set_is_untouched(data: Dataset) -> None:
    for mode in ("search", "final"):
        split = make_split(data, noise="symmetric", noise_rate=0.4, split=mode, seed=0)
        assert torch.equal(split.test_x, data.test_x)
        assert torch.equal(split.test_y, data.test_y)


def test_final_split_trains_on_everything(data: Dataset) -> None:
    split = make_split(data, noise="pair", noise_rate=0.2, split="final", seed=4)
    assert split.val_x is None and split.val_y is None
    assert torch.equal(split.train_x, data.train_x)
    assert torch.equal(split.true_y, data.train_y)
    assert torch.equal(split.is_noisy, split.train_y != data.train_y)
    changed = split.is_noisy
    assert torch.equal(split.train_y[changed], (data.train_y[changed] + 1) % 10)
    assert int(changed.sum()) == round(0.2 * len(data.train_y))


def test_zero_noise_gives_clean_labels(data: Dataset) -> None:
    split = make_split(data, noise="symmetric", noise_rate=0.0, split="search", seed=0)
    assert torch.equal(split.train_y, split.true_y)
    assert split.noise_rate == 0.0


def test_same_seed_same_split_and_noise(data: Dataset) -> None:
    a = make_split(data, noise="symmetric", noise_rate=0.4, seed=9)
    b = make_split(data, noise="symmetric", noise_rate=0.4, seed=9)
    for name in ("train_x", "train_y", "true_y", "is_noisy", "val_x", "val_y"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_other_seed_other_split_and_noise(data: Dataset) -> None:
    a = make_split(data, noise="symmetric", noise_rate=0.4, seed=9)
    b = make_split(data, noise="symmetric", noise_rate=0.4, seed=10)
    assert a.val_y is not None and b.val_y is not None
    assert not torch.equal(a.val_x, b.val_x)
    assert not torch.equal(a.train_x, b.train_x)
    # Same class counts (stratified), different members.
    assert Counter(a.val_y.tolist()) == Counter(b.val_y.tolist())
    final_a = make_split(data, noise="symmetric", noise_rate=0.4, split="final", seed=9)
    final_b = make_split(data, noise="symmetric", noise_rate=0.4, split="final", seed=10)
    assert not torch.equal(final_a.is_noisy, final_b.is_noisy)


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_stratified_split_holds_out_round_fraction_per_class(fraction: float) -> None:
    labels = torch.tensor([0] * 37 + [1] * 12 + [2] * 101 + [3] * 3)
    keep, held = stratified_split(labels, fraction, seed=0)
    assert torch.equal(keep, keep.sort().values) and torch.equal(held, held.sort().values)
    assert set(keep.tolist()).isdisjoint(held.tolist())
    assert sorted(keep.tolist() + held.tolist()) == list(range(len(labels)))
    counts = Counter(labels[held].tolist())
    for c, n_c in Counter(labels.tolist()).items():
        assert counts[c] == round(fraction * n_c), (c, n_c)


def test_stratified_split_depends_on_seed() -> None:
    labels = torch.arange(400) % 4
    _, a = stratified_split(labels, 0.3, seed=1)
    _, b = stratified_split(labels, 0.3, seed=1)
    _, c = stratified_split(labels, 0.3, seed=2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_derive_seeds_are_four_distinct_stable_ints(seed: int) -> None:
    seeds = derive_seeds(seed)
    assert isinstance(seeds, Seeds)
    assert len(seeds) == 4
    assert all(type(s) is int and s >= 0 for s in seeds)
    assert len(set(seeds)) == 4
    assert derive_seeds(seed) == seeds
    assert list(seeds) == [int(s) for s in np.random.SeedSequence(seed).generate_state(4)]


def test_derive_seeds_differ_between_seeds() -> None:
    assert len({derive_seeds(s) for s in range(50)}) == 50


@pytest.mark.parametrize("mode", ["search", "final"])
def test_probe_set_is_trusted_and_apart_from_the_other_parts(data: Dataset, mode: str) -> None:
    split = make_split(data, noise="symmetric", noise_rate=0.6, split=mode, probe_per_class=10, seed=3)
    plain = make_split(data, noise="symmetric", noise_rate=0.6, split=mode, seed=3)
    assert split.probe_x is not None and split.probe_y is not None and plain.probe_x is None
    assert Counter(split.probe_y.tolist()) == {c: 10 for c in range(10)}
    # Train, validation and probe partition the training set, every row with its true label: the probe is noise-free.
    parts = _rows(split.train_x, split.true_y) + _rows(split.probe_x, split.probe_y)
    if mode == "search":
        assert split.val_x is not None and split.val_y is not None and plain.val_x is not None
        parts += _rows(split.val_x, split.val_y)
        assert torch.equal(split.val_x, plain.val_x)  # the validation part is the same with or without a probe
    assert parts == _rows(data.train_x, data.train_y)
    assert len(split.train_y) == len(plain.train_y) - 100
    assert not set(_rows(split.probe_x, split.probe_y)) & set(_rows(split.train_x, split.train_y))
    assert abs(split.noise_rate - 0.6) <= 0.01  # the noise falls on the training part only


def test_the_probe_takes_one_example_of_each_class_in_turn(data: Dataset) -> None:
    split = make_split(data, noise="symmetric", noise_rate=0.2, probe_per_class=7, seed=4)
    assert split.probe_y is not None
    assert split.probe_y.tolist() == list(range(10)) * 7


def test_class_interleaved_keeps_the_order_within_a_class() -> None:
    labels = torch.tensor([2, 0, 0, 1, 2, 0, 1, 2, 2])
    order = class_interleaved(labels).tolist()
    assert labels[order].tolist() == [0, 1, 2, 0, 1, 2, 0, 2, 2]  # a class that runs out is skipped
    for c in range(3):
        positions = [i for i in order if labels[i] == c]
        assert positions == sorted(positions)
    assert sorted(order) == list(range(len(labels)))


def test_probe_depends_on_the_seed(data: Dataset) -> None:
    a, b, c = (make_split(data, noise="symmetric", noise_rate=0.2, probe_per_class=5, seed=s) for s in (1, 1, 2))
    assert a.probe_x is not None and b.probe_x is not None and c.probe_x is not None
    assert torch.equal(a.probe_x, b.probe_x) and not torch.equal(a.probe_x, c.probe_x)


def test_per_class_split_holds_out_k_of_each_class() -> None:
    labels = torch.tensor([0] * 37 + [1] * 12 + [2] * 101 + [3] * 3)
    keep, held = per_class_split(labels, 10, seed=0)
    assert sorted(keep.tolist() + held.tolist()) == list(range(len(labels)))
    assert Counter(labels[held].tolist()) == {0: 10, 1: 10, 2: 10, 3: 3}  # all of a class smaller than k


@pytest.mark.parametrize("k", [-1, 1.5, True])
def test_bad_probe_size_is_a_config_error(data: Dataset, k: object) -> None:
    with pytest.raises(ConfigError) as err:
        make_split(data, noise="symmetric", noise_rate=0.2, probe_per_class=k, seed=0)  # type: ignore[arg-type]
    assert err.value.field == "probe_per_class"


@pytest.mark.parametrize("mode", ["x", "Search", "", "test"])
def test_bad_split_mode_is_a_config_error(data: Dataset, mode: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_split(data, noise="symmetric", noise_rate=0.2, split=mode, seed=0)  # type: ignore[arg-type]
    assert err.value.field == "split"
    assert repr(mode) in str(err.value)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5])
def test_bad_val_fraction_is_a_config_error(data: Dataset, fraction: float) -> None:
    with pytest.raises(ConfigError) as err:
        make_split(data, noise="symmetric", noise_rate=0.2, val_fraction=fraction, seed=0)
    assert err.value.field == "val_fraction"
    assert repr(fraction) in str(err.value)


def test_bad_noise_is_a_config_error(data: Dataset) -> None:
    with pytest.raises(ConfigError) as err:
        make_split(data, noise="asym-cifar100", noise_rate=0.2, seed=0)  # digits has 10 classes, not 100
    assert err.value.field == "noise"
    with pytest.raises(ConfigError) as err:
        make_split(data, noise="gaussian", noise_rate=0.2, seed=0)
    assert err.value.field == "noise"
    with pytest.raises(ConfigError) as err:
        make_split(data, noise="symmetric", noise_rate=1.0, seed=0)
    assert err.value.field == "noise_rate"
