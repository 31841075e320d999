"""LIME on tables: lime's sampling distribution, known answers, reproducibility, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from lime.lime_tabular import LimeTabularExplainer as ReferenceExplainer
from scipy import stats
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier

from surrogate.lime import LimeTabularExplainer, deletion_curve
from surrogate.lime._random import TruncatedNormals, instance_rng
from training.errors import BlackBoxError, InputError

WEIGHTS = np.array([3.0, -2.0, 1.2, -0.6, 0.25])


@pytest.fixture(scope="module")
def cancer():
    bunch = load_breast_cancer()
    X, y = bunch.data, bunch.target
    forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(X[100:], y[100:])
    return X, y, list(bunch.feature_names), forest


def _linear_table(n=600, seed=0):
    return np.random.default_rng(seed).normal(size=(n, len(WEIGHTS)))


@pytest.mark.parametrize("sampler", ["qmc", "random"])
def test_linear_regression_black_box_recovers_true_signs_and_order(sampler):
    X = _linear_table()
    explainer = LimeTabularExplainer(
        X, mode="regression", discretize_continuous=False, random_state=3, sampler=sampler
    )
    explanation = explainer.explain_instance(
        X[0], lambda rows: rows @ WEIGHTS, num_features=5, num_samples=3000
    )
    weights = dict(explanation.as_map()[1])
    expected = WEIGHTS * explainer.scale_  # the surrogate reads standardised features
    assert [f for f, _ in explanation.as_map()[1]] == list(np.argsort(-np.abs(expected)))
    np.testing.assert_allclose([weights[f] for f in range(5)], expected, rtol=0.01)
    assert explanation.scores[1] > 0.999


def test_logistic_classifier_recovers_signs_and_order_of_its_weights():
    X = _linear_table()

    def predict_proba(rows):
        p = 1 / (1 + np.exp(-(rows @ WEIGHTS) / 4))
        return np.column_stack([1 - p, p])

    explainer = LimeTabularExplainer(X, discretize_continuous=False, random_state=0)
    explanation = explainer.explain_instance(np.zeros(5), predict_proba, num_features=5)
    pairs = explanation.as_map()[1]
    assert [f for f, _ in pairs] == [0, 1, 2, 3, 4]
    assert np.array_equal(np.sign([w for _, w in sorted(pairs)]), np.sign(WEIGHTS))


def test_discretised_weights_point_the_way_the_model_does():
    # Above the top quartile of a feature with a positive weight, its bin supports the output.
    X = _linear_table(2000)
    row = np.quantile(X, 0.9, axis=0)
    explainer = LimeTabularExplainer(X, mode="regression", random_state=0)
    explanation = explainer.explain_instance(row, lambda rows: rows @ WEIGHTS, num_features=5)
    weights = dict(explanation.as_map()[1])
    assert np.array_equal(np.sign([weights[f] for f in range(5)]), np.sign(WEIGHTS))
    assert explanation.as_list()[0][0] == f"0 > {np.quantile(X[:, 0], 0.75):.2f}"


def test_neighbours_follow_lime_distribution(cancer):
    """Bin frequencies and within-bin values of our sampler match lime's own sampler."""
    X, _, names, _ = cancer
    n = 20000
    ours = LimeTabularExplainer(X, feature_names=names, random_state=0, sampler="random")
    data, inverse = ours._sample(X[5], n, instance_rng(0, b"x"))
    reference = ReferenceExplainer(X, feature_names=names, random_state=0)
    ref_data, ref_inverse = reference._LimeTabularExplainer__data_inverse(X[5], n)
    # P(neighbour shares the instance's bin), per feature: binomial noise is about 0.003.
    np.testing.assert_allclose(data[1:].mean(axis=0), ref_data[1:].mean(axis=0), atol=0.015)
    for feature in (0, 7, 21, 27):  # values: the same truncated normals per bin
        assert stats.ks_2samp(inverse[1:, feature], ref_inverse[1:, feature]).pvalue > 1e-3
    assert np.array_equal(data[0], np.ones(X.shape[1]))
    assert np.array_equal(inverse[0], X[5])


def test_truncated_normals_equal_scipy_and_stay_in_their_interval():
    rng = np.random.default_rng(0)
    low = np.array([-1.0, 0.5, 3.0, -8.0, 2.0])
    high = np.array([1.0, 2.0, 3.5, -7.5, 2.0])  # the last is a single point
    mean = np.array([0.0, 0.0, 0.0, 0.0, 1.0])
    std = np.ones(5)
    table = TruncatedNormals(low, high, mean, std)
    for k in range(4):  # centre, one side, far right tail, far left tail
        values = table.sample(rng.random(20000), np.full(20000, k))
        assert values.min() >= low[k]
        assert values.max() <= high[k]
        reference = stats.truncnorm(low[k] - mean[k], high[k] - mean[k], loc=mean[k])
        assert stats.kstest(values, reference.cdf).pvalue > 1e-3
    assert np.all(table.sample(rng.random(10), np.full(10, 4)) == 2.0)


def test_categorical_column_that_decides_is_found():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 4, 800), rng.normal(size=(800, 3))])

    def predict_proba(rows):
        p = np.where(rows[:, 0] == 2, 0.9, 0.1)
        return np.column_stack([1 - p, p])

    explainer = LimeTabularExplainer(
        X,
        feature_names=["colour", "a", "b", "c"],
        categorical_features=[0],
        categorical_names={0: ["red", "green", "blue", "grey"]},
        random_state=0,
    )
    explanation = explainer.explain_instance(X[np.argmax(X[:, 0] == 2)], predict_proba)
    name, weight = explanation.as_list()[0]
    assert name == "colour=blue"
    assert weight == pytest.approx(0.8, abs=0.03)  # P(1 | blue) - P(1 | not blue)


def test_names_equal_lime_names(cancer):
    X, _, names, forest = cancer
    ours = LimeTabularExplainer(X, feature_names=names, random_state=0)
    reference = ReferenceExplainer(X, feature_names=names, random_state=0)
    expected = reference.explain_instance(X[3], forest.predict_proba, num_samples=200)
    got = ours.explain_instance(X[3], forest.predict_proba, num_samples=200)
    assert got.feature_names == expected.domain_mapper.discretized_feature_names
    assert got.feature_values == expected.domain_mapper.feature_values


def test_same_random_state_gives_bit_identical_json(cancer):
    X, _, names, forest = cancer
    first = LimeTabularExplainer(X, feature_names=names, random_state=7)
    second = LimeTabularExplainer(X, feature_names=names, random_state=7)
    one = first.explain_instance(X[1], forest.predict_proba, num_samples=500).to_json()
    assert one == second.explain_instance(X[1], forest.predict_proba, num_samples=500).to_json()
    other = LimeTabularExplainer(X, feature_names=names, random_state=8)
    assert one != other.explain_instance(X[1], forest.predict_proba, num_samples=500).to_json()


def test_explain_many_equals_explain_instance_in_any_order(cancer):
    X, _, _, forest = cancer
    explainer = LimeTabularExplainer(X, random_state=0)
    calls = []

    def predict_proba(rows):
        calls.append(len(rows))
        return forest.predict_proba(rows)

    many = explainer.explain_many(X[:6][::-1], predict_proba, num_samples=400)
    assert calls == [6 * 400]  # one black-box call for all six neighbourhoods
    for i, explanation in enumerate(many[::-1]):
        alone = explainer.explain_instance(X[i], forest.predict_proba, num_samples=400)
        assert explanation.to_json() == alone.to_json()


def test_top_labels_explain_the_best_scored_classes(cancer):
    X, _, _, forest = cancer
    explainer = LimeTabularExplainer(X, class_names=["malignant", "benign"], random_state=0)
    explanation = explainer.explain_instance(X[0], forest.predict_proba, top_labels=1)
    best = int(np.argmax(forest.predict_proba(X[:1])[0]))
    assert explanation.available_labels() == [best]
    assert explanation.predict_proba.tolist() == forest.predict_proba(X[:1])[0].tolist()


def test_deletion_auc_of_explanation_is_below_random_orders(cancer):
    X, _, names, forest = cancer
    explainer = LimeTabularExplainer(X, feature_names=names, random_state=0)
    aucs = []
    for row in range(5):
        explanation = explainer.explain_instance(
            X[row], forest.predict_proba, top_labels=1, num_features=X.shape[1]
        )
        curve = deletion_curve(explainer, X[row], explanation, forest.predict_proba)
        assert curve.scores[0] == pytest.approx(explanation.predict_proba[curve.label])
        aucs.append((curve.auc, curve.random_auc))
    explained, random = np.mean(aucs, axis=0)
    assert explained < random - 0.05


def test_nan_rows_are_one_clear_error(cancer):
    X, _, _, forest = cancer
    explainer = LimeTabularExplainer(X, random_state=0)
    rows = X[:4].copy()
    rows[2, 5] = np.nan
    # A column with no missing value in training has no bin for one: an error, not a guess.
    with pytest.raises(InputError, match=r"NaN in column '5' \(first: row 2\), which has no"):
        explainer.explain_many(rows, forest.predict_proba)
    rows[1, 3] = np.inf
    with pytest.raises(InputError, match=r"training_data hold infinite values in 1 row\(s\)"):
        LimeTabularExplainer(rows)


def test_wrong_width_is_one_clear_error(cancer):
    X, _, _, forest = cancer
    explainer = LimeTabularExplainer(X, random_state=0)
    with pytest.raises(InputError, match=r"have 29 features but the explainer was built on .* 30"):
        explainer.explain_instance(X[0, :29], forest.predict_proba)


@pytest.mark.parametrize(
    ("predict_fn", "message"),
    [
        (lambda rows: np.ones((len(rows) - 1, 2)) / 2, "returned 99 rows for 100 input rows"),
        (lambda rows: np.ones((len(rows), 2, 2)), "expected \\(100,\\) or \\(100, k\\)"),
        (lambda rows: np.full((len(rows), 2), np.nan), "NaN or infinite scores"),
    ],
)
def test_predict_fn_returning_the_wrong_thing_is_one_clear_error(cancer, predict_fn, message):
    X, _, _, _ = cancer
    explainer = LimeTabularExplainer(X, random_state=0)
    with pytest.raises(BlackBoxError, match=message):
        explainer.explain_instance(X[0], predict_fn, num_samples=100)


def test_missing_label_is_named(cancer):
    X, _, _, forest = cancer
    explainer = LimeTabularExplainer(X, random_state=0)
    with pytest.raises(InputError, match=r"labels \[4\] do not exist"):
        explainer.explain_instance(X[0], forest.predict_proba, labels=(4,), num_samples=50)


def test_values_stay_in_their_bin_when_a_bin_is_empty():
    # Quartiles of 0,...,0,10,...,10 are 0, 5, 10: the bins (0, 5] and > 10 hold no row.
    rng = np.random.default_rng(0)
    X = np.column_stack([np.repeat([0.0, 10.0], 50), rng.normal(size=100)])
    explainer = LimeTabularExplainer(X, random_state=0, sampler="random")
    data, inverse = explainer._sample(np.array([10.0, 0.0]), 4000, instance_rng(0, b"bins"))
    # Each bin's values sit at its only training value (std 1e-11, as lime fits it).
    at_ten = np.isclose(inverse[1:, 0], 10.0, atol=1e-9)
    assert np.all(at_ten | (inverse[1:, 0] == 0.0))
    np.testing.assert_array_equal(data[1:, 0], at_ten)
    assert 0.4 < data[1:, 0].mean() < 0.6  # each observed bin holds half the rows


def test_a_memory_budget_splits_the_work_without_changing_explanations(cancer, monkeypatch):
    from surrogate.lime import _base

    X, _, _, forest = cancer
    explainer = LimeTabularExplainer(X, random_state=0)
    whole = explainer.explain_many(X[:6], forest.predict_proba, num_samples=500)
    calls: list[int] = []

    def counted(rows):
        calls.append(len(rows))
        return forest.predict_proba(rows)

    # 30 columns x 32 bytes per neighbour: 500 neighbours of two rows fit, of three do not.
    monkeypatch.setattr(_base, "MEMORY_BUDGET", 2 * 500 * 30 * 32)
    split = explainer.explain_many(X[:6], counted, num_samples=500)
    assert [e.as_list() for e in split] == [e.as_list() for e in whole]
    assert max(calls) <= 2 * 500  # three groups of two rows, each scored on its own
    assert len(calls) == 3


def test_scores_in_0_1_that_do_not_sum_to_1_are_refused(cancer):
    X, _, _, forest = cancer
    explainer = LimeTabularExplainer(X, random_state=0)
    with pytest.raises(BlackBoxError, match=r"rows do not sum to 1 \(neighbour 0 sums to 0.7"):
        explainer.explain_instance(X[0], lambda rows: 0.7 * forest.predict_proba(rows))
    # Logits are not probabilities and pass.
    explainer.explain_instance(X[0], lambda rows: 5.0 * forest.predict_proba(rows) - 2.0)
