"""Bad input to the `study` command: one line on stderr naming the field, the value and what is allowed; exit 2;
nothing written (no mlflow.db, no ray_results, no report, no download into a data root) and no traceback.

Each case runs `study.cli.main` in a fresh, empty working directory with $MLFLOW_TRACKING_URI unset; the files a case
needs (YAML files, data roots, study folders) are made beside it, in `aside/`, and must be left as they were. A few
cases also run as a real `python -m study` process. docs/RELIABILITY.md lists the line each case prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

import pytest
import torch
from torchvision.datasets import FashionMNIST

from study.cli import main
from study.config import StudyConfig

REPO = Path(__file__).resolve().parents[2]
Make = Callable[[Path, pytest.FixtureRequest], list[str]]


def run_set(*overrides: str) -> Make:
    return lambda aside, request: ["run", *[arg for o in overrides for arg in ("--set", o)]]


def yaml_file(text: str) -> Make:
    def make(aside: Path, request: pytest.FixtureRequest) -> list[str]:
        path = aside / "study.yaml"
        path.write_text(text, encoding="utf-8")
        return ["run", str(path)]

    return make


def empty_data_root(aside: Path, request: pytest.FixtureRequest) -> list[str]:
    (aside / "noisy-data").mkdir()
    return ["run", "--set", "train.dataset=fashion_mnist", "--set", f"train.data_root={aside / 'noisy-data'}"]


def data_root_option(aside: Path, request: pytest.FixtureRequest) -> list[str]:
    """`--data-root` given relative to the working directory (cwd and aside are siblings)."""
    (aside / "noisy-data").mkdir()
    return ["run", "--set", "train.dataset=fashion_mnist", "--data-root", f"../{aside.name}/noisy-data"]


def corrupt_cifar_batch(aside: Path, request: pytest.FixtureRequest) -> list[str]:
    """A data root whose CIFAR-10 files are the real ones (links), but data_batch_1 has one byte flipped."""
    source = request.getfixturevalue("cifar10_root") / "cifar-10-batches-py"
    folder = aside / "noisy-data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for file in source.iterdir():
        (folder / file.name).symlink_to(file)
    (folder / "data_batch_1").unlink()
    data = bytearray((source / "data_batch_1").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "data_batch_1").write_bytes(data)
    return ["run", "--set", "train.dataset=cifar10", "--set", "train.model=resnet20",
            "--set", f"train.data_root={folder.parent}"]


def cifar_n_file(fault: str) -> Make:
    """A data root with the real CIFAR-10 files (links) and CIFAR-N's CIFAR-10 file absent or with one byte flipped."""
    def make(aside: Path, request: pytest.FixtureRequest) -> list[str]:
        root = aside / "noisy-data"
        (root / "CIFAR-N").mkdir(parents=True)
        (root / "cifar-10-batches-py").symlink_to(request.getfixturevalue("cifar10_root") / "cifar-10-batches-py")
        if fault == "md5":
            data = bytearray((request.getfixturevalue("cifar_n_root") / "CIFAR-N" / "CIFAR-10_human.pt").read_bytes())
            data[len(data) // 2] ^= 0xFF
            (root / "CIFAR-N" / "CIFAR-10_human.pt").write_bytes(data)
        return ["run", "--set", "train.dataset=cifar10", "--set", "train.model=lenet", "--set", "noise=cifar10n-worst",
                "--set", f"train.data_root={root}"]

    return make


def storage_a_file(aside: Path, request: pytest.FixtureRequest) -> list[str]:
    (aside / "file").write_text("not a folder")
    return ["run", "--storage", str(aside / "file")]


def study_folder(name: str, state: str | None) -> Make:
    """`study resume` of aside/<name>, holding study.json with `state` (None: no study.json)."""
    def make(aside: Path, request: pytest.FixtureRequest) -> list[str]:
        folder = aside / name
        folder.mkdir()
        if state is not None:
            (folder / "study.json").write_text(state)
        return ["resume", str(folder)]

    return make


def saved_state(config: dict, tracking_uri: str = "sqlite:///nowhere.db") -> str:
    return json.dumps({"config": config, "tracking_uri": tracking_uri, "experiment_id": "1",
                       "study_run_id": "0", "rates": {}})


NO_SERVER = "http://127.0.0.1:1"  # nothing listens on port 1 (tcpmux): the connection is refused


ASIDE = "{aside}"  # replaced by the aside folder in a case's expected fragments

# id, argv maker, fragments the one line must hold: the field (dotted key), the value, what is allowed
CASES: list[tuple[str, Make, tuple[str, ...]]] = [
    ("unknown-method", run_set("method=nope"), ("error: method: 'nope' is not allowed", "one of: ", "dm")),
    ("unknown-dataset", run_set("train.dataset=mnist3d"),
     ("error: train.dataset: 'mnist3d' is not allowed", "one of: ", "fashion_mnist")),
    ("unknown-model", run_set("train.model=vgg16"), ("error: train.model: 'vgg16'", "one of: ", "resnet56")),
    ("negative-lambda", run_set("method=dm", "method_params.lam=-1"),
     ("error: method_params.lam: -1 is not allowed", "λ ≥ 0")),
    ("param-of-another-method", run_set("method=cce", "method_params.lam=1"),
     ("error: method_params.lam: 1 is not allowed", "not a parameter of cce")),
    ("noise-rate-1", run_set("noise_rates=[1.0]"), ("error: noise_rates: 1.0 is not allowed", "[0, 1)")),
    ("noise-rate-negative", run_set("noise_rates=[-0.1]"), ("error: noise_rates: -0.1 is not allowed", "[0, 1)")),
    ("noise-rate-1.5", run_set("noise_rates=[0.2, 1.5]"), ("error: noise_rates: 1.5 is not allowed", "[0, 1)")),
    ("noise-rates-empty", run_set("noise_rates=[]"), ("error: noise_rates: [] is not allowed", "at least one")),
    ("unknown-noise-kind", run_set("noise=gaussian"), ("error: noise: 'gaussian' is not allowed", "one of: ", "pair")),
    ("noise-kind-misfit", run_set("noise=asym-cifar10"),
     ("error: noise: 'asym-cifar10' is not allowed", "fits only the data set cifar10, not digits")),
    ("human-noise-misfit", run_set("noise=cifar10n-worst"),
     ("error: noise: 'cifar10n-worst' is not allowed", "fits only the data set cifar10, not digits")),
    ("human-noise-other-data-set", run_set("train.dataset=cifar10", "train.model=lenet", "noise=cifar100n-synthetic"),
     ("error: noise: 'cifar100n-synthetic' is not allowed", "fits only the data set cifar100, not cifar10")),
    ("human-noise-with-a-rate", run_set("train.dataset=cifar10", "noise=cifar10n-aggre", "noise_rates=[0.4]"),
     ("error: noise_rates: [0.4] is not allowed", "none: omit it")),
    ("cifar-n-file-missing", cifar_n_file("missing"),
     ("error: train.data_root: missing file {aside}/noisy-data/CIFAR-N/CIFAR-10_human.pt",)),
    ("cifar-n-file-md5-mismatch", cifar_n_file("md5"),
     ("error: train.data_root: corrupt file {aside}/noisy-data/CIFAR-N/CIFAR-10_human.pt (md5 mismatch",)),
    ("batch-size-zero", run_set("train.batch_size=0"), ("error: train.batch_size: 0 is not allowed", "an integer > 0")),
    ("batch-size-negative", run_set("train.batch_size=-8"),
     ("error: train.batch_size: -8 is not allowed", "an integer > 0")),
    ("zero-trials", run_set("search.num_samples=0"), ("error: search.num_samples: 0 is not allowed", "an integer ≥ 1")),
    ("rates-not-a-list", run_set("noise_rates=abc"),
     ("error: noise_rates: 'abc' is not allowed", "a list of noise rates in [0, 1)")),
    ("epochs-a-word", run_set("train.epochs=two"), ("error: train.epochs: 'two' is not allowed", "an integer > 0")),
    ("epochs-fraction", run_set("train.epochs=1.5"), ("error: train.epochs: 1.5 is not allowed", "an integer > 0")),
    ("lr-a-list", run_set("train.lr=[1]"), ("error: train.lr: [1] is not allowed", "a finite number")),
    ("lr-nan", run_set("train.lr=.nan"), ("error: train.lr: nan is not allowed", "a finite number")),
    ("unknown-section", run_set("serch.num_samples=3"),
     ("error: serch: {'num_samples': 3} is not allowed", "unknown key; did you mean 'search'?")),
    ("unknown-train-key", run_set("train.learning_rate=0.1"),
     ("error: train.learning_rate: 0.1 is not allowed", "unknown key; did you mean 'lr'?")),
    ("misspelt-search-key", run_set("search.num_sampels=3"),
     ("error: search.num_sampels: 3 is not allowed", "unknown key; did you mean 'num_samples'?")),
    ("key-the-study-sets", run_set("train.noise_rate=0.2"),
     ("error: train.noise_rate: 0.2 is not allowed", "use the top-level key 'noise_rates'")),
    ("yaml-syntax-error", yaml_file("train: {epochs: 2\nsearch: [\n"),
     ("error: config: '{aside}/study.yaml' is not allowed", "not valid YAML", "line ")),
    ("yaml-missing-file", lambda aside, request: ["run", str(aside / "nope.yaml")],
     ("error: config: '{aside}/nope.yaml' is not allowed", "no such file")),
    ("yaml-top-level-list", yaml_file("- method: dm\n- noise: pair\n"),
     ("error: config: '{aside}/study.yaml' is not allowed", "the top level must be a mapping", "not a list")),
    ("yaml-key-twice", yaml_file("method: dm\nmethod: cce\n"),
     ("error: config: '{aside}/study.yaml'", "not valid YAML", "the key 'method' is given twice")),
    ("yaml-a-folder", lambda aside, request: ["run", str(aside)],
     ("error: config: '{aside}' is not allowed", "a folder, not a YAML file")),
    ("data-root-empty-no-download", empty_data_root,
     ("error: train.data_root: data set 'fashion_mnist' under {aside}/noisy-data",
      "missing file {aside}/noisy-data/FashionMNIST/raw/train-images-idx3-ubyte.gz", "copy the files there",
      "study run --download")),
    ("cifar-batch-md5-mismatch", corrupt_cifar_batch,
     ("error: train.data_root: data set 'cifar10' under {aside}/noisy-data",
      "corrupt file {aside}/noisy-data/cifar-10-batches-py/data_batch_1 (md5 mismatch)", "copy the files there")),
    ("data-root-option-empty", data_root_option,
     ("error: train.data_root: data set 'fashion_mnist' under {aside}/noisy-data",
      "missing file {aside}/noisy-data/FashionMNIST/raw/train-images-idx3-ubyte.gz")),
    ("ranges-unknown-parameter", run_set("search.ranges={default: {gamma: [0, 1]}}"),
     ("error: search.ranges.default.gamma: [0.0, 1.0] is not allowed",
      "a parameter that dm searches (lam_beta): lam, beta")),
    ("ranges-log-scale-from-0", run_set("search.ranges.default.beta=[0, 8]"),
     ("error: search.ranges.default.beta: [0.0, 8.0] is not allowed", "0 < low ≤ high (searched on a log scale)")),
    ("ranges-lam-under-psi-rho", run_set("search.parametrization=psi_rho", "search.ranges.default.lam=[0, 1]"),
     ("error: search.ranges.default.lam: [0.0, 1.0] is not allowed",
      "a parameter that dm searches (psi_rho): psi, rho")),
    ("ranges-fractional-integer", run_set("method=gradsim", "search.ranges.default.k=[2, 7.5]"),
     ("error: search.ranges.default.k: [2.0, 7.5] is not allowed", "whole numbers (an integer parameter)")),
    ("ranges-low-above-high", run_set("search.ranges.0.4.lam=[2, 1]"),
     ("error: search.ranges.0.4.lam: [2, 1] is not allowed", "low ≤ high")),
    ("ranges-not-searched", run_set("search.ranges.0.4.lr=[0.001, 0.1]"),
     ("error: search.ranges.0.4.lr: [0.001, 0.1] is not allowed", "lam, beta; lr only with tune_lr")),
    ("ranges-the-trainer-refuses", run_set("method=gce", "search.ranges.default.q=[0, 1]"),
     ("error: search.ranges.default.q: [0.0, 1.0] is not allowed", "a number in (0, 1]")),
    ("ranges-with-mode-grid", run_set("search.mode=grid", "search.grid=table3", "search.ranges.default.lam=[0, 1]"),
     ("error: search.ranges: {'default': {'lam': [0.0, 1.0]}} is not allowed", "{} with mode grid")),
    ("tune-lr-with-mode-grid", run_set("search.mode=grid", "search.grid=table3", "search.tune_lr=true"),
     ("error: search.tune_lr: True is not allowed", "false with mode grid", "{lr: [...]}")),
    ("grid-unknown-parameter", run_set("method=ieg", "search.mode=grid", "search.grid={zeta: [1, 2]}"),
     ("error: search.grid.zeta: [1, 2] is not allowed", "neither a parameter of ieg", "nor a training setting")),
    ("grid-cell-the-trainer-refuses", run_set("method=ieg", "search.mode=grid", "search.grid={temperature: [1, 0]}"),
     ("error: search.grid.temperature: 0 is not allowed", "a number > 0")),
    ("gpu-fraction-without-gpu", run_set("resources.gpus_per_trial=0.5"),
     ("error: resources.gpus_per_trial: 0.5 is not allowed", "no GPU is visible here", "use 0")),
    ("cuda-without-gpus", run_set("train.device=cuda"),
     ("error: train.device: 'cuda' is not allowed", "resources.gpus_per_trial > 0")),
    ("resume-no-study", study_folder("empty", None),
     ("error: path: '{aside}/empty' is not allowed", "a study folder holding study.json")),
    ("resume-state-not-json", study_folder("broken", "{not json"),
     ("error: path: '{aside}/broken' is not allowed", "its study.json is no study's", "JSONDecodeError")),
    ("resume-renamed-folder", study_folder("renamed", saved_state(StudyConfig(name="orig").to_dict())),
     ("error: path: '{aside}/renamed' is not allowed", "rename the folder back to orig")),
    ("resume-state-name-escapes", study_folder("evil", saved_state({**StudyConfig().to_dict(), "name": "../evil"})),
     ("error: path: '{aside}/evil' is not allowed", "cannot be resumed here: name: '../evil' is not allowed",
      "letters, digits")),
    ("resume-gpu-study-without-gpu", study_folder("gpu", saved_state({**StudyConfig(name="gpu").to_dict(),
                                                                   "resources": {"gpus_per_trial": 0.5}})),
     ("error: path: '{aside}/gpu' is not allowed", "resources.gpus_per_trial: 0.5 is not allowed",
      "no GPU is visible here")),
    ("report-store-missing", lambda aside, request: ["report", "--tracking-uri", f"sqlite:///{aside}/mlflow.db"],
     ("error: tracking_uri: 'sqlite:///{aside}/mlflow.db' is not allowed", "does not exist")),
    ("set-without-equals", run_set("search.num_samples"),
     ("error: --set: 'search.num_samples' is not allowed", "KEY=VALUE")),
    ("set-without-key", run_set("=4"), ("error: --set: '=4' is not allowed", "KEY=VALUE")),
    ("name-escapes-dotdot", run_set("name=../evil"),
     ("error: name: '../evil' is not allowed", "letters, digits, '.', '_' and '-' only")),
    ("name-with-slash", run_set("name=a/b"), ("error: name: 'a/b' is not allowed", "letters, digits")),
    ("name-dotdot", run_set("name=.."), ("error: name: '..' is not allowed", "letters, digits")),
    ("tracking-uri-scheme", run_set("tracking_uri=foo://x"),
     ("error: tracking_uri: 'foo://x' is not allowed", "an MLflow tracking URI: sqlite:///PATH")),
    ("tracking-uri-folder-missing", lambda aside, request: ["run", "--set", f"tracking_uri=sqlite:///{aside}/no/m.db"],
     ("error: tracking_uri: 'sqlite:///{aside}/no/m.db' is not allowed", "a folder that exists: {aside}/no does not")),
    ("tracking-server-unreachable", run_set(f"tracking_uri={NO_SERVER}"),
     (f"error: tracking_uri: '{NO_SERVER}' is not allowed", "an MLflow tracking server that answers; none does there",
      "Connection refused")),
    ("resume-tracking-server-unreachable", study_folder("served", saved_state(StudyConfig(name="served").to_dict(),
                                                                            NO_SERVER)),
     (f"error: tracking_uri: '{NO_SERVER}' is not allowed", "none does there", "Connection refused")),
    ("storage-is-a-file", storage_a_file,
     ("error: --storage: '{aside}/file' is not allowed", "a folder that can be written: {aside}/file is a file")),
    ("unknown-option", lambda aside, request: ["run", "--bogus"],
     ("error: unrecognized arguments: --bogus", "see study --help")),
    ("no-command", lambda aside, request: [], ("error: the following arguments are required: command", "--help")),
]
CASE_IDS = [case[0] for case in CASES]
NEED_NO_GPU = {"gpu-fraction-without-gpu", "resume-gpu-study-without-gpu"}
IN_SUBPROCESS = ["unknown-method", "yaml-syntax-error", "ranges-unknown-parameter", "data-root-empty-no-download"]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under `folder` (links not followed) with its size and mtime: what a case must leave unchanged."""
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(cwd, aside): a fresh empty working directory, and a folder beside it for what a case reads."""
    cwd, aside = tmp_path / "cwd", tmp_path / "aside"
    cwd.mkdir()
    aside.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return cwd, aside


def prepare(case_id: str, aside: Path, request: pytest.FixtureRequest) -> tuple[list[str], tuple[str, ...]]:
    _, make, fragments = CASES[CASE_IDS.index(case_id)]
    if case_id in NEED_NO_GPU and torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    return make(aside, request), tuple(f.replace(ASIDE, str(aside)) for f in fragments)


def assert_one_clear_line(err: str, fragments: tuple[str, ...]) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, f"not exactly one line: {err!r}"
    line = err.rstrip("\n")
    assert line.strip() and line.startswith("error: "), line
    assert "Traceback" not in err and 'File "' not in err
    missing = [f for f in fragments if f not in line]
    assert not missing, f"{missing} not in {line!r}"
    return line


def test_the_table_is_large_and_ids_are_unique(processes: dict) -> None:
    """(Runs first and asks for `processes`, so the subprocess cases run beside the in-process ones.)"""
    assert len(CASES) >= 25 and len(set(CASE_IDS)) == len(CASE_IDS)
    assert set(IN_SUBPROCESS) <= set(CASE_IDS)


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case_id: str, places: tuple[Path, Path],
                                                         request: pytest.FixtureRequest,
                                                         capsys: pytest.CaptureFixture) -> None:
    cwd, aside = places
    argv, fragments = prepare(case_id, aside, request)
    before = snapshot(aside)
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    assert_one_clear_line(err, fragments)
    assert out == ""
    assert list(cwd.iterdir()) == []  # no mlflow.db, mlartifacts, ray_results or report
    assert snapshot(aside) == before  # nothing downloaded into a data root, no study folder touched


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    """The IN_SUBPROCESS cases as `python -m study` processes, all started at once (each import takes seconds)."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    started = {}
    for case_id in IN_SUBPROCESS:
        cwd, aside = tmp_path_factory.mktemp(case_id) / "cwd", tmp_path_factory.mktemp(case_id) / "aside"
        cwd.mkdir()
        aside.mkdir()
        argv, fragments = prepare(case_id, aside, request)
        before = snapshot(aside)
        process = subprocess.Popen([sys.executable, "-m", "study", *argv], cwd=cwd, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started[case_id] = (process, cwd, aside, before, fragments)
    yield started
    for process, *_ in started.values():
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("case_id", IN_SUBPROCESS)
def test_bad_input_as_a_process(case_id: str, processes: dict) -> None:
    process, cwd, aside, before, fragments = processes[case_id]
    out, err = process.communicate(timeout=180)
    assert process.returncode == 2, err[-2000:]
    assert_one_clear_line(err, fragments)
    assert out == ""
    assert list(cwd.iterdir()) == [] and snapshot(aside) == before


def test_a_missing_data_set_is_fetched_only_when_asked(places: tuple[Path, Path],
                                                       capsys: pytest.CaptureFixture) -> None:
    """Without --download the data root is not touched; with it, torchvision tries (and, offline, says why not)."""
    cwd, aside = places
    argv = empty_data_root(aside, None)  # type: ignore[arg-type]
    assert main(argv) == 2 and list((aside / "noisy-data").iterdir()) == []
    assert "download failed" not in capsys.readouterr().err
    if network_reachable(FashionMNIST.mirrors[0]):
        pytest.skip("the network is reachable: this part is about the offline line")
    assert main([*argv, "--download"]) == 2
    line = assert_one_clear_line(capsys.readouterr().err, ("error: train.data_root:", "download failed"))
    assert "study run --download" not in line and list(cwd.iterdir()) == []


def network_reachable(url: str) -> bool:
    """Whether `url` answers at all (an HTTP error is an answer)."""
    try:
        urllib.request.urlopen(url, timeout=5).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True
