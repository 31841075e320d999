"""Stability of LIME's top features: Jaccard@5 between two seeds, against num_samples and time.

breast_cancer with a default random forest (the split and forest of lime_speed.py); each test
row is explained twice with different seeds (labels=(1,), num_features=10, lime's defaults) and
the two top-5 feature sets are compared by Jaccard index, averaged over rows and seed pairs. Then
the time lime needs for 5000 samples is measured, interleaved with ours at growing num_samples,
and ours is run at the largest num_samples that fits that time.

    python benchmarks/lime_stability.py
    python benchmarks/lime_stability.py --rows 20 --pairs 3
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from lime_common import breast_cancer_forest


def _top(pairs: list[tuple[int, float]], k: int = 5) -> set[int]:
    return {int(f) for f, _ in sorted(pairs, key=lambda p: -abs(p[1]))[:k]}


def _jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b)


def _explainer(kind: str, X_train: np.ndarray, seed: int) -> Callable[..., Any]:
    """A function (row, predict_fn, num_samples) -> label-1 weights, for lime or ours."""
    if kind == "lime":
        from lime.lime_tabular import LimeTabularExplainer as Reference

        reference = Reference(X_train, random_state=seed)
        return lambda row, f, n: reference.explain_instance(row, f, num_samples=n).as_map()[1]
    from surrogate.lime import LimeTabularExplainer

    sampler = "qmc" if kind == "ours" else "random"
    ours = LimeTabularExplainer(X_train, random_state=seed, sampler=sampler)
    return lambda row, f, n: ours.explain_instance(row, f, num_samples=n).as_map()[1]


def stability(kind: str, num_samples: int, rows: np.ndarray, forest: Any, X_train, pairs: int):
    """Mean Jaccard@5 between seeds 2p and 2p + 1, over rows and pairs."""
    scores = []
    for pair in range(pairs):
        first = _explainer(kind, X_train, 2 * pair)
        second = _explainer(kind, X_train, 2 * pair + 1)
        for row in rows:
            a = _top(first(row, forest.predict_proba, num_samples))
            b = _top(second(row, forest.predict_proba, num_samples))
            scores.append(_jaccard(a, b))
    return float(np.mean(scores)), float(np.std(scores) / np.sqrt(len(scores)))


def equal_time(rows, forest, X_train, candidates: list[int], repeats: int) -> dict[str, Any]:
    """lime's seconds at 5000 samples, and ours' seconds at each candidate, interleaved."""
    lime = _explainer("lime", X_train, 0)
    ours = _explainer("ours", X_train, 0)
    lime_times: list[float] = []
    ours_times: dict[int, list[float]] = {n: [] for n in candidates}
    for _ in range(repeats):
        for row in rows:
            started = time.perf_counter()
            lime(row, forest.predict_proba, 5000)
            lime_times.append(time.perf_counter() - started)
            for n in candidates:
                started = time.perf_counter()
                ours(row, forest.predict_proba, n)
                ours_times[n].append(time.perf_counter() - started)
    lime_seconds = float(np.median(lime_times))
    ours_seconds = {n: float(np.median(t)) for n, t in ours_times.items()}
    affordable = [n for n in candidates if ours_seconds[n] <= lime_seconds]
    return {
        "lime_seconds_at_5000": lime_seconds,
        "ours_seconds": ours_seconds,
        "num_samples_at_equal_time": max(affordable) if affordable else None,
    }


def main() -> None:
    """Print Jaccard@5 against num_samples for lime and ours, and at lime's 5000-sample time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20, help="test rows explained")
    parser.add_argument("--pairs", type=int, default=3, help="seed pairs per row")
    parser.add_argument("--lime-samples", type=int, nargs="+", default=[1000, 2000, 5000, 10000])
    parser.add_argument(
        "--ours-samples", type=int, nargs="+", default=[1000, 2000, 5000, 10000, 20000, 40000]
    )
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()

    X_train, X_test, forest = breast_cancer_forest()
    rows = X_test[: args.rows]
    table: dict[str, dict[int, tuple[float, float]]] = {"lime": {}, "ours": {}, "ours_random": {}}
    for n in args.lime_samples:
        table["lime"][n] = stability("lime", n, rows, forest, X_train, args.pairs)
    for n in args.ours_samples:
        table["ours"][n] = stability("ours", n, rows, forest, X_train, args.pairs)
        table["ours_random"][n] = stability("ours_random", n, rows, forest, X_train, args.pairs)

    print(f"Jaccard@5 between two seeds (mean +- s.e. over {args.rows} rows x {args.pairs} pairs)")
    print(f"{'num_samples':>12}{'lime':>16}{'ours (qmc)':>16}{'ours (random)':>16}")
    for n in sorted(set(args.lime_samples) | set(args.ours_samples)):
        cells = []
        for kind in ("lime", "ours", "ours_random"):
            value = table[kind].get(n)
            cells.append(f"{value[0]:.3f} +- {value[1]:.3f}" if value else "-")
        print(f"{n:>12}" + "".join(f"{cell:>16}" for cell in cells))

    timing = equal_time(rows[:10], forest, X_train, args.ours_samples, repeats=2)
    n_equal = timing["num_samples_at_equal_time"]
    print(f"\nlime, 5000 samples: {timing['lime_seconds_at_5000']:.4f} s per explanation")
    for n, seconds in timing["ours_seconds"].items():
        print(f"ours, {n:>6} samples: {seconds:.4f} s")
    result: dict[str, Any] = {"jaccard": table, "timing": timing}
    if n_equal is not None:
        at_equal = table["ours"].get(n_equal) or stability(
            "ours", n_equal, rows, forest, X_train, args.pairs
        )
        result["jaccard_at_equal_time"] = at_equal
        print(
            f"at lime's 5000-sample time ours affords {n_equal} samples: Jaccard@5 "
            f"{at_equal[0]:.3f} +- {at_equal[1]:.3f} (lime at 5000: {table['lime'][5000][0]:.3f})"
            if 5000 in table["lime"]
            else f"at lime's 5000-sample time ours affords {n_equal} samples: {at_equal[0]:.3f}"
        )
    print("load average:", " ".join(f"{x:.1f}" for x in os.getloadavg()))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2, default=str)


if __name__ == "__main__":
    main()
