"""The trainable's config mapping: base settings, searched values and grid cells."""

from trainables import train_config
from trainers import TrainConfig


def test_searched_values_and_grid_cells_reach_the_trainer() -> None:
    base = TrainConfig(method="dm", method_params={"eps": 1e-8}).to_dict()
    searched = train_config({"train": base, "lam": 0.5, "beta": 8.0, "psi": 0.33, "lr": 0.05})
    assert searched.method_params == {"eps": 1e-8, "lam": 0.5, "beta": 8.0} and searched.lr == 0.05
    cell = train_config({"train": base, "cell": {"lam": 2.0, "beta": 24.0}, "seed": 3})
    assert cell.method_params == {"eps": 1e-8, "lam": 2.0, "beta": 24.0} and cell.seed == 3


def test_a_probe_methods_search_and_ablation_cell_reach_the_trainer() -> None:
    base = TrainConfig(method="ieg").to_dict()
    searched = train_config({"train": base, "p": 2.0, "k": 10.0, "meta_lr": 0.2, "probe_per_class": 5})
    assert searched.method_params == {"p": 2.0, "k": 10.0, "meta_lr": 0.2} and searched.probe_per_class == 5
    cell = train_config({"train": base, "cell": {"uc": False, "mc": True, "aa": False, "relabel": True}})
    assert cell.method_params == {"uc": False, "mc": True, "aa": False, "relabel": True}
