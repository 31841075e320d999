"""Progress bars for long work, silenced by ``SEETHROUGH_PROGRESS=0`` (tests, logs)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    """Whether progress bars are shown (on unless ``SEETHROUGH_PROGRESS`` is 0/false/no)."""
    return os.environ.get("SEETHROUGH_PROGRESS", "1").strip().lower() not in {"0", "false", "no"}


def progress(
    iterable: Iterable[T], *, desc: str, total: int | None = None, **kwargs: Any
) -> Iterator[T]:
    """Iterate ``iterable`` behind a tqdm bar on stderr labelled ``desc``."""
    yield from tqdm(
        iterable,
        desc=desc,
        total=total,
        disable=not progress_enabled(),
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5,
        **kwargs,
    )
