"""What the tree is fitted to: the black box's classes or its scores, with their loss.

Growing, refining and describing the tree only ever ask two questions of the targets: what a
leaf holding some samples should predict, and how wrong a prediction is for each sample. The
two tasks answer them differently (majority class and 0-1 loss; mean and squared error).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Targets(ABC):
    """Labels (classification) or scores (regression) of the training samples."""

    classification: bool
    n_outputs: int

    @abstractmethod
    def leaf_value(self, rows: np.ndarray) -> np.ndarray:
        """The row of ``value`` a leaf holding samples ``rows`` gets."""

    @abstractmethod
    def loss(self, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Per-sample loss of predicting ``values`` (one row of ``value`` per sample)."""


class ClassTargets(Targets):
    """Class indices in ``range(n_classes)``; a node's value is its class shares."""

    classification = True

    def __init__(self, labels: np.ndarray, n_classes: int) -> None:
        self.labels = np.asarray(labels, np.intp)
        self.n_outputs = n_classes

    def leaf_value(self, rows: np.ndarray) -> np.ndarray:
        counts = np.bincount(self.labels[rows], minlength=self.n_outputs).astype(np.float64)
        return counts / counts.sum()

    def loss(self, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return (values.argmax(axis=1) != self.labels[rows]).astype(np.float64)


class ScoreTargets(Targets):
    """Real-valued scores, one column per output; a node's value is their mean."""

    classification = False

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = np.asarray(scores, np.float64)
        self.n_outputs = self.scores.shape[1]

    def leaf_value(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.scores[rows].mean(axis=0))

    def loss(self, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.asarray(((values - self.scores[rows]) ** 2).sum(axis=1))
