"""The explanation object (lists, JSON, HTML) and SP-LIME."""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pytest
from lime.submodular_pick import SubmodularPick as ReferencePick

from surrogate.lime import (
    Explanation,
    LimeTabularExplainer,
    LimeTextExplainer,
    SubmodularPick,
    submodular_pick,
)


def _linear_proba(rows):
    p = 1 / (1 + np.exp(-(rows @ np.array([1.5, -1.0, 0.5, 0.0]))))
    return np.column_stack([1 - p, p])


@pytest.fixture(scope="module")
def table():
    return np.random.default_rng(0).normal(size=(400, 4))


@pytest.fixture(scope="module")
def explanations(table):
    explainer = LimeTabularExplainer(
        table, feature_names=["alpha", "beta", "<b>gamma</b>", "delta"], random_state=0
    )
    return explainer.explain_many(table[:12], _linear_proba, num_samples=400, num_features=2)


def test_lists_and_maps_agree(explanations):
    explanation = explanations[0]
    pairs = explanation.as_map()[1]
    assert [explanation.feature_names[f] for f, _ in pairs] == [n for n, _ in explanation.as_list()]
    assert [abs(w) for _, w in pairs] == sorted((abs(w) for _, w in pairs), reverse=True)
    assert set(explanation.scores) == set(explanation.intercept) == {1}
    with pytest.raises(KeyError, match=r"label 0 was not explained; explained labels: \[1\]"):
        explanation.as_list(0)


def test_json_round_trip_is_exact_and_strict(explanations):
    text = explanations[3].to_json()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"non-strict JSON {name}"))
    again = Explanation.from_json(text)
    assert again == explanations[3]
    assert again.to_json() == text
    assert again.as_list() == explanations[3].as_list()
    assert again.scores == explanations[3].scores


def test_text_explanation_round_trips_and_highlights_its_words():
    def positive(texts):
        p = np.array([0.9 if "fine" in t else 0.2 for t in texts])
        return np.column_stack([1 - p, p])

    explanation = LimeTextExplainer(random_state=0).explain_instance(
        "a fine <day> & a dull night", positive, num_samples=300, num_features=3
    )
    assert Explanation.from_json(explanation.to_json()) == explanation
    page = explanation.to_html()
    assert re.search(r'<span class="word"[^>]*rgba\(47, 143, 78[^>]*>fine</span>', page)
    assert "&gt; &amp; a" in page  # the separators around <day>, escaped
    assert "<day>" not in page


def test_html_is_self_contained_and_escaped(explanations):
    page = explanations[0].to_html()
    assert "http://" not in page
    assert "https://" not in page
    assert "<script src" not in page
    assert "<link" not in page
    assert "<b>gamma</b>" not in page
    for name, weight in explanations[0].as_list():
        assert name.replace("<", "&lt;").replace(">", "&gt;") in page
        assert f"{weight:.3g}" in page


def test_submodular_pick_equals_lime_choice(explanations):
    class Replay:
        """Hands lime's SubmodularPick our explanations, in order."""

        def __init__(self):
            self.served = iter(explanations)

        def explain_instance(self, *args, **kwargs):
            return next(self.served)

    reference = ReferencePick(
        Replay(), np.zeros((len(explanations), 1)), None, method="full", num_exps_desired=4
    )
    assert submodular_pick(explanations, 4).indices == reference.V


def test_greedy_coverage_is_within_the_submodular_bound_of_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(5):
        fake = [_fake_explanation(rng) for _ in range(9)]
        result = submodular_pick(fake, 3)
        used = np.abs(result.weights) > 0
        best = max(
            float(np.any(used[list(chosen)], axis=0) @ result.importance)
            for chosen in itertools.combinations(range(len(fake)), 3)
        )
        assert result.coverage[-1] >= (1 - 1 / np.e) * best
        assert result.coverage == sorted(result.coverage)  # coverage only grows


def _fake_explanation(rng) -> Explanation:
    features = rng.choice(8, size=3, replace=False)
    pairs = [(int(f), float(rng.normal())) for f in features]
    return Explanation(
        mode="classification",
        feature_names=[f"f{i}" for i in range(8)],
        class_names=["no", "yes"],
        predict_proba=np.array([0.5, 0.5]),
        local_exp={1: pairs},
        intercept={1: 0.0},
        scores={1: 1.0},
        local_preds={1: 0.5},
    )


def test_submodular_pick_class_explains_a_sample_then_picks(table):
    explainer = LimeTabularExplainer(table, random_state=0)
    pick = SubmodularPick(
        explainer,
        table,
        _linear_proba,
        sample_size=10,
        num_exps_desired=3,
        num_features=2,
        num_samples=300,
        random_state=0,
    )
    assert len(pick.explanations) == 10
    assert len(pick.V) == 3 == len(set(pick.V))
    assert pick.sp_explanations == [pick.explanations[i] for i in pick.V]
    assert all(e.available_labels() == [e.top_labels[0]] for e in pick.explanations)
