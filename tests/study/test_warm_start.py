"""Warm-start points outside a search's ranges (the paper's β = 16 above the default high of 12) are clipped into them,
each said in one line; a point that clipping makes a repeat of another is left out."""

from __future__ import annotations

import search_spaces
from study.searcher import within as _within


def test_points_outside_the_ranges_are_clipped_into_them_or_left_out() -> None:
    lines: list[str] = []
    space = search_spaces.make_space("dm", ranges={"lam": (0.0, 1.0)})
    points = [{"lam": 1.0, "beta": 16.0}, {"lam": 0.5, "beta": 4.0}, {"lam": 2.0, "beta": 30.0}]
    assert _within(space, points, lines.append) == [{"lam": 1.0, "beta": 12.0}, {"lam": 0.5, "beta": 4.0}]
    assert lines == ["warm start lam=1, beta=16 lies outside the search ranges: tried as lam=1, beta=12",
                     "warm start lam=2, beta=30 lies outside the search ranges: left out (clipped, it is lam=1, "
                     "beta=12, tried already)"]


def test_an_integer_parameter_is_clipped_to_an_integer() -> None:
    space = search_spaces.make_space("gradsim", batch_size=64)
    assert _within(space, [{"a": 4.0, "k": 100}], lambda line: None) == [{"a": 4.0, "k": 64}]
