"""Images to pixels and pixels to PNG files: the one place that knows the value conventions.

Images inside seethrough are float tensors or arrays shaped (N, C, H, W) in [-1, 1] (generator
output) or [0, 1]; pictures on disk are 8-bit RGB PNGs.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from training.errors import InputError
from training.runs import atomic_write_bytes


def to_uint8_images(images: Any, *, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Convert images to a uint8 array shaped (N, H, W, 3).

    Accepts (N, C, H, W) or (N, H, W, C) with C in {1, 3}, (N, H, W) grey, a single image
    without the batch axis, torch tensors or NumPy arrays. Floats are mapped from
    ``value_range``; by default [-1, 1] when any value is negative, else [0, 1].
    """
    array = np.asarray(images.detach().cpu().numpy() if hasattr(images, "detach") else images)
    if array.ndim == 2:  # one grey image
        array = array[None, ..., None]
    elif array.ndim == 3:
        if array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):  # one (C, H, W) image
            array = array.transpose(1, 2, 0)[None]
        elif array.shape[-1] in (1, 3):  # one (H, W, C) image
            array = array[None]
        else:  # a batch of grey images
            array = array[..., None]
    elif array.ndim == 4 and array.shape[1] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(0, 2, 3, 1)
    if array.ndim != 4:
        raise InputError(f"images must have 2 to 4 axes, got shape {array.shape}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if array.shape[-1] != 3:
        raise InputError(f"images must have 1 or 3 channels, got shape {array.shape}")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise InputError("images contain NaN or infinite values")
    low, high = value_range or ((-1.0, 1.0) if array.min() < 0 else (0.0, 1.0))
    scaled = (array - low) / (high - low)
    return np.clip(np.round(scaled * 255.0), 0, 255).astype(np.uint8)


def make_grid(
    images: Any,
    *,
    nrow: int = 8,
    pad: int = 2,
    scale: int = 1,
    background: tuple[int, int, int] = (255, 255, 255),
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Tile images into one uint8 (H, W, 3) picture, ``nrow`` per row, each upscaled ``scale``x.

    Upscaling is nearest-neighbour, so small images (8x8 digits, 32px scenes) stay crisp.
    """
    tiles = to_uint8_images(images, value_range=value_range)
    if len(tiles) == 0:
        raise InputError("make_grid needs at least one image")
    if scale > 1:
        tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
    n, h, w, _ = tiles.shape
    cols = max(1, min(nrow, n))
    rows = -(-n // cols)
    grid = np.empty((rows * h + (rows + 1) * pad, cols * w + (cols + 1) * pad, 3), np.uint8)
    grid[:] = np.asarray(background, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = tile
    return grid


def png_bytes(picture: np.ndarray) -> bytes:
    """Encode a uint8 (H, W, 3) or (H, W) array as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(picture, np.uint8)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def save_png(picture: Any, path: str | Path) -> Path:
    """Write one image (any layout :func:`to_uint8_images` accepts) to ``path`` as PNG."""
    array = np.asarray(picture)
    if not (array.dtype == np.uint8 and array.ndim == 3 and array.shape[-1] == 3):
        array = to_uint8_images(picture)[0]
    return atomic_write_bytes(path, png_bytes(array))


def save_grid(images: Any, path: str | Path, **grid_options: Any) -> Path:
    """Tile ``images`` with :func:`make_grid` and write the grid to ``path`` as PNG."""
    return atomic_write_bytes(path, png_bytes(make_grid(images, **grid_options)))


def save_figure(figure: Any, path: str | Path, *, dpi: int = 110) -> Path:
    """Write a matplotlib figure to ``path`` as PNG and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


def overlay_mask(
    images: Any,
    masks: Any,
    *,
    color: Sequence[int] = (255, 40, 40),
    alpha: float = 0.45,
    outline: bool = False,
) -> np.ndarray:
    """Tint (or outline) pixels where ``masks`` (N, H, W) is true; gives uint8 (N, H, W, 3)."""
    pictures = to_uint8_images(images).astype(np.float64)
    mask = np.asarray(masks.detach().cpu().numpy() if hasattr(masks, "detach") else masks)
    if mask.ndim == 2:
        mask = mask[None]
    mask = mask.astype(bool)
    if mask.shape != pictures.shape[:3]:
        raise InputError(f"mask shape {mask.shape} does not match images {pictures.shape[:3]}")
    if outline:
        inner = mask.copy()
        inner[:, 1:, :] &= mask[:, :-1, :]
        inner[:, :-1, :] &= mask[:, 1:, :]
        inner[:, :, 1:] &= mask[:, :, :-1]
        inner[:, :, :-1] &= mask[:, :, 1:]
        mask = mask & ~inner
        alpha = 1.0
    tint = np.asarray(color, np.float64)
    pictures[mask] = (1 - alpha) * pictures[mask] + alpha * tint
    return np.clip(np.round(pictures), 0, 255).astype(np.uint8)
