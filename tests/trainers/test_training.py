"""The training loop: determinism, accuracy on clean digits, bit-exact resume, and metrics checked independently."""

import math

import pytest
import torch

import trainers
from trainers import ConfigError, TrainConfig, Trainer, train


@pytest.fixture(scope="module")
def digits() -> trainers.Dataset:
    return trainers.load_dataset("digits")


def run(config: TrainConfig, data: trainers.Dataset) -> list[dict]:
    trainer = Trainer(config, data)
    return [without_time(m) for m in trainer]


def without_time(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "time"}


def test_same_config_and_seed_give_identical_metrics(digits: trainers.Dataset) -> None:
    config = TrainConfig(method="dm", method_params={"lam": 1.0, "beta": 4.0}, noise_rate=0.4, epochs=3,
                         lr=0.01, dropout=0.2, augment=True)
    first, second = run(config, digits), run(config, digits)
    assert first == second
    assert run(config.replace(seed=1), digits) != first


def test_clean_digits_reach_90_percent(digits: trainers.Dataset) -> None:
    final = train(TrainConfig(noise_rate=0.0, epochs=10), data=digits)
    assert final["test_acc"] >= 0.90
    assert final["val_acc"] >= 0.90


@pytest.mark.parametrize(("eval_every", "ema"), [(None, None), (7, 0.99)])
def test_resume_from_a_state_dict_is_bit_exact(digits: trainers.Dataset, eval_every: int | None,
                                               ema: float | None, resumed) -> None:
    """Stop after two evaluations, save through torch.save/torch.load(weights_only=True), continue elsewhere."""
    config = TrainConfig(method="gce", noise_rate=0.3, epochs=4, dropout=0.3, augment=True, eval_every=eval_every,
                         schedule="cosine", ema=ema, seed=3)
    whole, again, second = resumed(config, digits, 2)
    assert again == whole
    assert [without_time(m) for m in second.history] == whole


def test_metrics_match_an_independent_computation(digits: trainers.Dataset) -> None:
    config = TrainConfig(noise_rate=0.4, epochs=2, seed=5)
    trainer = Trainer(config, digits)
    metrics = list(trainer)[-1]
    model = trainer.model.eval()
    split = trainers.make_split(digits, noise="symmetric", noise_rate=0.4, seed=5)
    with torch.no_grad():
        train_logits, test_logits = model(split.train_x), model(split.test_x)
        val_logits = model(split.val_x)
    pred = train_logits.argmax(1)
    p_given = train_logits.softmax(1)[torch.arange(len(split.train_y)), split.train_y]
    noisy = split.is_noisy
    assert metrics["test_acc"] == pytest.approx((test_logits.argmax(1) == split.test_y).float().mean().item())
    assert metrics["val_acc"] == pytest.approx((val_logits.argmax(1) == split.val_y).float().mean().item())
    assert metrics["fit_acc"] == pytest.approx((pred == split.train_y).float().mean().item())
    assert metrics["intact_acc"] == pytest.approx((pred == split.true_y).float().mean().item())
    assert metrics["noisy_fit_acc"] == pytest.approx((pred == split.train_y)[noisy].float().mean().item())
    assert metrics["p_clean"] == pytest.approx(p_given[~noisy].mean().item(), rel=1e-5)
    assert metrics["p_noisy"] == pytest.approx(p_given[noisy].mean().item(), rel=1e-5)
    assert trainer.info["noise_rate_realised"] == pytest.approx(0.4, abs=0.001)
    assert metrics["best_val_acc"] == max(m["val_acc"] for m in trainer.history)


def test_equal_weights_have_zero_variance_and_a_fair_share(digits: trainers.Dataset) -> None:
    """β = 0 weighs every example alike: emphasis variance 0, noisy examples get their share of the weight."""
    trainer = Trainer(TrainConfig(method="dm", method_params={"lam": 1.0, "beta": 0.0}, noise_rate=0.4,
                                  epochs=1, lr=0.01), digits)
    metrics = list(trainer)[-1]
    assert metrics["emphasis_var"] == pytest.approx(0.0, abs=1e-10)
    batches = trainer.steps_per_epoch
    assert metrics["noisy_weight_share"] == pytest.approx(0.4, abs=0.02)  # batches sample the 40%
    assert batches == math.ceil(trainer.info["train_size"] / 128)


def test_cce_gives_noisy_examples_more_than_their_share(digits: trainers.Dataset) -> None:
    """CCE's weight 2(1 − p) is larger for the examples it cannot fit: the noisy ones."""
    metrics = run(TrainConfig(method="cce", noise_rate=0.4, epochs=4, lr=0.05), digits)[-1]
    assert metrics["noisy_weight_share"] > 0.5
    assert metrics["emphasis_var"] > 0.01


def test_final_mode_trains_on_everything(digits: trainers.Dataset) -> None:
    trainer = Trainer(TrainConfig(split="final", epochs=1), digits)
    metrics = list(trainer)[-1]
    assert "val_acc" not in metrics and "best_val_acc" not in metrics
    assert trainer.info["train_size"] == len(digits.train_y) and trainer.info["val_size"] == 0


def test_iterations_and_eval_every(digits: trainers.Dataset) -> None:
    history = run(TrainConfig(epochs=None, iterations=20, eval_every=6), digits)
    assert [m["step"] for m in history] == [6, 12, 18, 20]


@pytest.mark.parametrize("model", ["lenet", "resnet20"])
def test_predict_gives_the_same_logits_in_any_chunks_and_memory_format(digits: trainers.Dataset, model: str) -> None:
    """The evaluation's inference path (chunks of eval_batch, channels-last inputs, inference mode) changes the logits
    by float rounding at most: the accuracies are those of one plain forward pass."""
    trainer = Trainer(TrainConfig(model=model, epochs=None, iterations=3, eval_every=3), digits)
    list(trainer)
    x = trainer.test[0]
    with torch.no_grad():
        plain = trainer.model.eval()(x)
    for chunk, memory_format in ((7, torch.channels_last), (1024, torch.contiguous_format)):
        trainer.eval_batch, trainer.eval_format = chunk, memory_format
        logits = trainer.predict(x)
        torch.testing.assert_close(logits, plain, rtol=1e-5, atol=1e-5)
        assert torch.equal(logits.argmax(1), plain.argmax(1))


def test_bf16_autocast_and_adam_run_on_the_cpu(digits: trainers.Dataset) -> None:
    final = train(TrainConfig(bf16=True, optimizer="adam", lr=1e-3, epochs=3, method="dm",
                              method_params={"lam": 0.5, "beta": 4.0}), data=digits)
    assert math.isnan(final["p_noisy"]) and math.isnan(final["noisy_fit_acc"])  # no noisy examples at rate 0
    assert all(math.isfinite(v) for k, v in final.items() if k not in ("p_noisy", "noisy_fit_acc"))
    assert final["test_acc"] > 0.5


def test_callback_sees_every_evaluation(digits: trainers.Dataset) -> None:
    seen = []
    final = train(TrainConfig(epochs=3), data=digits, callback=seen.append)
    assert [m["epoch"] for m in seen] == [1.0, 2.0, 3.0] and seen[-1] is final


def test_a_diverging_run_raises(digits: trainers.Dataset) -> None:
    with pytest.raises(FloatingPointError, match="loss became"):
        train(TrainConfig(optimizer="sgd", lr=1e30, momentum=0.0, epochs=2), data=digits)


def test_cuda_without_a_gpu_is_a_config_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(ConfigError, match="device"):
        Trainer(TrainConfig(device="cuda"))


def test_fashion_mnist_trains_from_the_real_files(fashion_root) -> None:
    """A short run on a real data set: one epoch of an MLP learns Fashion-MNIST far above chance."""
    data = trainers.load_dataset("fashion_mnist", fashion_root, download=False)
    final = train(TrainConfig(dataset="fashion_mnist", epochs=None, iterations=150, batch_size=256, lr=0.05), data=data)
    assert final["test_acc"] > 0.7


def test_cifar10_resnet_path_with_augmentation_and_iteration_milestones(cifar10_root) -> None:
    """The papers' CIFAR recipe in miniature: ResNet-20, crop-and-flip, ÷10 at iteration milestones, on a subset."""
    import dataclasses

    full = trainers.load_dataset("cifar10", cifar10_root, download=False)
    data = dataclasses.replace(full, train_x=full.train_x[:600], train_y=full.train_y[:600],
                               test_x=full.test_x[:200], test_y=full.test_y[:200])
    config = TrainConfig(dataset="cifar10", model="resnet20", method="dm", method_params={"lam": 0.5, "beta": 8.0},
                         noise_rate=0.2, lr=0.1, batch_size=64, epochs=None, iterations=12, eval_every=6,
                         schedule="multistep", schedule_unit="iteration", milestones=(6, 9))
    trainer = Trainer(config, data)
    history = list(trainer)
    assert trainer.augment and [m["step"] for m in history] == [6, 12]
    assert history[0]["lr"] == pytest.approx(0.1) and history[1]["lr"] == pytest.approx(0.001)
    assert all(math.isfinite(history[-1][k]) for k in ("train_loss", "test_acc", "p_clean", "p_noisy"))
