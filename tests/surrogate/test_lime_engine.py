"""The weighted-ridge engine: lime's numbers on identical data, and what a ridge must recover."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from lime.lime_base import LimeBase as ReferenceBase

from surrogate.lime import FEATURE_SELECTIONS, LimeBase, exponential_kernel, fit_surrogate
from training.errors import InputError


def _neighbourhood(kind: str, seed: int = 0, n: int = 1500, d: int = 12):
    rng = np.random.default_rng(seed)
    if kind == "binary":  # tabular with discretisation, images, text
        data = rng.integers(0, 2, (n, d)).astype(float)
        data[0] = 1.0
    else:  # standardised continuous tabular features
        data = rng.normal(size=(n, d))
    truth = rng.normal(size=(d, 3))
    labels = 1 / (1 + np.exp(-(data @ truth))) + 0.05 * rng.normal(size=(n, 3))
    distances = np.sqrt(((data - data[0]) ** 2).sum(axis=1))
    return data, labels, distances


@pytest.mark.parametrize("kind", ["binary", "continuous"])
@pytest.mark.parametrize("feature_selection", FEATURE_SELECTIONS)
@pytest.mark.parametrize("num_features", [3, 6, 8])
def test_engine_equals_lime_on_identical_data(kind, feature_selection, num_features):
    data, labels, distances = _neighbourhood(kind, seed=num_features)
    kernel = partial(exponential_kernel, kernel_width=0.75 * np.sqrt(data.shape[1]))
    expected = ReferenceBase(kernel, random_state=0).explain_instance_with_data(
        data, labels, distances, 1, num_features, feature_selection=feature_selection
    )
    got = LimeBase(kernel).explain_instance_with_data(
        data, labels, distances, 1, num_features, feature_selection=feature_selection
    )
    assert [int(f) for f, _ in expected[1]] == [f for f, _ in got[1]]
    np.testing.assert_allclose([w for _, w in got[1]], [w for _, w in expected[1]], atol=1e-6)
    assert got[0] == pytest.approx(expected[0], abs=1e-6)  # intercept
    assert got[2] == pytest.approx(expected[2], abs=1e-6)  # weighted R^2
    assert got[3] == pytest.approx(float(expected[3][0]), abs=1e-6)  # local prediction


def test_forward_selection_picks_the_features_that_carry_the_signal():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(800, 10))
    labels = 2.0 * data[:, 7] - 1.0 * data[:, 2] + 0.5 * data[:, 4] + 0.01 * rng.normal(size=800)
    fit = fit_surrogate(data, labels, np.ones(800), 3, "forward_selection")
    assert [int(f) for f in fit.features] == [7, 2, 4]
    np.testing.assert_allclose(fit.coef, [2.0, -1.0, 0.5], atol=0.01)
    assert fit.score > 0.999


def test_weights_change_the_fit_as_weighted_least_squares():
    rng = np.random.default_rng(2)
    data = rng.normal(size=(600, 2))
    near = np.arange(600) < 300  # two regimes: only the weighted one must be fitted
    labels = np.where(near, 3.0 * data[:, 0], -3.0 * data[:, 0])
    weights = np.where(near, 1.0, 1e-9)
    fit = fit_surrogate(data, labels, weights, 2, "none")
    coef = dict(zip(fit.features.tolist(), fit.coef, strict=True))
    assert coef[0] == pytest.approx(3.0, abs=0.02)
    assert abs(coef[1]) < 0.02


@pytest.mark.parametrize("feature_selection", ["forward_selection", "highest_weights"])
def test_a_saturated_black_box_is_a_perfect_constant_fit(feature_selection):
    data, _, _ = _neighbourhood("binary")
    fit = fit_surrogate(data, np.full(len(data), 0.3), np.ones(len(data)), 4, feature_selection)
    assert fit.score == 1.0
    assert np.all(fit.coef == 0.0)
    assert sorted(fit.features.tolist()) == [0, 1, 2, 3]  # ties go to the first features
    assert fit.local_pred == 0.3


@pytest.mark.parametrize(
    ("data", "weights", "message"),
    [
        (np.array([[0.0, np.nan], [1.0, 1.0]]), np.ones(2), "NaN"),
        (np.ones((3, 2)), np.array([1.0, -1.0, 1.0]), "non-negative"),
        (np.ones((3, 2)), np.ones(2), "one weight each"),
    ],
)
def test_bad_neighbourhoods_are_one_clear_error(data, weights, message):
    with pytest.raises(InputError, match=message):
        fit_surrogate(data, np.ones(len(data)), weights, 1)


def test_unknown_feature_selection_is_named():
    data, labels, _ = _neighbourhood("binary")
    with pytest.raises(InputError, match="feature_selection='best'"):
        fit_surrogate(data, labels[:, 0], np.ones(len(data)), 3, "best")
