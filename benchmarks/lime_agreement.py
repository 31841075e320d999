"""Agreement with ``lime`` on identical neighbours, weights and labels, per feature_selection.

The neighbourhoods are drawn by ``lime`` itself (tabular: breast_cancer and a random forest;
image: a 64 x 64 picture cut into about 40 SLIC superpixels, a region model; text: three reviews
of the reviews corpus at a time, tf-idf + logistic regression), then both engines fit them:
``lime.lime_base.LimeBase`` and ``surrogate.lime.LimeBase``. Printed: the largest absolute
difference in coefficients, intercept, score (weighted R^2) and local prediction, and whether the
same features were chosen in the same order, for each feature_selection and num_features in
(5, 10).

    python benchmarks/lime_agreement.py
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from typing import Any

import numpy as np
from lime_common import breast_cancer_forest, region_model, synthetic_image


def tabular_neighbourhoods(count: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
    """(data, labels, distances, kernel_width) as lime's LimeTabularExplainer makes them."""
    import sklearn.metrics
    from lime.lime_tabular import LimeTabularExplainer

    X_train, X_test, forest = breast_cancer_forest()
    out = []
    for discretize in (True, False):
        explainer = LimeTabularExplainer(X_train, discretize_continuous=discretize, random_state=0)
        for row in X_test[:count]:
            data, inverse = explainer._LimeTabularExplainer__data_inverse(row, 5000)
            scaled = (data - explainer.scaler.mean_) / explainer.scaler.scale_
            distances = sklearn.metrics.pairwise_distances(scaled, scaled[:1]).ravel()
            out.append((scaled, forest.predict_proba(inverse), distances, np.sqrt(30) * 0.75))
    return out


def image_neighbourhoods(count: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
    """(data, labels, distances, kernel_width) as lime's LimeImageExplainer makes them."""
    import sklearn.metrics
    from lime.lime_image import LimeImageExplainer
    from skimage.segmentation import slic

    out = []
    for seed in range(count):
        image = synthetic_image(64, seed)
        # SLIC gives this small picture enough superpixels (about 40) for selection to matter.
        segments = slic(image, n_segments=50, start_label=0)
        explainer = LimeImageExplainer(random_state=seed)
        data, labels = explainer.data_labels(
            image, np.zeros_like(image), segments, region_model, 1000
        )
        distances = sklearn.metrics.pairwise_distances(data, data[:1], metric="cosine").ravel()
        out.append((data.astype(float), labels, distances, 0.25))
    return out


def text_neighbourhoods(count: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
    """(data, labels, distances, kernel_width) as lime's LimeTextExplainer makes them."""
    from lime.lime_text import IndexedString, LimeTextExplainer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from surrogate.commands.lime import reviews_corpus

    texts, labels = reviews_corpus(seed=0)
    model = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=2000))
    model.fit(texts[:500], labels[:500])
    out = []
    for start in range(500, 500 + 3 * count, 3):
        text = " ".join(texts[start : start + 3])  # three reviews: about 20 distinct words
        explainer = LimeTextExplainer(random_state=0)
        data, yss, distances = explainer._LimeTextExplainer__data_labels_distances(
            IndexedString(text), model.predict_proba, 5000
        )
        out.append((data, yss, distances, 25.0))
    return out


def compare(neighbourhoods: list, feature_selection: str, num_features: int) -> dict[str, Any]:
    """Largest differences between lime's engine and ours over the neighbourhoods."""
    from lime.lime_base import LimeBase as Reference

    from surrogate.lime import LimeBase, exponential_kernel

    worst = {"coef": 0.0, "intercept": 0.0, "score": 0.0, "local_pred": 0.0}
    same_features = True
    for data, labels, distances, width in neighbourhoods:
        kernel = partial(exponential_kernel, kernel_width=width)
        expected = Reference(kernel, random_state=0).explain_instance_with_data(
            data, labels, distances, 1, num_features, feature_selection=feature_selection
        )
        got = LimeBase(kernel).explain_instance_with_data(
            data, labels, distances, 1, num_features, feature_selection=feature_selection
        )
        expected_weights = {int(f): float(w) for f, w in expected[1]}
        got_weights = dict(got[1])
        same_features &= [int(f) for f, _ in expected[1]] == [f for f, _ in got[1]]
        shared = set(expected_weights) & set(got_weights)
        worst["coef"] = max(
            worst["coef"], *(abs(expected_weights[f] - got_weights[f]) for f in shared)
        )
        worst["intercept"] = max(worst["intercept"], abs(float(expected[0]) - got[0]))
        worst["score"] = max(worst["score"], abs(float(expected[2]) - got[2]))
        worst["local_pred"] = max(
            worst["local_pred"], abs(float(expected[3][0]) - float(got[3][0]))
        )
    return {
        **worst,
        "same_features": same_features,
        "neighbourhoods": len(neighbourhoods),
        "features": sorted({data.shape[1] for data, _, _, _ in neighbourhoods}),
    }


def main() -> None:
    """Print the largest differences per domain, feature_selection and num_features."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5, help="instances per domain")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    from surrogate.lime import FEATURE_SELECTIONS

    domains = {
        "tabular": tabular_neighbourhoods(args.count),
        "image": image_neighbourhoods(args.count),
        "text": text_neighbourhoods(args.count),
    }
    results = {}
    print(f"{'domain':<9}{'selection':<19}{'K':>3}{'coef':>10}{'intercept':>11}{'score':>10}"
          f"{'local':>10}  same features")  # fmt: skip
    worst = 0.0
    for domain, neighbourhoods in domains.items():
        for selection in FEATURE_SELECTIONS:
            for k in (5, 10):
                row = compare(neighbourhoods, selection, k)
                results[f"{domain}/{selection}/{k}"] = row
                worst = max(worst, row["coef"], row["intercept"], row["score"], row["local_pred"])
                print(
                    f"{domain:<9}{selection:<19}{k:>3}{row['coef']:>10.1e}"
                    f"{row['intercept']:>11.1e}{row['score']:>10.1e}{row['local_pred']:>10.1e}"
                    f"  {row['same_features']} ({row['neighbourhoods']} neighbourhoods, "
                    f"d = {min(row['features'])}..{max(row['features'])})"
                )
    print(f"largest difference anywhere: {worst:.1e} (target: 1e-6)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
