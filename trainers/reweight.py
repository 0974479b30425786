"""Methods that learn per-example weights from a small trusted probe set (seed 003): L2R, and IEG in trainers.ieg.

They run the model themselves (a virtual step, extra views): `forward(inputs, targets, *, model, probe, optimizer,
noisy)` returns the batch's logits and the loss, and the trainer backpropagates the loss. The virtual step's math is in
trainers.meta.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainers.emphasis import at_least_float32
from trainers.methods import LAYERS, META_LR, Layers
from trainers.meta import (
    head_logits_along,
    logits_along,
    meta_derivatives,
    meta_params,
    probe_gradient,
    weights_from,
)

# Per-epoch sums: B·weight and count of clean, then of noisy examples; relabel coefficient of clean, of noisy
# examples; noisy examples with weight 0.
_SUMS = 7


class ProbeMethod(nn.Module):
    """Base of the methods that learn from a trusted probe set; they run the model themselves (module docstring).

    `needs` names what the trainer passes as keyword arguments. `last_scores` keeps the last batch's weights (by which
    the trainer ranks its examples: noisy_top10, noisy_bottom10); `epoch_metrics()` gives the means since its last
    call of the weights, in units of the uniform 1/B, and of the relabel coefficients, of clean and of noisy examples
    (the noise mask is read for these metrics only), and the share of noisy examples given weight 0.

    `probe_batch` gives each step's probe batch: the probe set whole where it is no larger than the batch, else the
    next `batch_size` examples of it in its order, cycling (the authors' unshuffled, repeated probe stream: with the
    class-interleaved probe of trainers.splits, each batch class-balanced); the position is in the state_dict.
    """

    needs: tuple[str, ...] = ("model", "probe", "optimizer", "noisy")
    relabels = False  # whether the method learns relabel coefficients (the relabel_* metrics)

    def __init__(self, meta_lr: float, layers: Layers) -> None:
        super().__init__()
        META_LR.check("meta_lr", meta_lr)
        LAYERS.check("layers", layers)
        self.meta_lr, self.layers = meta_lr, layers
        self.register_buffer("sums", torch.zeros(_SUMS))
        self.register_buffer("probe_start", torch.zeros((), dtype=torch.long))  # the next probe batch's first index
        self.last_scores: Tensor | None = None

    def probe_batch(self, probe: tuple[Tensor, Tensor], batch_size: int) -> tuple[Tensor, Tensor]:
        """This step's probe batch (class docstring); advances the position, on the device, without a sync."""
        x, y = probe
        if len(y) <= batch_size:
            return x, y
        start = self.probe_start.to(y.device)
        chosen = (start + torch.arange(batch_size, device=y.device)) % len(y)
        self.probe_start = (start + batch_size) % len(y)
        return x[chosen], y[chosen]

    def record(self, weights: Tensor, relabel: Tensor | None, noisy: Tensor) -> None:
        """Add a batch's weights (and relabel coefficients) to the epoch's sums, on the device, without a sync."""
        with torch.no_grad():
            self.last_scores = weights
            noisy = noisy.to(weights.dtype)
            clean, scaled = 1 - noisy, weights * len(weights)
            lam = relabel.to(weights.dtype) if relabel is not None else torch.zeros_like(weights)
            batch = torch.stack([(scaled * clean).sum(), clean.sum(), (scaled * noisy).sum(), noisy.sum(),
                                 (lam * clean).sum(), (lam * noisy).sum(), ((weights == 0) * noisy).sum()])
            self.sums = self.sums.to(batch.device) + batch

    def epoch_metrics(self) -> dict[str, float]:
        """weight_clean, weight_noisy (mean B·w), noisy_zero_weight and for a relabelling method relabel_clean and
        relabel_noisy, over the batches since the last call (nan where there was no such example); then resets."""
        w_clean, n_clean, w_noisy, n_noisy, lam_clean, lam_noisy, zero = self.sums.tolist()
        self.sums = torch.zeros_like(self.sums)
        metrics = {"weight_clean": _ratio(w_clean, n_clean), "weight_noisy": _ratio(w_noisy, n_noisy),
                   "noisy_zero_weight": _ratio(zero, n_noisy)}
        if self.relabels:
            metrics |= {"relabel_clean": _ratio(lam_clean, n_clean), "relabel_noisy": _ratio(lam_noisy, n_noisy)}
        return metrics


class L2R(ProbeMethod):
    """Learning to reweight (Ren et al. 2018; seed 003 Table 7 row 1): w = max(−∂L_p/∂ε, 0)/(Σ + 1e-5) at ε = 0, from
    one virtual SGD step of size `meta_lr` on all layers or the last; the loss Σ w_i·CE_i, w held constant.

    At ε = 0 the virtual step leaves θ where it is, so the probe's gradient comes first and the batch's forward pass
    carries its direction along (one forward-mode pass: the logits and J·∇L_p together).
    """

    def forward(self, inputs: Tensor, targets: Tensor, *, model: nn.Module, probe: tuple[Tensor, Tensor],
                optimizer: torch.optim.Optimizer | None = None, noisy: Tensor) -> tuple[Tensor, Tensor]:
        tangent = probe_gradient(model, meta_params(model, self.layers), self.probe_batch(probe, len(targets)))
        if self.layers == "all":
            logits, u = logits_along(model, inputs, tangent, copy_buffers=False)
        else:
            features = model.dropout(model.features(inputs))
            logits = model.head(features)
            u = head_logits_along(features, tangent)
        zeros = torch.zeros(len(targets), device=logits.device)
        d_weight, _ = meta_derivatives(logits, u, targets, None, zeros, torch.ones_like(zeros), self.meta_lr)
        weights = weights_from(d_weight)
        self.record(weights, None, noisy)
        with torch.autocast(logits.device.type, enabled=False):
            return logits, (weights * F.cross_entropy(at_least_float32(logits), targets, reduction="none")).sum()


def _ratio(total: float, count: float) -> float:
    return total / count if count else math.nan
