"""A table written three ways (CSV, a Markdown pipe table, a LaTeX tabular fragment), byte-identical for the same input.

    >>> write_table(pd.DataFrame({"lam": [0.5], "val_acc": [0.91234]}), Path("out"), "best")  # doctest: +SKIP
    [PosixPath('out/best.csv'), PosixPath('out/best.md'), PosixPath('out/best.tex')]
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MISSING = "—"
# LaTeX: the backslash first, then the characters TeX treats specially, then the Unicode the tables use.
_TEX = [("\\", r"\textbackslash{}"), ("{", r"\{"), ("}", r"\}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"),
        ("#", r"\#"), ("$", r"\$"), ("^", r"\^{}"), ("~", r"\~{}")]
_TEX_UNICODE = [("±", r"$\pm$"), ("λ", r"$\lambda$"), ("β", r"$\beta$"), ("ψ", r"$\psi$"), ("—", "---"),
                ("×", r"$\times$"), ("≥", r"$\geq$"), ("≤", r"$\leq$")]


def cell(value: Any) -> str:
    """A value as table text: floats to 4 significant digits, NaN and None as "—", everything else as str."""
    if value is None:
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return MISSING
        return f"{value:.4g}"
    return str(value)


def to_markdown(df: pd.DataFrame) -> str:
    """A Markdown pipe table, one row per line, the rows in the frame's order."""
    def line(items: list[str]) -> str:
        return "| " + " | ".join(s.replace("|", r"\|").replace("\n", " ") for s in items) + " |"

    lines = [line([str(c) for c in df.columns]), "|" + "|".join("---" for _ in df.columns) + "|"]
    lines += [line([cell(v) for v in row]) for row in df.itertuples(index=False, name=None)]
    return "\n".join(lines) + "\n"


def tex_escape(text: str) -> str:
    """`text` with LaTeX's special characters escaped and ±, λ, β, ψ, — written as TeX."""
    for old, new in _TEX:
        text = text.replace(old, new) if old != "\\" else text.replace(old, "\x00")
    text = text.replace("\x00", r"\textbackslash{}")
    for old, new in _TEX_UNICODE:
        text = text.replace(old, new)
    return text


def to_latex(df: pd.DataFrame) -> str:
    """A booktabs tabular fragment: the first column left-aligned, the others right-aligned."""
    columns = [tex_escape(str(c)) for c in df.columns]
    lines = [r"\begin{tabular}{l" + "r" * (len(columns) - 1) + "}", r"\toprule", " & ".join(columns) + r" \\",
             r"\midrule"]
    lines += [" & ".join(tex_escape(cell(v)) for v in row) + r" \\" for row in df.itertuples(index=False, name=None)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_html(df: pd.DataFrame) -> str:
    """A plain HTML table (escaped), for the self-contained index.html."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in row) + "</tr>\n"
                   for row in df.itertuples(index=False, name=None))
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"


def write_table(df: pd.DataFrame, out_dir: Path, stem: str) -> list[Path]:
    """Write `df` as <stem>.csv (full precision), <stem>.md and <stem>.tex under `out_dir`; the three paths.

    The rows keep the frame's order (the reports' tables come sorted); nothing time-dependent is written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.{ext}" for ext in ("csv", "md", "tex")]
    paths[0].write_text(df.to_csv(index=False, lineterminator="\n"), encoding="utf-8")
    paths[1].write_text(to_markdown(df), encoding="utf-8")
    paths[2].write_text(to_latex(df), encoding="utf-8")
    return paths
