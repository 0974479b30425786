"""Batched augmentation on the device: zero-pad, random crop and horizontal flip as tensor operations; cutout; and
torchvision's AutoAugment, one sub-policy per image (IEG's augmented views, seed 003)."""

from __future__ import annotations

import torch
from torch import Tensor

# AutoAugment's learned policies: CIFAR-10's for colour images (the paper's); for one channel SVHN's, learned on digits
# (CIFAR-10's colour and saturation operations do nothing to a grey image).
AA_POLICY = {3: "CIFAR10", 1: "SVHN"}  # names of torchvision's AutoAugmentPolicy


def crop_flip(x: Tensor, generator: torch.Generator | None = None, pad: int = 4) -> Tensor:
    """Each image of the batch x (B×C×H×W) padded by `pad` zeros, cropped back at a random offset, flipped half the
    time; drawn from `generator` (None: the global one)."""
    b, _, h, w = x.shape
    shifts = torch.randint(0, 2 * pad + 1, (2, b), device=x.device, generator=generator)
    flip = torch.rand(b, device=x.device, generator=generator) < 0.5
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = (shifts[0, :, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (shifts[1, :, None] + torch.arange(w, device=x.device))
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def cutout(x: Tensor, size: int | None = None, generator: torch.Generator | None = None) -> Tensor:
    """Each image of x (B×C×H×W) with a size×size square set to 0 (the mean of normalised data) around a random centre,
    clipped at the border (DeVries & Taylor 2017); size defaults to half the height (16 for CIFAR's 32)."""
    b, _, h, w = x.shape
    size = h // 2 if size is None else size
    centre = (torch.rand(2, b, 1, device=x.device, generator=generator) * torch.tensor([[[h]], [[w]]], device=x.device))
    centre = centre.floor() - size // 2
    rows = torch.arange(h, device=x.device)[None, :]
    cols = torch.arange(w, device=x.device)[None, :]
    inside_rows = (rows >= centre[0]) & (rows < centre[0] + size)
    inside_cols = (cols >= centre[1]) & (cols < centre[1] + size)
    hole = inside_rows[:, None, :, None] & inside_cols[:, None, None, :]
    return x.masked_fill(hole, 0)


def auto_augment(x: Tensor) -> Tensor:
    """AutoAugment (torchvision's, policy AA_POLICY by channel count) on a batch of normalised float images, a
    sub-policy (and its operations' coins and signs) drawn for each image from the global generator, as the authors'
    (their `pool_policy_augmentation` without a pool: one random policy per image). One torchvision call per image:
    about 0.1 ms each on a CPU core for 28×28 images.

    The images go to uint8 through each channel's range within the batch (min → 0, max → 255; for a batch of real
    images the data set's own 0 and 255) and come back through the same affine map.
    """
    channels = x.shape[1]
    if channels not in AA_POLICY:
        raise ValueError(f"AutoAugment needs 1 or 3 channels, not {channels}")
    from torchvision.transforms import v2  # imported here: torchvision takes seconds to import, see datasets.py

    policy = v2.AutoAugment(v2.AutoAugmentPolicy[AA_POLICY[channels]])
    low = x.amin(dim=(0, 2, 3), keepdim=True)
    span = (x.amax(dim=(0, 2, 3), keepdim=True) - low).clamp_min(torch.finfo(x.dtype).tiny)
    pixels = ((x - low) / span * 255).round().clamp(0, 255).to(torch.uint8)
    out = torch.stack([policy(image) for image in pixels])
    return (out.to(x.dtype) / 255) * span + low
