"""How often a TreeSurrogate of depth 3 recovers a black box that is itself a depth-3 tree.

Black box: ``DecisionTreeClassifier(max_depth=3, min_samples_leaf=20 or 30, random_state=0)``
fitted on 500/600 rows of true labels; the surrogate (defaults, ``max_depth=3``,
``random_state=0``) is fitted on the same rows and scored on as many fresh rows. "Exact" means
fidelity 1.0 on the fresh rows. Two kinds of data:

- ordinal: 5 integer features in 0..9 (like pixel intensities), 20 data seeds; every threshold
  between two integers routes the rows alike, so exact recovery is well defined;
- continuous: ``make_classification(n_features=6, n_informative=4, n_classes=3)``, 10 seeds;
  a threshold can only be pinned down to the gap between neighbouring samples.

    python benchmarks/tree_recovery.py
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_classification
from sklearn.tree import DecisionTreeClassifier

from surrogate.tree import TreeSurrogate


def ordinal(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The data of tests/surrogate/test_tree.py: integer features, labels from four of them."""
    rng = np.random.RandomState(seed)
    X = rng.randint(0, 10, size=(1000, 5)).astype(float)
    score = X[:, 0] + 2 * X[:, 1] - X[:, 2] + 3 * rng.normal(size=1000)
    return X, (score > 6).astype(int) + (X[:, 3] > 6)


def continuous(seed: int) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(
        n_samples=1200, n_features=6, n_informative=4, n_classes=3, random_state=seed
    )
    return X, y


def main() -> None:
    for name, make, seeds, min_leaf in (
        ("ordinal", ordinal, 20, 20),
        ("continuous", continuous, 10, 30),
    ):
        for oracle_samples in (0, 20):
            fidelities = []
            for seed in range(seeds):
                X, y = make(seed)
                half = len(X) // 2
                black_box = DecisionTreeClassifier(
                    max_depth=3, min_samples_leaf=min_leaf, random_state=0
                ).fit(X[:half], y[:half])
                surrogate = TreeSurrogate(
                    max_depth=3, oracle_samples=oracle_samples, random_state=0
                ).fit(X[:half], black_box)
                fidelities.append(surrogate.score(X[half:], black_box))
            exact = sum(value == 1.0 for value in fidelities)
            print(
                f"{name:>10}, oracle_samples={oracle_samples:>2}: exact in {exact}/{seeds}; "
                f"fidelity min {min(fidelities):.3f}, mean {np.mean(fidelities):.3f}"
            )


if __name__ == "__main__":
    main()
