"""study: the CLI and driver that run one Optuna search per noise rate on Ray Tune and track every trial in MLflow."""
