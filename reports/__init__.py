"""reports: a study's ablation grids, comparison tables and figures, regenerated from what MLflow holds.

Each public name is imported from its module on first use: the `study` command's options (reports._cli) need no
MLflow.
"""

from trainers.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "reports._cli": ("default_tracking_uri",),
    "reports._load": ("HISTORY_METRICS", "StudyData", "load_study"),
    "reports._report": ("write_report",),
    "reports._tables": ("label_set_keys", "noise_label"),
})
