"""lime 0.2.0.1's own test suite, run from the installed package against ``surrogate.lime``.

``lime/tests/test_lime_tabular.py`` and ``test_lime_text.py`` are imported from the installed
``lime``, not copied, and run unchanged with their explainer classes switched to ours. Three
stand-ins keep them offline, reproducible and fast: a generated two-topic corpus with the
interface of scikit-learn's ``fetch_20newsgroups`` (which downloads), a fixed global NumPy seed
before each test (lime's iris tests split the data with the global state, so their outcome
depends on which tests ran before; with seed 1 lime itself passes them all), and random forests
of 50 trees instead of 500 (the forests are the black boxes; the assertions are about LIME).
"""

from __future__ import annotations

from typing import Any

import lime.tests.test_lime_tabular as lime_tabular_tests
import lime.tests.test_lime_text as lime_text_tests
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.utils import Bunch

import surrogate.lime

_SHARED = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "that",
    "it",
    "for",
    "on",
    "with",
    "as",
    "was",
    "be",
    "this",
    "by",
    "are",
    "not",
]
_TOPICS = (
    [
        "god",
        "atheism",
        "belief",
        "evidence",
        "religion",
        "argument",
        "exist",
        "moral",
        "reason",
        "atheist",
        "science",
    ],
    [
        "christ",
        "church",
        "jesus",
        "faith",
        "bible",
        "prayer",
        "christian",
        "lord",
        "scripture",
        "gospel",
        "spirit",
    ],
)
_SUBSETS = {"train": 0, "test": 1, "all": 2}


def offline_20newsgroups(
    subset: str = "train", categories: list[str] | None = None, **_: Any
) -> Bunch:
    """150 generated posts per subset in the shape ``fetch_20newsgroups`` returns: ``data``
    (headers, then words mostly from the post's own topic), ``target``, ``target_names``."""
    names = list(categories or ["alt.atheism", "soc.religion.christian"])
    rng = np.random.default_rng(_SUBSETS[subset])
    target = rng.integers(0, len(names), 150)
    posts = []
    for label in target:
        own, other = _TOPICS[label % 2], _TOPICS[1 - label % 2]
        words = [
            rng.choice(_SHARED) if u < 0.5 else rng.choice(own) if u < 0.85 else rng.choice(other)
            for u in rng.random(rng.integers(30, 80))
        ]
        subject = " ".join(words[:4])
        posts.append(f"From: someone@example.org\nSubject: {subject}\n\n{' '.join(words)}.")
    return Bunch(
        data=posts,
        target=target,
        target_names=names,
        filenames=np.array([f"{subset}/{i}" for i in range(len(posts))]),
        DESCR="offline stand-in for the 20 newsgroups",
    )


class _SmallForest(RandomForestClassifier):
    """lime's black box with 50 trees (the suite asks for 500: seconds per fit here)."""

    def __init__(self, n_estimators: int = 50, random_state: Any = None) -> None:
        super().__init__(n_estimators=min(n_estimators, 50), random_state=random_state)


@pytest.fixture(autouse=True)
def _switched_to_ours(monkeypatch):
    np.random.seed(1)  # noqa: NPY002  # lime's tests draw from the global state
    monkeypatch.setattr(
        lime_tabular_tests, "LimeTabularExplainer", surrogate.lime.LimeTabularExplainer
    )
    monkeypatch.setattr(lime_tabular_tests, "RandomForestClassifier", _SmallForest)
    monkeypatch.setattr(lime_text_tests, "LimeTextExplainer", surrogate.lime.LimeTextExplainer)
    monkeypatch.setattr(lime_text_tests, "fetch_20newsgroups", offline_20newsgroups)


_RAGGED = pytest.mark.xfail(
    strict=True,
    reason="fails on lime 0.2.0.1 itself under NumPy 2: np.array_equal of ragged position "
    "lists is False; it tests lime's own IndexedString, which surrogate.lime reuses unchanged",
)


class TestLimeTabular(lime_tabular_tests.TestLimeTabular):
    """lime's tabular tests, on ``surrogate.lime.LimeTabularExplainer``."""


class TestLimeText(lime_text_tests.TestLimeText):
    """lime's text tests, on ``surrogate.lime.LimeTextExplainer``."""

    test_indexed_string_callable = _RAGGED(
        lime_text_tests.TestLimeText.test_indexed_string_callable
    )
    test_indexed_string_regex = _RAGGED(lime_text_tests.TestLimeText.test_indexed_string_regex)


def test_the_suite_runs_our_explainers():
    assert lime_tabular_tests.LimeTabularExplainer is surrogate.lime.LimeTabularExplainer
    assert lime_text_tests.LimeTextExplainer is surrogate.lime.LimeTextExplainer
    explanation = lime_tabular_tests.LimeTabularExplainer(np.eye(3)).explain_instance(
        np.ones(3), lambda rows: np.full((len(rows), 2), 0.5)
    )
    assert isinstance(explanation, surrogate.lime.Explanation)
