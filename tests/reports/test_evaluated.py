"""The report says which weights its accuracies are of: the raw ones, or IEG's EMA of them (the ema_decay metric)."""

import pandas as pd

from reports._report import _evaluated


def test_the_summary_names_the_weights_evaluated() -> None:
    assert _evaluated(pd.DataFrame({"test_acc": [0.9]})) == "every accuracy is of the trained weights themselves"
    assert _evaluated(pd.DataFrame({"ema_decay": [0.0, 0.0]})).endswith("of the trained weights themselves")
    both = _evaluated(pd.DataFrame({"ema_decay": [0.999, 0.999]}))
    assert both.startswith("every accuracy is of an exponential moving average") and "(decay 0.999)" in both
    assert _evaluated(pd.DataFrame({"ema_decay": [0.999, 0.0]})).startswith("where a trial's ema_decay is above 0")
