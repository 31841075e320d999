"""HTML pages: one Jinja2 base that every report extends, autoescaped, with no network needs.

Reports render templates from their own package's ``templates/`` folder, each extending
``base.html`` from here; every value is HTML-escaped unless a template marks it ``|safe``.
Pages reference their pictures by relative paths inside the run folder, so a run folder can
be copied or zipped and still opens.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import jinja2
import numpy as np

from training.images import make_grid, png_bytes, save_figure, to_uint8_images
from training.runs import (
    RUN_FILE,
    RunFolder,
    atomic_write_bytes,
    atomic_write_text,
    display_command,
    to_jsonable,
)


@cache
def page_environment(packages: tuple[str, ...] = ()) -> jinja2.Environment:
    """A Jinja2 environment over the ``templates/`` folders of ``packages`` and of ``training``.

    Autoescaping is on for every template, whatever its file name.
    """
    loaders = [jinja2.PackageLoader(name, "templates") for name in (*packages, "training")]
    environment = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["fmt"] = format_number
    environment.filters["tojson_attr"] = lambda value: json.dumps(to_jsonable(value))
    return environment


def format_number(value: Any, digits: int = 3) -> str:
    """Numbers for people: ``digits`` significant digits, integers as they are, None as "-"."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    try:
        return f"{float(value):.{digits}g}"
    except (TypeError, ValueError):
        return str(value)


def render_page(template: str, *, packages: Iterable[str] = (), **context: Any) -> str:
    """Render ``template`` (found in ``packages``' templates, then in training's) to HTML."""
    return page_environment(tuple(packages)).get_template(template).render(**context)


def write_page(
    path: str | Path, template: str, *, packages: Iterable[str] = (), **context: Any
) -> Path:
    """Render ``template`` with ``context`` and write it to ``path`` atomically."""
    return atomic_write_text(path, render_page(template, packages=packages, **context))


def write_report(
    run: RunFolder,
    template: str,
    *,
    title: str,
    summary: str,
    preview: str | None = None,
    packages: Iterable[str] = (),
    **context: Any,
) -> Path:
    """Write a run's ``index.html`` and record what the runs index shows of it.

    ``title`` and the one-line ``summary`` go to ``run.json`` (and head the page, the summary as
    its subtitle unless ``subtitle`` is given); ``preview`` names the picture inside the run that
    stands for it in the index. The page links back to the index one folder up and ends with the
    command that made it.
    """
    run.describe(title, summary, preview)
    context.setdefault("subtitle", summary)
    context.setdefault("home", "../index.html")
    context.setdefault("command", display_command(run.command))
    return write_page(run.path("index.html"), template, packages=packages, title=title, **context)


def run_summary(folder: str | Path) -> dict[str, Any]:
    """What an index needs to know of a finished run: title, summary, command, page, preview.

    ``preview`` is the picture a run names in ``run.json`` (key ``preview``, a path inside the
    run folder) when that file exists; the index shows it as the run's thumbnail.
    """
    folder = Path(folder)
    record = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    preview = record.get("preview")
    inside = (
        isinstance(preview, str)
        and not PurePosixPath(preview).is_absolute()
        and ".." not in PurePosixPath(preview).parts
    )
    return {
        "name": folder.name,
        "title": record.get("title") or folder.name,
        "summary": record.get("summary", ""),
        "command": record.get("command", ""),
        "wall_time_s": record.get("wall_time_s"),
        "finished": record.get("finished", ""),
        "page": relative_link(folder.name, "index.html")
        if (folder / "index.html").is_file()
        else None,
        "preview": relative_link(folder.name, preview)
        if inside and preview and (folder / preview).is_file()
        else None,
    }


def relative_link(*parts: str) -> str:
    """A relative URL to ``parts`` joined as a path, whatever their characters.

    Each part is percent-encoded and the link starts with ``./``, so a folder named
    ``javascript:alert(1)`` or ``a#b`` is a path in this folder, never a scheme or a fragment.
    """
    return "./" + "/".join(quote(part, safe="/") for part in parts)


def write_index(root: str | Path, *, title: str = "seethrough runs") -> Path:
    """Write ``root/index.html`` linking every finished run folder directly below ``root``.

    Runs are listed in the order they finished (the order of the pipeline that made them).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    runs = sorted(
        (
            run_summary(folder)
            for folder in root.iterdir()
            if folder.is_dir() and not folder.name.startswith(".") and (folder / RUN_FILE).is_file()
        ),
        key=lambda run: (run["finished"], run["name"]),
    )
    total = sum(run["wall_time_s"] or 0.0 for run in runs)
    return write_page(
        root / "index.html", "runs_index.html", title=title, runs=runs, total_time_s=total
    )


def escape(text: Any) -> str:
    """HTML-escape ``text`` for the rare string built outside a template."""
    return html.escape(str(text), quote=True)


# --- pages of sections: headline, text, tables and pictures ----------------------------------

SCALE = 3
"""Pictures of 64 px are shown three times their size: small objects such as lamps (a few
pixels wide) are hard to judge at 1:1."""


class Page:
    """A page built from a headline table and sections of text, tables and pictures (made with
    :func:`text`, :func:`table`, :func:`figure`), whose pictures are saved into ``folder``.

    Everything on it is computed before it is built; :meth:`write` renders it with a template
    that reads ``headline`` and ``sections`` (``intervention.html`` of gan_dissect) through
    :func:`write_report`, the one page writer of every command.
    """

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

    def write(
        self,
        run: RunFolder,
        template: str,
        *,
        title: str,
        summary: str,
        preview: str | None = None,
        packages: Iterable[str] = (),
        **context: Any,
    ) -> Path:
        """Write the run's ``index.html`` with :func:`write_report` (which also records
        ``title``, ``summary`` and ``preview`` for the runs index)."""
        return write_report(
            run,
            template,
            title=title,
            summary=summary,
            preview=preview,
            packages=packages,
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


def difference_pictures(before: Any, after: Any, gain: float = 2.0) -> np.ndarray:
    """uint8 (N, H, W, 3) of torch images (N, 3, H, W): the change at every pixel,
    |after - before| averaged over the colour channels and amplified ``gain`` times, white on
    black (black: unchanged)."""
    import torch

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
