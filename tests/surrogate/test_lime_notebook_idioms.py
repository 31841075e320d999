"""lime's tutorial idioms, one per kind, run unchanged but for the import line.

Each block below is the code of a ``lime`` 0.2.0.1 tutorial notebook (tabular continuous and
categorical features, tabular regression, text, images) on small local data; only ``import
lime`` became ``surrogate.lime`` (and the linter's spelling of two lines). IPython is
replaced by a stub that records what a notebook would display.
"""

from __future__ import annotations

import sys
import types

import matplotlib
import numpy as np
import pytest
import sklearn.datasets
import sklearn.ensemble
import sklearn.model_selection
from lime.wrappers.scikit_image import SegmentationAlgorithm
from skimage.segmentation import mark_boundaries
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import make_pipeline

import surrogate.lime as lime  # was: import lime; import lime.lime_tabular
from surrogate.lime import lime_image  # was: from lime import lime_image
from surrogate.lime.lime_text import LimeTextExplainer  # was: from lime.lime_text import ...

matplotlib.use("Agg")


@pytest.fixture
def displayed(monkeypatch):
    """What ``show_in_notebook`` hands to IPython's ``display``."""
    shown: list[str] = []
    display = types.ModuleType("IPython.display")
    display.HTML = lambda html: html  # type: ignore[attr-defined]
    display.display = shown.append  # type: ignore[attr-defined]
    package = types.ModuleType("IPython")
    package.display = display  # type: ignore[attr-defined]
    # matplotlib looks for a running IPython: there is none.
    package.get_ipython = lambda: None  # type: ignore[attr-defined]
    package.version_info = (8, 24, 0)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", package)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    return shown


def test_tabular_classification_idiom(displayed):
    np.random.seed(1)  # noqa: NPY002  # as the tutorial
    iris = sklearn.datasets.load_iris()
    train, test, labels_train, _ = sklearn.model_selection.train_test_split(
        iris.data, iris.target, train_size=0.80
    )
    rf = sklearn.ensemble.RandomForestClassifier(n_estimators=50)
    rf.fit(train, labels_train)
    explainer = lime.lime_tabular.LimeTabularExplainer(
        train,
        feature_names=iris.feature_names,
        class_names=iris.target_names,
        discretize_continuous=True,
    )
    i = np.random.randint(0, test.shape[0])  # noqa: NPY002
    exp = explainer.explain_instance(test[i], rf.predict_proba, num_features=2, top_labels=1)
    exp.show_in_notebook(show_table=True, show_all=False)

    assert len(displayed) == 1
    assert iris.target_names[exp.top_labels[0]] in displayed[0]
    assert len(exp.as_list(label=exp.top_labels[0])) == 2
    assert isinstance(exp.score, float)


def test_tabular_regression_idiom(displayed, capsys):
    diabetes = sklearn.datasets.load_diabetes()
    rf = sklearn.ensemble.RandomForestRegressor(n_estimators=50, random_state=0)
    train, test, labels_train, _ = sklearn.model_selection.train_test_split(
        diabetes.data, diabetes.target, train_size=0.80, random_state=0
    )
    rf.fit(train, labels_train)
    categorical_features = np.argwhere(
        np.array([len(set(diabetes.data[:, x])) for x in range(diabetes.data.shape[1])]) <= 10
    ).flatten()
    explainer = lime.lime_tabular.LimeTabularExplainer(
        train,
        feature_names=diabetes.feature_names,
        class_names=["progression"],
        categorical_features=categorical_features,
        verbose=True,
        mode="regression",
    )
    i = 25
    exp = explainer.explain_instance(test[i], rf.predict, num_features=5)
    exp.show_in_notebook(show_table=True)
    exp.as_list()

    printed = capsys.readouterr().out
    assert "Intercept" in printed
    assert "Prediction_local" in printed
    assert "Right:" in printed
    assert categorical_features.tolist() == [1]  # sex
    assert exp.predicted_value == pytest.approx(rf.predict(test[i : i + 1])[0])
    assert "Predicted value" in displayed[0]
    assert len(exp.as_list()) == 5


def test_text_idiom(displayed, tmp_path):
    rng = np.random.default_rng(0)
    topics = (["god", "atheism", "evidence", "reason"], ["church", "jesus", "faith", "bible"])
    target = rng.integers(0, 2, 120)
    data = [" ".join(rng.choice(topics[k] + ["the", "a", "of", "is"], 30)) for k in target]
    class_names = ["atheism", "christian"]
    vectorizer = TfidfVectorizer(lowercase=False)
    train_vectors = vectorizer.fit_transform(data[:80])
    nb = MultinomialNB(alpha=0.01)
    nb.fit(train_vectors, target[:80])
    c = make_pipeline(vectorizer, nb)
    explainer = LimeTextExplainer(class_names=class_names)
    idx = 83
    exp = explainer.explain_instance(data[idx], c.predict_proba, num_features=6)
    print(f"Document id: {idx}")
    print("Probability(christian) =", c.predict_proba([data[idx]])[0, 1])
    print(f"True class: {class_names[target[idx]]}")
    exp.as_list()
    fig = exp.as_pyplot_figure()
    exp.show_in_notebook(text=True)
    exp.save_to_file(str(tmp_path / "oi.html"))

    assert len(exp.as_list()) == 6
    assert fig.axes[0].get_title().startswith("Local explanation for class")
    assert "lime-text" in displayed[0]
    assert (tmp_path / "oi.html").read_text(encoding="utf-8").startswith("<!doctype html>")


def test_image_idiom():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(2, 48, 48, 3))
    images[0, :24, :24, 0] = 1.0  # a bright red corner: what the classifier looks for

    def predict_fn(batch):
        red = np.asarray(batch)[:, :24, :24, 0].mean(axis=(1, 2))
        logits = np.column_stack([red, -red, np.zeros_like(red)]) * 4
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    segmenter = SegmentationAlgorithm("quickshift", kernel_size=2, max_dist=200, ratio=0.2)
    explainer = lime_image.LimeImageExplainer(verbose=False)
    explanation = explainer.explain_instance(
        images[0].astype("double"),
        predict_fn,
        top_labels=3,
        hide_color=0,
        num_samples=300,
        segmentation_fn=segmenter,
    )
    temp, mask = explanation.get_image_and_mask(
        explanation.top_labels[0], positive_only=True, num_features=5, hide_rest=True
    )
    picture = mark_boundaries(temp / 2 + 0.5, mask)

    assert explanation.top_labels[0] == 0
    assert picture.shape == (48, 48, 3)
    assert mask[:24, :24].mean() > mask[24:, 24:].mean()  # the red corner supports label 0
    assert isinstance(explanation.score, float)
