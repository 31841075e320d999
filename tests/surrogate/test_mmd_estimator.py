"""MMDCritic as an estimator: the contract, errors, determinism, memory, the classifier."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from surrogate.mmd_critic import MMDCritic, median_heuristic_gamma
from surrogate.mmd_critic._greedy import mmd_critic
from training.errors import InputError

FITTED = ("prototype_indices_", "criticism_indices_", "witness_", "mmd2_curve_")


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)


@parametrize_with_checks([MMDCritic(n_prototypes=3, n_criticisms=1, device="cpu")])
def test_sklearn_estimator_contract(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    ("params", "X", "message"),
    [
        (
            {"n_prototypes": 11},
            np.ones((10, 2)),
            r"n_prototypes must be an integer from 1 to .*\(n_samples=10\), got 11",
        ),
        ({"n_prototypes": 0}, np.ones((10, 2)), "n_prototypes must be an integer"),
        (
            {"n_criticisms": 9},
            np.ones((10, 2)),
            r"n_criticisms must be .* n_samples - n_prototypes \(8\), got 9",
        ),
        ({"gamma": 0.0}, np.ones((10, 2)), "gamma must be a positive finite number, got 0.0"),
        ({"gamma": -1}, np.ones((10, 2)), "gamma must be a positive finite number, got -1"),
        ({"gamma": "wide"}, np.ones((10, 2)), "gamma must be a positive number or one of"),
        ({"regularizer": "det"}, np.ones((10, 2)), 'regularizer must be "logdet" or "none"'),
        ({"dtype": "float16"}, np.ones((10, 2)), "dtype must be one of"),
        ({"block_size": 0}, np.ones((10, 2)), "block_size must be a positive integer"),
        ({}, np.array([[0.0, 1.0], [np.nan, 2.0]] * 6), "Input X contains NaN"),
        ({}, np.array([[0.0, 1.0], [np.inf, 2.0]] * 6), "Input X contains infinity"),
        ({"local": True}, np.ones((10, 2)), r"local=True .* needs labels y"),
        ({"gamma": "accuracy"}, np.ones((10, 2)), 'gamma="accuracy" .* pass y'),
    ],
)
def test_clear_errors(params, X, message):
    with pytest.raises(InputError, match=message):
        MMDCritic(**{"n_prototypes": 2, "n_criticisms": 1, **params}).fit(X)


def test_predict_without_labels_is_refused():
    fit = MMDCritic(2).fit(np.random.default_rng(0).standard_normal((20, 3)))
    with pytest.raises(InputError, match="fit with y"):
        fit.predict(np.zeros((1, 3)))


@pytest.mark.parametrize("gamma", ["median", "accuracy", "mmd"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bit_identical_results_for_a_fixed_configuration(digits_split, gamma, dtype):
    X, _, y, _ = digits_split
    params = {"gamma": gamma, "gamma_factors": (0.5, 2.0), "dtype": dtype, "local": True}
    first = MMDCritic(20, 5, **params).fit(X, y)
    second = MMDCritic(20, 5, **params).fit(X.copy(), y.copy())
    for name in (*FITTED, "gamma_"):
        assert np.array_equal(getattr(first, name), getattr(second, name)), name
    assert first.gamma_scores_ == second.gamma_scores_


def test_block_size_changes_nothing_but_memory(digits_split):
    X, _, y, _ = digits_split
    for local in (False, True):
        small = MMDCritic(30, 8, local=local, block_size=100, dtype="float64", device="cpu")
        large = MMDCritic(30, 8, local=local, block_size=4096, dtype="float64", device="cpu")
        small.fit(X, y)
        large.fit(X, y)
        np.testing.assert_array_equal(small.prototype_indices_, large.prototype_indices_)
        np.testing.assert_array_equal(small.criticism_indices_, large.criticism_indices_)
        np.testing.assert_allclose(small.witness_, large.witness_, rtol=0, atol=1e-13)


def test_predict_is_the_1nn_classifier_on_the_prototypes(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    fit = MMDCritic(40, local=True, device="cpu").fit(X_train, y_train)
    knn = KNeighborsClassifier(n_neighbors=1).fit(fit.prototypes_, fit.prototype_labels_)
    np.testing.assert_array_equal(fit.predict(X_test), knn.predict(X_test))
    assert fit.score(X_test, y_test) == pytest.approx(knn.score(X_test, y_test))
    curve = fit.error_curve(X_test, y_test)
    for m in (1, 10, 25, 40):
        first_m = KNeighborsClassifier(n_neighbors=1).fit(
            fit.prototypes_[:m], fit.prototype_labels_[:m]
        )
        assert curve[m - 1] == pytest.approx(1 - first_m.score(X_test, y_test))
    assert curve[-1] < 0.1 < curve[0]


def test_local_selection_spreads_prototypes_over_classes(digits_split):
    """With the class-local kernel, the first 10 greedy picks are one per digit class."""
    X, _, y, _ = digits_split
    fit = MMDCritic(10, local=True, device="cpu").fit(X, y)
    assert sorted(fit.prototype_labels_) == list(range(10))


def test_median_heuristic_is_half_the_inverse_median_squared_distance():
    X = np.random.default_rng(3).standard_normal((50, 4))
    expected = 1.0 / (2.0 * np.median(pdist(X, "sqeuclidean")))
    assert median_heuristic_gamma(X) == pytest.approx(expected, rel=1e-12)
    assert median_heuristic_gamma(np.ones((5, 2))) == 1.0


def test_gamma_selection_picks_the_best_held_out_score(digits_split):
    X, _, y, _ = digits_split
    factors = (0.5, 1.0, 4.0)
    for rule in ("accuracy", "mmd"):
        fit = MMDCritic(30, gamma=rule, gamma_factors=factors, device="cpu").fit(X, y)
        assert len(fit.gamma_scores_) == 3
        assert fit.gamma_ == min(fit.gamma_scores_, key=fit.gamma_scores_.get)
        ratios = sorted(g / min(fit.gamma_scores_) for g in fit.gamma_scores_)
        np.testing.assert_allclose(ratios, [1.0, 2.0, 8.0])
    assert min(fit.gamma_scores_.values()) >= 0


def test_memory_stays_far_below_an_n_by_n_matrix(tmp_path):
    """n = 8000: an n x n float32 kernel is 256 MB; the fit must add < 40 MB to the peak."""
    # VmHWM is this process's own peak RSS; ru_maxrss would carry over pytest's across exec.
    script = """
import json
import numpy as np
from surrogate.mmd_critic import MMDCritic
def peak_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
X = np.random.default_rng(0).standard_normal((8000, 4))
MMDCritic(2, 1, gamma=0.1, device="cpu").fit(X[:500])  # lazy initialisation, thread pools
before = peak_kb()
fit = MMDCritic(5, 5, gamma=0.1, device="cpu").fit(X)
print(json.dumps({"growth_kb": peak_kb() - before, "prototypes": fit.prototype_indices_.tolist()}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd="."
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(report["prototypes"]) == 5
    assert report["growth_kb"] * 1024 < 40e6


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_picks_what_the_cpu_picks(digits_split):
    X, _, y, _ = digits_split
    cpu = MMDCritic(30, 5, local=True, dtype="float64", device="cpu").fit(X, y)
    gpu = MMDCritic(30, 5, local=True, dtype="float64", device="cuda").fit(X, y)
    np.testing.assert_array_equal(cpu.prototype_indices_, gpu.prototype_indices_)
    np.testing.assert_array_equal(cpu.criticism_indices_, gpu.criticism_indices_)
    np.testing.assert_allclose(cpu.witness_, gpu.witness_, atol=1e-10)


@pytest.mark.parametrize("local", [False, True], ids=["global", "local"])
def test_torch_vector_path_picks_what_the_numpy_path_picks(digits_split, local):
    """The GPU code path (greedy vectors in torch) run on the CPU, against the NumPy path."""
    X, _, y, _ = digits_split
    gamma = median_heuristic_gamma(X)
    groups = y if local else None
    host = mmd_critic(X, gamma, 30, 8, groups=groups, dtype=torch.float64)
    device_path = mmd_critic(
        X, gamma, 30, 8, groups=groups, dtype=torch.float64, host_vectors=False
    )
    np.testing.assert_array_equal(host.prototype_indices, device_path.prototype_indices)
    np.testing.assert_array_equal(host.criticism_indices, device_path.criticism_indices)
    np.testing.assert_allclose(host.witness, device_path.witness, rtol=0, atol=1e-13)
    np.testing.assert_allclose(host.mmd2_curve, device_path.mmd2_curve, rtol=1e-12)
