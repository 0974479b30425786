"""Benchmarks chosen by name: what each gets (a Context) and gives back (a Result), and the registry that holds them."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from trainers.registry import Registry

NO_GPU = "no GPU here"  # a GPU figure's measured value on a machine without one


@dataclass(frozen=True)
class Context:
    """What a benchmark run is given: its size, where the data and its scratch space are, how to say what it does."""

    quick: bool  # tiny sizes that check the code paths in seconds; nothing measured means anything
    data_root: str | None  # None: $NOISY_DATA_ROOT or ~/.cache/noisy-data
    work: Path  # an empty scratch folder, removed afterwards
    cache: Path  # a folder kept between runs (results worth reusing, such as trained settings' scores)
    echo: Callable[[str], None] = print
    subset: Path | None = None  # gpu_check's CIFAR-10 subset (.npz): read where it exists, else built there


@dataclass(frozen=True)
class Table:
    """A table of a figure's section: a caption, column names and rows of plain values."""

    caption: str
    header: tuple[str, ...]
    rows: list[tuple[Any, ...]]


@dataclass
class Result:
    """What a benchmark measured: the summary for the top table, whether its target was met, ratios and tables."""

    measured: str  # one line for the top table, or NO_GPU
    met: bool | None  # None: no target, or nothing measured against it here
    ratios: dict[str, float] = field(default_factory=dict)  # the figure's ratios, by label
    tables: list[Table] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # everything else measured, as plain values
    notes: str = ""  # how it was measured (what was compared, sizes, budgets)


@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark: a figure of issue 8 (its number) or an extra run only when named (figure None)."""

    name: str
    title: str
    figure: int | None
    target: str
    run: Callable[[Context], Result]


# The benchmarks, figures 1–7 then the extras: bench.<name> registers <name> when a look-up first imports it.
MODULES = ("weighting_overhead", "data_pipeline", "gpu_throughput", "trial_packing", "study_overhead",
           "search_efficiency", "mlflow_cost", "evaluation_cost", "gradsim_accuracy", "probe_accuracy", "gpu_check",
           "cluster_utilisation")
BENCHMARKS: Registry[Benchmark] = Registry("benchmark", MODULES)


def register_benchmark(name: str, *, title: str, figure: int | None,
                       target: str) -> Callable[[Callable[[Context], Result]], Callable[[Context], Result]]:
    """Decorator that registers `run(context) -> Result` as the benchmark `name`."""

    def add(run: Callable[[Context], Result]) -> Callable[[Context], Result]:
        BENCHMARKS.register(name)(Benchmark(name, title, figure, target, run))
        return run

    return add


def list_benchmarks(*, figures_only: bool = False) -> list[str]:
    """The benchmarks' names in figure order, the extras last by name (imports every benchmark's module)."""
    found = [get_benchmark(n) for n in BENCHMARKS.names()]
    return [b.name for b in sorted(found, key=lambda b: figure_order(b.figure, b.name))
            if not figures_only or b.figure is not None]


def get_benchmark(name: str) -> Benchmark:
    """The benchmark registered as `name`, its module bench.<name> imported at the first look-up (a ConfigError naming
    the known ones for an unknown name)."""
    if name in MODULES:
        importlib.import_module(f"bench.{name}")
    return BENCHMARKS[name]


def figure_order(figure: int | None, name: str) -> tuple[bool, int, str]:
    """The sort key of a benchmark in lists and the report: figures by number, then the extras by name."""
    return figure is None, figure or 0, name
