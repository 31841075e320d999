"""Peak memory of LIME on a wide table: 200 rows x 5000 columns, default options.

Neighbourhoods are held, and the black box is called, a memory budget at a time
(``surrogate.lime._base.MEMORY_BUDGET``: an eighth of the machine's memory, at most 2 GiB), so
the peak stays bounded however wide the table; explanations do not depend on the grouping.
Measure the peak with GNU time:

    /usr/bin/time -v python -m benchmarks.lime_memory 2>&1 | grep -E "Maximum resident|LIME"
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--columns", type=int, default=5000)
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression

    from surrogate.lime import LimeTabularExplainer
    from surrogate.lime._base import MEMORY_BUDGET

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, args.columns))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = LogisticRegression(max_iter=500).fit(X, y)
    explainer = LimeTabularExplainer(X, random_state=0)
    started = time.perf_counter()
    explanations = explainer.explain_many(X[: args.rows], model.predict_proba)
    seconds = time.perf_counter() - started
    top = {name for e in explanations for name, _ in e.as_list()[:2]}
    print(
        f"LIME: {args.rows} rows x {args.columns} columns, 5000 neighbours each, memory budget "
        f"{MEMORY_BUDGET / 2**30:.2f} GiB: {seconds:.1f} s ({seconds / args.rows:.2f} s per "
        f"explanation); top-2 features seen: {sorted(top)[:6]}"
    )
    check = explainer.explain_instance(X[args.rows - 1], model.predict_proba)
    print(
        f"LIME: last row alone equals its explanation in the batch: "
        f"{check.as_list() == explanations[-1].as_list()}"
    )


if __name__ == "__main__":
    main()
