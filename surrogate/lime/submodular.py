"""SP-LIME: pick a few explanations that together cover the globally important features.

Ribeiro et al. (2016), section 4: stack the explanations into a matrix W (instances x features,
the features named as in ``as_list``, weights summed over the explained labels), give feature j
the global importance ``I_j = sqrt(sum_i |W_ij|)``, and choose B instances greedily to maximise
the coverage ``c(V) = sum_j I_j [some i in V has W_ij != 0]``, a monotone submodular function, so
the greedy choice is within 1 - 1/e of the best. Ties go to the later instance, as in ``lime``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from surrogate.lime._random import RandomState, check_random_state
from surrogate.lime.explanation import Explanation
from training.errors import InputError


@dataclass(frozen=True)
class SubmodularPickResult:
    """The picked explanations and the matrix they were picked from.

    ``indices`` are positions in the list given, in the order picked; ``coverage`` is c(V)
    after each pick; ``features`` names W's columns and ``importance`` holds I_j.
    """

    indices: list[int]
    coverage: list[float]
    features: list[str]
    importance: np.ndarray
    weights: np.ndarray

    @property
    def total_importance(self) -> float:
        """c of all explanations: the most coverage any choice can reach."""
        return float(self.importance.sum())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (the weight matrix left out)."""
        return {
            "indices": self.indices,
            "coverage": self.coverage,
            "total_importance": self.total_importance,
            "features": self.features,
            "importance": self.importance.tolist(),
        }


def explanation_matrix(explanations: Sequence[Explanation]) -> tuple[np.ndarray, list[str]]:
    """W (instances x features) and the feature names of its columns, as SP-LIME builds it."""
    columns: dict[str, int] = {}
    entries: list[tuple[int, int, float]] = []
    for row, explanation in enumerate(explanations):
        labels = explanation.available_labels() if explanation.mode == "classification" else [1]
        for label in labels:
            for name, weight in explanation.as_list(label):
                column = columns.setdefault(name, len(columns))
                entries.append((row, column, weight))
    weights = np.zeros((len(explanations), len(columns)))
    for row, column, weight in entries:
        weights[row, column] += weight
    return weights, list(columns)


def submodular_pick(
    explanations: Sequence[Explanation], num_exps_desired: int = 5
) -> SubmodularPickResult:
    """Choose ``num_exps_desired`` of ``explanations`` by greedy coverage (SP-LIME)."""
    if not explanations:
        raise InputError("submodular_pick needs at least one explanation")
    if num_exps_desired < 1:
        raise InputError(f"num_exps_desired must be positive, got {num_exps_desired}")
    weights, features = explanation_matrix(explanations)
    importance = np.sqrt(np.abs(weights).sum(axis=0))
    used = np.abs(weights) > 0
    covered = np.zeros(len(features), dtype=bool)
    remaining = np.ones(len(explanations), dtype=bool)
    picked: list[int] = []
    coverage: list[float] = []
    for _ in range(min(num_exps_desired, len(explanations))):
        totals = (used | covered).astype(np.float64) @ importance
        totals[~remaining] = -np.inf
        best = len(totals) - 1 - int(np.argmax(totals[::-1]))  # the last of equal totals
        picked.append(best)
        coverage.append(float(totals[best]))
        covered |= used[best]
        remaining[best] = False
    return SubmodularPickResult(picked, coverage, features, importance, weights)


class SubmodularPick:
    """``lime.submodular_pick.SubmodularPick``'s interface: explain a sample, then pick.

    Explains ``sample_size`` instances of ``data`` drawn with ``random_state`` (``method=
    "sample"``) or all of them (``"full"``) with ``explainer.explain_many`` and keeps
    ``explanations``, the picked ``sp_explanations`` and their positions ``V``.
    """

    def __init__(
        self,
        explainer: Any,
        data: Any,
        predict_fn: Any,
        method: str = "sample",
        sample_size: int = 1000,
        num_exps_desired: int = 5,
        num_features: int = 10,
        random_state: RandomState = None,
        **kwargs: Any,
    ) -> None:
        n_rows = len(data)
        if method == "sample":
            seed = check_random_state(random_state)
            if isinstance(seed, np.random.RandomState):  # lime's type: seed ours from it
                seed = int(seed.randint(0, 1 << 31))
            rng = np.random.default_rng(seed)
            chosen = np.sort(rng.permutation(n_rows)[: min(sample_size, n_rows)])
        elif method == "full":
            chosen = np.arange(n_rows)
        else:
            raise InputError(f"method must be 'sample' or 'full', got {method!r}")
        rows = data[chosen] if isinstance(data, np.ndarray) else [data[i] for i in chosen]
        kwargs.setdefault("top_labels", 1)
        self.sample_indices = chosen.tolist()
        self.explanations = explainer.explain_many(
            rows, predict_fn, num_features=num_features, **kwargs
        )
        self.result = submodular_pick(self.explanations, num_exps_desired)
        self.V = self.result.indices
        self.sp_explanations = [self.explanations[i] for i in self.V]
