"""What the LIME benchmarks share: the tabular task, a synthetic picture and a cheap image model.

Run the benchmarks as scripts (``python benchmarks/lime_speed.py``), which puts this folder on
``sys.path``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

os.environ.setdefault("SEETHROUGH_PROGRESS", "0")
os.environ.setdefault("TQDM_DISABLE", "1")  # lime's per-sample image loop draws a bar


def breast_cancer_forest() -> tuple[np.ndarray, np.ndarray, Any]:
    """(X_train, X_test, forest): breast_cancer split with seed 0, a default random forest."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, random_state=0)
    return X_train, X_test, RandomForestClassifier(random_state=0).fit(X_train, y_train)


def synthetic_image(size: int = 224, seed: int = 0) -> np.ndarray:
    """An RGB picture in [0, 1] with smooth regions and texture, (size, size, 3) float64."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.stack(
        [
            0.5 + 0.45 * np.sin(11 * xx + 3 * yy + seed),
            0.5 + 0.45 * np.cos(9 * yy - 2 * xx),
            0.5 + 0.45 * np.sin(7 * xx * yy + 1),
        ],
        axis=-1,
    )
    return np.clip(image + 0.1 * rng.random(image.shape), 0, 1)


def photograph(size: int = 224) -> np.ndarray:
    """scikit-image's bundled astronaut photograph, resized to (size, size, 3) float64 in [0, 1].

    At 224 x 224, lime's quickshift settings cut it into about 30 superpixels.
    """
    from skimage import data, transform

    return np.asarray(transform.resize(data.astronaut(), (size, size), anti_aliasing=True))


def region_model(images: Any) -> np.ndarray:
    """Two class scores from the red channel's mean in a box of the picture: nearly free."""
    batch = np.asarray(images)
    height, width = batch.shape[1:3]
    box = batch[:, height // 4 : 5 * height // 8, 3 * width // 8 : 5 * width // 8, 0]
    red = box.astype(np.float64).mean(axis=(1, 2)) / (255.0 if batch.dtype == np.uint8 else 1.0)
    p = 1 / (1 + np.exp(-10 * (red - 0.5)))
    return np.column_stack([1 - p, p])
