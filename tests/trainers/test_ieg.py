"""IEG's parts (pseudo-labels, MixUp, consistency) checked independently, and L2R and IEG in the training loop."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import trainers
from trainers import ConfigError, TrainConfig, Trainer, make_loss
from trainers.ieg import consistency, mixing_weights, mixup, pseudo_labels, rms_normalised


@pytest.fixture(scope="module")
def digits() -> trainers.Dataset:
    return trainers.load_dataset("digits")


def test_pseudo_labels_average_normalised_views_and_sharpen() -> None:
    z1, z2 = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]]), torch.tensor([[1.0, 1.0, 0.0], [0.0, -2.0, 4.0]])
    expected = []
    for row in range(2):
        q = [0.0, 0.0, 0.0]
        for z in (z1, z2):
            rms = math.sqrt(sum(v * v for v in z.flatten().tolist()) / z.numel() + 1e-8)  # over the whole view
            e = [math.exp(v / rms) for v in z[row].tolist()]
            q = [a + b / sum(e) / 2 for a, b in zip(q, e)]
        sharp = [v**2 for v in q]  # T = 0.5
        expected.append([v / sum(sharp) for v in sharp])
    torch.testing.assert_close(pseudo_labels([z1, z2], 0.5), torch.tensor(expected))
    torch.testing.assert_close(rms_normalised(z1).square().mean(), torch.tensor(1.0), rtol=1e-6, atol=0)


def test_mixup_mixes_each_example_with_another_at_least_half_its_own() -> None:
    torch.manual_seed(0)
    x = torch.arange(6.0)[:, None, None, None].expand(6, 1, 2, 2).clone()
    targets = F.one_hot(torch.arange(6), 6).float()
    mixed, mixed_targets = mixup(x, targets, 0.5)
    m = mixed_targets.max(1).values
    assert (m >= 0.5).all() and (mixed_targets.argmax(1) == torch.arange(6)).all()
    torch.testing.assert_close(mixed_targets.sum(1), torch.ones(6))
    # Inputs and targets are mixed alike: example i holds the value i and the class i, so m·i + (1 − m)·j is both.
    torch.testing.assert_close(mixed[:, 0, 0, 0], (mixed_targets * torch.arange(6.0)).sum(1))
    assert (m < 1).sum() >= 3  # most examples did get mixed


def test_probe_batches_cycle_through_the_probe_class_balanced() -> None:
    """A probe larger than the batch: consecutive slices of the class-interleaved probe, as the authors' unshuffled,
    repeated probe stream; its position travels in the method's state_dict."""
    labels = torch.arange(10).repeat(5)  # 50 examples, class-interleaved as trainers.splits orders them
    probe = (torch.arange(50.0)[:, None], labels)
    method = make_loss("ieg")
    batches = [method.probe_batch(probe, 20) for _ in range(5)]  # 100 = every example twice
    for x, y in batches:
        assert torch.equal(torch.bincount(y, minlength=10), torch.full((10,), 2))
        assert len(set(x.flatten().tolist())) == 20
    seen = torch.cat([x.flatten() for x, _ in batches]).long()
    assert torch.equal(torch.bincount(seen, minlength=50), torch.full((50,), 2))
    assert torch.equal(batches[2][0].flatten(), torch.tensor([*range(40, 50), *range(10)], dtype=torch.float))
    resumed = make_loss("ieg")
    resumed.load_state_dict(method.state_dict())
    torch.testing.assert_close(resumed.probe_batch(probe, 20), method.probe_batch(probe, 20), rtol=0, atol=0)
    small = (torch.zeros(8, 1), torch.arange(8))
    assert method.probe_batch(small, 20)[1] is small[1]  # no larger than the batch: the whole probe, every step


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_mixing_weights_follow_the_authors_draw(alpha: float) -> None:
    """m = max(u, 1 − u), u = U^(1/α)/2: P(m ≤ t) = 1 − (2(1 − t))^α on [½, 1], one weight per example."""
    torch.manual_seed(1)
    m = mixing_weights(200_000, alpha)
    assert m.shape == (200_000,) and m.min() >= 0.5 and m.max() <= 1
    for t in (0.55, 0.7, 0.9, 0.99):
        assert (m <= t).float().mean().item() == pytest.approx(1 - (2 * (1 - t)) ** alpha, abs=0.005)


def test_mixup_gives_each_example_its_own_weight_as_the_authors() -> None:
    """Distinct one-hot targets: an example's own class keeps its weight m; the mean of m is the authors' 5/6 at
    α = ½ (a folded Beta(½, ½) would give ½ + 1/π ≈ 0.818), and it varies across one batch."""
    torch.manual_seed(2)
    n, own = 2000, []
    for _ in range(5):
        _, mixed_targets = mixup(torch.zeros(n, 1), torch.eye(n), 0.5)
        own.append(mixed_targets.diagonal())
    m = torch.cat(own)
    assert m.mean().item() == pytest.approx(5 / 6, abs=0.006)
    assert own[0].std() > 0.1


def test_the_view_is_cropped_flipped_and_cut_out_after_autoaugment() -> None:
    """Without AutoAugment the view is a window of the input zero-padded by H/8, flipped or not, with a square zeroed
    on every channel: each view image matches exactly one such window off its zeros, and the windows vary."""
    torch.manual_seed(3)
    x = torch.rand(32, 3, 16, 16) + 1  # no zeros of its own
    view = make_loss("ieg", aa=False).view(x)
    assert view.shape == x.shape
    pad, keys = 2, set()
    padded = F.pad(x, (pad, pad, pad, pad))
    for i in range(len(x)):
        hole = view[i] == 0
        assert bool((hole == hole[0]).all()) and hole[0].sum() >= 8 * 8 // 4  # a square's clipped quarter at least
        hits = [(dy, dx, flip) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1) for flip in (False, True)
                if torch.equal(_window(padded[i], dy, dx, flip)[~hole], view[i][~hole])]
        assert len(hits) == 1
        keys.add(hits[0])
    assert len(keys) > 8
    assert not torch.equal(make_loss("ieg").view(x), view)  # AutoAugment on: another view


def _window(padded: torch.Tensor, dy: int, dx: int, flip: bool) -> torch.Tensor:
    window = padded[:, dy : dy + 16, dx : dx + 16]
    return window.flip(2) if flip else window


def test_consistency_is_kl_of_the_batch_to_the_view_with_the_batch_held() -> None:
    z = torch.randn(4, 3, requires_grad=True)
    z_view = torch.randn(4, 3, requires_grad=True)
    loss = consistency(z, z_view)
    expected = F.kl_div(z_view.log_softmax(1), z.softmax(1), reduction="batchmean")
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert z.grad is None and z_view.grad is not None


@pytest.mark.parametrize(("params", "field"), [({"p": -1.0}, "p"), ({"temperature": 0.0}, "temperature"),
                                               ({"init_relabel": 1.5}, "init_relabel"), ({"uc": "yes"}, "uc"),
                                               ({"layers": "first"}, "layers"), ({"meta_lr": 0.0}, "meta_lr")])
def test_bad_ieg_settings_are_config_errors(params: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_loss("ieg", **params)
    assert err.value.field == field


def test_a_probe_method_needs_a_probe() -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(method="l2r", probe_per_class=0)
    assert err.value.field == "probe_per_class"
    assert TrainConfig(method="cce", probe_per_class=0).probe_per_class == 0
    assert [TrainConfig(method=m).resolved_probe_per_class() for m in ("l2r", "ieg", "cce")] == [10, 10, 0]
    assert TrainConfig(method="cce", probe_per_class=3).resolved_probe_per_class() == 3  # the same training part


@pytest.mark.parametrize(("method", "params"), [("l2r", {}), ("ieg", {}), ("ieg", {"layers": "last", "aa": False})])
def test_probe_methods_train_and_report_their_weights(digits: trainers.Dataset, method: str, params: dict) -> None:
    config = TrainConfig(method=method, method_params=params, noise_rate=0.4, epochs=1, lr=0.01, batch_size=64)
    trainer = Trainer(config, digits)
    plain = Trainer(config.replace(method="cce", method_params={}), digits)
    assert trainer.info["probe_size"] == 100 and trainer.info["train_size"] == plain.info["train_size"] - 100
    metrics = list(trainer)[-1]
    assert math.isfinite(metrics["train_loss"]) and metrics["test_acc"] > 0.1
    assert 0 <= metrics["noisy_zero_weight"] <= 1 and 0 <= metrics["noisy_top10"] <= 10
    assert metrics["weight_clean"] > 0 and metrics["weight_noisy"] >= 0
    if method == "ieg":
        assert 0 <= metrics["relabel_clean"] <= 1 and 0 <= metrics["relabel_noisy"] <= 1
    else:
        assert "relabel_clean" not in metrics


def test_ieg_resumes_bit_exactly(digits: trainers.Dataset, resumed) -> None:
    """Augmentation, the probe draws and MixUp use the global generator, which the trainer's state carries; the
    evaluated weight average (on by default for IEG) is in the state too."""
    config = TrainConfig(method="ieg", noise_rate=0.4, epochs=None, iterations=10, eval_every=5, lr=0.01)
    whole, again, second = resumed(config, digits, 1)
    assert again == whole and len(whole) == 2
    assert second.info["eval_weights"] == "ema" and whole[-1]["ema_decay"] == 0.999
