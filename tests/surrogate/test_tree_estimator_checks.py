"""scikit-learn's estimator checks, where the contract applies to a surrogate.

``TreeSurrogate.fit(X, black_box, y=None)`` takes the black box where scikit-learn expects
``y``, and ``score(X, black_box)`` likewise, so the checks run on a subclass whose black box is
fixed at construction (``fit(X, y=None)``, ``score(X, y=None)``); everything else (validation,
fitting, prediction, pickling, cloning, parameters) is TreeSurrogate's own code, and every
check passes on it. On TreeSurrogate itself ``check_fit_score_takes_y`` cannot pass by design
(the second argument is the black box), and every check that calls ``fit(X, y)`` would hand
it labels where a model belongs. A black box as a constructor parameter is not offered in the
library: ``clone`` (and so grid search) would clone a fitted scikit-learn black box into an
unfitted one. The checks' labels are arbitrary integers that the fixed black box's classes
need not hold, and ``fit`` refuses labels a black box does not know, so the subclass does not
hand ``y`` on (it only ever fed ``accuracy_``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from surrogate.tree import TreeSurrogate


def first_feature_sign(X: np.ndarray) -> np.ndarray:
    """A black box for any width of X: class probabilities from the first feature's sign."""
    positive = (np.asarray(X)[:, 0] > 0).astype(float)
    return np.column_stack([1.0 - positive, positive])


def first_feature_score(X: np.ndarray) -> np.ndarray:
    """A regression black box for any width of X."""
    return np.asarray(X)[:, 0] * 2.0 + 1.0


class SurrogateOfFixedBox(TreeSurrogate):
    """TreeSurrogate with its black box given at construction, so ``fit(X, y)`` is the API."""

    def __init__(
        self,
        black_box: Any = first_feature_sign,
        *,
        max_depth: int | None = 3,
        max_leaf_nodes: int | None = None,
        oracle_samples: int = 3,
        sampler: str = "neighbours",
        noise: float | None = None,
        n_neighbors: int | None = None,
        criterion: str = "entropy",
        refine_passes: int = 10,
        validation_fraction: float = 0.2,
        task: str = "auto",
        random_state: int | None = None,
        categorical_features: Any = None,
        real_share: Any = "auto",
    ) -> None:
        self.black_box = black_box
        super().__init__(
            max_depth=max_depth,
            max_leaf_nodes=max_leaf_nodes,
            oracle_samples=oracle_samples,
            sampler=sampler,  # type: ignore[arg-type]
            noise=noise,
            n_neighbors=n_neighbors,
            criterion=criterion,
            refine_passes=refine_passes,
            validation_fraction=validation_fraction,
            task=task,  # type: ignore[arg-type]
            random_state=random_state,
            categorical_features=categorical_features,
            real_share=real_share,
        )

    def fit(self, X: Any, y: Any = None) -> SurrogateOfFixedBox:  # type: ignore[override]
        super().fit(X, self._black_box())
        return self

    def score(self, X: Any, y: Any = None) -> float:  # type: ignore[override]
        return super().score(X, self._black_box())

    def _black_box(self) -> Any:
        from training.blackbox import BlackBox

        probabilities = self.black_box is first_feature_sign
        return BlackBox(self.black_box, probabilities=probabilities)


@parametrize_with_checks(
    [
        SurrogateOfFixedBox(random_state=0),
        SurrogateOfFixedBox(first_feature_score, sampler="local", random_state=0),
        SurrogateOfFixedBox(oracle_samples=0, refine_passes=0, validation_fraction=0.0),
        SurrogateOfFixedBox(categorical_features=[], random_state=0),  # a table: NaN is missing
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
