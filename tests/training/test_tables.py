"""Tables as users have them: reading files with pandas, the schema's codes, and the black box
that is handed what its model was fitted on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from training.blackbox import as_black_box
from training.errors import ConfigError, InputError
from training.sources import (
    fit_if_needed,
    load_dataset,
    match_labels,
    resolve_model,
    tabular_model,
)
from training.tables import MISSING, TableSchema

# Quoted commas, a byte-order mark, a text label, an id column, a boolean and missing values.
CSV = (
    "\ufeffname,city,size,member,label\n"
    '"Smith, Ann",Oslo,1.5,True,yes\n'
    '"Jones, Bo",Rome,,False,no\n'
    '"Lee, Cy",,2.5,True,yes\n'
    '"Kim, Di","Oslo",3.0,False,no\n'
)


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_bytes(CSV.encode("utf-8"))
    return path


def test_a_csv_with_quotes_bom_text_label_and_ids_reads_correctly(csv_path):
    data = load_dataset(csv_path, label_column="label", id_column="name")
    assert data.row_ids == ["Smith, Ann", "Jones, Bo", "Lee, Cy", "Kim, Di"]
    assert data.feature_names == ["city", "size", "member"]
    assert data.y.tolist() == ["yes", "no", "yes", "no"]
    assert data.task == "classification"
    city, size, member = data.table.columns
    assert city.category_names() == ["Oslo", "Rome", MISSING]
    assert size.categories is None
    assert size.has_missing
    assert member.category_names() == ["False", "True"]
    expected = np.array([[0, 1.5, 1], [1, np.nan, 0], [2, 2.5, 1], [0, 3.0, 0]])
    np.testing.assert_array_equal(data.X, expected)
    # Codes back to the table: same values, same dtypes, missing where missing.
    decoded = data.table.decode(data.X)
    pd.testing.assert_frame_equal(decoded, data.frame)
    # The same file as Parquet reads the same.
    parquet = csv_path.with_suffix(".parquet")
    pd.read_csv(csv_path, encoding="utf-8-sig").to_parquet(parquet)
    again = load_dataset(parquet, label_column="label", id_column="name")
    np.testing.assert_array_equal(again.X, data.X)


def test_unreadable_tables_are_errors_that_name_the_column(csv_path):
    with pytest.raises(InputError, match=r"--label-column 'lable' is not a column of 'people'"):
        load_dataset(csv_path, label_column="lable")
    with pytest.raises(InputError, match=r"column 'city' holds non-numeric values \(e.g. 'Oslo'\)"):
        load_dataset(csv_path, label_column="label", id_column="name", categorical=["member"])
    with pytest.raises(InputError, match="categorical column 'town' is not a column"):
        load_dataset(csv_path, label_column="label", id_column="name", categorical=["town"])
    with pytest.raises(InputError, match="label column 'label' holds text, so it cannot be"):
        load_dataset(csv_path, label_column="label", id_column="name", task="regression")
    with pytest.raises(ConfigError, match="--task must be one of"):
        load_dataset(csv_path, label_column="label", task="clustering")
    bad = csv_path.with_name("bad.csv")
    bad.write_text("a,b\n1,2\nx,3\n1,\n")
    data = load_dataset(bad, categorical=["a"])
    assert data.table.columns[0].category_names() == ["1", "x"]
    schema = data.table
    with pytest.raises(InputError, match=r"column 'b' of rows is numeric but holds 'lots'"):
        schema.encode(pd.DataFrame({"a": ["1"], "b": ["lots"]}))
    with pytest.raises(InputError, match=r"column 'a' has the value 'y' \(row 0\)"):
        schema.encode(pd.DataFrame({"a": ["y"], "b": [1.0]}))


def test_labels_the_model_never_saw_are_one_error_naming_them():
    assert match_labels(["no", "yes", "no"], np.array(["no", "yes"])).tolist() == [0, 1, 0]
    assert match_labels([1.0, 0.0], np.array([0, 1])).tolist() == [1, 0]
    with pytest.raises(InputError, match=r"labels \['0', '1'\] are not among the model's classes"):
        match_labels([0, 1, 1], np.array(["no", "yes"]))


def test_a_pipeline_fitted_on_a_dataframe_is_called_with_one(csv_path):
    data = load_dataset(csv_path, label_column="label", id_column="name")
    columns = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["city", "member"]),
        (SimpleImputer(), ["size"]),
    )
    frame = data.frame.fillna({"city": "none"})
    pipeline = make_pipeline(columns, LogisticRegression()).fit(frame, data.y)
    seen: list[object] = []

    def spy(rows: pd.DataFrame) -> np.ndarray:
        seen.append(rows)
        return pipeline.predict_proba(rows.fillna({"city": "none"}))

    box = as_black_box(spy, table=data.table)
    scores = box(data.X)
    np.testing.assert_allclose(scores, pipeline.predict_proba(frame))
    (rows,) = seen
    assert isinstance(rows, pd.DataFrame)
    assert list(rows.dtypes) == list(data.frame.dtypes)
    # A model fitted on codes gets codes.
    forest = RandomForestClassifier(n_estimators=5, random_state=0)
    forest.fit(np.nan_to_num(data.X), data.y)
    assert not as_black_box(forest, table=data.table).wants_frame


def test_the_built_in_model_on_a_table_with_text_and_gaps_is_a_pipeline(csv_path):
    data = load_dataset(csv_path, label_column="label", id_column="name")
    model = tabular_model(RandomForestClassifier(n_estimators=5, random_state=0), data)
    model = fit_if_needed(model, data.model_rows(np.arange(4)), data.y)
    box = as_black_box(model, table=data.table)
    assert box.wants_frame
    assert box(data.X).shape == (4, 2)


def predict_ones(rows: object) -> np.ndarray:
    """A plain predict function: one column of ones."""
    return np.ones(len(rows))  # type: ignore[arg-type]


def make_forest() -> RandomForestClassifier:
    """A factory: no argument needed."""
    return RandomForestClassifier(n_estimators=3)


def test_an_import_path_names_a_predict_function_or_a_factory():
    predictor = resolve_model(f"{__name__}:predict_ones", {})
    assert predictor is predict_ones  # taken as the black box, not called
    assert isinstance(resolve_model(f"{__name__}:make_forest", {}), RandomForestClassifier)


def test_schema_of_an_array_with_code_columns_checks_the_codes():
    schema, _codes = TableSchema.from_data(
        np.array([[0, 1.5], [2, 2.0]]), categorical=[0], feature_names=["kind", "size"]
    )
    assert schema.columns[0].category_names() == ["0", "1", "2"]
    with pytest.raises(InputError, match=r"column 'kind' is categorical and holds codes 0 to 2"):
        schema.encode(np.array([[3, 1.0]]))
    with pytest.raises(InputError, match="column '0' of data is categorical, so it must hold"):
        TableSchema.from_data(np.array([[0.5, 1.0]]), categorical=[0])
