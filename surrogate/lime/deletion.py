"""Faithfulness of an explanation: the deletion curve, next to random orders.

Remove the explanation's features one at a time, the most supportive of the label first, and
track the black box's score of the label (tables: the feature takes its training baseline;
images: the superpixel takes the hide colour; text: the word is removed). A faithful explanation
makes the score fall fast, so the area under the curve (fraction removed on [0, 1]) is small;
the same curve for random orders of the same features is the yardstick. Features the explanation
left out are removed after its own, in random order.

For regression the score has the units of the target, so the curve is read relative to it: the
share of the instance's departure from the prediction with every feature removed that is still
there (1 before any removal, 0 after all), and the explanation's features that push the
prediction that way are removed first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from surrogate.lime._base import LimeExplainer
from surrogate.lime.explanation import Explanation
from training.blackbox import BlackBox
from training.errors import InputError


@dataclass(frozen=True)
class DeletionCurve:
    """Scores of one label as features are removed.

    ``label_name`` says what the score is (``"class benign"``); ``fractions`` (d + 1,) is the
    share of features removed; ``scores`` follows the explanation's order, ``random_scores``
    (num_random, d + 1) random orders.
    """

    label: int
    label_name: str
    order: list[int]
    fractions: np.ndarray
    scores: np.ndarray
    random_scores: np.ndarray

    @property
    def auc(self) -> float:
        """Area under the explanation's curve (lower is more faithful)."""
        return float(np.trapezoid(self.scores, self.fractions))

    @property
    def random_auc(self) -> float:
        """Mean area under the random orders' curves."""
        return float(np.mean(np.trapezoid(self.random_scores, self.fractions, axis=1)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record of the curve."""
        return {
            "label": self.label,
            "label_name": self.label_name,
            "order": self.order,
            "fractions": self.fractions.tolist(),
            "scores": self.scores.tolist(),
            "random_mean_scores": self.random_scores.mean(axis=0).tolist(),
            "auc": self.auc,
            "random_auc": self.random_auc,
        }

    def figure(self, *, title: str | None = None) -> Any:
        """A matplotlib figure of both curves with their areas in the legend."""
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(5.6, 3.6))
        spread = np.percentile(self.random_scores, [10, 90], axis=0)
        axes.fill_between(self.fractions, spread[0], spread[1], color="#9aa3b5", alpha=0.35)
        axes.plot(
            self.fractions,
            self.random_scores.mean(axis=0),
            color="#5b6475",
            linestyle="--",
            label=f"random order (AUC {self.random_auc:.3f})",
        )
        axes.plot(
            self.fractions,
            self.scores,
            color="#2a62c9",
            linewidth=2,
            label=f"explanation order (AUC {self.auc:.3f})",
        )
        axes.set_xlabel("fraction of features removed")
        axes.set_ylabel(f"black-box score of {self.label_name}")
        axes.set_xlim(0, 1)
        axes.set_title(title or "Deletion curve")
        axes.legend(loc="best", fontsize=9)
        figure.tight_layout()
        return figure


def deletion_curve(
    explainer: LimeExplainer,
    instance: Any,
    explanation: Explanation,
    predict_fn: Any,
    *,
    label: int | None = None,
    num_random: int = 10,
    random_state: int = 0,
) -> DeletionCurve:
    """The deletion curve of ``explanation`` (of ``instance``) and of ``num_random`` random
    orders, under the black box ``predict_fn``; ``label`` defaults to the first explained."""
    if num_random < 1:
        raise InputError(f"num_random must be positive, got {num_random}")
    if label is None:
        label = explanation.available_labels()[0]
    regression = explanation.mode == "regression"
    column = 0 if regression else label
    n_features = len(explanation.feature_names)
    rng = np.random.default_rng(random_state)
    black_box = explainer.as_black_box(predict_fn)
    explained = explanation.feature_order(label)
    if regression:
        ends = np.zeros((2, n_features), dtype=bool)
        ends[1] = True
        start, end = _score_in_batches(explainer, instance, explanation, ends, black_box)[:, 0]
        if start < end:  # the prediction is below the baseline: its lowering features first
            explained = explained[::-1]
    rest = np.setdiff1d(np.arange(n_features), explained)
    order = np.concatenate([np.asarray(explained, dtype=np.intp), rng.permutation(rest)])
    orders = np.stack([order, *(rng.permutation(n_features) for _ in range(num_random))])
    # Step k removes the first k features of an order: feature f is gone once k > its rank.
    ranks = np.argsort(orders, axis=1)
    steps = np.arange(n_features + 1)
    removed = (ranks[:, None, :] < steps[None, :, None]).reshape(-1, n_features)
    scores = _score_in_batches(explainer, instance, explanation, removed, black_box)[:, column]
    curves = scores.reshape(len(orders), n_features + 1)
    label_name = explanation.label_title(label)
    if regression:
        departure = start - end
        if abs(departure) > 1e-12 * max(abs(start), abs(end), 1.0):
            curves = (curves - end) / departure
            label_name = "the prediction's departure from baseline (share left)"
    return DeletionCurve(
        label=int(label),
        label_name=label_name,
        order=order.tolist(),
        fractions=steps / n_features,
        scores=curves[0],
        random_scores=curves[1:],
    )


def _score_in_batches(
    explainer: LimeExplainer,
    instance: Any,
    explanation: Explanation,
    removed: np.ndarray,
    black_box: BlackBox,
) -> np.ndarray:
    size = explainer._default_batch([instance])
    parts = [
        black_box(explainer.inputs_without(instance, explanation, removed[start : start + size]))
        for start in range(0, len(removed), size)
    ]
    return np.concatenate(parts, axis=0)
