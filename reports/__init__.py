"""reports: a study's ablation grids, comparison tables and figures, regenerated from what MLflow holds."""

from reports._cli import default_tracking_uri
from reports._load import HISTORY_METRICS, StudyData, load_study
from reports._report import write_report
from reports._tables import label_set_keys, noise_label

__all__ = ["default_tracking_uri", "HISTORY_METRICS", "StudyData", "label_set_keys", "load_study", "noise_label",
           "write_report"]
