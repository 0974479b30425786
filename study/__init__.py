"""study: the CLI and driver that search every noise rate at once on Ray Tune (one Optuna study each) and track every
trial in MLflow."""
