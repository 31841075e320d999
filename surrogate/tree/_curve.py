"""Fidelity against depth: the same surrogate refitted at each depth, measured on held-out rows."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from sklearn.base import clone

from surrogate.tree._estimator import TreeSurrogate
from training.blackbox import as_black_box
from training.progress import progress


def fit_each_depth(
    surrogate: TreeSurrogate,
    X: Any,
    black_box: Any,
    depths: Iterable[int],
    *,
    y: Any = None,
    label: str = "surrogate",
) -> dict[int, TreeSurrogate]:
    """A fitted copy of ``surrogate`` at each depth, keyed by depth.

    Every row of ``X`` is fitted (``validation_fraction=0``): the copies are meant to be
    measured on a separate held-out set. Each copy records its fitting time in
    ``fit_seconds_``.
    """
    box = as_black_box(black_box)
    fitted = {}
    for depth in progress(list(depths), desc=f"fitting each depth ({label})"):
        started = time.perf_counter()
        copy = clone(surrogate).set_params(max_depth=int(depth), validation_fraction=0.0)
        fitted[int(depth)] = copy.fit(X, box, y)
        copy.fit_seconds_ = time.perf_counter() - started
    return fitted


def curve_rows(
    fitted: Mapping[int, TreeSurrogate], X_test: Any, black_box: Any, y_test: Any = None
) -> list[dict[str, Any]]:
    """One record per depth: ``depth``, ``fidelity`` (agreement with the black box on
    ``X_test``, R^2 for scores), ``accuracy`` (on ``y_test``, or None), ``n_leaves`` and
    ``fit_seconds``."""
    box = as_black_box(black_box)
    return [
        {
            "depth": depth,
            "fidelity": tree.score(X_test, box),
            "accuracy": None if y_test is None else tree.accuracy_on(X_test, y_test),
            "n_leaves": tree.get_n_leaves(),
            "fit_seconds": getattr(tree, "fit_seconds_", None),
        }
        for depth, tree in sorted(fitted.items())
    ]


def fidelity_curve(
    surrogate: TreeSurrogate,
    X: Any,
    black_box: Any,
    X_test: Any,
    *,
    depths: Iterable[int],
    y: Any = None,
    y_test: Any = None,
) -> list[dict[str, Any]]:
    """Refit ``surrogate`` at each depth on ``X`` and measure it on ``X_test``
    (see :func:`fit_each_depth` and :func:`curve_rows`)."""
    box = as_black_box(black_box)
    return curve_rows(fit_each_depth(surrogate, X, box, depths, y=y), X_test, box, y_test)
