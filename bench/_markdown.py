"""The Markdown report of benchmark records: a top table of figure, target, measured and met, then a section each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

NOTES_DIR = "notes"  # <out>/notes/<name>.md: findings written by hand, shown at the end of that figure's section
INTRO = (
    "Written by `python -m bench` (the package `bench/`) from the JSON records in its `--out` folder; each section "
    "says where, with what and by which command its figure was measured. Each figure is a ratio of things run side "
    "by side on one machine, their turns interleaved; timings are medians. On a machine with a GPU, `python -m bench "
    "gpu_throughput trial_packing` measures the GPU figures (and `weighting_overhead` and `data_pipeline` add their "
    "GPU cases there); without one they record \"no GPU here\". `python -m bench gpu_check --subset PATH` runs "
    "the whole GPU check in at most 8 minutes from a CIFAR-10 subset that travels to a lent device machine (see "
    "bench/gpu_check.py)."
)


def render(records: list[dict[str, Any]], out: Path) -> str:
    """The report of `records`, with the notes in <out>/notes/ (intro.md after the introduction, <name>.md at the end
    of that figure's section)."""
    intro = out / NOTES_DIR / "intro.md"
    lines = ["# Benchmarks", "", INTRO, "", *([intro.read_text().strip(), ""] if intro.is_file() else []),
             "| figure | target | measured | met? |", "|---|---|---|---|"]
    lines += [f"| {_heading(r)} | {r['target']} | {r['measured']} | {yes_no(r['met'])} |" for r in records]
    for record in records:
        lines += ["", *_section(record, out / NOTES_DIR / f"{record['name']}.md")]
    return "\n".join(lines) + "\n"


def _heading(record: dict[str, Any]) -> str:
    return f"{record['figure']}. {record['title']}" if record["figure"] is not None else record["title"]


def yes_no(met: bool | None) -> str:
    """yes, no, or — where there is nothing to judge."""
    return "—" if met is None else "yes" if met else "no"


def _section(record: dict[str, Any], notes: Path) -> list[str]:
    m, v, load = record["machine"], record["versions"], record["load_average"]
    packages = ", ".join(f"{k} {val}" for k, val in v.items() if k != "git_commit")
    lines = [f"## {_heading(record)}", "",
             f"- **target**: {record['target']}; **measured**: {record['measured']}; **met**: {yes_no(record['met'])}",
             f"- **machine**: {m['cpu']}, {m['cores']} cores, torch threads {m['torch_threads']}, "
             f"{m['memory_gib']} GiB, GPU: {m['gpu'] or 'none'}; load average (1, 5, 15 min) "
             f"{_load(load['start'])} at the start, {_load(load['end'])} at the end",
             f"- **versions**: {packages}; git commit {v['git_commit']}",
             f"- **command**: `{record['command']}`" + (" (quick: sizes for checking the code, not figures)"
                                                        if record["quick"] else ""),
             f"- **date**: {record['date']}, {record['wall_s']} s", ""]
    if record["notes"]:
        lines += [record["notes"], ""]
    for table in record["tables"]:
        lines += [f"*{table['caption']}*", "", "| " + " | ".join(table["header"]) + " |",
                  "|" + "---|" * len(table["header"])]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table["rows"]]
        lines.append("")
    if notes.is_file():
        lines += [notes.read_text().strip(), ""]
    return lines[:-1]


def _load(values: list[float]) -> str:
    return "/".join(f"{x:.1f}" for x in values)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return "—" if value is None else str(value)
