"""search_spaces: Optuna define-by-run spaces (trial → trainer setting) and the papers' DM grids.

Pure functions of a trial: no Ray, no MLflow, nothing computed but the suggested values.

    >>> import optuna, search_spaces
    >>> space = search_spaces.make_space("dm", parametrization="psi_rho", tune_lr=True)
    >>> study = optuna.create_study(direction="maximize")
    >>> study.enqueue_trial(search_spaces.as_point(search_spaces.paper_best("cifar10", 0.4), "psi_rho"))
    >>> space(study.ask())["lam"]  # what the trainer reads: lam, beta and lr
    1.0
"""

from search_spaces._grids import GRIDS, grid_method, paper_best, paper_grid
from search_spaces._reparam import PARAMETRIZATIONS, Parametrization, as_point, from_psi_rho, to_psi_rho
from search_spaces._spaces import Space, default_ranges, make_space, space_bounds

__all__ = [
    "GRIDS",
    "PARAMETRIZATIONS",
    "Parametrization",
    "Space",
    "as_point",
    "default_ranges",
    "from_psi_rho",
    "grid_method",
    "make_space",
    "paper_best",
    "paper_grid",
    "space_bounds",
    "to_psi_rho",
]
