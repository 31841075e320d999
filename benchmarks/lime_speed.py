"""Seconds per LIME explanation, seethrough against the reference package ``lime``.

Both explain the same instances with the same ``num_samples`` in one process, interleaved (lime,
then ours, alternating which goes first), so that load from other processes hits both alike;
figures are medians over instances and repeats. Image times are also given without the black
box's own time (measured inside a wrapper around the classifier function, for both).

    python benchmarks/lime_speed.py            # every case
    python benchmarks/lime_speed.py --cases tabular image --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from lime_common import breast_cancer_forest, photograph, region_model


class Timed:
    """A classifier function that adds up the seconds spent inside it."""

    def __init__(self, function: Callable[[Any], np.ndarray]) -> None:
        self.function = function
        self.seconds = 0.0

    def __call__(self, batch: Any) -> np.ndarray:
        started = time.perf_counter()
        try:
            return self.function(batch)
        finally:
            self.seconds += time.perf_counter() - started


def _measure(run: Callable[[Timed], Any], black_box: Callable[[Any], np.ndarray]) -> tuple:
    timed = Timed(black_box)
    started = time.perf_counter()
    run(timed)
    return time.perf_counter() - started, timed.seconds


def _side_by_side(
    cases: list[tuple[Callable[[Timed], Any], Callable[[Timed], Any]]],
    black_box: Callable[[Any], np.ndarray],
    repeats: int,
) -> dict[str, Any]:
    """Median seconds (total and inside the black box) of lime and ours over cases x repeats."""
    times: dict[str, list[tuple[float, float]]] = {"lime": [], "ours": []}
    for repeat in range(repeats):
        for reference, ours in cases:
            order = [("lime", reference), ("ours", ours)]
            for name, run in order if repeat % 2 == 0 else order[::-1]:
                times[name].append(_measure(run, black_box))
    result: dict[str, Any] = {}
    for name, pairs in times.items():
        total = np.array([t for t, _ in pairs])
        inside = np.array([b for _, b in pairs])
        result[name] = {
            "seconds": float(np.median(total)),
            "black_box_seconds": float(np.median(inside)),
            "seconds_without_black_box": float(np.median(total - inside)),
        }
    result["speedup"] = result["lime"]["seconds"] / result["ours"]["seconds"]
    result["speedup_without_black_box"] = (
        result["lime"]["seconds_without_black_box"] / result["ours"]["seconds_without_black_box"]
    )
    return result


def tabular_cases(repeats: int, instances: int) -> dict[str, Any]:
    """breast_cancer, a default random forest, lime's defaults (and num_features = 5)."""
    from lime.lime_tabular import LimeTabularExplainer as Reference

    from surrogate.lime import LimeTabularExplainer

    X_train, X_test, forest = breast_cancer_forest()
    reference = Reference(X_train, random_state=0)
    ours = LimeTabularExplainer(X_train, random_state=0)
    rows = X_test[:instances]
    results: dict[str, Any] = {}
    for num_features in (10, 5):

        def case(row: np.ndarray, k: int = num_features) -> tuple:
            return (
                lambda f: reference.explain_instance(row, f, num_features=k, num_samples=5000),
                lambda f: ours.explain_instance(row, f, num_features=k, num_samples=5000),
            )

        key = "tabular" if num_features == 10 else "tabular_forward_selection"
        results[key] = _side_by_side([case(row) for row in rows], forest.predict_proba, repeats)
        # explain_many: all rows' neighbours in few black-box calls; seconds per explanation.
        many = []
        for _ in range(repeats):
            started = time.perf_counter()
            ours.explain_many(rows, forest.predict_proba, num_features=num_features)
            many.append((time.perf_counter() - started) / len(rows))
        results[key]["ours_explain_many_seconds"] = float(np.median(many))
        results[key]["speedup_explain_many"] = results[key]["lime"]["seconds"] / float(
            np.median(many)
        )
    return results


def image_cases(repeats: int) -> dict[str, Any]:
    """One 224 x 224 photograph, lime's defaults (quickshift, 1000 samples, top 5 labels), as
    float64 in [0, 1] and as uint8."""
    from lime.lime_image import LimeImageExplainer as Reference

    from surrogate.lime import LimeImageExplainer

    results: dict[str, Any] = {}
    reference = Reference(random_state=0)
    ours = LimeImageExplainer(random_state=0)
    for name, image in (
        ("image_float64", photograph()),
        ("image_uint8", np.round(photograph() * 255).astype(np.uint8)),
    ):
        case = (
            lambda f, image=image: reference.explain_instance(image, f, num_samples=1000),
            lambda f, image=image: ours.explain_instance(image, f, num_samples=1000),
        )
        results[name] = _side_by_side([case], region_model, repeats)
        results[name]["superpixels"] = int(
            ours.explain_instance(image, region_model, num_samples=10).segments.max() + 1
        )
        # Both spend this in the same scikit-image call before any sampling.
        results[name]["quickshift_seconds"] = _quickshift_seconds(image, repeats)
    return results


def _quickshift_seconds(image: np.ndarray, repeats: int) -> float:
    from skimage.segmentation import quickshift

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        quickshift(image, kernel_size=4, max_dist=200, ratio=0.2, rng=42)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def text_cases(repeats: int) -> dict[str, Any]:
    """The reviews corpus, tf-idf + logistic regression, lime's defaults (5000 samples)."""
    from lime.lime_text import LimeTextExplainer as Reference
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from surrogate.commands.lime import reviews_corpus
    from surrogate.lime import LimeTextExplainer

    texts, labels = reviews_corpus(seed=0)
    model = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=2000))
    model.fit(texts[:500], labels[:500])
    reference = Reference(random_state=0)
    ours = LimeTextExplainer(random_state=0)
    cases = [
        (
            lambda f, text=text: reference.explain_instance(text, f),
            lambda f, text=text: ours.explain_instance(text, f),
        )
        for text in texts[500:505]
    ]
    return {"text": _side_by_side(cases, model.predict_proba, repeats)}


def main() -> None:
    """Run the cases asked for and print (and optionally save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["tabular", "image", "text"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--instances", type=int, default=10, help="tabular rows explained")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if "tabular" in args.cases:
        results.update(tabular_cases(args.repeats, args.instances))
    if "image" in args.cases:
        results.update(image_cases(args.repeats))
    if "text" in args.cases:
        results.update(text_cases(args.repeats))
    print(f"{'case':<28}{'lime s':>9}{'ours s':>9}{'speedup':>9}{'w/o bb':>9}")
    for case, figures in results.items():
        print(
            f"{case:<28}{figures['lime']['seconds']:>9.4f}{figures['ours']['seconds']:>9.4f}"
            f"{figures['speedup']:>8.1f}x{figures['speedup_without_black_box']:>8.1f}x"
        )
        if "quickshift_seconds" in figures:
            segmentation = figures["quickshift_seconds"]
            lime_rest = figures["lime"]["seconds_without_black_box"] - segmentation
            ours_rest = figures["ours"]["seconds_without_black_box"] - segmentation
            print(
                f"  quickshift {segmentation:.4f} s ({figures['superpixels']} superpixels) in "
                f"both; without it and the black box: lime {lime_rest:.4f} s, ours "
                f"{ours_rest:.4f} s, {lime_rest / ours_rest:.1f}x"
            )
        if "ours_explain_many_seconds" in figures:
            print(
                f"{'  ours, explain_many':<28}{'':>9}{figures['ours_explain_many_seconds']:>9.4f}"
                f"{figures['speedup_explain_many']:>8.1f}x"
            )
        for name in ("lime", "ours"):
            part = figures[name]
            print(
                f"  {name}: black box {part['black_box_seconds']:.4f} s, "
                f"the rest {part['seconds_without_black_box']:.4f} s"
            )
    print("load average:", " ".join(f"{x:.1f}" for x in os.getloadavg()))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
