"""LIME on text: lime's documents and distances, the words a model reads, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
from lime.lime_text import IndexedString
from sklearn.metrics import pairwise_distances

from surrogate.lime import LimeTextExplainer, deletion_curve
from surrogate.lime.text import _Renderer
from training.errors import InputError

DOCUMENT = "The plot was good, the acting good and the music bad; overall a good film."


def _good_and_bad(texts):
    """P(positive) rises with each 'good' and falls with each 'bad'."""
    counts = np.array([[t.count("good"), t.count("bad")] for t in texts], dtype=float)
    p = 1 / (1 + np.exp(-(0.8 * counts[:, 0] - 1.5 * counts[:, 1])))
    return np.column_stack([1 - p, p])


def test_words_the_model_reads_come_first_with_their_signs():
    explainer = LimeTextExplainer(class_names=["negative", "positive"], random_state=0)
    explanation = explainer.explain_instance(DOCUMENT, _good_and_bad, num_features=4)
    listed = dict(explanation.as_list())
    assert [name for name, _ in explanation.as_list()[:2]] == ["good", "bad"]
    assert listed["good"] > 0 > listed["bad"]
    assert all(
        abs(w) < 0.05 * listed["good"] for name, w in listed.items() if name not in {"good", "bad"}
    )


@pytest.mark.parametrize("bow", [True, False])
def test_documents_equal_lime_inverse_removing(bow):
    indexed = IndexedString(DOCUMENT, bow=bow)
    render = _Renderer(indexed, bow)
    rng = np.random.default_rng(0)
    kept = rng.random((20, indexed.num_words())) < 0.6
    for row, text in zip(kept, render(kept), strict=True):
        assert text == indexed.inverse_removing(np.flatnonzero(~row))


def test_removal_pattern_and_distances_follow_lime():
    explainer = LimeTextExplainer(random_state=0, sampler="random")
    neighbourhood = explainer._neighbourhood(
        DOCUMENT, 4000, np.random.default_rng(0), {"distance_metric": "cosine"}
    )
    data = neighbourhood.data
    expected = 100 * pairwise_distances(data, data[:1], metric="cosine").ravel()
    np.testing.assert_allclose(neighbourhood.distances, expected, atol=1e-9)
    n_words = data.shape[1]
    removed = n_words - data[1:].sum(axis=1)
    # lime removes randint(1, d + 1) words: uniform on 1..d, each word equally likely.
    counts = np.bincount(removed.astype(int), minlength=n_words + 1)[1:]
    assert counts.min() > 0.7 * counts.mean()
    assert np.ptp(1 - data[1:].mean(axis=0)) < 0.05
    assert neighbourhood.inputs(0, 1) == [DOCUMENT]


def test_same_random_state_gives_bit_identical_json():
    def run(seed):
        explainer = LimeTextExplainer(random_state=seed)
        return explainer.explain_instance(DOCUMENT, _good_and_bad, num_samples=500).to_json()

    assert run(4) == run(4)
    assert run(4) != run(5)


def test_deletion_auc_of_explanation_is_below_random_orders():
    explainer = LimeTextExplainer(random_state=0)
    explanation = explainer.explain_instance(DOCUMENT, _good_and_bad, top_labels=1)
    curve = deletion_curve(explainer, DOCUMENT, explanation, _good_and_bad)
    assert curve.auc < curve.random_auc - 0.1


def test_masking_positions_and_characters():
    explainer = LimeTextExplainer(random_state=0, bow=False)
    explanation = explainer.explain_instance(DOCUMENT, _good_and_bad, num_features=3)
    assert {name for name, _ in explanation.as_list()} <= {"good", "bad"} | set(DOCUMENT.split())
    chars = LimeTextExplainer(random_state=0, char_level=True).explain_instance(
        "ab ba", lambda texts: _good_and_bad(texts), num_samples=100, num_features=2
    )
    assert set(chars.feature_names) == {"a", "b", " "}


def test_bad_texts_are_one_clear_error():
    explainer = LimeTextExplainer(random_state=0)
    with pytest.raises(InputError, match="has no words"):
        explainer.explain_instance("  ...  ", _good_and_bad)
    with pytest.raises(InputError, match="a sequence of strings"):
        explainer.explain_many("one string", _good_and_bad)
    with pytest.raises(InputError, match="item 1 is int"):
        explainer.explain_many(["fine", 3], _good_and_bad)
