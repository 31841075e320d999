"""What the tabular, image and text explainers share: from neighbourhoods to explanations.

An adapter only knows how to draw an instance's neighbourhood (interpretable rows, their
distances to the instance, and the model inputs they stand for). This module asks the black box
for the scores of many neighbourhoods in few large calls, fits the engine per label, and builds
the explanations. ``explain_instance`` is ``explain_many`` of one instance, so both give the same
numbers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from surrogate.lime._engine import (
    FEATURE_SELECTIONS,
    LimeBase,
    WeightedDesign,
    exponential_kernel,
    report_fit,
)
from surrogate.lime._random import RandomState, check_random_state, instance_rng
from surrogate.lime.explanation import Explanation
from training.blackbox import BlackBox, as_black_box
from training.errors import BlackBoxError, InputError
from training.progress import progress

# Rows of neighbours held in memory at once by explain_many (inputs are made lazily per call),
# and at most MEMORY_BUDGET bytes of them: a wide table's rows are large.
_MAX_ROWS_IN_FLIGHT = 1 << 18


def _default_memory_budget() -> int:
    """An eighth of the machine's memory, at most 2 GiB (at least 256 MiB)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return int(min(max(total // 8, 256 << 20), 2 << 30))


MEMORY_BUDGET = _default_memory_budget()
"""Bytes of neighbours (and of one black-box call's inputs) ``explain_many`` holds at once."""


@dataclass
class Neighbourhood:
    """One instance's neighbours.

    ``data`` (n, d) are the interpretable rows (row 0 is the instance), ``distances`` (n,)
    their distances to it, ``inputs(start, stop)`` the black-box inputs of rows [start, stop),
    ``fields`` what the explanation object needs besides the fitted surrogates, and ``params`` the
    adapter's options worth recording.
    """

    data: np.ndarray
    distances: np.ndarray
    inputs: Callable[[int, int], Any]
    fields: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    explanation_type: type[Explanation] = Explanation

    @property
    def n_rows(self) -> int:
        """Number of neighbours (the instance included)."""
        return int(self.data.shape[0])


class LimeExplainer:
    """Base of the LIME explainers: kernel, feature selection, randomness and the batch loop.

    Subclasses implement ``_neighbourhood(instance, num_samples, rng)``, ``_instance_key`` and
    ``_check_instances``.
    """

    kind = "tabular"
    _default_batch_size = 65536

    def __init__(
        self,
        *,
        kernel_width: float,
        kernel: Callable[[np.ndarray, float], np.ndarray] | None,
        feature_selection: str,
        random_state: RandomState,
        sampler: str = "qmc",
        mode: str = "classification",
        class_names: Sequence[str] | None = None,
        verbose: bool = False,
    ) -> None:
        if feature_selection not in FEATURE_SELECTIONS:
            raise InputError(
                f"feature_selection={feature_selection!r} is not one of "
                f"{', '.join(FEATURE_SELECTIONS)}"
            )
        if mode not in ("classification", "regression"):
            raise InputError(f"mode must be 'classification' or 'regression', got {mode!r}")
        if not kernel_width > 0:
            raise InputError(f"kernel_width must be positive, got {kernel_width}")
        self.kernel_width = float(kernel_width)
        self.kernel = kernel or exponential_kernel
        self.feature_selection = feature_selection
        if sampler not in ("qmc", "random"):
            raise InputError(f"sampler must be 'qmc' or 'random', got {sampler!r}")
        self.random_state = check_random_state(random_state)
        self.sampler = sampler
        self.mode = mode
        self.class_names = list(class_names) if class_names is not None else None
        self.verbose = verbose
        # Mixed into every instance's stream key (a discretizer passed in adds its own state).
        self._stream_key = b""

    def kernel_fn(self, distances: np.ndarray) -> np.ndarray:
        """Kernel weights of an array of distances."""
        return np.asarray(self.kernel(distances, self.kernel_width), dtype=np.float64)

    @property
    def base(self) -> LimeBase:
        """``lime``'s engine object with this explainer's kernel (``explain_instance_with_data``
        on neighbours of your own)."""
        return LimeBase(self.kernel_fn, self.verbose, self.random_state)

    # ---- what adapters provide -----------------------------------------------------------

    def _check_instances(self, instances: Any) -> Any:
        """The instances as a validated sequence, or one clear error."""
        raise NotImplementedError

    def _instance_key(self, instance: Any) -> bytes:
        """Bytes that identify the instance (its random stream is seeded from them)."""
        raise NotImplementedError

    def _neighbourhood(
        self,
        instance: Any,
        num_samples: int,
        rng: np.random.Generator,
        options: Mapping[str, Any],
    ) -> Neighbourhood:
        """The instance's neighbours drawn from ``rng``; ``options`` are the call's extras."""
        raise NotImplementedError

    def inputs_without(self, instance: Any, explanation: Explanation, removed: np.ndarray) -> Any:
        """Black-box inputs of ``instance`` with, per row of ``removed`` (m, d) bool, the
        interpretable features marked true taken away (used by the deletion curve)."""
        raise NotImplementedError

    def as_black_box(self, predict_fn: Any, batch_size: int | None = None) -> BlackBox:
        """``predict_fn`` as the checked black box that this explainer's inputs are given to."""
        if isinstance(predict_fn, BlackBox):
            return predict_fn
        return as_black_box(predict_fn, batch_size=batch_size)

    def _default_batch(self, instances: Sequence[Any]) -> int:
        """Rows per black-box call when the caller gives no ``batch_size``."""
        return self._default_batch_size

    def _bytes_per_neighbour(self, instances: Sequence[Any]) -> int:
        """Bytes one neighbour takes while its neighbourhood is held (0: rows are small)."""
        return 0

    def _concatenate(self, parts: list[Any]) -> Any:
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    # ---- the shared loop -----------------------------------------------------------------

    def _explain(
        self,
        instances: Any,
        predict_fn: Any,
        *,
        labels: Sequence[int] | None,
        top_labels: int | None,
        num_features: int,
        num_samples: int,
        batch_size: int | None,
        options: dict[str, Any],
        model_regressor: Any = None,
    ) -> list[Explanation]:
        if num_samples < 2:
            raise InputError(f"num_samples must be at least 2, got {num_samples}")
        if num_features < 1:
            raise InputError(f"num_features must be at least 1, got {num_features}")
        if top_labels is not None and top_labels < 1:
            raise InputError(f"top_labels must be positive, got {top_labels}")
        checked = self._check_instances(instances)
        rows_per_call = batch_size or self._default_batch(checked)
        black_box = self.as_black_box(predict_fn, rows_per_call)
        explanations: list[Explanation] = []
        groups = _groups(len(checked), num_samples, self._bytes_per_neighbour(checked))
        steps = progress(groups, desc="LIME", unit="group") if len(groups) > 1 else iter(groups)
        for group in steps:
            with _single_threaded_blas():
                neighbourhoods = [
                    self._neighbourhood(
                        checked[i],
                        num_samples,
                        instance_rng(
                            self.random_state, self._stream_key + self._instance_key(checked[i])
                        ),
                        options,
                    )
                    for i in group
                ]
            scores = self._score(neighbourhoods, black_box, rows_per_call)  # the model's own
            with _single_threaded_blas():
                explanations.extend(
                    self._fit(
                        nb, ys, labels, top_labels, num_features, num_samples, model_regressor
                    )
                    for nb, ys in zip(neighbourhoods, scores, strict=True)
                )
        return explanations

    def _score(
        self, neighbourhoods: list[Neighbourhood], black_box: BlackBox, rows_per_call: int
    ) -> list[np.ndarray]:
        """Black-box scores of every neighbour, in calls of up to ``rows_per_call`` rows (a
        ``BlackBox`` given by the caller may split them further by its own batch size)."""
        pieces: list[list[np.ndarray]] = [[] for _ in neighbourhoods]
        chunks = list(_chunks([nb.n_rows for nb in neighbourhoods], rows_per_call))
        calls = (  # a slow black box shows its progress
            progress(chunks, desc="black box", unit="call", leave=False)
            if len(chunks) > 1
            else iter(chunks)
        )
        for chunk in calls:
            inputs = self._concatenate(
                [neighbourhoods[i].inputs(start, stop) for i, start, stop in chunk]
            )
            scores = black_box(inputs)
            offset = 0
            for i, start, stop in chunk:
                pieces[i].append(scores[offset : offset + stop - start])
                offset += stop - start
        return [np.concatenate(parts, axis=0) for parts in pieces]

    def _fit(
        self,
        neighbourhood: Neighbourhood,
        scores: np.ndarray,
        labels: Sequence[int] | None,
        top_labels: int | None,
        num_features: int,
        num_samples: int,
        model_regressor: Any = None,
    ) -> Explanation:
        n_outputs = scores.shape[1]
        regression = self.mode == "regression"
        if regression:
            if n_outputs != 1:
                raise BlackBoxError(
                    f"in regression mode the black box must return one value per row, "
                    f"got {n_outputs} columns"
                )
            explained: list[int] = [0]
            top: list[int] | None = None
            class_names = ["negative", "positive"]  # lime's names of labels 0 and 1
        else:
            _check_class_scores(scores)
            # Names are the caller's, as many as given (lime does not check their number).
            class_names = self.class_names or [str(k) for k in range(n_outputs)]
            if top_labels:
                top = [int(k) for k in np.argsort(scores[0], kind="stable")[::-1][:top_labels]]
                explained = top[::-1]  # lime fits them from the lowest score up
            else:
                top = None
                explained = [int(k) for k in (labels if labels is not None else (1,))]
                bad = [k for k in explained if not 0 <= k < n_outputs]
                if bad:
                    raise InputError(
                        f"labels {bad} do not exist: the black box returns {n_outputs} scores "
                        f"per row (labels 0 to {n_outputs - 1})"
                    )
        design = WeightedDesign(neighbourhood.data, self.kernel_fn(neighbourhood.distances))
        fits = {}
        for label in explained:
            fits[label] = design.fit(
                scores[:, label],
                num_features,
                self.feature_selection,
                model_regressor=model_regressor,
            )
            if self.verbose:
                report_fit(fits[label], float(scores[0, label]))
        params = {
            "num_samples": num_samples,
            "num_features": num_features,
            "feature_selection": self.feature_selection,
            "kernel_width": self.kernel_width,
            "sampler": self.sampler,
            "random_state": self.random_state
            if isinstance(self.random_state, int) or self.random_state is None
            else f"a numpy {type(self.random_state).__name__}",
            "model_regressor": None if model_regressor is None else repr(model_regressor),
            **neighbourhood.params,
        }
        local_exp = {label: fit.as_pairs() for label, fit in fits.items()}
        extra: dict[str, Any] = {}
        if regression:
            # lime's layout: label 1 explains the value, label 0 its negation.
            fits = {0: fits[0], 1: fits[0]}
            local_exp = {0: [(f, -w) for f, w in local_exp[0]], 1: local_exp[0]}
            extra = {
                "predicted_value": float(scores[0, 0]),
                "min_value": float(scores[:, 0].min()),
                "max_value": float(scores[:, 0].max()),
            }
        return neighbourhood.explanation_type(
            kind=self.kind,
            mode=self.mode,
            class_names=class_names,
            predict_proba=scores[0],
            local_exp=local_exp,
            intercept={label: fit.intercept for label, fit in fits.items()},
            scores={label: fit.score for label, fit in fits.items()},
            local_preds={label: fit.local_pred for label, fit in fits.items()},
            top_labels=top,
            params=params,
            **extra,
            **neighbourhood.fields,
        )


def _check_class_scores(scores: np.ndarray) -> None:
    """Scores that look like probabilities (two or more columns in [0, 1]) must sum to 1 per
    row: LIME's classification mode explains class probabilities. Logits pass."""
    if scores.shape[1] < 2 or scores.min() < 0.0 or scores.max() > 1.0:
        return
    sums = scores.sum(axis=1)
    off = np.abs(sums - 1.0) > 1e-4
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise BlackBoxError(
            f"the black box returns values in [0, 1] whose rows do not sum to 1 (neighbour "
            f"{row} sums to {sums[row]:.4g}): classification explains class probabilities, so "
            "pass predict_proba (not predict or a share of it), or use mode='regression' to "
            "explain a single score"
        )


@cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def _single_threaded_blas() -> Any:
    """Run our own array work on one BLAS thread: its products are (n x d) by (d x d) with d
    small, where waking more threads costs more than it saves, and on a busy machine stalls
    (the black box's calls keep whatever threading the caller set)."""
    return _blas_controller().limit(limits=1, user_api="blas")


def _groups(n_instances: int, num_samples: int, bytes_per_neighbour: int = 0) -> list[range]:
    """Instances whose neighbourhoods are held in memory together: at most
    ``_MAX_ROWS_IN_FLIGHT`` rows and ``MEMORY_BUDGET`` bytes (but always one instance)."""
    rows = _MAX_ROWS_IN_FLIGHT
    if bytes_per_neighbour:
        rows = min(rows, MEMORY_BUDGET // bytes_per_neighbour)
    per_group = max(1, rows // num_samples)
    return [range(i, min(i + per_group, n_instances)) for i in range(0, n_instances, per_group)]


def _chunks(sizes: list[int], batch_size: int) -> Iterator[list[tuple[int, int, int]]]:
    """Pack the rows of several neighbourhoods into calls of at most ``batch_size`` rows.

    Yields lists of ``(neighbourhood, start, stop)`` pieces.
    """
    chunk: list[tuple[int, int, int]] = []
    room = batch_size
    for i, size in enumerate(sizes):
        start = 0
        while start < size:
            stop = min(size, start + room)
            chunk.append((i, start, stop))
            room -= stop - start
            start = stop
            if room == 0:
                yield chunk
                chunk, room = [], batch_size
    if chunk:
        yield chunk
