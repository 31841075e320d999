"""Held-out fidelity of tree surrogates: plain trees beside trees grown on oracle samples.

Setting (the same for every row): a data set split 50/50, stratified, ``random_state=0``;
the black box ``RandomForestClassifier(n_estimators=100, random_state=0)`` fitted on the
first half with the true labels; every surrogate fitted on the first half's rows (plus its
oracle samples), labelled by the forest; fidelity = the share of the *second* half's rows on
which the tree predicts the forest's class (``forest.predict``). Oracle samples are never
scored. Accuracy = the tree's share of correct true labels on the second half.

Rows, each a ``TreeSurrogate`` with ``validation_fraction=0`` (the second half is held out):

- plain CART, gini: ``oracle_samples=0, refine_passes=0, criterion="gini"``, i.e.
  ``DecisionTreeClassifier(max_depth=d)`` on (X, forest(X)), the usual global surrogate;
- plain, entropy: the same grown with entropy;
- gaussian 10x, gini: 10 oracle samples per row, a row plus N(0, (0.3 std)^2) noise (the
  baseline oracle sampling), greedy;
- neighbours 20x, entropy: 20 samples per row between a row and one of its 5 nearest rows
  plus 0.3 std noise, greedy;
- default (neighbours 20x + TAO): the same, then refined by tree alternating optimisation;
- local 20x + TAO: samples from a Gaussian shaped like the row's 15-row neighbourhood.

With ``--seeds N`` every surrogate is refitted with ``random_state`` 0..N-1 (new oracle
samples; the split and the forest stay fixed) and mean [min, max] are printed.

    python benchmarks/tree_fidelity.py                 # random_state=0 only
    python benchmarks/tree_fidelity.py --seeds 5       # spread over oracle-sample draws
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from surrogate.tree import TreeSurrogate

CONFIGS: dict[str, dict[str, Any]] = {
    "plain CART, gini": {"oracle_samples": 0, "refine_passes": 0, "criterion": "gini"},
    "plain, entropy": {"oracle_samples": 0, "refine_passes": 0},
    "gaussian 10x, gini": {
        "oracle_samples": 10,
        "sampler": "gaussian",
        "noise": 0.3,
        "criterion": "gini",
        "refine_passes": 0,
    },
    "neighbours 20x, entropy": {"refine_passes": 0},
    "default (neighbours 20x + TAO)": {},
    "local 20x + TAO": {"sampler": "local"},
}
TARGETS = {("digits", 5): 0.77, ("digits", 8): 0.88, ("breast_cancer", 5): 0.975}
HEADLINE = "default (neighbours 20x + TAO)"


def split_and_forest(name: str) -> tuple[np.ndarray, ...]:
    """(X_train, X_test, y_train, y_test) and the fitted forest."""
    loader = {"digits": load_digits, "breast_cancer": load_breast_cancer}[name]
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.5, stratify=y, random_state=0
    )
    forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(X_train, y_train)
    return X_train, X_test, y_train, y_test, forest


def measure(name: str, depths: list[int], seeds: int) -> dict[str, np.ndarray]:
    """Fidelity and accuracy, shape (seeds, depths, 2), for every configuration."""
    X_train, X_test, _, y_test, forest = split_and_forest(name)
    results = {}
    for label, config in CONFIGS.items():
        started = time.perf_counter()
        table = np.zeros((seeds, len(depths), 2))
        for seed in range(seeds):
            for j, depth in enumerate(depths):
                tree = TreeSurrogate(
                    max_depth=depth, validation_fraction=0.0, random_state=seed, **config
                ).fit(X_train, forest)
                table[seed, j] = tree.score(X_test, forest), tree.accuracy_on(X_test, y_test)
        results[label] = table
        seconds = (time.perf_counter() - started) / (seeds * len(depths))
        print(f"  {name}: {label} done, {seconds:.1f} s per fit", flush=True)
    return results


def cell(values: np.ndarray) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{values.mean():.3f} [{values.min():.3f}, {values.max():.3f}]"


def report(name: str, depths: list[int], results: dict[str, np.ndarray]) -> None:
    width = max(len(label) for label in results)
    column = 8 if next(iter(results.values())).shape[0] == 1 else 23
    print(f"\n{name}: held-out fidelity to the forest (accuracy on true labels in the last block)")
    print(" " * width + "  " + "".join(f"{'depth ' + str(d):>{column}}" for d in depths))
    for label, table in results.items():
        print(
            f"{label:<{width}}  "
            + "".join(f"{cell(table[:, j, 0]):>{column}}" for j in range(len(depths)))
        )
    print("accuracy on true labels:")
    for label, table in results.items():
        print(
            f"{label:<{width}}  "
            + "".join(f"{cell(table[:, j, 1]):>{column}}" for j in range(len(depths)))
        )
    for (data, depth), target in TARGETS.items():
        if data == name and depth in depths:
            values = results[HEADLINE][:, depths.index(depth), 0]
            plain = results["plain CART, gini"][:, depths.index(depth), 0]
            verdict = "reached" if values.min() >= target else "NOT reached"
            print(
                f"target {name} depth {depth} >= {target}: {HEADLINE} {cell(values)} "
                f"(plain CART {cell(plain)}) -> {verdict}"
                + (" on every seed" if len(values) > 1 and verdict == "reached" else "")
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=1, help="random_state 0..N-1 per surrogate")
    parser.add_argument("--depths", default="3,5,8", help="comma-separated tree depths")
    parser.add_argument("--data", default="digits,breast_cancer", help="digits, breast_cancer")
    args = parser.parse_args()
    depths = [int(d) for d in args.depths.split(",")]
    for name in args.data.split(","):
        report(name, depths, measure(name, depths, args.seeds))


if __name__ == "__main__":
    main()
