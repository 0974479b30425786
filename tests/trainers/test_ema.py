"""The weight average (trainers.ema) against one rolled by hand from the raw weights after each step; the trainer
evaluates it, reports it and resumes it."""

from __future__ import annotations


import pytest
import torch
from torch import nn

import trainers
from trainers import TrainConfig, Trainer
from trainers.__main__ import _parser, config_from_args, main
from trainers.ema import WeightAverage


@pytest.fixture(scope="module")
def digits() -> trainers.Dataset:
    return trainers.load_dataset("digits")


def hand_rolled(start: dict[str, torch.Tensor], raw: list[dict[str, torch.Tensor]], decay: float
                ) -> dict[str, torch.Tensor]:
    """The EMA of the parameters in `raw` (their values after each step, in order) from `start`, with TensorFlow's
    num_updates warm-up written out; the buffers the last raw ones."""
    average = {k: v.double() for k, v in start.items()}
    for t, weights in enumerate(raw, start=1):
        d = min(decay, (1 + t) / (10 + t))
        average = {k: d * average[k] + (1 - d) * weights[k].double() for k in average}
    return {k: v.float() for k, v in average.items()}


@pytest.mark.parametrize("decay", [0.5, 0.999])
def test_average_follows_the_raw_weights_and_copies_the_batch_norm_statistics(decay: float) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    average = WeightAverage(model, decay)
    start = {k: v.detach().clone() for k, v in model.named_parameters()}
    raw = []
    for t in range(1, 13):  # past the warm-up's cap for 0.5: (1 + t)/(10 + t) > 0.5 from t = 9
        loss = nn.functional.cross_entropy(model(torch.randn(8, 2, 6, 6)), torch.randint(3, (8,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        average.update(model, t)
        raw.append({k: v.detach().clone() for k, v in model.named_parameters()})
    expected = hand_rolled(start, raw, decay)
    got = dict(average.model.named_parameters())
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value)
        assert not torch.equal(got[name], raw[-1][name])  # an average, not the last weights
    bn, bn_avg = model[1], average.model[1]
    assert int(bn.num_batches_tracked) == 12 and bool((bn.running_mean != 0).any())
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(getattr(bn_avg, name), getattr(bn, name))
    assert not any(p.requires_grad for p in average.model.parameters())


def test_the_trainer_evaluates_the_average(digits: trainers.Dataset) -> None:
    """A batch-normalised model: the evaluation's logits and accuracies are those of the hand-rolled average."""
    config = TrainConfig(model="resnet20", noise_rate=0.3, epochs=None, iterations=6, eval_every=1, lr=0.05,
                         ema=0.9, seed=1)
    trainer = Trainer(config, digits)
    start = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    raw, history = [], []
    for metrics in trainer:  # evaluated after every step; evaluation leaves the weights alone
        raw.append({k: v.detach().clone() for k, v in trainer.model.named_parameters()})
        history.append(metrics)
    model = trainers.create_model("resnet20", in_shape=digits.in_shape, num_classes=digits.num_classes)
    model.load_state_dict({**trainer.model.state_dict(), **hand_rolled(start, raw, 0.9)})
    x, y = trainer.test
    with torch.no_grad():
        expected, plain = model.eval()(x), trainer.model.eval()(x)
    torch.testing.assert_close(trainer.predict(x), expected, rtol=1e-4, atol=1e-4)
    assert history[-1]["test_acc"] == pytest.approx((expected.argmax(1) == y).float().mean().item())
    assert not torch.allclose(expected, plain, atol=1e-3)  # the raw weights would predict otherwise
    assert history[-1]["ema_decay"] == 0.9 and trainer.info["eval_weights"] == "ema"


def test_ieg_evaluates_an_average_by_default_and_the_others_the_raw_weights(digits: trainers.Dataset) -> None:
    assert [TrainConfig(method=m).resolved_ema() for m in ("ieg", "l2r", "cce", "dm")] == [0.999, 0.0, 0.0, 0.0]
    assert TrainConfig(method="ieg", ema=0.0).resolved_ema() == 0.0
    assert TrainConfig(method="cce", ema=0.99).resolved_ema() == 0.99
    raw = Trainer(TrainConfig(method="ieg", ema=False, epochs=1), digits)
    assert raw.ema is None and raw.info["eval_weights"] == "raw" and raw.info["ema_decay"] == 0.0
    assert Trainer(TrainConfig(method="l2r", epochs=1), digits).ema is None


def test_a_resumed_run_with_an_average_is_bit_exact(digits: trainers.Dataset, resumed) -> None:
    config = TrainConfig(model="lenet", method="gce", noise_rate=0.3, epochs=3, dropout=0.2, ema=0.95, seed=2)
    whole, again, second = resumed(config, digits, 1)
    assert again == whole and len(whole) == 3
    reference = Trainer(config, digits)
    list(reference)
    for name, value in reference.ema.model.state_dict().items():
        assert torch.equal(second.ema.model.state_dict()[name], value), name


def test_the_command_line_sets_and_shows_the_average(capsys: pytest.CaptureFixture) -> None:
    assert config_from_args(_parser().parse_args(["--ema", "0.99"])).ema == 0.99
    assert config_from_args(_parser().parse_args(["--method", "ieg", "--no-ema"])).resolved_ema() == 0.0
    assert config_from_args(_parser().parse_args(["--method", "ieg"])).ema is None
    assert main(["--method", "ieg", "--iterations", "2", "--json"]) == 0
    assert "· EMA 0.999 evaluation" in capsys.readouterr().err.splitlines()[0]
    assert main(["--method", "ieg", "--no-ema", "--iterations", "2", "--json"]) == 0
    assert "EMA" not in capsys.readouterr().err
