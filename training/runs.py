"""Run folders: every command writes its results into one, all or nothing.

A run is prepared in a hidden sibling folder and moved into place only when it finished, so an
interrupted or failed run leaves the previous result (or nothing) at ``out``, never a mix.
Each run folder holds ``run.json``: the resolved configuration, the seed, the exact command, the
package versions and the wall time, beside whatever the command wrote.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

RUN_FILE = "run.json"
_PACKAGES = (
    "seethrough",
    "torch",
    "torchvision",
    "pytorch-lightning",
    "numpy",
    "scipy",
    "scikit-learn",
    "scikit-image",
    "lime",
)


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages whose behaviour shapes seethrough's numbers."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def to_jsonable(value: Any) -> Any:
    """Turn NumPy/torch scalars and arrays, paths and tuples into plain JSON values.

    Non-finite floats become ``None`` so that every JSON file seethrough writes is strict JSON.
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if hasattr(value, "detach") and hasattr(value, "tolist"):  # a torch tensor
        return to_jsonable(value.detach().cpu().tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps_json(obj: Any) -> str:
    """Strict, stable JSON text (sorted keys are left to the caller's dict order)."""
    return json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n"


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as strict JSON to ``path`` atomically."""
    return atomic_write_text(path, dumps_json(obj))


class RunFolder:
    """A folder that receives one command's outputs and appears at ``out`` only when complete.

    Use it as a context manager::

        with RunFolder(out, config=vars(args), seed=args.seed) as run:
            run.write_json("results.json", results)
            save_png(image, run.path("grid.png"))

    Inside the block every path points into a staging folder next to ``out``. On a clean exit
    ``run.json`` is added and the staging folder replaces ``out``; on an exception (or Ctrl-C)
    the staging folder is deleted and ``out`` is left as it was.
    """

    def __init__(
        self,
        out: str | Path,
        *,
        config: Mapping[str, Any] | None = None,
        seed: int | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.out = Path(out)
        self.config = dict(config or {})
        self.seed = seed
        self.command = list(sys.argv) if command is None else list(command)
        self.extra: dict[str, Any] = {}
        self._staging: Path | None = None
        self._started = 0.0

    @property
    def root(self) -> Path:
        """The folder being written now (the staging folder while the run is open)."""
        if self._staging is None:
            raise RuntimeError("RunFolder is not open; use it as a context manager")
        return self._staging

    def path(self, name: str | Path) -> Path:
        """Path of ``name`` inside the run, creating its parent folders."""
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_json(self, name: str, obj: Any) -> Path:
        """Write ``obj`` as strict JSON into the run."""
        return atomic_write_json(self.path(name), obj)

    def write_text(self, name: str, text: str) -> Path:
        """Write a text file into the run."""
        return atomic_write_text(self.path(name), text)

    def describe(self, title: str, summary: str, preview: str | None = None) -> None:
        """What a runs index shows of this run (kept in ``run.json``): a title, a one-line
        summary, and ``preview``, the picture inside the run that stands for it."""
        self.extra["title"] = title
        self.extra["summary"] = summary
        if preview is not None:
            self.extra["preview"] = preview

    def __enter__(self) -> RunFolder:
        _check_replaceable(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._staging = Path(
            tempfile.mkdtemp(prefix=f".{self.out.name}.staging-", dir=self.out.parent)
        )
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        staging = self._staging
        self._staging = None
        if staging is None:
            return
        if exc_type is not None:
            shutil.rmtree(staging, ignore_errors=True)
            return
        record = {
            "command": display_command(self.command),
            "argv": self.command,
            "cwd": os.getcwd(),
            "seed": self.seed,
            "config": self.config,
            "versions": package_versions(),
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_time_s": round(time.perf_counter() - self._started, 3),
            **self.extra,
        }
        atomic_write_json(staging / RUN_FILE, record)
        _replace_folder(staging, self.out)


def display_command(argv: list[str]) -> str:
    """The command a person would type to repeat a run, as one shell-quoted line.

    ``python -m surrogate lime ...`` records ``argv[0]`` as the path of ``surrogate/__main__.py``
    and a console script records its full path; both are shown the way they are typed.
    """
    if not argv:
        return ""
    first = Path(argv[0])
    if first.name == "__main__.py":
        return shlex.join(["python", "-m", first.parent.name, *argv[1:]])
    if first.is_absolute() and first.name.startswith("seethrough-"):
        return shlex.join([first.name, *argv[1:]])
    return shlex.join(argv)


def _check_replaceable(out: Path) -> None:
    """Refuse to overwrite anything but an earlier run (or an empty folder) at ``out``."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise FileExistsError(f"output path {out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / RUN_FILE).is_file():
        raise FileExistsError(
            f"output folder {out} already holds files that are not a seethrough run "
            f"(no {RUN_FILE}); choose another --out or empty it"
        )


def _replace_folder(new: Path, out: Path) -> None:
    """Move ``new`` to ``out``; an existing ``out`` is moved aside first and then deleted."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(out, old)
    os.replace(new, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_run(folder: str | Path) -> dict[str, Any]:
    """The ``run.json`` record of a finished run folder."""
    path = Path(folder) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a finished seethrough run (no {RUN_FILE})")
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result
