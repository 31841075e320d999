"""Nearest-prototype (1-NN) test error on digits: MMD-critic against random and k-medoids.

Run from the repository root::

    python -m benchmarks.mmd_quality              # the table in README
    python -m benchmarks.mmd_quality --sweep      # plus local MMD at fixed multiples of gamma

Protocol (the paper's test, on scikit-learn's digits instead of USPS):

- Splits: 5 stratified 50/50 train/test splits of the 1797 digits
  (``train_test_split(test_size=0.5, stratify=y, random_state=s)``, s = 0..4); every number is
  the mean (and standard deviation) over the 5 splits.
- Classifier: 1-nearest-neighbour (Euclidean, on the raw pixel values) over the m chosen
  training points, labelled with their own labels; error on the test half, in %.
- m = 10, 20, 40, 80, 160.
- MMD local: ``MMDCritic(160, local=True)`` with the median-heuristic gamma of the training
  half; the class-local kernel (zero across classes) lets the one greedy run divide m among the
  classes itself (the counts are printed); its first m prototypes are the greedy choice for m.
- MMD global: the same with one kernel over all points (labels unused for the choice).
- MMD local, gamma by held-out accuracy: one fit per m with ``gamma="accuracy"``: the best of
  (1/4, 1/2, 1, 2, 4, 8, 16) x median gamma by 1-NN error on a stratified 25 % of the training
  half, chosen prototypes on the other 75 %; then refitted on the whole training half.
- Random: m training points drawn uniformly (mean over 20 draws per split); random per
  class: m/10 points drawn from each class (mean over 20 draws).
- k-medoids per class: PAM (greedy BUILD, then SWAP until no swap of a medoid for a
  non-medoid lowers the sum of Euclidean distances to the nearest medoid), m/10 medoids in
  each class. k-medoids global: PAM with k = m on all training points. (sklearn-extra is not
  available; ``k_medoids`` below is the implementation.)
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from benchmarks import mmd_data
from surrogate.mmd_critic import MMDCritic, median_heuristic_gamma

M_VALUES = (10, 20, 40, 80, 160)
SPLITS = 5
RANDOM_DRAWS = 20
SWEEP_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def k_medoids(distances: np.ndarray, k: int) -> np.ndarray:
    """PAM on a distance matrix: greedy BUILD, then SWAP while the total distance falls."""
    n = len(distances)
    medoids = [int(np.argmin(distances.sum(axis=0)))]
    nearest = distances[:, medoids[0]].copy()
    while len(medoids) < k:
        gains = np.maximum(nearest[:, None] - distances, 0.0).sum(axis=0)
        gains[medoids] = -1.0
        medoids.append(int(np.argmax(gains)))
        nearest = np.minimum(nearest, distances[:, medoids[-1]])
    chosen = np.array(medoids)
    cost = distances[:, chosen].min(axis=1).sum()
    improved = True
    while improved:
        improved = False
        for i in range(k):
            to_medoids = distances[:, chosen]
            order = np.argsort(to_medoids, axis=1)
            first = to_medoids[np.arange(n), order[:, 0]]
            second = to_medoids[np.arange(n), order[:, 1]] if k > 1 else np.full(n, np.inf)
            # Each point's distance once medoid i is gone, then with candidate h added.
            without_i = np.where(order[:, 0] == i, second, first)
            costs = np.minimum(without_i[:, None], distances).sum(axis=0)
            costs[chosen] = np.inf
            best = int(np.argmin(costs))
            if costs[best] < cost * (1 - 1e-12):
                chosen[i], cost, improved = best, costs[best], True
    return chosen


def _error(X_train, y_train, chosen, X_test, y_test) -> float:
    knn = KNeighborsClassifier(n_neighbors=1).fit(X_train[chosen], y_train[chosen])
    return 100.0 * (1.0 - knn.score(X_test, y_test))


def _split_errors(seed: int, sweep: bool) -> dict[str, list[float]]:
    X, y = mmd_data.digits()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.5, stratify=y, random_state=seed
    )
    classes = np.unique(y_train)
    rng = np.random.default_rng(seed)
    errors: dict[str, list[float]] = {}

    def record(name: str, values: list[float]) -> None:
        errors[name] = values

    def nested(estimator: MMDCritic) -> list[float]:
        chosen = estimator.fit(X_train, y_train).prototype_indices_
        return [_error(X_train, y_train, chosen[:m], X_test, y_test) for m in M_VALUES]

    local = MMDCritic(max(M_VALUES), local=True, device="cpu")
    record("MMD local (median gamma)", nested(local))
    errors["_local_counts"] = [
        np.bincount(y_train[local.prototype_indices_[:m]], minlength=10).tolist() for m in M_VALUES
    ]
    record("MMD global (median gamma)", nested(MMDCritic(max(M_VALUES), device="cpu")))
    record(
        "MMD local (gamma by held-out accuracy)",
        [
            _error(
                X_train,
                y_train,
                MMDCritic(m, local=True, gamma="accuracy", random_state=seed, device="cpu")
                .fit(X_train, y_train)
                .prototype_indices_,
                X_test,
                y_test,
            )
            for m in M_VALUES
        ],
    )
    if sweep:
        median = median_heuristic_gamma(X_train)
        for factor in SWEEP_FACTORS:
            estimator = MMDCritic(max(M_VALUES), local=True, gamma=factor * median, device="cpu")
            record(f"sweep: MMD local, {factor:g} x median gamma", nested(estimator))
    by_class = [np.flatnonzero(y_train == c) for c in classes]

    def uniform(m: int) -> np.ndarray:
        return rng.choice(len(X_train), m, replace=False)

    def per_class(m: int) -> np.ndarray:
        return np.concatenate(
            [rng.choice(rows, m // len(classes), replace=False) for rows in by_class]
        )

    for name, draw in (("random", uniform), ("random per class", per_class)):
        record(
            name,
            [
                float(
                    np.mean(
                        [
                            _error(X_train, y_train, draw(m), X_test, y_test)
                            for _ in range(RANDOM_DRAWS)
                        ]
                    )
                )
                for m in M_VALUES
            ],
        )
    class_distances = [cdist(X_train[rows], X_train[rows]) for rows in by_class]
    record(
        "k-medoids per class (PAM)",
        [
            _error(
                X_train,
                y_train,
                np.concatenate(
                    [
                        rows[k_medoids(distances, m // len(classes))]
                        for rows, distances in zip(by_class, class_distances, strict=True)
                    ]
                ),
                X_test,
                y_test,
            )
            for m in M_VALUES
        ],
    )
    all_distances = cdist(X_train, X_train)
    record(
        "k-medoids global (PAM)",
        [_error(X_train, y_train, k_medoids(all_distances, m), X_test, y_test) for m in M_VALUES],
    )
    return errors


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("SEETHROUGH_PROGRESS", "0")  # tables only, no progress bars
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--splits", type=int, default=SPLITS)
    parser.add_argument("--sweep", action="store_true", help="also fixed multiples of gamma")
    args = parser.parse_args(argv)
    start, load = time.perf_counter(), os.getloadavg()
    runs = [_split_errors(seed, args.sweep) for seed in range(args.splits)]
    print(f"digits, {args.splits} stratified 50/50 splits; 1-NN test error in % (mean +- sd)\n")
    print("| method | " + " | ".join(f"m={m}" for m in M_VALUES) + " |")
    print("|---|" + "---|" * len(M_VALUES))
    for name in runs[0]:
        if name.startswith("_"):
            continue
        table = np.array([run[name] for run in runs])
        cells = [
            f"{mean:.1f} +- {sd:.1f}" for mean, sd in zip(table.mean(0), table.std(0), strict=True)
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nprototypes per class chosen by MMD local (split 0), classes 0..9:")
    for m, counts in zip(M_VALUES, runs[0]["_local_counts"], strict=True):
        print(f"  m={m}: {counts}")
    elapsed = time.perf_counter() - start
    print(f"\n{elapsed:.0f} s; load before {load[0]:.2f}, after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
