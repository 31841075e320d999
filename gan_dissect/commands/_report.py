"""Pages and pictures of the ablate, actmax and invert commands (``intervention.html``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.images import make_grid, png_bytes, save_figure, to_uint8_images
from training.pages import write_page
from training.runs import atomic_write_bytes

SCALE = 3
"""Pictures of 64 px are shown three times their size: small objects such as lamps (a few
pixels wide) are hard to judge at 1:1."""


class Page:
    """Sections of text, tables and pictures, rendered with ``intervention.html``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.headline: list[dict[str, Any]] = []
        self.sections: list[dict[str, Any]] = []

    def add_headline(self, label: str, value: Any, note: str = "") -> None:
        """One row of the table at the top: a figure and what it means."""
        self.headline.append({"label": label, "value": value, "note": note})

    def section(self, heading: str, anchor: str) -> list[dict[str, Any]]:
        """Start a section; returns its list of blocks (append with the helpers below)."""
        blocks: list[dict[str, Any]] = []
        self.sections.append({"heading": heading, "anchor": anchor, "blocks": blocks})
        return blocks

    def write(self, **context: Any) -> Path:
        return write_page(
            self.folder / "index.html",
            "intervention.html",
            packages=("gan_dissect",),
            headline=self.headline,
            sections=self.sections,
            **context,
        )


def text(words: str, *, muted: bool = False) -> dict[str, Any]:
    return {"kind": "text", "text": words, "muted": muted}


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()
) -> dict[str, Any]:
    """A sortable table; columns ``numeric`` are right-aligned numbers (3 digits)."""
    return {
        "kind": "table",
        "headers": list(headers),
        "rows": [list(r) for r in rows],
        "numeric": list(numeric),
    }


def figure(src: str, *, label: str = "", caption: str = "", width: int = 0) -> dict[str, Any]:
    return {"kind": "figure", "src": src, "label": label, "caption": caption, "width": width}


def save_row(
    folder: Path, name: str, images: Any, *, nrow: int = 8, scale: int = SCALE
) -> tuple[str, int]:
    """Tile ``images`` (N, 3, H, W) in [-1, 1] (or uint8 (N, H, W, 3)) into ``name`` at
    ``scale`` x; returns the relative path and the picture's width in pixels."""
    pictures = (
        images
        if isinstance(images, np.ndarray) and images.dtype == np.uint8
        else (to_uint8_images(images, value_range=(-1.0, 1.0)))
    )
    grid = make_grid(pictures, nrow=nrow, pad=2 * scale, scale=scale)
    atomic_write_bytes(folder / name, png_bytes(grid))
    return name, int(grid.shape[1])


def difference_pictures(before: torch.Tensor, after: torch.Tensor, gain: float = 2.0) -> np.ndarray:
    """uint8 (N, H, W, 3): the change at every pixel, |after - before| averaged over the
    colour channels and amplified ``gain`` times, white on black (black: unchanged)."""
    change = (after.float() - before.float()).abs().mean(dim=1).clamp(max=2.0 / gain)
    grey = (change * gain / 2.0 * 255.0).round().to(torch.uint8).cpu().numpy()
    return np.repeat(grey[..., None], 3, axis=-1)


def line_chart(
    path: Path,
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    reference: float | None = None,
    reference_label: str = "",
) -> None:
    """A small line chart of several series against ``x``, with an optional horizontal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure_, axis = plt.subplots(figsize=(5.6, 3.4))
    for name, values in series.items():
        if name.startswith("random"):
            axis.plot(list(x), list(values), label=name, color="#999999", linewidth=1, alpha=0.8)
        else:
            axis.plot(list(x), list(values), label=name, linewidth=2, marker="o")
    if reference is not None:
        axis.axhline(reference, color="#c8413b", linestyle="--", linewidth=1, label=reference_label)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    handles, labels = axis.get_legend_handles_labels()
    shown: dict[str, Any] = {}
    for handle, label in zip(handles, labels, strict=True):
        key = "random units" if label.startswith("random") else label
        shown.setdefault(key, handle)
    axis.legend(shown.values(), shown.keys(), fontsize=8)
    save_figure(figure_, path)


def percent(value: float | None, digits: int = 1) -> str:
    """0.734 -> '73.4 %'; None -> '-'."""
    if value is None or not np.isfinite(value):
        return "-"
    return f"{100 * value:.{digits}f} %"
