"""Figure 2, data pipeline: epochs of the trainers' device-resident data against torchvision's Dataset + DataLoader."""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import transforms
from torchvision.datasets import CIFAR10, FashionMNIST

from bench._markdown import yes_no
from bench._registry import NO_GPU, Context, Result, Table, register_benchmark
from bench._timing import interleaved, median_ms, synchronize
from trainers import Dataset, TrainConfig, Trainer, create_model, default_data_root, load_dataset

TORCHVISION = {"fashion_mnist": FashionMNIST, "cifar10": CIFAR10}  # the conventional pipeline's data set classes
CASES = {"cpu": ("mlp", "fashion_mnist"), "cuda": ("resnet20", "cifar10")}
TARGETS = {"cpu": 3.0, "cuda": 5.0}  # the DataLoader's epoch time ÷ the trainer's, at least
WORKERS = tuple(w for w in (0, 1, 2, 4, 8, 16) if w <= (os.cpu_count() or 1))  # the DataLoader's num_workers tried
ROUNDS, QUICK_ROUNDS = 3, 1  # timed epochs of each pipeline, after one untimed
QUICK_EXAMPLES = 512  # quick: the first this many training examples
TRAINER = "device-resident (trainers.Trainer)"
NOTES = (
    "One epoch of training on the whole training set ({examples}) at batch 128 with the same model, optimiser "
    "(SGD, lr 0.01, momentum 0.9, weight decay 1e-4) and augmentation (the data set's default: none for "
    "Fashion-MNIST, pad-4 crop and flip for CIFAR-10), through two pipelines: the trainers' (the whole data set one "
    "normalised tensor on the device, batches by index, augmentation as batched tensor operations: "
    "`Trainer._train_step` × steps per epoch) and a conventional one (torchvision's data set class with per-image "
    "transforms — ToTensor, Normalize and the augmentation — through a shuffling `DataLoader` with persistent "
    "workers, num_workers from {workers}; the step: forward, cross-entropy, backward, SGD). The epochs of all the "
    "pipelines are interleaved, one untimed first; the ratio is the best DataLoader's median epoch time over the "
    "trainer's. The trainer's step also keeps its per-step metric sums, which the conventional loop does not."
)


@dataclass
class _Conventional:
    """A model, optimiser and DataLoader: the usual PyTorch training loop."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    loader: DataLoader
    device: torch.device

    def epoch(self) -> None:
        self.model.train()
        channels_last = self.device.type == "cuda"
        for x, y in self.loader:
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(self.model(x), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        synchronize(self.device)


@register_benchmark("data_pipeline", title="Data pipeline", figure=2,
                    target="≥ 3× faster than DataLoader on the CPU (MLP, fashion_mnist), ≥ 5× on a GPU "
                           "(ResNet-20, cifar10)")
def data_pipeline(context: Context) -> Result:
    """Epoch times of both pipelines on the CPU case and the GPU's if any; the best DataLoader ÷ the trainer."""
    rounds, limit = (QUICK_ROUNDS, QUICK_EXAMPLES) if context.quick else (ROUNDS, None)
    rows, ratios, met, summary = [], {}, True, []
    for device in ("cpu", "cuda"):
        model, dataset = CASES[device]
        if device == "cuda" and not torch.cuda.is_available():
            rows.append((f"{model}/{dataset}", device, NO_GPU, None, None))
            summary.append(f"GPU: {NO_GPU}")
            continue
        context.echo(f"  {model}/{dataset} on {device}: the trainer and DataLoader with num_workers {WORKERS}")
        medians = _epoch_ms(model, dataset, device, context, rounds, limit)
        best = min(m for name, m in medians.items() if name != TRAINER)
        ratio = best / medians[TRAINER]
        ratios[f"{model}/{dataset} {device}"] = ratio
        met = met and ratio >= TARGETS[device]
        rows += [(f"{model}/{dataset}", device, name, ms, ms / medians[TRAINER]) for name, ms in medians.items()]
        summary.append(f"{model}/{dataset} ({device}): {ratio:.2f}× faster (target ≥ {TARGETS[device]:g}×: "
                       f"{yes_no(ratio >= TARGETS[device])})")
    table = Table("Median epoch time (training steps only, no evaluation) and its ratio to the trainer's",
                  ("model/data", "device", "pipeline", "median epoch ms", "× trainer"), rows)
    examples = f"the first {limit} examples" if limit else "60,000 Fashion-MNIST or 50,000 CIFAR-10 images"
    return Result("; ".join(summary), met, ratios, [table], {"rounds": rounds, "workers": list(WORKERS),
                                                              "examples": limit or "all"},
                  NOTES.format(examples=examples, workers=", ".join(map(str, WORKERS))))


def _epoch_ms(model: str, dataset: str, device: str, context: Context, rounds: int,
              limit: int | None) -> dict[str, float]:
    """Median ms per epoch of the trainer and of a DataLoader per num_workers, the epochs interleaved."""
    data = load_dataset(dataset, context.data_root)
    if limit is not None:
        data = dataclasses.replace(data, train_x=data.train_x[:limit], train_y=data.train_y[:limit])
    config = TrainConfig(dataset=dataset, data_root=context.data_root, model=model, split="final", epochs=None,
                         iterations=10**9, device=device)
    trainer = Trainer(config, data)
    raw = TORCHVISION[dataset](context.data_root or default_data_root(), train=True, download=False)
    raw.transform = _transform(raw.data, augment=trainer.augment)
    images = raw if limit is None else Subset(raw, range(limit))
    calls = {TRAINER: functools.partial(_trainer_epoch, trainer)}
    for workers in WORKERS:
        loader = DataLoader(images, batch_size=config.batch_size, shuffle=True, num_workers=workers,
                            persistent_workers=workers > 0, pin_memory=trainer.device.type == "cuda")
        calls[f"DataLoader, num_workers={workers}"] = _conventional(config, data, loader, trainer.device).epoch
    times = interleaved(calls, rounds=rounds, warmup=1)
    return {name: median_ms(t) for name, t in times.items()}


def _trainer_epoch(trainer: Trainer) -> None:
    for _ in range(trainer.steps_per_epoch):
        trainer._train_step()  # the step exactly as training runs it; no evaluation
    synchronize(trainer.device)


def _conventional(config: TrainConfig, data: Dataset, loader: DataLoader, device: torch.device) -> _Conventional:
    model = create_model(config.model, in_shape=data.in_shape, num_classes=data.num_classes, dropout=config.dropout)
    model = model.to(device, memory_format=torch.channels_last if device.type == "cuda" else torch.preserve_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    return _Conventional(model, optimizer, loader, device)


def _transform(raw_images: object, *, augment: bool) -> transforms.Compose:
    """Per-image transforms: the augmentation (pad-4 crop, flip) where asked, ToTensor, Normalize by channel."""
    x = torch.as_tensor(raw_images).float().div_(255)  # N×H×W (grey) or N×H×W×C
    mean, std = x.mean((0, 1, 2)).reshape(-1).tolist(), x.std((0, 1, 2)).reshape(-1).tolist()
    size = x.shape[1]
    steps = [transforms.RandomCrop(size, padding=4), transforms.RandomHorizontalFlip()] if augment else []
    return transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize(mean, std)])
