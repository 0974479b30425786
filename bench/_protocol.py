"""Training settings the benchmarks share."""

from __future__ import annotations

from trainers import TrainConfig


def thesis_protocol(dataset: str, model: str, *, data_root: str | None, device: str = "cpu",
                    noise_rate: float = 0.4) -> TrainConfig:
    """Gradient similarity's protocol (seed 004 §3): Adam lr 1e-3 × 0.85 per epoch, batch 128, symmetric noise."""
    return TrainConfig(dataset=dataset, data_root=data_root, model=model, noise="symmetric", noise_rate=noise_rate,
                       optimizer="adam", lr=1e-3, weight_decay=0.0, schedule="exponential", gamma=0.85,
                       batch_size=128, device=device)
