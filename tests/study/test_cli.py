"""The `study` command: help, and bad input stopped with one line, exit 2, before Ray starts and with nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from study.cli import main


def run_main(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse's own errors and --help
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_of_each_command(capsys: pytest.CaptureFixture) -> None:
    for args, words in ((["--help"], ("run", "resume", "list", "report")),
                        (["run", "--help"], ("--set", "--address", "--storage", "--no-report", "--data-root")),
                        (["resume", "--help"], ("path",)), (["list", "--help"], ("--storage",)),
                        (["report", "--help"], ("--tracking-uri", "--study", "--out"))):
        code, out, _ = run_main(args, capsys)
        assert code == 0 and all(word in out for word in words)


BAD_RUNS = [
    ("unknown-key", ["--set", "noise_rate=0.4"], ("noise_rate", "did you mean 'noise_rates'")),
    ("unknown-method", ["--set", "method=nope"], ("method", "nope")),
    ("bad-rate", ["--set", "noise_rates=[0.2, 1.5]"], ("noise_rates", "1.5")),
    ("zero-trials", ["--set", "search.num_samples=0"], ("search.num_samples", "0")),
    ("bad-batch", ["--set", "train.batch_size=-1"], ("train.batch_size", "-1")),
    ("malformed-set", ["--set", "search.num_samples"], ("--set",)),
    ("missing-file", ["no/such/study.yaml"], ("config", "no such file")),
    ("gpu-without-gpu", ["--set", "resources.gpus_per_trial=0.5"], ("gpus_per_trial", "0.5")),
    ("missing-data", ["--set", "train.dataset=cifar10", "--set", "train.model=resnet20",
                      "--set", "train.data_root=/nonexistent/noisy-data"], ("cifar10", "/nonexistent/noisy-data")),
]


@pytest.mark.parametrize(("args", "fragments"), [pytest.param(a, f, id=i) for i, a, f in BAD_RUNS])
def test_bad_study_is_one_line_exit_2_and_writes_nothing(args: list[str], fragments: tuple[str, ...], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    import torch

    if "resources.gpus_per_trial=0.5" in args and torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, out, err = run_main(["run", *args], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(fragment in lines[0] for fragment in fragments), lines[0]
    assert out == "" and list(tmp_path.iterdir()) == []  # no mlflow.db, no ray_results


def test_resume_of_a_folder_that_is_no_study(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_main(["resume", str(tmp_path)], capsys)
    assert code == 2 and err.count("\n") == 1 and "study.json" in err and str(tmp_path) in err


def test_report_of_a_store_that_does_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_main(["report", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--study", "nope"],
                              capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("error: ") and "mlflow.db" in err
    assert list(tmp_path.iterdir()) == []


def test_list_with_no_studies(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_main(["list", "--storage", str(tmp_path)], capsys)
    assert code == 0 and "no studies" in out


def test_the_installed_command_refuses_a_bad_config_in_a_real_process(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: dm\nsearch:\n  num_sampels: 3\n")
    result = subprocess.run([sys.executable, "-m", "study", "run", str(bad)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "search.num_sampels" in result.stderr and "did you mean 'num_samples'" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "torchvision", "ray", "mlflow")
LIGHT = [  # (argv, exit status): help, listing and config mistakes, each answered without torch, Ray or MLflow
    (["--help"], 0), (["run", "--help"], 0), (["resume", "--help"], 0), (["list", "--help"], 0),
    (["report", "--help"], 0), (["list", "--storage", "."], 0), (["run", "--set", "search.num_samples=0"], 2),
    (["run", "--set", "method=gce", "--set", "method_params.q=0"], 2),
    (["run", "--set", "search.ranges.default.gamma=[0, 1]"], 2),
]
IMPORTED = """
import json, sys
from study.cli import main
answers = []
for argv in json.loads(sys.argv[1]):
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    answers.append([code, sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(sys.argv[2])))])
print(json.dumps(answers))
"""


def test_help_listing_and_config_mistakes_import_no_torch_ray_or_mlflow(tmp_path: Path) -> None:
    """In one fresh process, each command in turn; after each, which of HEAVY are imported (none, ever)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    argvs = [argv for argv, _ in LIGHT]
    result = subprocess.run([sys.executable, "-c", IMPORTED, json.dumps(argvs), json.dumps(HEAVY)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert [(argv, code, heavy) for (argv, _), (code, heavy) in zip(LIGHT, answers)] == \
        [(argv, code, []) for argv, code in LIGHT]
    assert list(tmp_path.iterdir()) == []
