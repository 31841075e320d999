"""TreeSurrogate on tables: DataFrames with text, missing values and Pipelines, read as columns."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from surrogate.__main__ import main
from surrogate.commands.tree import _warnings
from surrogate.tree import TreeSurrogate
from surrogate.tree._sampling import draw_oracle_samples
from training.blackbox import BlackBox
from training.errors import InputError
from training.tables import TableSchema

CLASSES = ["1st", "2nd", "3rd"]


def _passengers(n_rows: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Text columns, a number with missing values, and yes/no labels that depend on all."""
    rng = np.random.RandomState(seed)
    frame = pd.DataFrame(
        {
            "sex": rng.choice(["female", "male"], size=n_rows),
            "age": rng.uniform(1, 70, size=n_rows).round(),
            "passengerClass": rng.choice(CLASSES, size=n_rows, p=[0.25, 0.25, 0.5]),
        }
    )
    frame.loc[rng.rand(n_rows) < 0.2, "age"] = np.nan
    survives = (frame.sex == "female") & (frame.passengerClass != "3rd")
    survives |= frame.age.fillna(30) < 10
    survives ^= rng.rand(n_rows) < 0.1
    return frame, np.where(survives, "yes", "no")


def _pipeline(frame: pd.DataFrame, labels: np.ndarray) -> Pipeline:
    columns = ColumnTransformer(
        [
            ("text", OneHotEncoder(handle_unknown="ignore"), ["sex", "passengerClass"]),
            ("numbers", SimpleImputer(strategy="median"), ["age"]),
        ]
    )
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    return Pipeline([("columns", columns), ("model", model)]).fit(frame, labels)


def _by_hand(frame: pd.DataFrame) -> np.ndarray:
    """Codes as a user would write them: categories numbered in sorted order, NaN kept."""
    return np.column_stack(
        [
            (frame.sex == "male").to_numpy(float),
            frame.age.to_numpy(float),
            frame.passengerClass.map(CLASSES.index).to_numpy(float),
        ]
    )


def _from_hand(codes: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sex": np.where(codes[:, 0] == 1, "male", "female"),
            "age": codes[:, 1],
            "passengerClass": np.asarray(CLASSES)[codes[:, 2].astype(int)],
        }
    )


def test_a_frame_and_a_pipeline_give_the_tree_of_the_same_rows_encoded_by_hand():
    frame, labels = _passengers()
    pipeline = _pipeline(frame, labels)
    options = {"max_depth": 3, "oracle_samples": 5, "random_state": 0}
    direct = TreeSurrogate(**options).fit(frame, pipeline, labels)
    wrapped = TreeSurrogate(**options).fit(frame, BlackBox(pipeline), labels)  # no table

    def decoding_model(codes: np.ndarray) -> np.ndarray:
        return pipeline.predict_proba(_from_hand(codes))

    by_hand = TreeSurrogate(categorical_features=[0, 2], **options)
    by_hand.fit(_by_hand(frame), BlackBox(decoding_model, probabilities=True), labels == "yes")
    for other in (wrapped, by_hand):
        assert np.array_equal(direct.tree_.feature, other.tree_.feature)
        assert np.array_equal(direct.tree_.threshold, other.tree_.threshold, equal_nan=True)
        assert direct.fidelity_ == other.fidelity_
        assert direct.accuracy_ == other.accuracy_
    assert direct.fidelity_ > 0.85
    assert 0.6 < direct.accuracy_ <= 1.0  # yes/no labels matched to the Pipeline's classes_
    assert list(direct.classes_) == ["no", "yes"]
    assert set(direct.predict(frame)) <= {"no", "yes"}
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        from_codes = direct.predict(direct.table_.encode(frame.iloc[:50]))
    assert np.array_equal(direct.predict(frame.iloc[:50]), from_codes)
    assert direct.score(frame, pipeline) == by_hand.score(_by_hand(frame), decoding_model)
    said = direct.black_box_predictions(frame, pipeline)
    assert np.array_equal(said, pipeline.predict(frame))
    assert np.mean(direct.predict(frame) == said) == direct.score(frame, pipeline)


def test_a_numeric_frame_gives_the_tree_of_the_same_array():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 3))

    def model(rows):  # a plain function is handed the table as the user has it
        first = np.asarray(rows)[:, 0]
        return np.column_stack([first > 0.3, first <= 0.3]).astype(float)

    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    array = TreeSurrogate(max_depth=3, oracle_samples=4, random_state=1)
    array.fit(X, BlackBox(model, probabilities=True))
    table = TreeSurrogate(max_depth=3, oracle_samples=4, random_state=1)
    table.fit(frame, BlackBox(model, probabilities=True))
    assert table.export_text(["x0", "x1", "x2"]) == array.export_text()
    assert table.fidelity_ == array.fidelity_


def test_oracle_samples_take_categories_and_missing_values_whole_from_seed_or_partner():
    rng = np.random.RandomState(0)
    n_rows = 60
    codes = np.column_stack(
        [
            rng.randint(0, 3, n_rows),
            rng.normal(size=n_rows),
            rng.randint(0, 2, n_rows) * 2.0,
            rng.randint(2007, 2010, n_rows),  # whole numbers: a year
        ]
    )
    codes[rng.rand(n_rows) < 0.3, 1] = np.nan
    # neighbours in this space are known: row i's nearest other row is i - 1 (row 0's is 1)
    units = (np.arange(n_rows, dtype=float) ** 2)[:, None]
    samples = draw_oracle_samples(
        codes,
        10,
        sampler="neighbours",
        noise=0.0,
        n_neighbors=1,
        rng=np.random.RandomState(0),
        categorical=[0, 2],
        units=units,
    )
    seed = np.repeat(np.arange(n_rows), 10)
    partner = np.where(seed == 0, 1, seed - 1)
    for column in (0, 2):
        values = samples[:, column]
        assert set(values) <= set(codes[:, column])  # code 1 of column 2 is never seen
        assert np.all((values == codes[seed, column]) | (values == codes[partner, column]))
        differs = codes[seed, column] != codes[partner, column]
        assert 0.2 < np.mean(values[differs] == codes[partner[differs], column]) < 0.8
    whole = np.isnan(codes[seed, 1]) | np.isnan(codes[partner, 1])
    taken = samples[whole, 1]
    from_seed = np.isclose(taken, codes[seed[whole], 1], equal_nan=True)
    from_partner = np.isclose(taken, codes[partner[whole], 1], equal_nan=True)
    assert np.all(from_seed | from_partner)
    assert from_partner.any()
    assert (~from_partner).any()
    noisy = draw_oracle_samples(
        codes,
        10,
        sampler="neighbours",
        noise=0.3,
        n_neighbors=3,
        rng=np.random.RandomState(0),
        categorical=[0, 2],
    )
    assert np.all(noisy[:, 3] == np.round(noisy[:, 3]))
    assert len(set(noisy[:, 3])) == 3  # 2007 to 2009, clipped to the years seen
    assert len(set(noisy[~np.isnan(noisy[:, 1]), 1])) > 300  # other numbers are not rounded


def test_the_black_box_only_ever_sees_seen_categories_as_text():
    frame = _passengers(200)[0]
    frame = frame[frame.passengerClass != "2nd"].reset_index(drop=True)
    seen: list[pd.DataFrame] = []

    def model(rows: pd.DataFrame) -> np.ndarray:
        seen.append(rows)
        women = (rows.sex == "female").to_numpy(float)
        return np.column_stack([1 - women, women])

    TreeSurrogate(max_depth=2, oracle_samples=10, random_state=0).fit(frame, model)
    asked = pd.concat(seen)
    assert len(asked) == len(frame) * 11 - 10 * round(0.2 * len(frame))  # rows + samples
    assert set(asked.sex) == {"female", "male"}
    assert set(asked.passengerClass) == {"1st", "3rd"}
    assert asked.age.isna().any()  # missing ages are asked about as missing


def test_splits_read_as_categories_and_missing_values():
    frame, _ = _passengers(300)

    def model(rows: pd.DataFrame) -> np.ndarray:
        yes = ((rows.sex == "female") | rows.age.isna()).to_numpy(float)
        return np.column_stack([1 - yes, yes])

    surrogate = TreeSurrogate(max_depth=2, oracle_samples=3, random_state=0)
    surrogate.fit(frame, BlackBox(model, probabilities=True))
    assert surrogate.fidelity_ == 1.0
    text = surrogate.export_text()
    assert "sex in {female}" in text  # a category's split reads as a set, whichever it tests
    assert "sex in {male}" in text
    assert "age is missing" in text
    conditions = {c for rule in surrogate.rules() for c in rule["conditions"]}
    assert conditions <= {
        "sex in {female}",
        "sex in {male}",
        "age is missing",
        "age is not missing",
    }
    (no_rule,) = [rule for rule in surrogate.rules() if rule["prediction"] == "0"]
    assert set(no_rule["conditions"]) == {"sex in {male}", "age is not missing"}
    node_tests = [node["right_when"] for node in surrogate.to_dict()["nodes"] if node["right_when"]]
    assert set(node_tests) <= {"sex in {female}", "sex in {male}", "age is missing"}


def test_labels_the_model_never_saw_are_one_error_naming_them():
    frame, labels = _passengers(200)
    pipeline = _pipeline(frame, labels)
    wrong = labels.astype(object)
    wrong[:3] = "maybe"
    with pytest.raises(InputError, match=r"\['maybe'\] are not among the model's classes"):
        TreeSurrogate(max_depth=2, oracle_samples=0).fit(frame, pipeline, wrong)
    fitted = TreeSurrogate(max_depth=2, oracle_samples=0).fit(frame, pipeline, labels)
    with pytest.raises(InputError, match=r"\['0', '1'\] are not among .*\['no', 'yes'\]"):
        fitted.accuracy_on(frame, (labels == "yes").astype(int))


def test_a_plain_array_with_nan_points_to_tables():
    X = np.random.RandomState(0).normal(size=(50, 2))
    X[3, 1] = np.nan
    with pytest.raises(InputError, match="categorical_features=\\[\\]"):
        TreeSurrogate(max_depth=2).fit(X, lambda rows: rows[:, 0])
    fitted = TreeSurrogate(max_depth=2, categorical_features=[], random_state=0)
    assert fitted.fit(X, lambda rows: np.nan_to_num(rows[:, 0])).task_ == "regression"


def test_a_plain_tree_more_faithful_than_the_surrogate_is_a_warning():
    assert _warnings({"surrogate": {"fidelity": 0.90}, "plain_tree": {"fidelity": 0.90}}) == []
    (warning,) = _warnings({"surrogate": {"fidelity": 0.88}, "plain_tree": {"fidelity": 0.91}})
    assert "0.910 against 0.880" in warning


def test_the_command_reads_a_csv_with_quotes_a_bom_text_labels_and_row_ids(tmp_path):
    frame, labels = _passengers(240, seed=1)
    frame.insert(0, "name", [f"Passenger, No. {i}" for i in range(len(frame))])  # quoted commas
    frame["survived"] = labels
    path = tmp_path / "passengers.csv"
    frame.to_csv(path, index=False, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    out = tmp_path / "run"
    options = ["--data", str(path), "--label-column", "survived", "--id-column", "name"]
    options += ["--max-depth", "3", "--oracle-samples", "3", "--out", str(out)]
    assert main(["tree", *options]) == 0
    results = json.loads((out / "tree.json").read_text())
    assert results["data"]["features"] == 3  # the id and the label are not features
    assert results["tree"]["features"] == ["sex", "age", "passengerClass"]
    assert results["tree"]["outputs"] == ["no", "yes"]
    assert 0.6 < results["black_box"]["accuracy"] <= 1.0
    assert 0.6 < results["surrogate"]["accuracy"] <= 1.0
    rules = (out / "rules.txt").read_text()
    assert "sex in {" in rules or "passengerClass in {" in rules
    assert not re.search(r"\w=\w", rules)  # no one-hot column names
    disagreements = results["disagreements"]
    test_rows = results["data"]["test_rows"]
    assert disagreements["count"] == round((1 - results["surrogate"]["fidelity"]) * test_rows)
    names = set(frame.name)
    assert all(row["row"] in names for row in disagreements["rows"])
    page = (out / "index.html").read_text()
    worse = results["plain_tree"]["fidelity"] > results["surrogate"]["fidelity"]
    assert bool(results["warnings"]) == worse
    assert ("Probably wrong" in page) == worse
    if disagreements["rows"]:
        assert disagreements["rows"][0]["row"] in page


def test_a_category_never_seen_in_training_goes_down_the_not_in_branches():
    frame, labels = _passengers(300)
    pipeline = _pipeline(frame, labels)  # its encoder ignores unknown categories
    surrogate = TreeSurrogate(max_depth=3, oracle_samples=3, random_state=0)
    surrogate.fit(frame, pipeline, labels)
    rows = frame.iloc[:40].copy()
    rows["passengerClass"] = "4th"
    codes = surrogate.table_.encode(frame.iloc[:40].assign(passengerClass="1st"))
    codes[:, 2] = -1  # in no category's set
    assert np.array_equal(
        surrogate.apply(rows), surrogate.tree_.apply(surrogate.design_.matrix(codes))
    )
    assert (rows.passengerClass == "4th").all()  # the caller's rows are left as they are
    reached = set(surrogate.apply(rows))
    for rule in surrogate.rules():
        tests = [c for c in rule["conditions"] if c.startswith("passengerClass")]
        if rule["leaf"] in reached:
            assert all(c.startswith("passengerClass not in") for c in tests)
    assert surrogate.score(rows, pipeline) == np.mean(
        surrogate.predict(rows) == pipeline.predict(rows)
    )


def test_a_black_box_with_a_table_of_its_own_is_handed_dataframes():
    frame, labels = _passengers(300)
    pipeline = _pipeline(frame, labels)
    box = BlackBox(pipeline, table=TableSchema.from_data(frame)[0])  # every row's columns
    kept = (frame.age.notna() & (frame.passengerClass != "2nd")).to_numpy()
    rows, rows_labels = frame[kept].reset_index(drop=True), labels[kept]  # fewer categories
    options = {"max_depth": 3, "oracle_samples": 3, "random_state": 0}
    through_box = TreeSurrogate(**options).fit(rows, box, rows_labels)
    direct = TreeSurrogate(**options).fit(rows, pipeline, rows_labels)
    assert through_box.table_.columns != box.table.columns
    assert through_box.export_text() == direct.export_text()
    assert through_box.fidelity_ == direct.fidelity_
    assert through_box.score(frame, box) == direct.score(frame, pipeline)  # 2nd class too


def test_each_row_meets_the_rule_of_its_leaf_and_no_other():
    frame, labels = _passengers(400)
    pipeline = _pipeline(frame, labels)
    for depth in (3, 5):
        surrogate = TreeSurrogate(max_depth=depth, oracle_samples=3, random_state=0)
        surrogate.fit(frame, pipeline)
        rules = surrogate.rules()
        leaves = surrogate.apply(frame)
        for row, leaf in zip(frame.itertuples(index=False), leaves, strict=True):
            met = [
                rule["leaf"] for rule in rules if all(_holds(c, row) for c in rule["conditions"])
            ]
            assert met == [leaf]
        kinds = " ".join(c for rule in rules for c in rule["conditions"])
        assert " in {" in kinds
        assert "age" in kinds


def _holds(condition: str, row: Any) -> bool:
    """Evaluate a rule's condition (``sex in {female}``, ``age is missing``, ...) on a row."""
    if condition.startswith("(") and condition.endswith(")"):
        return any(_holds(part, row) for part in condition[1:-1].split(" or "))
    values = row._asdict()
    found = re.fullmatch(r"(\w+) (not in|in) \{(.*)\}", condition)
    if found:
        name, op, categories = found.groups()
        return (str(values[name]) in categories.split(", ")) == (op == "in")
    found = re.fullmatch(r"(\w+) is (not )?missing", condition)
    if found:
        return pd.isna(values[found.group(1)]) != bool(found.group(2))
    found = re.fullmatch(r"(\S+) < (\w+) <= (\S+)", condition)
    if found:
        low, name, high = found.groups()
        return bool(float(low) < values[name] <= float(high))
    name, op, bound = re.fullmatch(r"(\w+) (<=|>) (\S+)", condition).groups()
    value = values[name]
    return bool(value <= float(bound) if op == "<=" else value > float(bound))


def test_a_threshold_says_where_missing_rows_go_until_the_path_has_tested_it():
    frame, _ = _passengers(400)

    def model(rows: pd.DataFrame) -> np.ndarray:
        yes = (rows.age.isna() | (rows.age < 20)).to_numpy(float)
        return np.column_stack([1 - yes, yes])

    surrogate = TreeSurrogate(max_depth=3, oracle_samples=3, random_state=0)
    surrogate.fit(frame, BlackBox(model, probabilities=True))
    assert surrogate.fidelity_ == 1.0
    rules = {tuple(rule["conditions"]): rule["prediction"] for rule in surrogate.rules()}
    assert rules[("age is missing",)] == "1"  # the missing rows, exactly, are one rule
    path: list[str] = []
    tested_missing = False
    for line in surrogate.export_text().splitlines():
        depth = line.index("|---") // 4
        path[depth:] = [line.split("|--- ")[1]]
        tested_missing |= path[-1] == "age is missing"
        if "or age is missing" in line:
            assert not any(test.startswith("age is") for test in path[:depth])
    assert tested_missing


def test_the_command_regresses_a_csv_whose_labels_are_values(tmp_path):
    frame, _ = _passengers(240, seed=2)
    frame["fare"] = np.where(frame.passengerClass == "1st", 80.0, 12.0) + frame.age.fillna(30) / 4
    frame["ticket"] = [f"T{i}" for i in range(len(frame))]
    path = tmp_path / "fares.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "run"
    options = ["--data", str(path), "--label-column", "fare", "--id-column", "ticket"]
    options += ["--max-depth", "2", "--oracle-samples", "2", "--out", str(out)]
    assert main(["tree", *options]) == 0
    results = json.loads((out / "tree.json").read_text())
    assert results["tree"]["task"] == "regression"
    assert results["fidelity_definition"].startswith("R^2")
    assert 0.8 < results["surrogate"]["fidelity"] <= 1.0  # class and age make the fare
    assert "passengerClass in {1st}" in (out / "rules.txt").read_text()
    worst = results["disagreements"]["rows"]
    assert worst[0]["row"].startswith("T")
    gaps = [abs(row["black_box"] - row["surrogate"]) for row in worst]
    assert gaps == sorted(gaps, reverse=True)


def test_boolean_and_categorical_columns_reach_the_model_with_their_dtypes():
    rng = np.random.RandomState(0)
    n_rows = 300
    frame = pd.DataFrame(
        {
            "alone": rng.rand(n_rows) < 0.4,
            "deck": pd.Categorical(rng.choice(["A", "B", "C"], n_rows)),
            "fare": rng.uniform(5, 100, n_rows).round(),
            "year": rng.randint(1910, 1913, n_rows),
        }
    )
    asked: list[pd.DataFrame] = []

    def model(rows: pd.DataFrame) -> np.ndarray:
        asked.append(rows)
        yes = (rows.alone & (rows.deck == "B")).to_numpy(float)
        return np.column_stack([1 - yes, yes])

    surrogate = TreeSurrogate(max_depth=3, oracle_samples=3, random_state=0)
    surrogate.fit(frame, BlackBox(model, probabilities=True))
    assert surrogate.fidelity_ == 1.0
    for rows in asked:  # real rows and oracle samples alike
        assert rows.dtypes.to_dict() == frame.dtypes.to_dict()
    (yes_rule,) = [rule for rule in surrogate.rules() if rule["prediction"] == "1"]
    assert sorted(yes_rule["conditions"]) == ["alone in {True}", "deck in {B}"]
