"""Stability of LIME's top features: Jaccard@5 between two seeds, against num_samples and time.

breast_cancer with a default random forest (the split and forest of lime_speed.py); each test
row is explained twice with different seeds (labels=(1,), num_features=10, lime's defaults) and
the two top-5 feature sets are compared by Jaccard index, averaged over rows and seed pairs. Then
the num_samples at which ours takes as long as lime at 5000 is found (timed interleaved with
lime) and ours is measured there.

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


def _seconds(explain: Callable[..., Any], rows, forest, num_samples: int) -> list[float]:
    times = []
    for row in rows:
        started = time.perf_counter()
        explain(row, forest.predict_proba, num_samples)
        times.append(time.perf_counter() - started)
    return times


def equal_time(rows, forest, X_train, repeats: int) -> dict[str, Any]:
    """The num_samples at which ours takes as long per explanation as lime at 5000.

    Seconds of ours are fitted as a + b * num_samples from runs at 5000 and 40000 samples,
    interleaved with lime's runs at 5000, and the fit is solved for lime's time; a last
    interleaved round at that num_samples checks it.
    """
    lime = _explainer("lime", X_train, 0)
    ours = _explainer("ours", X_train, 0)
    lime_times: list[float] = []
    ours_times: dict[int, list[float]] = {5000: [], 40000: []}
    for _ in range(repeats):
        lime_times += _seconds(lime, rows, forest, 5000)
        for n in ours_times:
            ours_times[n] += _seconds(ours, rows, forest, n)
    lime_seconds = float(np.median(lime_times))
    slope = (np.median(ours_times[40000]) - np.median(ours_times[5000])) / 35000
    intercept = np.median(ours_times[5000]) - slope * 5000
    n_equal = int((lime_seconds - intercept) / slope) // 1000 * 1000
    check_lime, check_ours = [], []
    for _ in range(repeats):
        check_lime += _seconds(lime, rows, forest, 5000)
        check_ours += _seconds(ours, rows, forest, n_equal)
    return {
        "lime_seconds_at_5000": lime_seconds,
        "ours_seconds_at_5000": float(np.median(ours_times[5000])),
        "ours_seconds_at_40000": float(np.median(ours_times[40000])),
        "num_samples_at_equal_time": n_equal,
        "check_lime_seconds_at_5000": float(np.median(check_lime)),
        "check_ours_seconds_at_equal_time": float(np.median(check_ours)),
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
    parser.add_argument(
        "--equal-time-only", action="store_true", help="skip the table against num_samples"
    )
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()

    X_train, X_test, forest = breast_cancer_forest()
    rows = X_test[: args.rows]
    table: dict[str, dict[int, tuple[float, float]]] = {"lime": {}, "ours": {}, "ours_random": {}}
    if args.equal_time_only:
        args.lime_samples, args.ours_samples = [], []
    for n in args.lime_samples:
        table["lime"][n] = stability("lime", n, rows, forest, X_train, args.pairs)
    for n in args.ours_samples:
        table["ours"][n] = stability("ours", n, rows, forest, X_train, args.pairs)
        table["ours_random"][n] = stability("ours_random", n, rows, forest, X_train, args.pairs)

    print(f"Jaccard@5 between two seeds (mean +- s.e. over {args.rows} rows x {args.pairs} pairs)")
    print(f"{'num_samples':>12}{'lime':>16}{'ours (qmc)':>16}{'ours (random)':>16}")
    for n in sorted(set(args.lime_samples) | set(args.ours_samples)):
        cells: list[str] = []
        for kind in ("lime", "ours", "ours_random"):
            value = table[kind].get(n)
            cells.append(f"{value[0]:.3f} +- {value[1]:.3f}" if value else "-")
        print(f"{n:>12}" + "".join(f"{cell:>16}" for cell in cells))

    timing = equal_time(rows[:10], forest, X_train, repeats=2)
    n_equal = timing["num_samples_at_equal_time"]
    at_equal = stability("ours", n_equal, rows, forest, X_train, args.pairs)
    print(
        f"\nseconds per explanation: lime at 5000 samples {timing['lime_seconds_at_5000']:.4f}; "
        f"ours at 5000 {timing['ours_seconds_at_5000']:.4f}, at 40000 "
        f"{timing['ours_seconds_at_40000']:.4f}"
    )
    print(
        f"equal time: ours affords {n_equal} samples (check: lime "
        f"{timing['check_lime_seconds_at_5000']:.4f} s, ours "
        f"{timing['check_ours_seconds_at_equal_time']:.4f} s); Jaccard@5 there "
        f"{at_equal[0]:.3f} +- {at_equal[1]:.3f}"
    )
    result: dict[str, Any] = {"jaccard": table, "timing": timing, "jaccard_at_equal_time": at_equal}
    print("load average:", " ".join(f"{x:.1f}" for x in os.getloadavg()))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2, default=str)


if __name__ == "__main__":
    main()
