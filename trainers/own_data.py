"""Your own data, loaded whole into memory as the built-in sets are: `npz:PATH` (numpy arrays) or `folder:PATH`
(images in one folder per class).

`npz:PATH` holds `x_train`, `y_train`, `x_test`, `y_test`: images N×H×W or N×H×W×C (uint8 in 0..255, or float), or
feature vectors N×D (for the MLP; each feature standardised); integer labels in [0, K). Optional: `y_train_true` (the
true training labels, where `y_train` are noisy), `classes` (K names) and `trusted` (indices of training examples whose
labels are known good). `folder:PATH` holds PATH/train/<class>/<image>, PATH/test/<class>/<image> and optionally
PATH/trusted/<class>/<image> (trusted training examples), all images of one size.

Without `y_train_true` the labels are as given and their true labels unknown: no metric that needs them is computed.
"""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import numpy as np
import torch

from trainers.datasets import Dataset, _normalised
from trainers.errors import DataError

REQUIRED = ("x_train", "y_train", "x_test", "y_test")
OPTIONAL = ("y_train_true", "classes", "trusted")
PARTS = ("train", "test", "trusted")  # the folders of `folder:PATH`; trusted optional


def load_own_data(name: str) -> Dataset:
    """The data set `npz:PATH` or `folder:PATH`; a DataError naming the file and what is wrong."""
    kind, _, path = name.partition(":")
    return (_npz if kind == "npz" else _folder)(name, Path(path).expanduser())


def _npz(name: str, path: Path) -> Dataset:
    where = f"npz file {path}"
    try:
        file = np.load(path, allow_pickle=False)  # never unpickles: an object array is refused
        if not isinstance(file, np.lib.npyio.NpzFile):
            raise ValueError("one array, not an .npz archive of named arrays (numpy.savez writes one)")
        with file:
            arrays = {key: file[key] for key in file.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        reason = "not found" if not path.exists() else " ".join(f"unreadable ({error})".split())
        raise DataError(f"{where}: {reason}") from None
    if missing := [k for k in REQUIRED if k not in arrays]:
        raise DataError(f"{where}: no array {missing[0]!r} (it needs {', '.join(REQUIRED)})")
    classes = arrays.get("classes")
    names = None if classes is None else [str(c) for c in classes.reshape(-1)]
    return _assemble(name, where, arrays, names)


def _folder(name: str, path: Path) -> Dataset:
    from PIL import Image  # imported here: a trial process handed its data never needs it
    from torchvision.datasets import ImageFolder

    parts: dict[str, ImageFolder] = {}
    for part in PARTS:
        if part == "trusted" and not (path / part).exists():
            continue
        try:
            parts[part] = ImageFolder(str(path / part))
        except (FileNotFoundError, OSError) as error:
            raise DataError(f"image folder {path / part}: {' '.join(str(error).split())}") from None
    classes = parts["train"].classes
    arrays: dict[str, np.ndarray] = {}
    first: tuple[str, tuple[int, int]] | None = None
    images: dict[str, list] = {}
    for part, found in parts.items():
        strange = sorted(set(found.classes) - set(classes))
        if strange:
            raise DataError(f"image folder {path / part}: class {strange[0]!r} has no folder in {path / 'train'}")
        images[part] = []
        for file, _ in found.samples:
            with Image.open(file) as image:
                first = first or (file, image.size)
                if image.size != first[1]:
                    raise DataError(f"image folder {path}: images of mixed sizes: {file} is {image.size[0]}×"
                                    f"{image.size[1]}, {first[0]} is {first[1][0]}×{first[1][1]}")
                images[part].append(image.copy())
        arrays[f"y_{part}"] = np.array([classes.index(found.classes[c]) for _, c in found.samples], dtype=np.int64)
    mode = "L" if all(im.mode in ("L", "1") for ims in images.values() for im in ims) else "RGB"
    for part, ims in images.items():
        arrays[f"x_{part}"] = np.stack([np.asarray(im.convert(mode)) for im in ims])
    if "y_trusted" in arrays:  # trusted examples join the training set, their indices marked
        n, y_trusted = len(arrays["y_train"]), arrays.pop("y_trusted")
        arrays["trusted"] = np.arange(n, n + len(y_trusted))
        arrays["x_train"] = np.concatenate([arrays["x_train"], arrays.pop("x_trusted")])
        arrays["y_train"] = np.concatenate([arrays["y_train"], y_trusted])
    return _assemble(name, f"image folder {path}", arrays, classes)


def _assemble(name: str, where: str, arrays: dict[str, np.ndarray], classes: list[str] | None) -> Dataset:
    """A normalised Dataset of the checked arrays; a DataError (prefixed with `where`) for the first fault."""
    labels = {key: _labels(where, key, arrays[key]) for key in ("y_train", "y_test", "y_train_true") if key in arrays}
    x_train, x_test = (_images(where, key, arrays[key]) for key in ("x_train", "x_test"))
    for x, y in (("x_train", "y_train"), ("x_test", "y_test"), ("y_train_true", "y_train")):
        if x in arrays and len(arrays[x]) != len(arrays[y]):
            raise DataError(f"{where}: {x} has {len(arrays[x])} examples, {y} {len(arrays[y])}")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{where}: x_train's examples are {tuple(x_train.shape[1:])}, x_test's "
                        f"{tuple(x_test.shape[1:])}")
    k = len(classes) if classes is not None else 1 + max(int(y.max(initial=0)) for y in labels.values())
    for key, y in labels.items():
        bad = y[(y < 0) | (y >= k)]
        if len(bad):
            raise DataError(f"{where}: {key} holds {int(bad[0])}, outside [0, {k}) (the {k} classes)")
    counts = np.bincount(labels["y_train"], minlength=k)
    if (counts == 0).any():
        empty = int(np.flatnonzero(counts == 0)[0])
        label = repr(classes[empty]) if classes is not None else str(empty)
        raise DataError(f"{where}: class {label} has no training example in y_train")
    trusted = None
    if "trusted" in arrays:
        t = arrays["trusted"].reshape(-1)
        if not np.issubdtype(t.dtype, np.integer) or len(t) and (t.min() < 0 or t.max() >= len(x_train)):
            raise DataError(f"{where}: trusted must hold indices of training examples in [0, {len(x_train)})")
        trusted = torch.from_numpy(np.unique(t).astype(np.int64))
    y = {key: torch.from_numpy(v.astype(np.int64)) for key, v in labels.items()}
    data = _normalised(name, (x_train, y["y_train"]), (x_test, y["y_test"]),
                       classes or [str(c) for c in range(k)], augment=False)
    return dataclasses.replace(data, train_true_y=y.get("y_train_true"), true_known="y_train_true" in y,
                               trusted=trusted)


def _labels(where: str, key: str, y: np.ndarray) -> np.ndarray:
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: {key} must be a 1-D integer array of class indices, not {y.dtype} {y.shape}")
    return y


def _images(where: str, key: str, x: np.ndarray) -> torch.Tensor:
    """N×C×H×W floats: images N×H×W or N×H×W×C (uint8 scaled to [0, 1]) or features N×D (as D×1×1)."""
    if x.ndim not in (2, 3, 4) or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"{where}: {key} must be numbers N×D, N×H×W or N×H×W×C, not {x.dtype} {x.shape}")
    t = torch.from_numpy(np.ascontiguousarray(x)).float()
    if x.dtype == np.uint8:
        t /= 255
    if x.ndim == 2:  # a feature per channel: each standardised on its own
        return t[:, :, None, None].contiguous()
    return (t.unsqueeze(1) if x.ndim == 3 else t.permute(0, 3, 1, 2)).contiguous()
