"""The weighted-linear-surrogate engine that every LIME adapter shares.

Given neighbours ``Z`` (n, d) in the interpretable space, their kernel weights ``w`` and the
black box's scores ``y``, LIME chooses K features and fits a weighted ridge (alpha = 1) on them.
Everything here is computed from the weighted, centred Gram matrix ``G = Zc' W Zc`` and the
vector ``b = Zc' W yc``, the same normal equations scikit-learn's ``Ridge`` solves with sample
weights, so the numbers equal ``lime``'s while

- the Gram matrix is built once per neighbourhood and shared by every label explained,
- forward selection updates it by one sweep (Schur complement) per chosen feature instead of
  refitting a model for every candidate: the gain in weighted R^2 of candidate j is
  ``b_j^2 / G_jj`` in the swept system.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.linalg

from training.errors import InputError

FeatureSelection = Literal["auto", "forward_selection", "highest_weights", "lasso_path", "none"]
FEATURE_SELECTIONS: tuple[str, ...] = (
    "auto",
    "forward_selection",
    "highest_weights",
    "lasso_path",
    "none",
)
# lime's own cut-over: forward selection is affordable for few features only (for it).
AUTO_FORWARD_SELECTION_MAX = 6
_HIGHEST_WEIGHTS_ALPHA = 0.01
# A candidate whose swept variance falls below this share of its own variance is (numerically)
# a combination of the features already chosen and adds nothing.
_COLLINEAR = 1e-10


def exponential_kernel(distances: np.ndarray, kernel_width: float) -> np.ndarray:
    """LIME's kernel ``sqrt(exp(-d^2 / width^2))`` of an array of distances."""
    return np.sqrt(np.exp(-(np.asarray(distances, dtype=np.float64) ** 2) / kernel_width**2))


@dataclass(frozen=True)
class SurrogateFit:
    """One label's local surrogate.

    ``features`` and ``coef`` are ordered by decreasing absolute weight (ties keep the order in
    which the features were selected), as ``lime`` returns them.
    """

    features: np.ndarray
    coef: np.ndarray
    intercept: float
    score: float
    local_pred: float

    def as_pairs(self) -> list[tuple[int, float]]:
        """``[(feature_id, weight), ...]``, the form of ``lime``'s ``local_exp`` entries."""
        return [(int(f), float(c)) for f, c in zip(self.features, self.coef, strict=True)]


class WeightedDesign:
    """The neighbours and their weights, centred and reduced to a Gram matrix once.

    Parameters
    ----------
    data:
        (n, d) neighbours in the interpretable space; row 0 is the instance explained.
    weights:
        (n,) non-negative kernel weights with a positive sum.
    """

    def __init__(self, data: np.ndarray, weights: np.ndarray) -> None:
        data = np.asarray(data, dtype=np.float64)
        weights = np.asarray(weights, dtype=np.float64)
        if data.ndim != 2 or weights.shape != (data.shape[0],):
            raise InputError(
                f"neighbours must be (n, d) with one weight each; got data {data.shape} "
                f"and weights {weights.shape}"
            )
        if not (np.isfinite(data).all() and np.isfinite(weights).all()):
            raise InputError("neighbours or weights hold NaN or infinite values")
        if weights.min() < 0 or weights.sum() <= 0:
            raise InputError("weights must be non-negative with a positive sum")
        self.data = data
        self.weights = weights
        self.total_weight = float(weights.sum())
        self.mean = weights @ data / self.total_weight
        self.root_weights = np.sqrt(weights)
        self.scaled = data - self.mean
        self.scaled *= self.root_weights[:, None]
        self.gram = self.scaled.T @ self.scaled

    @property
    def n_features(self) -> int:
        """Number of interpretable features d."""
        return int(self.data.shape[1])

    def fit(
        self,
        labels: np.ndarray,
        num_features: int,
        feature_selection: str = "auto",
        *,
        alpha: float = 1.0,
        model_regressor: Any = None,
    ) -> SurrogateFit:
        """Select features for one label column (n,) and fit the weighted ridge on them, or
        ``model_regressor`` (any scikit-learn regressor whose ``fit`` takes ``sample_weight``
        and that has ``coef_``; it is fitted in place, as ``lime`` fits it)."""
        labels = np.asarray(labels, dtype=np.float64)
        if labels.shape != (self.data.shape[0],):
            raise InputError(
                f"labels must be one score per neighbour ({self.data.shape[0]},), "
                f"got shape {labels.shape}"
            )
        # A constant target is matched exactly (rounding would otherwise leave noise to fit).
        constant = labels.max() == labels.min()
        label_mean = float(labels[0] if constant else self.weights @ labels / self.total_weight)
        scaled_labels = (labels - label_mean) * self.root_weights
        moments = self.scaled.T @ scaled_labels
        features = self._select(labels, scaled_labels, moments, num_features, feature_selection)
        if model_regressor is not None:
            return self._fit_model(features, labels, model_regressor)
        return self._ridge(features, labels, label_mean, moments, alpha)

    def select(self, labels: np.ndarray, num_features: int, method: str = "auto") -> np.ndarray:
        """The features ``method`` chooses for one label column (n,), in the order chosen."""
        labels = np.asarray(labels, dtype=np.float64)
        label_mean = float(self.weights @ labels / self.total_weight)
        scaled_labels = (labels - label_mean) * self.root_weights
        moments = self.scaled.T @ scaled_labels
        return self._select(labels, scaled_labels, moments, num_features, method)

    def _fit_model(self, features: np.ndarray, labels: np.ndarray, model: Any) -> SurrogateFit:
        """``model`` fitted on the chosen features as ``lime`` fits its ``model_regressor``."""
        features = np.asarray(features, dtype=np.intp)
        data = self.data[:, features]
        model.fit(data, labels, sample_weight=self.weights)
        score = float(model.score(data, labels, sample_weight=self.weights))
        local_pred = float(np.ravel(model.predict(data[:1]))[0])
        coef = np.ravel(np.asarray(model.coef_, dtype=np.float64))
        intercept = float(np.ravel(np.asarray(model.intercept_, dtype=np.float64))[0])
        order = np.argsort(-np.abs(coef), kind="stable")
        return SurrogateFit(features[order], coef[order], intercept, score, local_pred)

    def _select(
        self,
        labels: np.ndarray,
        scaled_labels: np.ndarray,
        moments: np.ndarray,
        num_features: int,
        method: str,
    ) -> np.ndarray:
        if method == "auto":
            method = (
                "forward_selection"
                if num_features <= AUTO_FORWARD_SELECTION_MAX
                else "highest_weights"
            )
        if method == "none":
            return np.arange(self.n_features)
        if method == "forward_selection":
            return self._forward_selection(moments, num_features)
        if method == "highest_weights":
            all_features = np.arange(self.n_features)
            coef = _solve(self.gram, moments, _HIGHEST_WEIGHTS_ALPHA)
            # lime ranks by the weight times the instance's own value; a stable sort keeps
            # lime's tie order (Python's sorted(reverse=True) is stable too).
            contribution = np.abs(coef * self.data[0])
            return all_features[np.argsort(-contribution, kind="stable")[:num_features]]
        if method == "lasso_path":
            return self._lasso_path(scaled_labels, num_features)
        raise InputError(
            f"feature_selection={method!r} is not one of {', '.join(FEATURE_SELECTIONS)}"
        )

    def _forward_selection(self, moments: np.ndarray, num_features: int) -> np.ndarray:
        """Greedy least squares (alpha = 0): add the feature that raises weighted R^2 most."""
        gram = self.gram.copy()
        moments = moments.copy()
        own_variance = np.diag(self.gram).copy()
        available = np.ones(self.n_features, dtype=bool)
        chosen: list[int] = []
        for _ in range(min(num_features, self.n_features)):
            variance = np.diag(gram)
            usable = available & (variance > _COLLINEAR * own_variance)
            gain = np.zeros(self.n_features)
            gain[usable] = moments[usable] ** 2 / variance[usable]
            gain[~available] = -np.inf
            best = int(np.argmax(gain))  # first of equal gains, as lime's strict ">"
            chosen.append(best)
            available[best] = False
            pivot = gram[best, best]
            if pivot > 0:
                column = gram[:, best].copy()
                gram -= np.outer(column, column) / pivot
                moments -= column * (moments[best] / pivot)
        return np.asarray(chosen, dtype=np.intp)

    def _lasso_path(self, scaled_labels: np.ndarray, num_features: int) -> np.ndarray:
        """lime's rule: the last point of the lasso path with at most K non-zero weights."""
        from sklearn.linear_model import lars_path

        _, _, coefs = lars_path(self.scaled, scaled_labels, method="lasso", verbose=False)
        nonzero = np.arange(self.n_features)
        for step in range(coefs.shape[1] - 1, 0, -1):
            nonzero = coefs[:, step].nonzero()[0]
            if len(nonzero) <= num_features:
                break
        return nonzero

    def _ridge(
        self,
        features: np.ndarray,
        labels: np.ndarray,
        label_mean: float,
        moments: np.ndarray,
        alpha: float,
    ) -> SurrogateFit:
        features = np.asarray(features, dtype=np.intp)
        coef = _solve(self.gram[np.ix_(features, features)], moments[features], alpha)
        intercept = label_mean - float(self.mean[features] @ coef)
        predictions = self.data[:, features] @ coef + intercept
        residual = float(self.weights @ (labels - predictions) ** 2)
        total = float(self.weights @ (labels - label_mean) ** 2)
        # A constant target scores as sklearn's r2_score scores it.
        score = 1.0 - residual / total if total > 0 else float(residual == 0)
        local_pred = float(self.data[0, features] @ coef + intercept)
        order = np.argsort(-np.abs(coef), kind="stable")
        return SurrogateFit(features[order], coef[order], intercept, score, local_pred)


def _solve(gram: np.ndarray, moments: np.ndarray, alpha: float) -> np.ndarray:
    """Solve ``(gram + alpha I) x = moments``, by Cholesky when it is positive definite."""
    if gram.shape[0] == 0:
        return np.zeros(0)
    system = gram + alpha * np.eye(gram.shape[0])
    try:
        return np.asarray(scipy.linalg.solve(system, moments, assume_a="pos"))
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        return np.asarray(scipy.linalg.lstsq(system, moments)[0])


def fit_surrogate(
    data: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    num_features: int,
    feature_selection: str = "auto",
) -> SurrogateFit:
    """Fit LIME's local surrogate on given neighbours, one label column and weights.

    ``data`` (n, d) holds the neighbours in the interpretable space with the instance in row 0,
    ``labels`` (n,) the black box's score of one class for each, ``weights`` (n,) the kernel
    weights. Returns the chosen features with their ridge weights, the intercept, the weighted
    R^2 (``score``) and the surrogate's prediction for the instance (``local_pred``).
    """
    if num_features < 1:
        raise InputError(f"num_features must be at least 1, got {num_features}")
    return WeightedDesign(data, weights).fit(labels, num_features, feature_selection)


def report_fit(fit: SurrogateFit, right: float) -> None:
    """Print a fit as ``lime`` prints it with ``verbose=True``."""
    print("Intercept", fit.intercept)
    print("Prediction_local", np.array([fit.local_pred]))
    print("Right:", right)


class LimeBase:
    """Drop-in for ``lime.lime_base.LimeBase``: the engine applied to given data and distances.

    Parameters
    ----------
    kernel_fn:
        Maps an array of distances to weights, e.g.
        ``functools.partial(exponential_kernel, kernel_width=0.75)``.
    verbose:
        Print each fit's intercept, local prediction and the black box's own score.
    random_state:
        Accepted for ``lime``'s signature; the fit is deterministic.
    """

    def __init__(
        self,
        kernel_fn: Callable[[np.ndarray], np.ndarray],
        verbose: bool = False,
        random_state: Any = None,
    ) -> None:
        self.kernel_fn = kernel_fn
        self.verbose = verbose
        self.random_state = random_state

    @staticmethod
    def generate_lars_path(
        weighted_data: np.ndarray, weighted_labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(alphas, coefs)`` of the lasso path, as ``lime`` computes it."""
        from sklearn.linear_model import lars_path

        alphas, _, coefs = lars_path(weighted_data, weighted_labels, method="lasso", verbose=False)
        return alphas, coefs

    def forward_selection(
        self, data: np.ndarray, labels: np.ndarray, weights: np.ndarray, num_features: int
    ) -> np.ndarray:
        """The ``num_features`` features greedy least squares adds, in the order added."""
        return self.feature_selection(data, labels, weights, num_features, "forward_selection")

    def feature_selection(
        self,
        data: np.ndarray,
        labels: np.ndarray,
        weights: np.ndarray,
        num_features: int,
        method: str,
    ) -> np.ndarray:
        """The features ``method`` chooses (see :func:`fit_surrogate`)."""
        return WeightedDesign(data, weights).select(labels, num_features, method)

    def explain_instance_with_data(
        self,
        neighborhood_data: np.ndarray,
        neighborhood_labels: np.ndarray,
        distances: np.ndarray,
        label: int,
        num_features: int,
        feature_selection: str = "auto",
        model_regressor: Any = None,
    ) -> tuple[float, list[tuple[int, float]], float, np.ndarray]:
        """``(intercept, [(feature, weight), ...], score, local_pred)`` as ``lime`` returns
        them (``local_pred`` a one-element array).

        ``neighborhood_labels`` is (n, k); column ``label`` is explained.
        """
        weights = np.asarray(self.kernel_fn(np.asarray(distances)), dtype=np.float64)
        labels = np.asarray(neighborhood_labels, dtype=np.float64)
        if num_features < 1:
            raise InputError(f"num_features must be at least 1, got {num_features}")
        fit = WeightedDesign(neighborhood_data, weights).fit(
            labels[:, label], num_features, feature_selection, model_regressor=model_regressor
        )
        if self.verbose:
            report_fit(fit, float(labels[0, label]))
        return fit.intercept, fit.as_pairs(), fit.score, np.array([fit.local_pred])
