"""Human label noise (CIFAR-N) and its synthetic control, on the real label files and CIFAR-10's real labels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import trainers.__main__ as cli
from trainers import ConfigError, DataError, Dataset, TrainConfig, load_dataset, make_split
from trainers.human_noise import (_ALLOWED, FILES, human_labels, label_path, load_label_file,
                                  read_label_file, transition_matrix)

# the rates of the CIFAR-N release (its README), in %
RATES = {"cifar10n-aggre": 9.01, "cifar10n-rand1": 17.23, "cifar10n-rand2": 18.12, "cifar10n-rand3": 17.64,
         "cifar10n-worst": 40.21, "cifar100n": 40.20}
PWNED = Path("/tmp/cifar-n-test-pwned")


def labels_only(name: str, train_y: torch.Tensor, num_classes: int) -> Dataset:
    """A stand-in data set with the given training labels whose 1×1×1 images are their indices (noise never looks at
    the images; a split's images say which examples it kept)."""
    images = torch.arange(len(train_y), dtype=torch.float32).reshape(-1, 1, 1, 1)
    classes = tuple(map(str, range(num_classes)))
    return Dataset(name, images, train_y, torch.zeros(num_classes, 1, 1, 1), torch.arange(num_classes), classes, False)


def tampered_copy(source_root: Path, root: Path) -> None:
    """CIFAR-10's label file copied under `root` with one bit of one byte changed."""
    data = bytearray(label_path("cifar10", source_root).read_bytes())
    data[len(data) // 2] ^= 1
    path = label_path("cifar10", root)
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def cifar10_labels(cifar10_root: Path, cifar_n_root: Path) -> Dataset:
    """CIFAR-10's real training labels, in order, on stand-in images."""
    return labels_only("cifar10", load_dataset("cifar10", cifar10_root, download=False).train_y, 10)


@pytest.mark.parametrize("kind", [k for k in RATES if k != "cifar100n"])
def test_cifar10n_rates_on_the_final_split_are_the_files(kind: str, cifar10_labels: Dataset,
                                                         cifar_n_root: Path) -> None:
    split = make_split(cifar10_labels, noise=kind, noise_rate=0.0, split="final", data_root=cifar_n_root)
    assert len(split.train_y) == 50_000
    assert round(100 * split.noise_rate, 2) == RATES[kind]
    assert torch.equal(split.is_noisy, split.train_y != split.true_y)


def test_cifar100n_rate_from_the_file(cifar_n_root: Path) -> None:
    clean, human = human_labels("cifar100n", cifar_n_root)
    assert len(clean) == 50_000 and int(clean.max()) == 99
    assert round(100 * float((clean != human).float().mean()), 2) == RATES["cifar100n"]
    stand_in = labels_only("cifar100", clean, 100)  # its labels are the file's: pairs by construction
    split = make_split(stand_in, noise="cifar100n", noise_rate=0.0, split="final", data_root=cifar_n_root)
    assert round(100 * split.noise_rate, 2) == RATES["cifar100n"]


def test_cifar100n_pairs_with_cifar100(cifar_n_root: Path) -> None:
    try:
        data = load_dataset("cifar100", cifar_n_root, download=False)
    except DataError:
        pytest.skip("no CIFAR-100 images in the shared data: CIFAR-100N is tested on its label file alone")
    split = make_split(data, noise="cifar100n", noise_rate=0.0, split="final", data_root=cifar_n_root)
    assert round(100 * split.noise_rate, 2) == RATES["cifar100n"]


def test_human_labels_replace_the_training_part_only(cifar10_labels: Dataset, cifar_n_root: Path) -> None:
    clean, human = human_labels("cifar10n-worst", cifar_n_root)
    split = make_split(cifar10_labels, noise="cifar10n-worst", noise_rate=0.0, probe_per_class=10,
                       data_root=cifar_n_root)
    keep, held, probe = (x.flatten().long() for x in (split.train_x, split.val_x, split.probe_x))
    assert (len(keep), len(held), len(probe)) == (40_000 - 100, 10_000, 100)
    assert torch.equal(split.train_y, human[keep]) and torch.equal(split.true_y, clean[keep])
    assert torch.equal(split.val_y, clean[held]) and torch.equal(split.probe_y, clean[probe])
    assert 0.39 < split.noise_rate < 0.41


def test_the_synthetic_control_has_the_human_transition_matrix(cifar10_labels: Dataset, cifar_n_root: Path) -> None:
    clean, human = human_labels("cifar10n-worst", cifar_n_root)
    split = make_split(cifar10_labels, noise="cifar10n-worst-synthetic", noise_rate=0.0, split="final",
                       data_root=cifar_n_root)
    human_t, synthetic_t = transition_matrix(clean, human, 10), transition_matrix(split.true_y, split.train_y, 10)
    assert float((human_t - synthetic_t).abs().max()) < 0.02
    assert abs(split.noise_rate - 0.4021) < 0.01
    assert not torch.equal(split.train_y, human)


@pytest.mark.parametrize("kind", ["cifar10n-worst", "cifar10n-aggre"])
def test_the_synthetic_control_flips_independently_of_the_image(kind: str, cifar10_labels: Dataset,
                                                                cifar_n_root: Path) -> None:
    """Humans err on particular images; the control flips the images humans got wrong no more often than the others
    of their class: among the human-wrong examples its flips are the share their classes' matrix rows predict."""
    clean, human = human_labels(kind, cifar_n_root)
    split = make_split(cifar10_labels, noise=kind + "-synthetic", noise_rate=0.0, split="final",
                       data_root=cifar_n_root)
    stay = transition_matrix(clean, human, 10).diagonal().float()
    for group in (human != clean, human == clean):
        expected = float((1 - stay[clean[group]]).mean())
        assert abs(float(split.is_noisy[group].float().mean()) - expected) < 0.015
    assert float(split.is_noisy[human != clean].float().mean()) < 0.9  # the human labels themselves: 1.0


def test_the_synthetic_control_follows_the_seed(cifar10_labels: Dataset, cifar_n_root: Path) -> None:
    def draw(seed: int) -> torch.Tensor:
        return make_split(cifar10_labels, noise="cifar10n-rand1-synthetic", noise_rate=0.0, split="final",
                          data_root=cifar_n_root, seed=seed).train_y

    assert torch.equal(draw(0), draw(0)) and not torch.equal(draw(0), draw(1))


def test_the_released_files_load_with_exactly_the_allowed_globals(cifar_n_root: Path) -> None:
    for dataset, file in FILES.items():
        assert set(load_label_file(label_path(dataset, cifar_n_root), file.md5)) >= {"clean_label"}
    path = label_path("cifar10", cifar_n_root)
    for i in range(len(_ALLOWED)):  # each one is needed
        with pytest.raises(Exception), torch.serialization.safe_globals(_ALLOWED[:i] + _ALLOWED[i + 1:]):
            torch.load(path, weights_only=True)


class _Shell:
    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {PWNED}",))


@pytest.mark.parametrize(("content", "named"), [
    pytest.param({"clean_label": _Shell()}, "system", id="os.system"),
    pytest.param({"clean_label": np.zeros(3, dtype=np.int64)}, "numpy._core.multiarray._reconstruct", id="numpy2-name"),
    pytest.param({"clean_label": torch.nn.Linear(1, 1)}, "torch.nn.modules.linear.Linear", id="module"),
])
def test_a_pickle_naming_any_other_global_is_refused(content: dict, named: str, tmp_path: Path) -> None:
    path = tmp_path / "CIFAR-10_human.pt"
    torch.save(content, path)
    PWNED.unlink(missing_ok=True)
    with pytest.raises(DataError, match=rf"^unreadable file {path} \(refused.*{named}"):
        read_label_file(path)
    assert not PWNED.exists()


def test_a_tampered_or_missing_file_is_refused(cifar10_labels: Dataset, cifar_n_root: Path, tmp_path: Path) -> None:
    path = label_path("cifar10", tmp_path)
    with pytest.raises(DataError, match=rf"^missing file {path} "):
        make_split(cifar10_labels, noise="cifar10n-aggre", noise_rate=0.0, data_root=tmp_path)
    tampered_copy(cifar_n_root, tmp_path)
    with pytest.raises(DataError, match=rf"^corrupt file {path} \(md5 mismatch"):
        make_split(cifar10_labels, noise="cifar10n-aggre", noise_rate=0.0, data_root=tmp_path)


def test_a_file_of_other_labels_is_refused(cifar10_labels: Dataset, cifar_n_root: Path) -> None:
    shuffled = labels_only("cifar10", cifar10_labels.train_y.roll(1), 10)
    with pytest.raises(DataError, match=r"^mismatched file .*CIFAR-10_human.pt \(its clean_label is not"):
        make_split(shuffled, noise="cifar10n-aggre", noise_rate=0.0, data_root=cifar_n_root)


@pytest.mark.parametrize(("changes", "field"), [
    ({"dataset": "digits", "noise": "cifar10n-worst"}, "noise"),
    ({"dataset": "cifar10", "noise": "cifar100n-synthetic"}, "noise"),
    ({"dataset": "cifar10", "noise": "cifar10n-worst", "noise_rate": 0.2}, "noise_rate"),
])
def test_config_refuses_a_human_kind_on_another_data_set_or_with_a_rate(changes: dict, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        TrainConfig(**changes)
    assert error.value.field == field


@pytest.mark.parametrize("fault", ["missing", "tampered"])
def test_the_cli_stops_on_a_bad_file_in_one_line(fault: str, cifar10_labels: Dataset, cifar_n_root: Path,
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(cli, "load_dataset", lambda name, root: cifar10_labels)
    if fault == "tampered":
        tampered_copy(cifar_n_root, tmp_path)
    code = cli.main(["--dataset", "cifar10", "--data-root", str(tmp_path), "--noise", "cifar10n-worst",
                     "--iterations", "1", "--device", "cpu"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"error: {'missing' if fault == 'missing' else 'corrupt'} file ")
    assert "CIFAR-10_human.pt" in lines[0]
