"""The trainable's config mapping: base settings, searched values and grid cells."""

from trainables import train_config
from trainers import TrainConfig


def test_searched_values_and_grid_cells_reach_the_trainer() -> None:
    base = TrainConfig(method="dm", method_params={"eps": 1e-8}).to_dict()
    searched = train_config({"train": base, "lam": 0.5, "beta": 8.0, "psi": 0.33, "lr": 0.05})
    assert searched.method_params == {"eps": 1e-8, "lam": 0.5, "beta": 8.0} and searched.lr == 0.05
    cell = train_config({"train": base, "cell": {"lam": 2.0, "beta": 24.0}, "seed": 3})
    assert cell.method_params == {"eps": 1e-8, "lam": 2.0, "beta": 24.0} and cell.seed == 3
