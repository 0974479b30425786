"""The driver's summary names a human-noise label set by its kind, a synthetic one by its rate."""

from __future__ import annotations

import pytest

from study.driver import RateState, StudyState, summary_table


@pytest.mark.parametrize(("noise", "key", "name"), [("cifar10n-worst", "cifar10n-worst", "cifar10n-worst"), ("sym", "0.4", "0.4")])
def test_summary_row_names_the_label_set(noise: str, key: str, name: str) -> None:
    state = StudyState({"noise": noise}, "sqlite://", "0", "run", {key: RateState("rate", True, {"lam": 1.0}, 0.5, 3)})
    assert summary_table(state).splitlines()[2].startswith(f"{name} | lam=")
