"""The `study` command: `study run [CONFIG]`, `study resume PATH`, `study list`, `study report`.

Its help, `study list` and the config's validation import no torch, Ray or MLflow: the driver (and with it those) is
imported once a valid study is about to start.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from reports._cli import add_report_options
from study.config import load_study_config
from study.label_sets import label_sets
from study.outage import DEFAULT_PATIENCE_S, TrackingUnavailable
from trainers.errors import ConfigError, DataError

TEMPFAIL = 75  # sysexits' EX_TEMPFAIL: MLflow did not answer in time; the study is saved, to be resumed
IOERR = 74  # sysexits' EX_IOERR: the study's storage could not be written (disk full); resumable once it can


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="study", description="Search example-weighting settings per noise rate with Ray Tune and "
                "Optuna; every trial is tracked in MLflow.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run a study (the embedded default on digits without CONFIG)")
    run.add_argument("config", nargs="?", help="a study YAML (see configs/); default: the embedded default")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value, e.g. --set search.num_samples=4 (repeatable)")
    run.add_argument("--address", help="an existing Ray cluster, e.g. ray://head:10001 or auto (default: local Ray)")
    run.add_argument("--storage", help="folder or URI for trial checkpoints and the study state (default: ./ray_results)")
    run.add_argument("--no-report", action="store_true", help="skip writing the report (./report/<name>) at the end")
    run.add_argument("--data-root", metavar="PATH",
                     help="the folder holding the data sets (sets train.data_root, after the config and --set; "
                     "default: $NOISY_DATA_ROOT, else ~/.cache/noisy-data)")
    run.add_argument("--download", action="store_true",
                     help="fetch a missing data set into the data root first (default: never touch the network)")
    resume = sub.add_parser("resume", help="continue an interrupted study")
    resume.add_argument("path", help="the study's folder, <storage>/<name>")
    resume.add_argument("--address", help="an existing Ray cluster (default: local Ray)")
    resume.add_argument("--no-report", action="store_true", help="skip writing the report (./report/<name>) at the end")
    for command in (run, resume):
        command.add_argument("--verbose", action="store_true",
                             help="also show Ray Tune's status tables and Ray's, Optuna's and MLflow's routine lines")
        command.add_argument("--tracking-patience", type=seconds, default=DEFAULT_PATIENCE_S, metavar="SECONDS",
                             help="how long to wait for an MLflow that does not answer before the study stops, "
                             f"resumable (default: {DEFAULT_PATIENCE_S:g}); trials go on meanwhile")
    listing = sub.add_parser("list", help="list the studies under a storage folder")
    listing.add_argument("--storage", default="ray_results", help="default: ./ray_results")
    add_report_options(sub.add_parser("report", help="write a study's tables, figures and index from MLflow"))
    return p


def seconds(text: str) -> float:
    """A duration in seconds, ≥ 0 (argparse names it in its error line)."""
    value = float(text)
    if not value >= 0:  # also nan
        raise ValueError(text)
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; 2 for a bad config or unreadable data (one line on stderr), 130 when interrupted,
    TEMPFAIL (75) when MLflow stopped answering for longer than --tracking-patience, IOERR (74) when the study's
    storage could not be written."""
    args = _parser().parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # one line per finished trial reaches a log file as it happens
    if args.command == "list":
        return _list(Path(args.storage))
    if args.command == "report":
        from reports._cli import report

        return report(args)
    try:
        if args.command == "run":  # the config first: a mistake in it is said before torch, Ray and MLflow load
            config = load_study_config(args.config, _overrides(args), allow_missing_gpu=args.address is not None)
        from study import driver
        from study.experiment import runs_page

        options = {"tracking_patience": args.tracking_patience, "verbose": args.verbose, "bar": sys.stderr.isatty()}
        if args.command == "run":
            driver.check_destinations(config, args.storage)
            folder = driver.study_folder(config, args.storage)
            driver.check_same_study(config, folder)
            run = lambda: driver.run_study(config, address=args.address, storage=args.storage, **options)  # noqa: E731
        else:
            folder = Path(args.path).expanduser().resolve()
            config = driver.check_resumable(folder, allow_missing_gpu=args.address is not None)
            driver.check_tracking(driver.StudyState.load(folder).tracking_uri)
            run = lambda: driver.resume_study(folder, address=args.address, **options)  # noqa: E731
        finished = driver.is_finished(folder)  # then nothing runs: its data is not needed
        if args.address is None and not finished:
            driver.check_data(config, download=args.command == "run" and args.download)
    except (ConfigError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        state = run()
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: study resume {folder}", file=sys.stderr)
        return 130
    except TrackingUnavailable as err:
        print(f"error: {err}; the study stopped with nothing lost: once MLflow answers, continue with: "
              f"{_again(folder)}", file=sys.stderr)
        return TEMPFAIL
    except driver.StorageError as err:
        print(f"error: {err}; once it can be written, continue with: {_again(folder)}", file=sys.stderr)
        return IOERR
    print("\n" + driver.summary_table(state))
    print(f"\nresults: MLflow experiment '{folder.name}' at {state.tracking_uri}")
    print(f"browse them: {runs_page(state.tracking_uri, state.experiment_id)}")
    print(f"study folder (checkpoints, state): {folder}")
    if not args.no_report:
        _report(state.tracking_uri, folder.name, log_artifacts=not finished)
    return 0


def _overrides(args: argparse.Namespace) -> list[str]:
    """`study run`'s --set overrides, then its --data-root as one more: an absolute path (the trials run elsewhere),
    quoted so that YAML reads it as the string it is."""
    if args.data_root is None:
        return list(args.overrides)
    return [*args.overrides, f"train.data_root={json.dumps(str(Path(args.data_root).expanduser().resolve()))}"]


def _again(folder: Path) -> str:
    """The command that continues a stopped study: `study resume` once its state is saved, else the same command."""
    from study.driver import STATE_FILE

    return f"study resume {folder}" if (folder / STATE_FILE).is_file() else "the same command"


def _report(tracking_uri: str, name: str, *, log_artifacts: bool = True) -> None:
    """Write the finished study's report (`log_artifacts`: also into MLflow); a failure is said on stderr and leaves
    the study's exit status alone."""
    try:
        from reports import write_report

        print(f"report: {write_report(tracking_uri, name, log_artifacts=log_artifacts)}")
    except Exception as error:  # the study itself is done and logged
        print(f"warning: the report could not be written ({type(error).__name__}: {error}); "
              f"retry with: study report --tracking-uri {tracking_uri} --study {name}", file=sys.stderr)


def _list(storage: Path) -> int:
    found = sorted(storage.glob("*/study.json"))
    if not found:
        print(f"no studies under {storage.resolve()}")
    for path in found:
        state = json.loads(path.read_text())
        config = state["config"]
        done = sum(r["search_done"] and (r["final_done"] or not config["final"]["n_seeds"])
                   for r in state["rates"].values())
        total = len(label_sets(config.get("noise", "symmetric"), config["noise_rates"]))
        print(f"{path.parent.name}\t{done}/{total} label sets done\t{path.parent.resolve()}")
    return 0
