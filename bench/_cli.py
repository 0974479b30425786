"""`python -m bench [NAME ...] [--quick] [--out DIR]`: run benchmarks, write a JSON record of each and a report."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import torch

from bench._markdown import render
from bench._record import command_line, read_records, run_benchmark, write_record
from bench._registry import BENCHMARKS, Context, get_benchmark, list_benchmarks
from trainers.errors import ConfigError, DataError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")

    def format_help(self) -> str:  # the listing imports every benchmark's module: only for --help
        found = map(get_benchmark, list_benchmarks())
        listing = "\n".join(f"  {b.name:20} {b.title}; target: {b.target}" for b in found)
        self.epilog = f"benchmarks (without names: the numbered figures):\n{listing}"
        return super().format_help()


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m bench", formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Measure the figures of issue 8 (each a ratio of things run side by side) and write "
                            "<out>/<name>.json for each and a Markdown report of every record in <out>.")
    p.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: every figure)")
    p.add_argument("--quick", action="store_true", help="tiny sizes that check the code paths in seconds")
    p.add_argument("--out", default="bench_results", help="folder of the JSON records (default: ./bench_results)")
    p.add_argument("--markdown", help="the report's path (default: <out>/BENCHMARKS.md)")
    p.add_argument("--threads", type=int, help="torch's CPU threads in this process (default: torch's choice)")
    p.add_argument("--data-root", help="folder of the data files (default: $NOISY_DATA_ROOT or ~/.cache/noisy-data)")
    p.add_argument("--subset", help="gpu_check's CIFAR-10 subset (.npz, ≤ 64 MiB): read if it exists, else built "
                                    "there from --data-root's cifar-10-batches-py (see bench.gpu_check)")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: write the report again from the records and notes in <out>")
    return p


def _check(args: argparse.Namespace) -> list[str]:
    """The benchmarks to run (none with --report-only); a ConfigError for a bad name or option, before anything is
    written."""
    names = args.names or list_benchmarks(figures_only=True)
    for name in names:
        get_benchmark(name)
    if args.report_only and args.names:
        raise ConfigError("--report-only", " ".join(args.names), "no benchmark names: it runs nothing")
    if args.report_only and not Path(args.out).is_dir():
        raise ConfigError("--out", args.out, "an existing folder of records with --report-only")
    if args.threads is not None and args.threads < 1:
        raise ConfigError("--threads", args.threads, "an integer ≥ 1")
    if args.data_root is not None and not Path(args.data_root).expanduser().is_dir():
        raise ConfigError("--data-root", args.data_root, "an existing folder")
    for option in ("out", "markdown"):
        value = getattr(args, option)
        if value is not None:
            existing = next(p for p in (Path(value).resolve(), *Path(value).resolve().parents) if p.exists())
            if not os.access(existing if existing.is_dir() else existing.parent, os.W_OK):
                raise ConfigError(f"--{option}", value, f"a path that can be written ({existing} cannot)")
    return [] if args.report_only else names


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; 0 with the report's path printed, 2 with one line on stderr for bad input or data."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        names = _check(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    ray_before = _ray_initialized()
    try:
        for name in names:
            print(f"bench {name}{' (quick)' if args.quick else ''}", flush=True)
            (out / "cache").mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix="bench-") as work:
                context = Context(quick=args.quick, data_root=args.data_root, work=Path(work), cache=out / "cache",
                                  subset=Path(args.subset).expanduser() if args.subset else None)
                record = run_benchmark(get_benchmark(name), context, command_line(argv))
            write_record(record, out)
            print(f"  {record['measured']}", flush=True)
    except (ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if _ray_initialized() and not ray_before:
            sys.modules["ray"].shutdown()
    markdown = Path(args.markdown) if args.markdown else out / "BENCHMARKS.md"
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(render(read_records(out, BENCHMARKS.names()), out))
    print(f"report: {markdown}")
    return 0


def _ray_initialized() -> bool:
    """Whether a benchmark has imported ray and started it (ray is imported only by those that need it)."""
    return "ray" in sys.modules and sys.modules["ray"].is_initialized()
