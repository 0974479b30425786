"""Generated own data for the tests: an npz of small images or feature vectors and an image folder, each with a
learnable signal (the class sets one bright region), and noisy given labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

CLASSES = ("circle", "square", "star")


def images(labels: np.ndarray, rng: np.random.Generator, size: int = 8) -> np.ndarray:
    """uint8 images N×size×size: noise, with the class's third of the rows bright."""
    x = rng.integers(0, 80, (len(labels), size, size)).astype(np.uint8)
    third = size // 3
    for c in range(len(CLASSES)):
        x[labels == c, c * third:(c + 1) * third] += 150
    return x


def own_arrays(*, n_train: int = 150, n_test: int = 60, features: bool = False, flip: float = 0.3,
               seed: int = 0) -> dict[str, Any]:
    """x_train, y_train (noisy: `flip` of them moved to the next class), x_test, y_test, y_train_true."""
    rng = np.random.default_rng(seed)
    y_true = np.arange(n_train) % len(CLASSES)
    y_test = np.arange(n_test) % len(CLASSES)
    flipped = rng.random(n_train) < flip
    y_train = np.where(flipped, (y_true + 1) % len(CLASSES), y_true)
    x_train, x_test = images(y_true, rng), images(y_test, rng)
    if features:  # 16-dim vectors: the image's row means and column means
        x_train, x_test = (np.concatenate([x.mean(2), x.mean(1)], 1).astype(np.float32) for x in (x_train, x_test))
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test, "y_train_true": y_true}


def write_npz(path: Path, *, drop: tuple[str, ...] = ("y_train_true",), **arrays: Any) -> str:
    """An npz at `path` of `own_arrays()` updated by `arrays`, without the keys in `drop`; its name `npz:PATH`."""
    content = {k: v for k, v in {**own_arrays(), **arrays}.items() if k not in drop}
    np.savez(path, **content)
    return f"npz:{path}"


def write_folder(root: Path, *, per_class: int = 20, trusted: int = 0, sizes: tuple[int, ...] = (8,)) -> str:
    """An ImageFolder tree root/{train,test[,trusted]}/<class>/<n>.png of greyscale PNGs; `sizes` cycled per image
    (several: mixed sizes); its name `folder:PATH`."""
    from PIL import Image

    rng = np.random.default_rng(1)
    parts = {"train": per_class, "test": per_class // 2, **({"trusted": trusted} if trusted else {})}
    n = 0
    for part, count in parts.items():
        for c, name in enumerate(CLASSES):
            folder = root / part / name
            folder.mkdir(parents=True)
            for i in range(count):
                size = sizes[n % len(sizes)]
                n += 1
                Image.fromarray(images(np.array([c]), rng, size)[0], mode="L").save(folder / f"{i}.png")
    return f"folder:{root}"
