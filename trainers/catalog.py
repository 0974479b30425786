"""What the trainers offer by name, without torch: the data sets and models (known before the modules that implement
them are imported; those register them), the noise kinds and the validation labels. The CLIs and the config
validation read them here; trainers.methods holds the methods and their hyperparameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Literal, get_args

from trainers.registry import Registry

if TYPE_CHECKING:
    from trainers.datasets import Loader
    from trainers.models import Builder

DATASETS: Registry[Loader] = Registry("dataset", ("digits", "fashion_mnist", "cifar10", "cifar100", "vehicles10"),
                                      "trainers.datasets")
MODELS: Registry[Builder] = Registry("model", ("mlp", "lenet", "lenet5", "resnet20", "resnet32", "resnet44", "resnet56",
                                               "resnet110", "resnet29", "wrn28_10", "resnet50"), "trainers.models")
OWN_DATA_KINDS = ("npz", "folder")  # your own data: `npz:PATH`, `folder:PATH`

NOISE_KINDS = ("symmetric", "uniform", "pair", "asym-cifar10", "asym-cifar100", "instance", "given")
# human noise kind → (its data set, its key in the data set's CIFAR-N label file)
HUMAN_KINDS = {
    "cifar10n-aggre": ("cifar10", "aggre_label"),
    "cifar10n-rand1": ("cifar10", "random_label1"),
    "cifar10n-rand2": ("cifar10", "random_label2"),
    "cifar10n-rand3": ("cifar10", "random_label3"),
    "cifar10n-worst": ("cifar10", "worse_label"),
    "cifar100n": ("cifar100", "noisy_label"),
}
SYNTHETIC = "-synthetic"  # suffix of the control kinds: cifar10n-worst-synthetic, ...
HUMAN_NOISE_KINDS = (*HUMAN_KINDS, *(kind + SYNTHETIC for kind in HUMAN_KINDS))
# every kind that takes its labels (or its transition matrix) from a label file → the one data set it fits
HUMAN_NOISE_DATASETS = {kind: HUMAN_KINDS[kind.removesuffix(SYNTHETIC)][0] for kind in HUMAN_NOISE_KINDS}

ValLabels = Literal["clean", "noisy", "trusted"]  # the validation part's labels (TrainConfig.val_labels)
VAL_LABELS: tuple[str, ...] = get_args(ValLabels)
PROBE_PER_CLASS = 10  # the probe set's default size per class for the methods that learn from one (seed 003)


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    """Decorator that makes a loader `(root, download) -> Dataset` available under `name`."""
    return DATASETS.register(name)


def list_datasets() -> list[str]:
    """Names of the registered data sets, sorted."""
    return DATASETS.names()


def is_own_data(name: str) -> bool:
    """Whether `name` names your own data: `npz:PATH` or `folder:PATH`."""
    kind, colon, path = name.partition(":")
    return kind in OWN_DATA_KINDS and bool(colon and path)


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator that makes a builder available to `create_model` under `name`."""
    return MODELS.register(name)


def list_models() -> list[str]:
    """The registered model names, sorted."""
    return MODELS.names()
