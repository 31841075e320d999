"""What the tree is fitted to: the black box's classes or its scores, with their loss.

Growing, refining and describing the tree only ever ask two questions of the targets: what a
leaf holding some samples should predict, and how wrong a prediction is for each sample. The
two tasks answer them differently (majority class and 0-1 loss; mean and squared error).
Samples may carry weights (real rows against oracle samples); without them each counts once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Targets(ABC):
    """Labels (classification) or scores (regression) of the training samples."""

    classification: bool
    n_outputs: int
    weight: np.ndarray | None

    @abstractmethod
    def leaf_value(self, rows: np.ndarray) -> np.ndarray:
        """The row of ``value`` a leaf holding samples ``rows`` gets."""

    @abstractmethod
    def loss(self, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Per-sample loss of predicting ``values`` (one row of ``value`` per sample)."""


class ClassTargets(Targets):
    """Class indices in ``range(n_classes)``; a node's value is its class shares."""

    classification = True

    def __init__(
        self, labels: np.ndarray, n_classes: int, weight: np.ndarray | None = None
    ) -> None:
        self.labels = np.asarray(labels, np.intp)
        self.n_outputs = n_classes
        self.weight = weight

    def leaf_value(self, rows: np.ndarray) -> np.ndarray:
        weight = None if self.weight is None else self.weight[rows]
        counts = np.bincount(self.labels[rows], weight, minlength=self.n_outputs)
        counts = counts.astype(np.float64)
        return counts / counts.sum()

    def loss(self, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        wrong = (values.argmax(axis=1) != self.labels[rows]).astype(np.float64)
        return wrong if self.weight is None else wrong * self.weight[rows]


class ScoreTargets(Targets):
    """Real-valued scores, one column per output; a node's value is their mean."""

    classification = False

    def __init__(self, scores: np.ndarray, weight: np.ndarray | None = None) -> None:
        self.scores = np.asarray(scores, np.float64)
        self.n_outputs = self.scores.shape[1]
        self.weight = weight

    def leaf_value(self, rows: np.ndarray) -> np.ndarray:
        if self.weight is None:
            return np.asarray(self.scores[rows].mean(axis=0))
        return np.asarray(np.average(self.scores[rows], axis=0, weights=self.weight[rows]))

    def loss(self, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        squared = ((values - self.scores[rows]) ** 2).sum(axis=1)
        return np.asarray(squared if self.weight is None else squared * self.weight[rows])
