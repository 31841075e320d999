"""HTML pages: one Jinja2 base that every report extends, autoescaped, with no network needs.

Reports render templates from their own package's ``templates/`` folder, each extending
``base.html`` from here; every value is HTML-escaped unless a template marks it ``|safe``.
Pages reference their pictures by relative paths inside the run folder, so a run folder can
be copied or zipped and still opens.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import jinja2

from training.runs import RUN_FILE, RunFolder, atomic_write_text, display_command, to_jsonable


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
