"""trainers: example-weighting methods for training under label noise, usable alone from Python (no Ray, Optuna or
MLflow).

    >>> import trainers
    >>> cfg = trainers.TrainConfig(dataset="digits", method="dm", method_params={"lam": 1.0, "beta": 4.0},
    ...                            noise="symmetric", noise_rate=0.4, epochs=20)
    >>> final = trainers.train(cfg, callback=print)

Each public name is imported from its module on first use, so what only names or checks things (errors, catalog,
methods, TrainConfig) loads without torch.
"""

from trainers.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "trainers.catalog": ("HUMAN_NOISE_KINDS", "NOISE_KINDS", "list_datasets", "list_models", "register_dataset",
                         "register_model"),
    "trainers.config": ("TrainConfig",),
    "trainers.datasets": ("Dataset", "default_data_root", "load_dataset"),
    "trainers.emphasis": ("Emphasis", "dm_weight", "emphasis_variance", "list_emphases", "make_emphasis"),
    "trainers.errors": ("ConfigError", "DataError"),
    "trainers.losses": ("EmphasisLoss", "GradSimLoss", "WeightedCE", "make_loss"),
    "trainers.methods": ("list_losses", "loss_params", "register_loss"),
    "trainers.models": ("Classifier", "create_model"),
    "trainers.noise": ("NoisyLabels", "corrupt_labels"),
    "trainers.splits": ("Split", "make_split", "stratified_split"),
    "trainers.training": ("Metrics", "Trainer", "train"),
})
