"""Data for the MMD-critic benchmarks: digits, and larger sets of the same digits.

USPS (7291 x 256) and MNIST (60000 x 784) cannot be downloaded here, so data of their shapes
are made from scikit-learn's 8 x 8 digits: each image is upsampled (bilinear) to 16 x 16 or
28 x 28, shifted by a random whole number of pixels (up to 1 or 2) and given a little Gaussian
noise, then scaled to [-1, 1] like USPS. The labels are the source digit's. "Random" data of
the same shapes are standard normal. Everything is seeded.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import zoom
from sklearn.datasets import load_digits


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: 1797 x 64 pixel values 0..16, labels 0..9."""
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float64), y


def upsampled_digits(
    n: int, side: int, *, max_shift: int, noise: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` jittered digits as ``side x side`` images in [-1, 1] (see the module docstring)."""
    X, y = digits()
    base = zoom(X.reshape(-1, 8, 8) / 16.0, (1, side / 8, side / 8), order=1)
    rng = np.random.default_rng(seed)
    source = rng.integers(0, len(X), size=n)
    images = np.empty((n, side, side))
    shifts = rng.integers(-max_shift, max_shift + 1, size=(n, 2))
    # Apply each of the few distinct shifts to all images that draw it at once.
    for dy, dx in np.unique(shifts, axis=0):
        rows = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
        images[rows] = np.roll(base[source[rows]], (dy, dx), axis=(1, 2))
    images += noise * rng.standard_normal(images.shape)
    return (2.0 * np.clip(images, 0.0, 1.0) - 1.0).reshape(n, -1), y[source]


def usps_shaped(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """7291 x 256 (16 x 16) jittered digits in [-1, 1]."""
    return upsampled_digits(7291, 16, max_shift=1, seed=seed)


def mnist_shaped(n: int = 60000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """60000 x 784 (28 x 28) jittered digits in [-1, 1]."""
    return upsampled_digits(n, 28, max_shift=2, seed=seed)


def gaussian(n: int, d: int, seed: int = 0) -> np.ndarray:
    """``n`` standard-normal points in ``d`` dimensions."""
    return np.random.default_rng(seed).standard_normal((n, d))
