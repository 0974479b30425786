"""The report command line, shared by `python -m reports` and `study report`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from trainers.errors import ConfigError


def default_tracking_uri(explicit: str | None = None) -> str:
    """`explicit`, else $MLFLOW_TRACKING_URI, else sqlite:///<absolute cwd>/mlflow.db: where studies log and reports read."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """The options `python -m reports` and `study report` share."""
    parser.add_argument("--tracking-uri", help="the MLflow store (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)")
    parser.add_argument("--study", help="the study (MLflow experiment) name (default: the most recent study)")
    parser.add_argument("--out", help="the report folder (default: ./report/<study name>)")


def report(args: argparse.Namespace) -> int:
    """Write the report the parsed options ask for; 2 with one line on stderr where the study cannot be found."""
    from reports import write_report

    uri = args.tracking_uri or default_tracking_uri()
    try:
        _check_store(uri)
        index = write_report(uri, args.study, Path(args.out) if args.out else None)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"report: {index}")
    return 0


def _check_store(uri: str) -> None:
    """A ConfigError for a SQLite store that does not exist (MLflow would create an empty one)."""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///").split("?")[0])
        path = path if path.is_absolute() else Path.cwd() / path
        if not path.is_file():
            raise ConfigError("tracking_uri", uri, f"an existing MLflow store; {path} does not exist (run `study run`)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m reports`: 0 with the index path printed, 2 with one line on stderr."""
    parser = _Parser(prog="python -m reports", description="Write a study's tables, figures and "
                                     "index (Markdown and self-contained HTML) from what MLflow holds.")
    add_report_options(parser)
    return report(parser.parse_args(argv))

