from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.svm import LinearSVC

from training.blackbox import BlackBox, as_black_box
from training.errors import BlackBoxError, InputError


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return X, y


def test_sklearn_classifier_gives_predict_proba_exactly(iris):
    X, y = iris
    model = LogisticRegression(max_iter=500).fit(X, y)
    black_box = BlackBox(model, batch_size=7)  # several uneven batches
    scores = black_box(X)
    np.testing.assert_array_equal(scores, model.predict_proba(X))
    assert black_box.probabilities
    assert black_box.method == "predict_proba"


def test_sklearn_regressor_gives_one_column_of_predictions():
    X, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(X, y)
    scores = BlackBox(model)(X)
    assert scores.shape == (len(X), 1)
    np.testing.assert_array_equal(scores[:, 0], model.predict(X))
    # in batches the BLAS may round the last bit differently, nothing more
    np.testing.assert_allclose(BlackBox(model, batch_size=50)(X), scores, rtol=1e-14)


def test_decision_function_and_label_only_classifiers():
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    svm = LinearSVC(dual=False).fit(X, y)
    decision = BlackBox(svm)(X)
    np.testing.assert_array_equal(decision[:, 0], svm.decision_function(X))
    labels = BlackBox(svm, method="predict")(X)
    assert labels.shape == (len(X), 2)
    np.testing.assert_array_equal(labels.argmax(1), svm.predict(X))
    np.testing.assert_array_equal(labels.sum(1), 1.0)


def test_torch_module_matches_direct_call_and_restores_train_mode():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 16), torch.nn.Dropout(0.5), torch.nn.ReLU(), torch.nn.Linear(16, 3)
    ).double()
    X = np.random.default_rng(0).normal(size=(70, 4))
    net.train()
    scores = BlackBox(net, batch_size=16)(X)
    assert net.training, "the adapter must give the module back in the mode it found it"
    net.eval()
    with torch.no_grad():
        expected = net(torch.as_tensor(X)).numpy()
    np.testing.assert_array_equal(scores, expected)  # eval mode: dropout off, deterministic


def test_torch_module_softmax_gives_probabilities():
    net = torch.nn.Linear(5, 4)
    X = np.random.default_rng(1).normal(size=(10, 5)).astype(np.float32)
    scores = BlackBox(net, softmax=True)(X)
    with torch.no_grad():
        expected = torch.softmax(net(torch.as_tensor(X)), dim=1).double().numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    np.testing.assert_allclose(scores.sum(1), 1.0)


def test_plain_callable_on_text_batches():
    texts = ["good film", "bad film", "good good", "meh"]
    seen: list[int] = []

    def count_good(batch):
        seen.append(len(batch))
        return np.array([[t.split().count("good")] for t in batch], dtype=float)

    scores = BlackBox(count_good, batch_size=3)(texts)
    np.testing.assert_array_equal(scores[:, 0], [1, 0, 2, 0])
    assert seen == [3, 1]


def test_nan_output_is_named():
    def broken(X):
        out = np.ones((len(X), 2)) / 2
        out[3, 1] = np.nan
        return out

    with pytest.raises(
        BlackBoxError, match=r"NaN or infinite scores in 1 of 10 rows \(first: row 3\)"
    ):
        BlackBox(broken)(np.zeros((10, 2)))


def test_wrong_row_count_and_wrong_rank_are_named():
    with pytest.raises(BlackBoxError, match="returned 9 rows for 10 input rows"):
        BlackBox(lambda X: np.zeros((len(X) - 1, 2)))(np.zeros((10, 2)))
    with pytest.raises(BlackBoxError, match=r"returned shape \(10, 2, 2\)"):
        BlackBox(lambda X: np.zeros((len(X), 2, 2)))(np.zeros((10, 2)))
    with pytest.raises(BlackBoxError, match="not numbers"):
        BlackBox(lambda X: np.array(["a"] * len(X)))(np.zeros((10, 2)))


def test_probabilities_that_do_not_sum_to_one_are_refused():
    def half(X):
        return np.full((len(X), 2), 0.35)

    with pytest.raises(BlackBoxError, match=r"do not sum to 1 \(10 rows; row 0 sums to 0.7\)"):
        BlackBox(half, probabilities=True)(np.zeros((10, 3)))
    # the same output is fine when it does not claim to be probabilities
    assert BlackBox(half)(np.zeros((10, 3))).shape == (10, 2)


def test_bad_inputs_are_named():
    with pytest.raises(InputError, match="no rows"):
        BlackBox(lambda X: X)(np.zeros((0, 3)))
    with pytest.raises(InputError, match="not a black box"):
        BlackBox(42)
    with pytest.raises(InputError, match="has no method 'predict_proba'"):
        BlackBox(LinearRegression(), method="predict_proba")


def test_as_black_box_passes_black_boxes_through(iris):
    X, y = iris
    black_box = BlackBox(LogisticRegression(max_iter=300).fit(X, y))
    assert as_black_box(black_box) is black_box


def test_an_object_with_predict_that_is_no_sklearn_estimator_works():
    class Scorer:
        def predict(self, X):
            return np.asarray(X)[:, 0] * 2.0

    class Labeller:
        classes_ = np.array(["a", "b"])

        def predict(self, X):
            return np.where(np.asarray(X)[:, 0] > 0, "b", "a")

    rows = np.array([[1.0, 0.0], [-1.0, 0.0]])
    np.testing.assert_array_equal(as_black_box(Scorer())(rows), [[2.0], [-2.0]])
    np.testing.assert_array_equal(as_black_box(Labeller())(rows), [[0.0, 1.0], [1.0, 0.0]])


def test_a_classifiers_bound_predict_is_the_classifier_with_its_classes():
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    box = as_black_box(model.predict)
    assert box.model is model
    assert box.method == "predict"
    assert box.probabilities  # one-hot classes, not label numbers
    np.testing.assert_array_equal(box(X[:3]).argmax(axis=1), model.predict(X[:3]))
    assert as_black_box(model.predict_proba).method == "predict_proba"
