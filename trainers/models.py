"""Classifier models chosen by name: a registry of builders and the networks it holds."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from trainers.catalog import MODELS, list_models, register_model  # noqa: F401 (re-exported)
from trainers.errors import ConfigError


class Classifier(nn.Module):
    """Base class: `features(x)` gives the input of the final linear layer (B×K); `head` is that nn.Linear."""

    head: nn.Linear

    def __init__(self, dropout: float) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ConfigError("dropout", dropout, "a number in [0, 1)")
        self.dropout = nn.Dropout(dropout)

    def features(self, x: Tensor) -> Tensor:
        """The B×K input of `head` for a batch of inputs (by default `self.body(x)`)."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (B×num_classes), with dropout before the final linear layer."""
        return self.head(self.dropout(self.features(x)))


Builder = Callable[..., Classifier]  # called as builder(in_shape=(C, H, W), num_classes=..., dropout=...)
def create_model(
    name: str, *, in_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0
) -> Classifier:
    """A new, randomly initialised model `name` for inputs of shape (C, H, W)."""
    return MODELS[name](in_shape=tuple(in_shape), num_classes=num_classes, dropout=dropout)


@register_model("mlp")
class MLP(Classifier):
    """Two hidden ReLU layers of width 256 on the flattened input."""

    def __init__(self, *, in_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0) -> None:
        super().__init__(dropout)
        c, h, w = in_shape
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(c * h * w, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU()
        )
        self.head = nn.Linear(256, num_classes)


@register_model("lenet")
class LeNet(Classifier):
    """LeNet-5 style network: two 5×5 convolutions (6 and 16 channels) with ReLU and 2×2 max pooling, then 120 and 84
    hidden units, for any channel count.

    `padding` 2 (`lenet`) keeps the size through each convolution: inputs of at least 4×4, 0.137M parameters on
    CIFAR. `padding` 0 (`lenet5`) is the classic CIFAR LeNet (16×5×5 = 400 features): at least 16×16, 0.062M.
    """

    def __init__(self, *, in_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0,
                 padding: int = 2) -> None:
        super().__init__(dropout)
        c, h, w = in_shape

        def pooled(n: int) -> int:  # a side after convolution, pooling, convolution, pooling
            return ((n + 2 * padding - 4) // 2 + 2 * padding - 4) // 2

        if min(pooled(h), pooled(w)) < 1:
            raise ConfigError("in_shape", in_shape, f"inputs of at least {16 - 6 * padding}×{16 - 6 * padding}")
        self.body = nn.Sequential(
            nn.Conv2d(c, 6, 5, padding=padding), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5, padding=padding), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * pooled(h) * pooled(w), 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(84, num_classes)


register_model("lenet5")(functools.partial(LeNet, padding=0))


def _he_init(model: nn.Module) -> None:
    """He's initialisation (fan-out, ReLU) of every convolution in `model`."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class _BasicBlock(nn.Module):
    """Post-activation basic block with a parameter-free shortcut (He et al. 2016, option A)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride, self.extra_channels = stride, c_out - c_in

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))
        return F.relu(out + shortcut)


class CifarResNet(Classifier):
    """CIFAR ResNet of depth 6n+2 (He et al. 2016, §4.2): stages of 16/32/64 channels."""

    def __init__(
        self, *, depth: int, in_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0
    ) -> None:
        super().__init__(dropout)
        if depth < 8 or (depth - 2) % 6:
            raise ConfigError("depth", depth, "6n+2 with n >= 1")
        layers: list[nn.Module] = [nn.Conv2d(in_shape[0], 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
        c_in = 16
        for stage, c_out in enumerate((16, 32, 64)):
            for i in range((depth - 2) // 6):
                layers.append(_BasicBlock(c_in, c_out, 2 if stage > 0 and i == 0 else 1))
                c_in = c_out
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(64, num_classes)
        _he_init(self)


for _depth in (20, 32, 44, 56, 110):
    register_model(f"resnet{_depth}")(functools.partial(CifarResNet, depth=_depth))


class _Bottleneck(nn.Module):
    """Pre-activation bottleneck unit (He et al. 2016b): 1×1 (stride), 3×3, 1×1 convolutions after BN-ReLU each, with a
    1×1 projection shortcut of the raw input at the first unit of a stage; the network's first unit has no BN-ReLU
    before its first convolution (the stem's follows it)."""

    def __init__(self, c_in: int, width: int, c_out: int, stride: int, *, project: bool, first: bool) -> None:
        super().__init__()
        self.pre = nn.Identity() if first else nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU())
        self.conv1 = nn.Conv2d(c_in, width, 1, stride, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(width), nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn3, self.conv3 = nn.BatchNorm2d(width), nn.Conv2d(width, c_out, 1, bias=False)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if project else None

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv1(self.pre(x))
        y = self.conv3(F.relu(self.bn3(self.conv2(F.relu(self.bn2(y))))))
        return y + (x if self.shortcut is None else self.shortcut(x))


class PreActResNet(Classifier):
    """Pre-activation bottleneck ResNet of depth 9n+2 (the Keras CIFAR-10 example's ResNet v2, which seed 003 uses as
    ResNet-29): a 3×3 stem of 16, then stages of n units widening to 64, 128 and 256 channels."""

    def __init__(
        self, *, depth: int, in_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0
    ) -> None:
        super().__init__(dropout)
        if depth < 11 or (depth - 2) % 9:
            raise ConfigError("depth", depth, "9n+2 with n >= 1")
        layers: list[nn.Module] = [nn.Conv2d(in_shape[0], 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
        width = 16
        for stage in range(3):
            c_out = width * (4 if stage == 0 else 2)
            for i in range((depth - 2) // 9):
                c_in = width if i == 0 else c_out
                layers.append(_Bottleneck(c_in, width, c_out, 2 if stage > 0 and i == 0 else 1, project=i == 0,
                                          first=stage == 0 and i == 0))
            width = c_out
        self.body = nn.Sequential(*layers, nn.BatchNorm2d(width), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, num_classes)
        _he_init(self)


register_model("resnet29")(functools.partial(PreActResNet, depth=29))


class _WideBlock(nn.Module):
    """Pre-activation wide basic block; 1×1 conv shortcut on the activated input when shapes change."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride != 1 or c_in != c_out else None

    def forward(self, x: Tensor) -> Tensor:
        a = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(a))))
        return out + (x if self.shortcut is None else self.shortcut(a))


class WideResNet(Classifier):
    """Wide ResNet WRN-depth-width (Zagoruyko & Komodakis 2016): groups of 16k/32k/64k channels."""

    def __init__(
        self, *, depth: int, width: int, in_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0
    ) -> None:
        super().__init__(dropout)
        if depth < 10 or (depth - 4) % 6:
            raise ConfigError("depth", depth, "6n+4 with n >= 1")
        layers: list[nn.Module] = [nn.Conv2d(in_shape[0], 16, 3, 1, 1, bias=False)]
        c_in = 16
        for stage, c_out in enumerate((16 * width, 32 * width, 64 * width)):
            for i in range((depth - 4) // 6):
                layers.append(_WideBlock(c_in, c_out, 2 if stage > 0 and i == 0 else 1))
                c_in = c_out
        self.body = nn.Sequential(
            *layers, nn.BatchNorm2d(c_in), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.head = nn.Linear(c_in, num_classes)
        _he_init(self)


register_model("wrn28_10")(functools.partial(WideResNet, depth=28, width=10))


@register_model("resnet50")
class ResNet50(Classifier):
    """torchvision's ResNet-50 (random init) with its `fc` as `head`; conv1 adapted to the channel count."""

    def __init__(self, *, in_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0) -> None:
        from torchvision.models import resnet50  # imported here: torchvision takes seconds to import, see datasets.py

        super().__init__(dropout)
        self.body = resnet50(weights=None)
        if in_shape[0] != 3:
            self.body.conv1 = nn.Conv2d(in_shape[0], 64, 7, 2, 3, bias=False)
            nn.init.kaiming_normal_(self.body.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.body.fc = nn.Identity()
        self.head = nn.Linear(2048, num_classes)
