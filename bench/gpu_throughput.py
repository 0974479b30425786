"""Figure 3, GPU throughput: training images per second of ResNet-56 on CIFAR-10, fp32 eager → bf16 + channels-last →
torch.compile, and the share of the GPU's bf16 peak that is."""

from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench._registry import NO_GPU, Context, Result, Table, register_benchmark
from bench._timing import interleaved, synchronize
from trainers import Dataset, TrainConfig, Trainer, load_dataset

TARGET_IMAGES_S = 30_000  # on one H100
# Dense bf16 tensor-core peaks in TFLOP/s (vendors' data sheets), by a part of the device's name; the first match wins.
BF16_PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.4), ("H200", 989.4), ("A100", 312.0),
                    ("L40S", 362.0), ("L4", 121.0), ("A10", 125.0))


@dataclass(frozen=True)
class Variant:
    """One way of running the same training step."""

    name: str
    bf16: bool
    channels_last: bool
    compile_mode: str | None = None  # None: eager; else torch.compile's mode ("default", "reduce-overhead")
    gpu_only: bool = False


VARIANTS = (
    Variant("fp32 eager", bf16=False, channels_last=False),
    Variant("bf16 + channels-last", bf16=True, channels_last=True),
    Variant("bf16 + channels-last + torch.compile", bf16=True, channels_last=True, compile_mode="default"),
    Variant("… + CUDA graphs (compile mode reduce-overhead)", bf16=True, channels_last=True,
            compile_mode="reduce-overhead", gpu_only=True),
)


@dataclass(frozen=True)
class Sizes:
    """What is measured: the model and data, the batch sizes, the steps per timed block and how many blocks."""

    model: str
    dataset: str
    batches: tuple[int, ...]
    steps: int
    rounds: int
    compile_backend: str  # "eager" (dynamo's tracing only) checks the compile path without code generation
    warmup_epoch: bool  # untimed: an epoch and ten steps (the epoch's last, smaller batch compiled too), else one step
    augment: bool | None = None  # None: the data set's own (crop and flip for CIFAR-10; own data: none)

    def notes(self) -> str:
        """NOTES for these sizes."""
        warmup = ("an epoch and ten steps (so that torch.compile has seen the epoch's last, smaller batch too)"
                  if self.warmup_epoch else "one step")
        return NOTES.format(**vars(self), warmup=warmup)


GPU = Sizes("resnet56", "cifar10", batches=(128, 512), steps=100, rounds=3, compile_backend="inductor",
            warmup_epoch=True)
CHECK = Sizes("resnet20", "digits", batches=(16,), steps=2, rounds=1, compile_backend="eager", warmup_epoch=False)
NOTES = (
    "Training images per second of `Trainer._train_step` (the trainers' own step: CCE, SGD, the data on the device, "
    "pad-and-crop and flip on the device) on {model}/{dataset} with the whole training set, for each variant and "
    "batch size: each trainer first runs {warmup} untimed, then blocks of {steps} steps of the variants take turns, "
    "{rounds} round(s); a block's time ends with a device synchronisation; the figure is the median block. FLOPs per "
    "training image are counted by torch's FlopCounterMode over one fp32 step (forward and backward; 2 per "
    "multiply-add); the share of the peak is images/s × FLOPs per image ÷ the GPU's dense bf16 peak from its data "
    "sheet."
)


@register_benchmark("gpu_throughput", title="GPU throughput", figure=3,
                    target=f"≥ {TARGET_IMAGES_S:,} images/s for ResNet-56 on CIFAR-10 on one H100")
def gpu_throughput(context: Context) -> Result:
    """Images/s per variant and batch size on the GPU; without one, NO_GPU and a check of the code paths on the CPU."""
    if not torch.cuda.is_available():
        rows, flags = _measure(CHECK, torch.device("cpu"), context)
        table = Table("Code-path check on the CPU (tiny sizes; not a figure)", _HEADER, rows)
        return Result(NO_GPU, None, {}, [table], {"gpu": NO_GPU, "cpu_check": flags}, CHECK.notes())
    sizes = CHECK if context.quick else GPU
    name = torch.cuda.get_device_name()
    rows, flags = _measure(sizes, torch.device("cuda"), context)
    measured = [r for r in rows if isinstance(r[2], float)]
    best = max(measured, key=lambda r: r[2])
    peak = _peak_tflops(name)
    met = best[2] >= TARGET_IMAGES_S if "H100" in name and not context.quick else None
    summary = f"{best[2]:,.0f} images/s ({best[1]}, batch {best[0]}, {name})"
    if peak is not None:
        summary += f", {best[4]:.1%} of the bf16 peak"
    ratios = {f"batch {r[0]} {r[1]} ÷ fp32 eager": r[3] for r in measured if r[1] != VARIANTS[0].name}
    table = Table(f"Training images per second on {name} (bf16 peak: {peak or 'unknown'} TFLOP/s)", _HEADER, rows)
    return Result(summary, met, ratios, [table], {"gpu": name, "bf16_peak_tflops": peak, "variants": flags},
                  sizes.notes())


_HEADER = ("batch", "variant", "images/s", "× fp32 eager", "share of bf16 peak", "GFLOP per image")


def _measure(sizes: Sizes, device: torch.device, context: Context,
             variants: tuple[Variant, ...] = VARIANTS) -> tuple[list[tuple], dict[str, dict]]:
    """One row per batch size and variant (the first is the base of the ratios), and each variant's flags as applied
    (bf16, memory format, compiled)."""
    data = load_dataset(sizes.dataset, context.data_root)
    peak = _peak_tflops(torch.cuda.get_device_name()) if device.type == "cuda" else None
    rows, flags = [], {}
    for batch in sizes.batches:
        config = TrainConfig(dataset=sizes.dataset, data_root=context.data_root, model=sizes.model, split="final",
                             epochs=None, iterations=10**9, batch_size=batch, device=device.type,
                             augment=sizes.augment)
        flops = _flops_per_image(config, data)
        run = [v for v in variants if device.type == "cuda" or not v.gpu_only]
        context.echo(f"  {sizes.model}/{sizes.dataset} batch {batch}: {', '.join(v.name for v in run)}")
        trainers = {v.name: _trainer(config, data, v, sizes.compile_backend) for v in run}
        failed: dict[str, str] = {}
        for name, trainer in list(trainers.items()):
            try:
                for _ in range(trainer.steps_per_epoch + 10 if sizes.warmup_epoch else 1):
                    trainer._train_step()
            except Exception as error:  # a compile mode this machine cannot run: say so in the record, go on
                failed[name] = f"failed: {type(error).__name__}: {' '.join(str(error).split())[:300]}"
                del trainers[name]
        times = interleaved({n: functools.partial(_block, t, sizes.steps) for n, t in trainers.items()},
                            rounds=sizes.rounds, warmup=0)
        rates = {n: sizes.steps * batch / statistics.median(t) for n, t in times.items()}
        for v in run:
            rate = rates.get(v.name)
            share = rate * flops / (peak * 1e12) if rate and peak else None
            base = rates.get(run[0].name)
            rows.append((batch, v.name, rate if rate else failed[v.name], rate / base if rate and base else None,
                         share, flops / 1e9))
            if v.name in trainers:
                flags[v.name] = _flags(trainers[v.name])
    return rows, flags


def _trainer(config: TrainConfig, data: Dataset, variant: Variant, backend: str) -> Trainer:
    """A Trainer running `variant`: its autocast, its memory format (set here on the CPU too), compiled or not."""
    trainer = Trainer(config.replace(bf16=variant.bf16), data)
    trainer.channels_last = variant.channels_last
    trainer.model.to(memory_format=torch.channels_last if variant.channels_last else torch.contiguous_format)
    if variant.compile_mode is not None:
        trainer.model.compile(backend=backend, mode=variant.compile_mode if backend == "inductor" else None)
    return trainer


def _block(trainer: Trainer, steps: int) -> None:
    for _ in range(steps):
        trainer._train_step()
    synchronize(trainer.device)


def _flops_per_image(config: TrainConfig, data: Dataset) -> float:
    """FLOPs of one fp32 training step (forward and backward) per image, counted by torch."""
    trainer = Trainer(config, data)
    with FlopCounterMode(display=False) as counter:
        trainer._train_step()
    return counter.get_total_flops() / config.batch_size


def _flags(trainer: Trainer) -> dict[str, object]:
    """What the trainer runs with, read back from it."""
    conv = next(p for p in trainer.model.parameters() if p.ndim == 4 and p.shape[1] > 1)  # one input channel: both
    return {"bf16": trainer.config.bf16, "channels_last": trainer.channels_last,
            "weights_channels_last": conv.is_contiguous(memory_format=torch.channels_last),
            "compiled": getattr(trainer.model, "_compiled_call_impl", None) is not None,  # set by Module.compile
            "steps_run": trainer.step}


def _peak_tflops(device_name: str) -> float | None:
    return next((peak for part, peak in BF16_PEAK_TFLOPS if part in device_name), None)
