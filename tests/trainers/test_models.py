"""Tests of trainers.models: every registered model builds, runs forward/backward, and errors name the choices."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainers import models
from trainers.errors import ConfigError
from trainers.models import Classifier, WideResNet, create_model, list_models, register_model

NUM_CLASSES = 10
SMALL = ["mlp", "lenet", "lenet5", "resnet20", "resnet29", "wrn28_10"]  # wrn28_10 stands for its tiny variant below


def build(name: str, in_shape: tuple[int, int, int] = (3, 32, 32), dropout: float = 0.0) -> Classifier:
    """The model `name`, except that wrn28_10 is replaced by the fast WRN-10-1."""
    if name == "wrn28_10":
        return WideResNet(depth=10, width=1, in_shape=in_shape, num_classes=NUM_CLASSES, dropout=dropout)
    return create_model(name, in_shape=in_shape, num_classes=NUM_CLASSES, dropout=dropout)


CASES = [(name, (3, 32, 32)) for name in list_models()] + [
    ("mlp", (1, 8, 8)),
    ("lenet", (1, 8, 8)),
    ("lenet", (3, 28, 20)),
    ("lenet5", (1, 28, 28)),
    ("lenet5", (1, 16, 17)),
    ("resnet20", (1, 32, 32)),
    ("resnet50", (1, 32, 32)),
]


@pytest.mark.parametrize(("name", "in_shape"), CASES, ids=[f"{n}-{'x'.join(map(str, s))}" for n, s in CASES])
def test_forward_shapes_and_head(name: str, in_shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    model = build(name, in_shape).eval()
    x = torch.randn(2, *in_shape)
    with torch.no_grad():
        logits, feats = model(x), model.features(x)
        assert logits.shape == (2, NUM_CLASSES)
        assert feats.shape == (2, model.head.in_features)
        torch.testing.assert_close(logits, model.head(feats))


@pytest.mark.parametrize("name", SMALL)
def test_backward_gives_finite_gradients(name: str) -> None:
    torch.manual_seed(0)
    model = build(name).train()
    loss = F.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name", SMALL)
def test_channels_last_and_bfloat16_autocast(name: str) -> None:
    torch.manual_seed(0)
    model = build(name).to(memory_format=torch.channels_last).eval()
    x = torch.randn(2, 3, 32, 32).to(memory_format=torch.channels_last)
    with torch.no_grad():
        reference = model(x.contiguous())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x)
    assert logits.shape == (2, NUM_CLASSES)
    torch.testing.assert_close(logits.float(), reference, atol=0.1, rtol=0.1)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("resnet20", 0.27e6), ("resnet56", 0.85e6), ("resnet110", 1.7e6)],
)
def test_cifar_resnet_parameter_counts_match_paper(name: str, expected: float) -> None:
    with torch.device("meta"):
        model = create_model(name, in_shape=(3, 32, 32), num_classes=10)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(expected, rel=0.03)


def test_lenet5_is_the_classic_cifar_lenet() -> None:
    """No padding: 32 −conv→ 28 −pool→ 14 −conv→ 10 −pool→ 5, so 16·5·5 = 400 features into 120 → 84 → 10."""
    by_hand = (
        (3 * 5 * 5 + 1) * 6  # conv 3→6, 5×5: 456
        + (6 * 5 * 5 + 1) * 16  # conv 6→16, 5×5: 2416
        + (400 + 1) * 120  # 48120
        + (120 + 1) * 84  # 10164
        + (84 + 1) * 10  # 850
    )
    assert by_hand == 62_006
    model = create_model("lenet5", in_shape=(3, 32, 32), num_classes=10)
    assert sum(p.numel() for p in model.parameters()) == by_hand
    assert model.body[-4].in_features == 400
    padded = create_model("lenet", in_shape=(3, 32, 32), num_classes=10)  # 16·8·8 = 1024 features
    assert sum(p.numel() for p in padded.parameters()) == 456 + 2416 + (1024 + 1) * 120 + 10164 + 850 == 136_886


@pytest.mark.parametrize(("name", "side"), [("lenet5", 15), ("lenet", 3)])
def test_lenet_inputs_too_small_are_rejected(name: str, side: int) -> None:
    build(name, (1, side + 1, side + 1))
    with pytest.raises(ConfigError) as info:
        build(name, (1, side, side + 1))
    assert info.value.field == "in_shape"


def test_wrn28_10_parameter_count() -> None:
    with torch.device("meta"):
        model = create_model("wrn28_10", in_shape=(3, 32, 32), num_classes=10)
    assert 36.0e6 <= sum(p.numel() for p in model.parameters()) <= 37.0e6
    assert model.head.in_features == 640


def test_resnet29_has_29_layers_in_three_bottleneck_stages() -> None:
    """Seed 003's ResNet-29 (the Keras example's ResNet v2, n = 3): 1 stem + 9 units × 3 convolutions + the head."""
    model = create_model("resnet29", in_shape=(3, 32, 32), num_classes=100)
    convs = [m for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d) and "shortcut" not in name]
    assert len(convs) + 1 == 29 and model.head.in_features == 256
    assert [m.out_channels for m in convs[3::3]] == [64] * 3 + [128] * 3 + [256] * 3
    assert 0.8e6 <= sum(p.numel() for p in model.parameters()) <= 0.9e6


def test_dropout_is_active_only_in_train_mode() -> None:
    torch.manual_seed(0)
    model = build("mlp", dropout=0.5)
    x = torch.randn(4, 3, 32, 32)
    assert not torch.equal(model.train()(x), model(x))
    model.eval()
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("dropout", [1.0, -0.1, float("nan")])
def test_dropout_out_of_range_is_rejected(dropout: float) -> None:
    with pytest.raises(ConfigError) as info:
        build("lenet", dropout=dropout)
    assert info.value.field == "dropout"


def test_unknown_name_lists_the_known_names() -> None:
    with pytest.raises(ConfigError) as info:
        create_model("vgg16", in_shape=(3, 32, 32), num_classes=10)
    assert info.value.field == "model"
    for name in list_models():
        assert name in str(info.value)


def test_register_model_refuses_duplicates() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_model("mlp")(models.MLP)
