"""Gradient-similarity weighting (seed 004): factorised cosines against explicit per-example gradients, the weights
against a brute-force loop over the formula, and the options (within-class, ranking-only, baselines, all layers)."""

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainers.errors import ConfigError
from trainers.gradsim import (
    gradsim_weights,
    last_layer_cosines,
    noisy_among_extremes,
    oracle_weights,
    per_example_cosines,
    random_uniform_weights,
    ranking_only_weights,
    weights_from_cosines,
)


def explicit_cosines(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Reference: one autograd backward per example over all of `model`'s parameters, cosines in float64."""
    grads = []
    for x, y in zip(inputs, targets):
        loss = F.cross_entropy(model(x[None]), y[None])
        grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))]))
    g = torch.stack(grads).double()
    return F.normalize(g, dim=1) @ F.normalize(g, dim=1).T


def brute_force_weights(cos: torch.Tensor, a: float, k: int, groups: list[int] | None = None) -> list[float]:
    """Reference: w_i ∝ Σ of exp(a·c) over the k largest cos_ij, j ≠ i (same group), in Python floats."""
    n = cos.shape[0]
    scores = []
    for i in range(n):
        row = sorted((float(cos[i, j]) for j in range(n) if j != i and (groups is None or groups[i] == groups[j])),
                     reverse=True)
        scores.append(sum(math.exp(a * c) for c in row[:k]))
    return [s / sum(scores) for s in scores]


def random_batch(b: int = 12, d: int = 5, c: int = 4, seed: int = 0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(b, d, generator=gen, dtype=dtype), torch.randn(b, c, generator=gen, dtype=dtype),
            torch.randint(0, c, (b,), generator=gen))


def random_cosines(b: int, seed: int) -> torch.Tensor:
    g = torch.randn(b, 7, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return F.normalize(g, dim=1) @ F.normalize(g, dim=1).T


def clustered_batch(noisy: list[int], b: int = 24, c: int = 3, seed: int = 0):
    """Features near one centre per true class, logits of a head that knows the centres, labels flipped at `noisy`."""
    gen = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(c, 8, generator=gen)
    clean = torch.arange(b) % c
    features = centres[clean] + 0.3 * torch.randn(b, 8, generator=gen)
    given = clean.clone()
    given[noisy] = (clean[noisy] + 1) % c
    return features, features @ centres.T / 10, given


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_factorised_cosines_equal_those_of_explicit_per_example_gradients(seed: int) -> None:
    torch.manual_seed(seed)
    head = nn.Linear(6, 5)
    features, _, targets = random_batch(b=10, d=6, c=5, seed=seed)
    cos = last_layer_cosines(features, head(features), targets)
    reference = explicit_cosines(head.double(), features.double(), targets)
    assert cos.dtype == torch.float32 and cos.shape == (10, 10)
    torch.testing.assert_close(cos.double(), reference, atol=1e-5, rtol=0)


def test_low_precision_inputs_are_upcast_before_the_products() -> None:
    features, logits, targets = random_batch()
    cos = last_layer_cosines(features.bfloat16(), logits.bfloat16(), targets)
    assert cos.dtype == torch.float32
    torch.testing.assert_close(cos, last_layer_cosines(features.bfloat16().float(), logits.bfloat16().float(), targets))


def test_zero_gradient_has_cosine_zero_and_finite_weights() -> None:
    features, logits, targets = random_batch(b=6, c=3)
    logits[2] = torch.tensor([0.0, 0.0, 0.0]).index_fill(0, targets[2], 1000.0)  # softmax exactly one-hot: g_2 = 0
    cos = last_layer_cosines(features, logits, targets)
    assert torch.isfinite(cos).all()
    assert (cos[2] == 0).all() and (cos[:, 2] == 0).all()
    assert (cos.diagonal()[[0, 1, 3, 4, 5]] - 1).abs().max() < 1e-6
    weights = gradsim_weights(features, logits, targets, a=4.0, k=2)
    assert torch.isfinite(weights).all() and (weights > 0).all()


@pytest.mark.parametrize(("a", "k"), [(1.0, 1), (4.0, 4), (8.0, 3), (0.0, 5), (-2.0, 2), (4.0, 9), (4.0, 50)])
def test_weights_equal_a_brute_force_loop_over_the_formula(a: float, k: int) -> None:
    features, logits, targets = random_batch(b=10, seed=3)
    cos = last_layer_cosines(features, logits, targets).double()
    weights = weights_from_cosines(cos, a, k)
    assert (weights > 0).all()
    assert float(weights.sum()) == pytest.approx(1, abs=1e-12)
    assert weights.tolist() == pytest.approx(brute_force_weights(cos, a, k), rel=1e-9)


def test_gradsim_weights_are_the_cosine_weights_of_the_last_layer_and_carry_no_gradient() -> None:
    features, logits, targets = random_batch()
    features.requires_grad_(True)
    weights = gradsim_weights(features, logits, targets, a=4.0, k=3)
    assert not weights.requires_grad
    assert float(weights.sum()) == pytest.approx(1, abs=1e-6)
    expected = brute_force_weights(last_layer_cosines(features, logits, targets), 4.0, 3)
    assert weights.tolist() == pytest.approx(expected, rel=1e-5)


def test_large_a_stays_finite_and_matches_float64() -> None:
    cos = random_cosines(16, seed=4)
    weights = weights_from_cosines(cos.float(), a=200.0, k=4)
    assert torch.isfinite(weights).all() and (weights > 0).all()
    torch.testing.assert_close(weights.double(), weights_from_cosines(cos, a=200.0, k=4), rtol=1e-3, atol=0)


def test_k_caps_at_the_others_and_is_checked() -> None:
    cos = random_cosines(6, seed=5)
    torch.testing.assert_close(weights_from_cosines(cos, 3.0, 5), weights_from_cosines(cos, 3.0, 500))
    assert not torch.allclose(weights_from_cosines(cos, 3.0, 4), weights_from_cosines(cos, 3.0, 5))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError):
            weights_from_cosines(cos, 3.0, bad)
    with pytest.raises(ConfigError):
        weights_from_cosines(cos, math.inf, 2)


def test_a_flipped_label_gets_the_smallest_weight_and_larger_a_sharpens() -> None:
    features, logits, given = clustered_batch(noisy=[7])
    spreads, flipped_share = [], []
    for a in (1.0, 4.0, 16.0):
        weights = gradsim_weights(features, logits, given, a=a, k=4)
        assert int(weights.argmin()) == 7
        spreads.append(float(weights.max() / weights.min()))
        flipped_share.append(float(weights[7]))
    assert spreads == sorted(spreads) and spreads[0] < spreads[-1]
    assert flipped_share == sorted(flipped_share, reverse=True)


def test_top_k_uses_the_most_similar_others() -> None:
    # examples 0 and 1 agree closely only with each other; 2..11 agree moderately with one another
    cos = torch.full((12, 12), 0.5, dtype=torch.float64)
    cos[:2, :] = cos[:, :2] = -0.5
    cos[0, 1] = cos[1, 0] = 0.99
    cos.fill_diagonal_(1.0)
    top1, everyone = weights_from_cosines(cos, 4.0, 1), weights_from_cosines(cos, 4.0, 11)
    assert top1[0] > top1[2] and everyone[0] < everyone[2]


def test_noisy_examples_sink_to_the_bottom_on_a_clustered_batch() -> None:
    noisy = [1, 5, 10, 14, 20]
    features, logits, given = clustered_batch(noisy=noisy, b=30)
    weights = gradsim_weights(features, logits, given, a=4.0, k=4)
    mask = torch.zeros(30, dtype=torch.bool)
    mask[noisy] = True
    assert noisy_among_extremes(weights, mask, n=5).tolist() == [0, 5]


def test_within_class_never_compares_across_given_labels() -> None:
    features, logits, targets = random_batch(b=12, c=3, seed=6)
    weights = gradsim_weights(features, logits, targets, a=4.0, k=2, within_class=True)
    cos = last_layer_cosines(features, logits, targets)
    assert weights.tolist() == pytest.approx(brute_force_weights(cos, 4.0, 2, targets.tolist()), rel=1e-5)
    # changing every example of the other labels leaves the ratios within label 0 as they were
    other = targets != 0
    features2, logits2 = features.clone(), logits.clone()
    features2[other] = -5 * features[other].flip(1)
    logits2[other] = 3 * logits[other].roll(1, 1)
    weights2 = gradsim_weights(features2, logits2, targets, a=4.0, k=2, within_class=True)
    same = ~other
    torch.testing.assert_close(weights[same] / weights[same].sum(), weights2[same] / weights2[same].sum())
    assert not torch.allclose(weights, gradsim_weights(features, logits, targets, a=4.0, k=2))


@pytest.mark.parametrize("a", [4.0, 0.0, -2.0])
def test_groups_smaller_than_k_match_the_brute_force_for_any_a(a: float) -> None:
    cos, groups = random_cosines(9, seed=10), [0, 1, 0, 0, 1, 2, 0, 2, 0]
    weights = weights_from_cosines(cos, a, 3, groups=torch.tensor(groups))
    assert weights.tolist() == pytest.approx(brute_force_weights(cos, a, 3, groups), rel=1e-9)


def test_within_class_reads_only_the_given_labels() -> None:
    assert list(inspect.signature(gradsim_weights).parameters) == [
        "features", "logits", "targets", "a", "k", "within_class"]


def test_an_example_with_no_other_gets_the_mean_weight() -> None:
    cos = random_cosines(7, seed=7)
    groups = torch.tensor([0, 0, 1, 0, 2, 2, 0])  # example 2 is alone in its group
    weights = weights_from_cosines(cos, 4.0, 3, groups=groups)
    assert float(weights[2]) == pytest.approx(1 / 7)
    assert float(weights.sum()) == pytest.approx(1)
    rest = [i for i in range(7) if i != 2]
    expected = brute_force_weights(cos[rest][:, rest], 4.0, 3, groups[rest].tolist())
    assert (weights[rest] / (1 - 1 / 7)).tolist() == pytest.approx(expected, rel=1e-9)
    torch.testing.assert_close(weights_from_cosines(cos, 4.0, 3, groups=torch.arange(7)),
                               torch.full((7,), 1 / 7, dtype=torch.float64))
    assert weights_from_cosines(torch.ones(1, 1), 4.0, 3).tolist() == [1.0]


@pytest.mark.parametrize(("b", "fraction", "dropped"), [(8, 0.25, 2), (10, 0.3, 3), (100, 0.29, 29), (7, 0.0, 0),
                                                        (5, 0.5, 2), (4, 0.99, 3)])
def test_ranking_only_drops_exactly_the_bottom_fraction(b: int, fraction: float, dropped: int) -> None:
    scores = torch.randperm(b, generator=torch.Generator().manual_seed(b)).float()
    weights = ranking_only_weights(scores, fraction)
    threshold = scores.sort().values[dropped]
    assert ((weights == 0) == (scores < threshold)).all()
    assert int((weights == 0).sum()) == dropped
    assert (weights[weights > 0] == 1 / (b - dropped)).all()
    assert float(weights.sum()) == pytest.approx(1)


def test_ranking_only_checks_the_fraction() -> None:
    for bad in (-0.1, 1.0, math.nan):
        with pytest.raises(ConfigError):
            ranking_only_weights(torch.rand(4), bad)


def test_random_uniform_weights_lie_in_range_and_are_reproducible() -> None:
    weights = random_uniform_weights(10_000, torch.Generator().manual_seed(0))
    assert weights.shape == (10_000,)
    assert (weights >= 0).all() and (weights < 2 / 10_000).all()
    assert float(weights.mean()) == pytest.approx(1 / 10_000, rel=0.03)
    assert float(weights.sum()) != 1.0  # not renormalised
    again = random_uniform_weights(10_000, torch.Generator().manual_seed(0))
    torch.testing.assert_close(weights, again, rtol=0, atol=0)
    assert not torch.equal(weights, random_uniform_weights(10_000, torch.Generator().manual_seed(1)))


def test_oracle_zeroes_the_noisy_examples() -> None:
    mask = torch.tensor([False, True, False, True, True, False])
    weights = oracle_weights(mask)
    assert (weights[mask] == 0).all() and (weights[~mask] == 1 / 3).all()
    torch.testing.assert_close(oracle_weights(torch.ones(4, dtype=torch.bool)), torch.full((4,), 0.25))
    torch.testing.assert_close(oracle_weights(torch.zeros(4, dtype=torch.bool)), torch.full((4,), 0.25))


def test_all_layers_path_on_a_single_linear_layer_equals_the_factorised_cosines() -> None:
    torch.manual_seed(8)
    head = nn.Linear(5, 4)
    features, _, targets = random_batch(b=9, d=5, c=4, seed=8)
    torch.testing.assert_close(per_example_cosines(head, features, targets),
                               last_layer_cosines(features, head(features), targets), atol=1e-5, rtol=0)


def test_all_layers_path_on_a_tiny_mlp() -> None:
    torch.manual_seed(9)
    mlp = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()
    inputs, _, targets = random_batch(b=8, d=5, c=3, seed=9, dtype=torch.float64)
    everything = per_example_cosines(mlp, inputs, targets)
    torch.testing.assert_close(everything, explicit_cosines(mlp, inputs, targets), atol=1e-10, rtol=0)
    last = per_example_cosines(mlp, inputs, targets, params=dict(mlp[2].named_parameters(prefix="2")))
    torch.testing.assert_close(last, last_layer_cosines(mlp[:2](inputs), mlp(inputs), targets), atol=1e-10, rtol=0)
    assert not torch.allclose(everything, last, atol=1e-3)


def test_noisy_among_extremes_counts_the_noisy_at_either_end() -> None:
    weights = torch.tensor([0.3, 0.05, 0.2, 0.01, 0.15, 0.29])  # order high to low: 0, 5, 2, 4, 1, 3
    mask = torch.tensor([True, False, False, True, True, True])
    assert noisy_among_extremes(weights, mask, n=2).tolist() == [2, 1]  # top {0, 5}: both noisy; bottom {1, 3}: 3 noisy
    assert noisy_among_extremes(weights, mask, n=3).tolist() == [2, 2]  # top {0, 5, 2}; bottom {4, 1, 3}
    assert noisy_among_extremes(weights, mask, n=10).tolist() == [4, 4]
    assert noisy_among_extremes(weights, ~mask, n=2).tolist() == [0, 1]


def test_noisy_among_extremes_breaks_ties_by_index() -> None:
    """Among equal weights the lower index ranks higher: against Python's sort, on weights with many ties."""
    g = torch.Generator().manual_seed(5)
    for b in [1, 2, 7, 20, 33]:
        for n in [1, 3, 10, 40]:
            weights = torch.randint(0, 3, (b,), generator=g) / 2
            mask = torch.rand(b, generator=g) < 0.5
            order = sorted(range(b), key=lambda i: (-weights[i].item(), i))
            m = min(n, b)
            want = [sum(mask[order[:m]].tolist()), sum(mask[order[b - m:]].tolist())]
            assert noisy_among_extremes(weights, mask, n=n).tolist() == want
    tied = torch.full((6,), 0.5)
    assert noisy_among_extremes(tied, torch.tensor([1, 1, 0, 0, 0, 0]), n=2).tolist() == [2, 0]
    assert noisy_among_extremes(tied, torch.tensor([0, 0, 0, 0, 1, 1]), n=2).tolist() == [0, 2]
