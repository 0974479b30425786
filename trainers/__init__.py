"""trainers: example-weighting methods for training under label noise, usable alone from Python (no Ray, Optuna or MLflow).

    >>> import trainers
    >>> cfg = trainers.TrainConfig(dataset="digits", method="dm", method_params={"lam": 1.0, "beta": 4.0},
    ...                            noise="symmetric", noise_rate=0.4, epochs=20)
    >>> final = trainers.train(cfg, callback=print)
"""

from trainers.config import TrainConfig
from trainers.datasets import Dataset, default_data_root, list_datasets, load_dataset, register_dataset
from trainers.emphasis import Emphasis, dm_weight, emphasis_variance, list_emphases, make_emphasis
from trainers.errors import ConfigError, DataError
from trainers.human_noise import HUMAN_NOISE_KINDS
from trainers.losses import EmphasisLoss, GradSimLoss, WeightedCE, list_losses, loss_params, make_loss, register_loss
from trainers.models import Classifier, create_model, list_models, register_model
from trainers.noise import NOISE_KINDS, NoisyLabels, corrupt_labels
from trainers.splits import Split, make_split, stratified_split
from trainers.training import Metrics, Trainer, train

__all__ = [
    "HUMAN_NOISE_KINDS",
    "NOISE_KINDS",
    "Classifier",
    "ConfigError",
    "DataError",
    "Dataset",
    "Emphasis",
    "EmphasisLoss",
    "GradSimLoss",
    "Metrics",
    "NoisyLabels",
    "Split",
    "TrainConfig",
    "Trainer",
    "WeightedCE",
    "corrupt_labels",
    "create_model",
    "default_data_root",
    "dm_weight",
    "emphasis_variance",
    "list_datasets",
    "list_emphases",
    "list_losses",
    "list_models",
    "load_dataset",
    "loss_params",
    "make_emphasis",
    "make_loss",
    "make_split",
    "register_dataset",
    "register_loss",
    "register_model",
    "stratified_split",
    "train",
]
