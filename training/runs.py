"""Run folders: every command writes its results into one, all or nothing.

A run is prepared in a hidden sibling folder and moved into place only when it finished, so an
interrupted or failed run leaves the previous result (or nothing) at ``out``, never a mix.
Each run folder holds ``run.json``: the resolved configuration, the seed, the exact command, the
package versions, the wall time and the list of files the run wrote, beside those files.
A run never deletes what it did not write: see :class:`RunFolder` for ``--overwrite``, the lock
that keeps two runs off one folder, and the clean-up of interrupted runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as _dt
import errno
import fcntl
import hashlib
import json
import math
import os
import platform
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from training.errors import SeethroughError
from training.threads import thread_settings

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


class RunFolderBusy(SeethroughError, RuntimeError):
    """Another run is writing the same output folder right now."""


class Terminated(SystemExit):
    """A run was stopped by SIGTERM; its staging folder has been removed."""


class RunFolder:
    """A folder that receives one command's outputs and appears at ``out`` only when complete.

    Use it as a context manager::

        with RunFolder(out, config=vars(args), seed=args.seed) as run:
            run.write_json("results.json", results)
            save_png(image, run.path("grid.png"))

    Inside the block every path points into a hidden staging folder next to ``out``. On a clean
    exit ``run.json`` (with a list of the files the run wrote) is added and the staging folder
    takes the place of ``out`` in one atomic exchange; on an exception, Ctrl-C or SIGTERM the
    staging folder is deleted and ``out`` is left as it was.

    A run never destroys what it did not create: an existing ``out`` that holds anything is
    refused unless ``overwrite`` is true, and even then it is replaced only when it is an
    earlier run whose files are all the ones that run wrote (a file added or edited since is
    named in the refusal). A lock file beside ``out`` makes a second run on the same ``out``
    fail at once instead of racing the first; staging folders left by a killed run are removed
    by the next run on that ``out``.
    """

    def __init__(
        self,
        out: str | Path,
        *,
        config: Mapping[str, Any] | None = None,
        seed: int | None = None,
        command: list[str] | None = None,
        overwrite: bool = False,
    ) -> None:
        self.out = Path(os.path.abspath(out))  # "--out ." names a folder too
        self.config = dict(config or {})
        self.seed = seed
        self.command = list(sys.argv) if command is None else list(command)
        self.overwrite = overwrite
        self.extra: dict[str, Any] = {}
        self._staging: Path | None = None
        self._lock: _OutLock | None = None
        self._previous_sigterm: Any = None
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
        if self.out.is_symlink() or (self.out.exists() and not self.out.is_dir()):
            raise FileExistsError(
                f"output path {self.out} exists and is not a folder; choose another --out"
            )
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _OutLock.acquire(self.out)
        try:
            remove_stale_staging(self.out)
            check_replaceable(self.out, overwrite=self.overwrite)
            self._staging = Path(
                tempfile.mkdtemp(
                    prefix=f"{_staging_prefix(self.out)}{os.getpid()}-", dir=self.out.parent
                )
            )
            self._previous_sigterm = _raise_on_sigterm()
        except BaseException:
            self._release()
            raise
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
        # a SIGTERM now waits until the folder is in place or gone, then acts as it would have
        blocked = _block_sigterm()
        try:
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
                "threads": thread_settings(),
                "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "wall_time_s": round(time.perf_counter() - self._started, 3),
                **self.extra,
                "files": file_digests(staging),
            }
            atomic_write_json(staging / RUN_FILE, record)
            try:  # files may have been added to out while the run was working
                check_replaceable(self.out, overwrite=self.overwrite)
            except FileExistsError as err:
                kept = self.out.with_name(f"{self.out.name}.new-{os.getpid()}")
                os.replace(staging, kept)
                raise FileExistsError(f"{err}; this run's results are in {kept}") from None
            _exchange_into_place(staging, self.out)
        finally:
            self._release()
            _unblock_sigterm(blocked)

    def _release(self) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


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


def file_digests(folder: str | Path) -> dict[str, str]:
    """SHA-256 of every file inside ``folder`` (``run.json`` aside), by path relative to it.

    ``run.json`` keeps this list so that a later ``--overwrite`` can tell the files a run wrote
    from files added or edited since, which it never deletes.
    """
    folder = Path(folder)
    digests = {}
    for parent, folders, files in os.walk(folder):  # symlinked folders are listed, not entered
        for name in files + [f for f in folders if (Path(parent) / f).is_symlink()]:
            path = Path(parent) / name
            relative = path.relative_to(folder).as_posix()
            if relative != RUN_FILE:
                digests[relative] = (
                    "symlink"
                    if path.is_symlink()
                    else hashlib.sha256(path.read_bytes()).hexdigest()
                )
    return dict(sorted(digests.items()))


def check_replaceable(out: str | Path, *, overwrite: bool = False) -> None:
    """Raise :class:`FileExistsError` unless a run may write ``out``.

    A missing or empty folder may always be written. An earlier run may be replaced only with
    ``overwrite`` and only when every file in it is one that run wrote, unchanged; anything else
    (a folder of other files, a file added to or edited in a run) is refused with the files named.
    """
    out = Path(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise FileExistsError(f"output path {out} exists and is not a folder; choose another --out")
    if not out.is_dir() or not any(out.iterdir()):
        return
    record_path = out / RUN_FILE
    if not record_path.is_file():
        raise FileExistsError(
            f"output folder {out} already holds files that are not a seethrough run (no "
            f"{RUN_FILE}: {_few_names(p.name for p in sorted(out.iterdir()))}); choose another "
            "--out or empty it"
        )
    if not overwrite:
        raise FileExistsError(
            f"output folder {out} already holds a finished run; pass --overwrite to replace it "
            "or choose another --out"
        )
    try:
        written = json.loads(record_path.read_text(encoding="utf-8")).get("files")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        written = None
    if not isinstance(written, dict):
        raise FileExistsError(
            f"output folder {out} holds a run whose {RUN_FILE} does not list its files (an older "
            "seethrough wrote it), so --overwrite cannot tell them from yours; delete it yourself "
            "or choose another --out"
        )
    found = file_digests(out)
    foreign = sorted(name for name, digest in found.items() if written.get(name) != digest)
    if foreign:
        raise FileExistsError(
            f"--overwrite refused: {out} holds files the earlier run did not write or that were "
            f"changed since ({_few_names(foreign)}); move them away or choose another --out"
        )


def remove_stale_staging(out: str | Path) -> list[Path]:
    """Delete the staging folders of runs on ``out`` whose process is gone; returns them."""
    out = Path(out)
    prefix = _staging_prefix(out)
    removed: list[Path] = []
    if not out.parent.is_dir():
        return removed
    for path in out.parent.iterdir():
        if not path.name.startswith(prefix):
            continue
        pid = path.name[len(prefix) :].partition("-")[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _staging_prefix(out: Path) -> str:
    return f".{out.name}.staging-"


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process holds the lock, so no folder of its own is in use
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _few_names(names: Any, limit: int = 5) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


class _OutLock:
    """An exclusive ``flock`` on ``.NAME.lock`` beside ``out``, held for a whole run.

    The kernel releases it when the process dies, however it dies, so a killed run never
    blocks the next one. The file is removed on release; whoever locked a file that was
    removed meanwhile tries again on the new one.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def acquire(cls, out: Path) -> _OutLock:
        path = out.with_name(f".{out.name}.lock")
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise RunFolderBusy(
                    f"another run (process {holder}) is writing {out} now; wait for it to "
                    "finish or choose another --out"
                ) from None
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return cls(path, fd)
            os.close(fd)

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self.fd)


def _raise_on_sigterm() -> Any:
    """Turn SIGTERM into :class:`Terminated` while a run is open, so that it cleans up.

    Only in the main thread and only over the default action (which would leave the staging
    folder behind); returns the handler to put back, or None when none was installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    return signal.SIG_DFL


def _block_sigterm() -> bool:
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    return True


def _unblock_sigterm(blocked: bool) -> None:
    if blocked:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange_into_place(new: Path, out: Path) -> None:
    """Put the folder ``new`` at ``out``; an earlier ``out`` is swapped out and deleted.

    On Linux the swap is one ``renameat2(RENAME_EXCHANGE)``, so a reader sees the old folder or
    the new one, never none; elsewhere the old folder is moved aside first.
    """
    if not out.exists():
        os.replace(new, out)
        return
    if not _rename_exchange(new, out):
        aside = new.with_name(f"{new.name}-old")
        os.replace(out, aside)
        os.replace(new, out)
        new = aside
    shutil.rmtree(new, ignore_errors=True)  # it holds the earlier run now


def _rename_exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the system or file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(error, os.strerror(error), str(b))


def read_run(folder: str | Path) -> dict[str, Any]:
    """The ``run.json`` record of a finished run folder."""
    path = Path(folder) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a finished seethrough run (no {RUN_FILE})")
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result
