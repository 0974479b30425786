"""Tests for trainers.augment: crop_flip gives windows of the zero-padded input, flipped or not; cutout; AutoAugment."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from trainers.augment import auto_augment, crop_flip, cutout


def _candidates(image: torch.Tensor, pad: int) -> tuple[torch.Tensor, list[tuple[int, int, bool]]]:
    """All (2·pad+1)²·2 crops of one C×H×W image zero-padded by `pad`, built by explicit loops, with their keys."""
    c, h, w = image.shape
    padded = torch.zeros(c, h + 2 * pad, w + 2 * pad, dtype=image.dtype)
    padded[:, pad : pad + h, pad : pad + w] = image
    crops, keys = [], []
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            window = padded[:, dy : dy + h, dx : dx + w]
            for flip in (False, True):
                crops.append(window[:, :, list(range(w - 1, -1, -1))] if flip else window)
                keys.append((dy, dx, flip))
    return torch.stack(crops), keys


def _identify(out: torch.Tensor, image: torch.Tensor, pad: int) -> tuple[int, int, bool]:
    """The unique (dy, dx, flip) whose crop of `image` equals `out` exactly."""
    crops, keys = _candidates(image, pad)
    hits = (crops == out).flatten(1).all(1).nonzero().flatten().tolist()
    assert len(hits) == 1, f"{len(hits)} candidate crops match"
    return keys[hits[0]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_shape_and_dtype_kept(dtype: torch.dtype) -> None:
    x = torch.randn(5, 3, 12, 10, generator=torch.Generator().manual_seed(0)).to(dtype)
    out = crop_flip(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape
    assert out.dtype == dtype


@pytest.mark.parametrize(("shape", "pad"), [((24, 3, 16, 16), 4), ((12, 1, 7, 9), 2), ((6, 2, 5, 5), 0)])
def test_each_output_is_a_window_of_the_padded_input(shape: tuple[int, int, int, int], pad: int) -> None:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(2)) + 3.0  # no zeros: windows are distinct
    out = crop_flip(x, torch.Generator().manual_seed(3), pad=pad)
    keys = [_identify(out[i], x[i], pad) for i in range(len(x))]
    if pad:
        assert len(set(keys)) > 1  # not one fixed crop for the whole batch


def test_default_pad_is_four() -> None:
    x = torch.randn(40, 3, 8, 8, generator=torch.Generator().manual_seed(4)) + 3.0
    out = crop_flip(x, torch.Generator().manual_seed(5))
    keys = [_identify(out[i], x[i], 4) for i in range(len(x))]
    assert max(max(dy, dx) for dy, dx, _ in keys) <= 8


def test_flips_are_half_and_every_shift_occurs() -> None:
    pad, n = 4, 2000
    image = torch.randn(3, 10, 10, generator=torch.Generator().manual_seed(6)) + 3.0
    out = crop_flip(image.expand(n, -1, -1, -1).contiguous(), torch.Generator().manual_seed(7), pad=pad)
    crops, keys = _candidates(image, pad)
    match = (out.flatten(1)[:, None, :] == crops.flatten(1)[None, :, :]).all(2)
    assert torch.equal(match.sum(1), torch.ones(n, dtype=torch.long))  # each output matches exactly one crop
    found = [keys[i] for i in match.float().argmax(1).tolist()]
    flips = sum(flip for _, _, flip in found) / n
    assert abs(flips - 0.5) <= 0.05
    shifts = Counter((dy, dx) for dy, dx, _ in found)
    assert set(shifts) == {(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)}


def test_same_generator_seed_same_output() -> None:
    x = torch.randn(64, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    a = crop_flip(x, torch.Generator().manual_seed(9))
    b = crop_flip(x, torch.Generator().manual_seed(9))
    c = crop_flip(x, torch.Generator().manual_seed(10))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)


def test_generator_advances_between_calls() -> None:
    x = torch.randn(64, 3, 16, 16, generator=torch.Generator().manual_seed(11))
    g = torch.Generator().manual_seed(12)
    assert not torch.equal(crop_flip(x, g), crop_flip(x, g))


def test_input_not_modified() -> None:
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(13))
    before = x.clone()
    crop_flip(x, torch.Generator().manual_seed(14))
    assert torch.equal(x, before)


def test_pad_zero_only_flips() -> None:
    x = torch.randn(200, 1, 6, 6, generator=torch.Generator().manual_seed(15))
    out = crop_flip(x, torch.Generator().manual_seed(16), pad=0)
    same = (out == x).flatten(1).all(1)
    flipped = (out == x.flip(3)).flatten(1).all(1)
    assert bool((same | flipped).all())
    assert 0.35 < flipped.float().mean().item() < 0.65


def test_cutout_zeroes_one_clipped_square_per_image() -> None:
    x = torch.rand(64, 2, 10, 12, generator=torch.Generator().manual_seed(0)) + 1  # no zeros of its own
    out = cutout(x, size=4, generator=torch.Generator().manual_seed(1))
    holes = out == 0
    assert torch.equal(holes[:, 0], holes[:, 1])  # the same square on every channel
    assert torch.equal(out[~holes], x[~holes])
    for hole in holes[:, 0]:
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        assert len(rows) and len(cols) and int(hole.sum()) == len(rows) * len(cols)  # a rectangle
        assert len(rows) <= 4 and len(cols) <= 4
        assert (len(rows) == 4 or rows[0] == 0 or rows[-1] == 9) and (len(cols) == 4 or cols[0] == 0 or cols[-1] == 11)
    assert (holes[:, 0].flatten(1).sum(1) == 16).float().mean() > 0.3  # most squares lie wholly inside
    assert cutout(x).eq(0).flatten(1).sum(1).max() == 2 * 5 * 5  # default size: half the height


@pytest.mark.parametrize("channels", [1, 3])
def test_auto_augment_keeps_shape_and_each_channels_range(channels: int) -> None:
    torch.manual_seed(0)
    levels = torch.randint(0, 256, (32, channels, 16, 16)).float()
    levels[0, :, 0, 0], levels[0, :, 0, 1] = 0, 255
    x = (levels / 255 - 0.4) / 0.3  # normalised images whose pixels 0 and 255 both occur
    out = auto_augment(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    back = (out * 0.3 + 0.4) * 255
    torch.testing.assert_close(back, back.round(), rtol=0, atol=1e-3)  # still whole pixel levels
    assert back.min() >= -1e-3 and back.max() <= 255 + 1e-3
    assert not torch.equal(out, x)


@pytest.mark.parametrize("channels", [1, 3])
def test_auto_augment_draws_a_sub_policy_for_each_image(channels: int) -> None:
    """One image 64 times: per image, the outputs are many distinct images (one sub-policy per group of images, or
    per batch, would give a few); each sub-policy leaves an image alone with probability (1 − p1)(1 − p2) at most."""
    torch.manual_seed(1)
    image = torch.rand(channels, 12, 12, generator=torch.Generator().manual_seed(2))
    out = auto_augment(image.expand(64, -1, -1, -1).contiguous())
    distinct = {tuple(v.flatten().tolist()) for v in out}
    assert len(distinct) > 16


def test_auto_augment_refuses_two_channels() -> None:
    with pytest.raises(ValueError, match="1 or 3 channels"):
        auto_augment(torch.zeros(2, 2, 8, 8))
