"""Gradient similarity as trainer methods: the registered losses, one step against a hand computation, what the
methods may read, the noisy_top10/bottom10 metrics, and bit-exact resume."""

import copy
import dataclasses
import io

import pytest
import torch
import torch.nn.functional as F

import trainers
from trainers import ConfigError, TrainConfig, Trainer, loss_params, make_loss
from trainers.gradsim import gradsim_weights, noisy_among_extremes, per_example_cosines, weights_from_cosines


@pytest.fixture(scope="module")
def small() -> trainers.Dataset:
    """120 digits: a training split of 96 that one batch of 128 holds whole, so a step sees every example."""
    data = trainers.load_dataset("digits")
    return dataclasses.replace(data, train_x=data.train_x[:120], train_y=data.train_y[:120],
                               test_x=data.test_x[:60], test_y=data.test_y[:60])


def one_batch(method: str, **params) -> TrainConfig:
    """Plain SGD (no momentum, no weight decay) on whole-set batches of 128, so that an update is lr × gradient."""
    return TrainConfig(method=method, method_params=params, noise_rate=0.4, optimizer="sgd", momentum=0.0,
                       weight_decay=0.0, lr=0.5, batch_size=128, epochs=None, iterations=2, eval_every=1, seed=1)


def sgd_step(model: torch.nn.Module, loss: torch.Tensor, lr: float) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, list(model.parameters()))
    return [p.detach() - lr * g for p, g in zip(model.parameters(), grads)]


def assert_model_is(trainer: Trainer, expected: list[torch.Tensor]) -> None:
    for got, want in zip(trainer.model.parameters(), expected):
        torch.testing.assert_close(got.detach(), want, rtol=1e-4, atol=1e-6)


def test_registered_with_the_paper_defaults_and_checked() -> None:
    assert loss_params("gradsim") == {"a": 4.0, "k": 4, "within_class": False, "layers": "last", "drop": 0.0}
    assert loss_params("gradsim-random") == {} and loss_params("gradsim-oracle") == {}
    assert make_loss("gradsim").needs == ("features",)
    assert make_loss("gradsim", layers="all").needs == ("inputs", "model")
    assert make_loss("gradsim-oracle").needs == ("noisy",) and make_loss("gradsim-random").needs == ()
    for bad in ({"k": 0}, {"k": 2.0}, {"a": float("nan")}, {"layers": "first"}, {"drop": 1.0}, {"within_class": 1}):
        with pytest.raises(ConfigError) as error:
            make_loss("gradsim", **bad)
        assert error.value.field.removeprefix("gradsim.") == next(iter(bad))


@pytest.mark.parametrize("layers", ["last", "all"])
def test_one_step_equals_a_hand_computation(small: trainers.Dataset, layers: str) -> None:
    """loss = Σ w_i·CE_i, w from the model's own gradients (constants), differentiated independently."""
    config = one_batch("gradsim", a=4.0, k=3, layers=layers)
    trainer = Trainer(config, small)
    model = copy.deepcopy(trainer.model)
    x, y = trainer.train_x, trainer.train_y  # the one batch holds them all; the loss does not depend on their order
    features = model.features(x)
    logits = model.head(features)
    if layers == "last":
        w = gradsim_weights(features, logits, y, a=4.0, k=3)
    else:
        w = weights_from_cosines(per_example_cosines(model.eval(), x, y), 4.0, 3)
    expected = sgd_step(model, (w * F.cross_entropy(logits, y, reduction="none")).sum(), config.lr)
    next(iter(trainer))
    assert_model_is(trainer, expected)
    plain = sgd_step(model, F.cross_entropy(model.head(model.features(x)), y), config.lr)
    assert not all(torch.allclose(p, q, rtol=1e-3) for p, q in zip(plain, expected))  # the weights matter


def test_the_oracle_zeroes_the_noisy_examples_of_each_batch() -> None:
    data = trainers.load_dataset("digits")
    trainer = Trainer(TrainConfig(method="gradsim-oracle", noise_rate=0.4, batch_size=32, epochs=None, iterations=5),
                      data)
    seen = []
    trainer.loss_fn.register_forward_hook(lambda module, args, kwargs, out: seen.append(
        (kwargs["noisy"].clone(), module.last_scores.clone())), with_kwargs=True)
    list(trainer)
    assert len(seen) == 5
    for noisy, weights in seen:
        assert noisy.any() and (weights[noisy] == 0).all()
        torch.testing.assert_close(weights[~noisy], torch.full((int((~noisy).sum()),), 1 / int((~noisy).sum())))


def test_within_class_reads_neither_clean_labels_nor_the_noise_mask(small: trainers.Dataset) -> None:
    config = one_batch("gradsim", k=64, within_class=True).replace(iterations=3, batch_size=32)
    honest, blind = Trainer(config, small), Trainer(config, small)
    blind.true_y = torch.randint(0, 10, blind.true_y.shape, generator=torch.Generator().manual_seed(0))
    blind.is_noisy = ~blind.is_noisy
    list(honest), list(blind)
    for p, q in zip(honest.model.parameters(), blind.model.parameters()):
        assert torch.equal(p, q)
    across = Trainer(config.replace(method_params={"k": 64}), small)
    list(across)
    assert not all(torch.equal(p, q) for p, q in zip(honest.model.parameters(), across.model.parameters()))


def test_noisy_top10_and_bottom10_equal_a_recomputation(small: trainers.Dataset) -> None:
    """Whole-set batches: each evaluation's counts are those of the weights of the model before the step; with two
    steps between evaluations, their mean."""
    config = one_batch("gradsim", a=8.0, k=4)
    trainer = Trainer(config, small)
    expected = []
    for _ in range(2):
        model = copy.deepcopy(trainer.model)
        features = model.features(trainer.train_x)
        weights = gradsim_weights(features, model.head(features), trainer.train_y, a=8.0, k=4)
        expected.append(noisy_among_extremes(weights, trainer.is_noisy).tolist())
        metrics = next(iter(trainer))
        assert [metrics["noisy_top10"], metrics["noisy_bottom10"]] == expected[-1]
    averaged = list(Trainer(config.replace(eval_every=2), small))[-1]
    assert [averaged["noisy_top10"], averaged["noisy_bottom10"]] == [(a + b) / 2 for a, b in zip(*expected)]


@pytest.mark.parametrize(("method", "params"), [("gradsim", {}), ("gradsim-random", {}), ("gradsim-oracle", {}),
                                                ("cce", {})])
def test_extremes_metrics_are_in_range_and_only_for_weighting_methods(method: str, params: dict) -> None:
    history = list(Trainer(TrainConfig(method=method, method_params=params, noise_rate=0.4, epochs=2)))
    for metrics in history:
        if method == "cce":
            assert "noisy_top10" not in metrics and "noisy_bottom10" not in metrics
        else:
            assert 0 <= metrics["noisy_top10"] <= 10 and 0 <= metrics["noisy_bottom10"] <= 10
    if method == "gradsim-oracle":
        assert history[-1]["noisy_top10"] == 0 and history[-1]["noisy_weight_share"] == 0


@pytest.mark.parametrize(("method", "params"), [("gradsim", {"within_class": True, "drop": 0.2}),
                                                ("gradsim-random", {})])
def test_resume_from_a_state_dict_is_bit_exact(method: str, params: dict) -> None:
    data = trainers.load_dataset("digits")
    config = TrainConfig(method=method, method_params=params, noise_rate=0.4, epochs=3, dropout=0.3, augment=True,
                         eval_every=5, seed=2)

    def without_time(history: list[dict]) -> list[dict]:
        return [{k: v for k, v in m.items() if k != "time"} for m in history]

    whole = without_time(Trainer(config, data))
    first = Trainer(config, data)
    stream = iter(first)
    head = without_time([next(stream), next(stream)])
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    torch.rand(5)  # the global generator, which the random baseline draws from, moves on in between
    second = Trainer(config, data)
    second.load_state_dict(torch.load(buffer, weights_only=True))
    assert head + without_time(second) == whole
