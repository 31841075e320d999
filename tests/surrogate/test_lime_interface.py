"""lime's interface on our explainers: the types, names and printouts a lime user relies on."""

from __future__ import annotations

import html
import re
import sys
import types
from functools import partial

import numpy as np
import pytest
from lime.lime_base import LimeBase as ReferenceBase
from lime.lime_text import IndexedString, TextDomainMapper
from sklearn.linear_model import LinearRegression, Ridge

from surrogate.lime import (
    LimeBase,
    LimeImageExplainer,
    LimeTabularExplainer,
    LimeTextExplainer,
    RecurrentTabularExplainer,
    exponential_kernel,
)

WEIGHTS = np.array([2.0, -1.0, 0.5, 0.0])
DOCUMENT = "good plot, bad acting; a good film and a good score, but bad sound"


def _table(n=400, seed=0):
    return np.random.default_rng(seed).normal(size=(n, len(WEIGHTS)))


def _proba(rows):
    p = 1 / (1 + np.exp(-(np.asarray(rows) @ WEIGHTS)))
    return np.column_stack([1 - p, p])


def _three_classes(rows):
    logits = np.asarray(rows)[:, :3] * [1.0, -1.0, 0.5]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _numbers(text):
    return [float(x) for x in re.findall(r"-?\d+\.\d+(?:e[-+]\d+)?", text)]


@pytest.mark.parametrize("regressor", [None, LinearRegression])
def test_lime_base_returns_and_prints_what_lime_does(regressor, capsys):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 2, (800, 6)).astype(float)
    data[0] = 1.0
    labels = _proba(data[:, :4] * 2 - 1) + 0.01 * rng.normal(size=(800, 2))
    distances = np.sqrt(((data - data[0]) ** 2).sum(axis=1))
    kernel = partial(exponential_kernel, kernel_width=1.5)
    theirs = ReferenceBase(kernel, verbose=True).explain_instance_with_data(
        data, labels, distances, 1, 3, model_regressor=regressor and regressor()
    )
    printed_theirs = capsys.readouterr().out
    ours = LimeBase(kernel, verbose=True).explain_instance_with_data(
        data, labels, distances, 1, 3, model_regressor=regressor and regressor()
    )
    printed_ours = capsys.readouterr().out
    assert [f for f, _ in ours[1]] == [f for f, _ in theirs[1]]
    np.testing.assert_allclose([w for _, w in ours[1]], [w for _, w in theirs[1]], atol=1e-6)
    np.testing.assert_allclose([ours[0], ours[2]], [theirs[0], theirs[2]], atol=1e-6)
    assert isinstance(ours[3], np.ndarray)
    assert ours[3].shape == theirs[3].shape == (1,)
    np.testing.assert_allclose(ours[3], theirs[3], atol=1e-6)
    assert [line.split()[0] for line in printed_ours.splitlines()] == [
        "Intercept",
        "Prediction_local",
        "Right:",
    ]
    assert [line.split()[0] for line in printed_ours.splitlines()] == [
        line.split()[0] for line in printed_theirs.splitlines()
    ]
    np.testing.assert_allclose(_numbers(printed_ours), _numbers(printed_theirs), atol=1e-6)


def test_score_and_local_pred_are_lime_types_of_the_last_label_fitted():
    explainer = LimeTabularExplainer(_table(), random_state=0)
    explanation = explainer.explain_instance(
        np.array([1.0, -1.0, 0.2, 0.0]), _three_classes, top_labels=2, num_samples=500
    )
    best = explanation.top_labels[0]  # lime fits the best label last
    assert isinstance(explanation.score, float)
    assert explanation.score == explanation.scores[best]
    assert isinstance(explanation.local_pred, np.ndarray)
    assert explanation.local_pred.shape == (1,)
    assert explanation.local_pred[0] == explanation.local_preds[best]
    assert set(explanation.scores) == set(explanation.local_preds) == set(explanation.top_labels)


def test_regression_has_lime_labels_and_predicted_value_range(capsys):
    X = _table()
    explainer = LimeTabularExplainer(X, mode="regression", random_state=0, verbose=True)
    row = X[3]
    explanation = explainer.explain_instance(row, lambda rows: rows @ WEIGHTS, num_samples=600)
    assert "Right: " in capsys.readouterr().out
    assert list(explanation.as_map()) == [0, 1]
    assert explanation.as_map()[0] == [(f, -w) for f, w in explanation.as_map()[1]]
    assert explanation.intercept[0] == explanation.intercept[1]
    assert explanation.as_list() == [
        (explanation.feature_names[f], w) for f, w in explanation.as_map()[1]
    ]
    assert explanation.predicted_value == pytest.approx(float(row @ WEIGHTS))
    assert explanation.min_value < explanation.predicted_value < explanation.max_value
    assert explanation.class_names == ["negative", "positive"]
    again = type(explanation).from_json(explanation.to_json())
    assert again == explanation
    assert again.predicted_value == explanation.predicted_value


def test_model_regressor_replaces_the_ridge_and_ridge_alpha_1_is_the_fast_path():
    explainer = LimeTabularExplainer(_table(), random_state=0)
    row = np.array([0.5, -0.3, 1.0, 0.0])
    fast = explainer.explain_instance(row, _proba, num_features=3, num_samples=800)
    ridge = explainer.explain_instance(
        row, _proba, num_features=3, num_samples=800, model_regressor=Ridge(alpha=1.0)
    )
    plain = explainer.explain_instance(
        row, _proba, num_features=3, num_samples=800, model_regressor=LinearRegression()
    )
    assert [f for f, _ in ridge.as_map()[1]] == [f for f, _ in fast.as_map()[1]]
    np.testing.assert_allclose(
        [w for _, w in ridge.as_map()[1]], [w for _, w in fast.as_map()[1]], atol=1e-9
    )
    assert ridge.score == pytest.approx(fast.score, abs=1e-9)
    # Without the penalty the weights are larger in magnitude.
    assert abs(plain.as_map()[1][0][1]) > abs(fast.as_map()[1][0][1])


def test_categorical_features_given_as_an_array_are_categorical():
    X = np.column_stack([np.random.default_rng(0).integers(0, 3, 300), _table(300)[:, :3]])
    for columns in (np.array([0]), np.array([0, 1])):
        explainer = LimeTabularExplainer(
            X, categorical_features=columns, discretize_continuous=False, random_state=0
        )
        assert explainer.categorical_features == columns.tolist()
        explanation = explainer.explain_instance(X[0], _proba, num_features=4, num_samples=300)
        names = [name for name, _ in explanation.as_list()]
        assert f"0={int(X[0, 0])}" in names
    assert LimeTabularExplainer(X).categorical_features == [0, 1, 2, 3]  # lime's meaning


def test_a_numpy_random_state_is_drawn_from_in_turn_as_in_lime():
    X = _table()
    run = lambda explainer: explainer.explain_instance(  # noqa: E731
        X[0], _proba, num_samples=300
    ).as_map()
    first = LimeTabularExplainer(X, random_state=np.random.RandomState(0))
    again = LimeTabularExplainer(X, random_state=np.random.RandomState(0))
    assert run(first) == run(again)
    assert run(first) != run(LimeTabularExplainer(X, random_state=np.random.RandomState(0)))


def test_class_names_of_another_length_are_tolerated_as_in_lime():
    X = _table()
    for names in (["only"], ["a", "b", "c"]):
        explainer = LimeTabularExplainer(X, class_names=names, random_state=0)
        explanation = explainer.explain_instance(X[0], _proba, num_samples=300)
        assert explanation.class_names == names
        assert len(explanation.as_list(1)) == 4
        assert "<html" in explanation.as_html()


def test_as_html_is_self_contained_and_takes_lime_options(tmp_path):
    explainer = LimeTabularExplainer(_table(), feature_names=list("wxyz"), random_state=0)
    explanation = explainer.explain_instance(_table()[0], _proba, num_features=2, num_samples=300)
    page = explanation.as_html()
    assert "<script src" not in page
    assert "http://" not in page
    assert "https://" not in page
    assert "black-box score" in page
    assert "<th>value</th>" in page
    for feature, _ in explanation.as_map()[1]:  # the instance's own value of each column
        name = html.escape(explanation.feature_names[feature])
        assert f"<tr><td>{name}</td><td>{_table()[0][feature]:.2f}</td>" in page
    bare = explanation.as_html(predict_proba=False, show_table=False)
    assert "black-box score" not in bare
    assert "<th>value</th>" not in bare
    every = explanation.as_html(show_all=True)
    assert every.count("<tr><td>") > page.count("<tr><td>")
    written = explanation.save_to_file(tmp_path / "e.html", None, False, True, show_table=False)
    assert written.read_text(encoding="utf-8") == bare
    with pytest.raises(TypeError, match="show_tables"):
        explanation.as_html(show_tables=False)


def test_show_in_notebook_displays_as_html(monkeypatch):
    shown = []
    display = types.ModuleType("IPython.display")
    display.HTML = lambda html: ("HTML", html)  # type: ignore[attr-defined]
    display.display = shown.append  # type: ignore[attr-defined]
    package = types.ModuleType("IPython")
    package.display = display  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", package)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    explainer = LimeTabularExplainer(_table(), random_state=0)
    explanation = explainer.explain_instance(_table()[0], _proba, num_samples=300)
    explanation.show_in_notebook(show_table=False)
    assert shown == [("HTML", explanation.as_html(show_table=False))]


def test_text_positions_are_lime_word_positions():
    def count_good(texts):
        p = np.array([t.count("good") / 4 for t in texts])
        return np.column_stack([1 - p, p])

    explanation = LimeTextExplainer(random_state=0).explain_instance(
        DOCUMENT, count_good, num_features=4, num_samples=400
    )
    words = IndexedString(DOCUMENT)
    ids = {words.word(i): i for i in range(words.num_words())}
    pairs = [(ids[name], w) for name, w in explanation.as_list()]
    expected = TextDomainMapper(words).map_exp_ids(pairs, positions=True)
    assert explanation.as_list(positions=True) == expected
    assert explanation.as_list(positions=True)[0][0] == "good_0-25-41"


def test_recurrent_explainer_names_and_finds_the_steps_the_model_reads():
    sequences = np.random.default_rng(0).normal(size=(300, 3, 2))

    def last_a_first_b(batch):
        assert batch.shape[1:] == (3, 2)
        p = 1 / (1 + np.exp(-(2.0 * batch[:, -1, 0] - 1.0 * batch[:, 0, 1])))
        return np.column_stack([1 - p, p])

    explainer = RecurrentTabularExplainer(
        sequences, feature_names=["a", "b"], discretize_continuous=False, random_state=0
    )
    assert explainer.feature_names == ["a_t-2", "a_t-1", "a_t-0", "b_t-2", "b_t-1", "b_t-0"]
    explanation = explainer.explain_instance(sequences[0], last_a_first_b, num_features=2)
    (first, w_first), (second, w_second) = explanation.as_list()
    assert (first, second) == ("a_t-0", "b_t-2")
    assert w_first > 0 > w_second


def test_scaler_and_base_are_lime_attributes():
    X = _table()
    explainer = LimeTabularExplainer(X, discretize_continuous=False, random_state=0)
    np.testing.assert_allclose(explainer.scaler.scale_, X.std(axis=0))
    np.testing.assert_allclose(explainer.scaler.mean_, X.mean(axis=0))
    rng = np.random.default_rng(2)
    data = rng.normal(size=(300, 4))
    labels = _proba(data)
    distances = np.sqrt(((data - data[0]) ** 2).sum(axis=1))
    ours = explainer.base.explain_instance_with_data(data, labels, distances, 1, 4)
    kernel = partial(exponential_kernel, kernel_width=explainer.kernel_width)
    theirs = ReferenceBase(kernel).explain_instance_with_data(data, labels, distances, 1, 4)
    np.testing.assert_allclose([w for _, w in ours[1]], [w for _, w in theirs[1]], atol=1e-9)


def test_image_data_labels_are_lime_pictures_and_their_scores():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, size=(12, 12, 3))
    segments = np.repeat(np.repeat(np.arange(9).reshape(3, 3), 4, axis=0), 4, axis=1)
    fudged = np.zeros_like(image)

    def mean_red(batch):
        red = np.asarray(batch)[..., 0].mean(axis=(1, 2))
        return np.column_stack([1 - red, red])

    explainer = LimeImageExplainer(random_state=0)
    data, labels = explainer.data_labels(image, fudged, segments, mean_red, 25, batch_size=4)
    assert data.shape == (25, 9)
    assert (data[0] == 1).all()
    assert set(np.unique(data[1:])) == {0, 1}
    for row in (0, 7, 24):  # lime's picture: off superpixels from the fudged image
        picture = image.copy()
        picture[np.isin(segments, np.flatnonzero(data[row] == 0))] = 0.0
        np.testing.assert_allclose(labels[row], mean_red(picture[None])[0])
