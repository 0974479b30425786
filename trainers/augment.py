"""Batched augmentation on the device: zero-pad, random crop and horizontal flip as tensor operations."""

from __future__ import annotations

import torch
from torch import Tensor


def crop_flip(x: Tensor, generator: torch.Generator, pad: int = 4) -> Tensor:
    """Each image of the batch x (B×C×H×W) padded by `pad` zeros, cropped back at a random offset, flipped half the time."""
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
