"""MMD-critic against an independent, naive implementation of the paper's objectives.

The naive side below holds the full kernel matrix (from scipy's direct squared distances) and
evaluates J(S) and L(C) from their definitions for every candidate at every greedy step; the
estimator under test never holds an n x n matrix and updates its sums incrementally.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.datasets import load_digits

from surrogate.mmd_critic import MMDCritic, median_heuristic_gamma


# ---------------------------------------------------------------- naive reference (paper)
def kernel_matrix(X, gamma, y=None):
    """Full RBF kernel; with y, the paper's local kernel (zero across classes)."""
    K = np.exp(-gamma * cdist(X, X, "sqeuclidean"))
    if y is not None:
        K = K * (y[:, None] == y[None, :])
    return K


def objective_j(K, S):
    """J(S) = 2/(n m) sum_{i, j in S} k(x_i, x_j) - 1/m^2 sum_{i, j in S} k(x_i, x_j)."""
    S = list(S)
    n, m = len(K), len(S)
    return 2.0 / (n * m) * K[:, S].sum() - K[np.ix_(S, S)].sum() / m**2


def naive_prototypes(K, m):
    """Greedy: add the candidate with the largest J(S + {c}); ties to the lowest index."""
    n = len(K)
    S: list[int] = []
    for _ in range(m):
        candidates = np.setdiff1d(np.arange(n), S)
        t = len(S) + 1
        # J(S + {c}) for every candidate at once, each term straight from the definition.
        data_term = (K[:, S].sum() + K[:, candidates].sum(axis=0)) * 2.0 / (n * t)
        proto_term = (
            K[np.ix_(S, S)].sum()
            + 2.0 * K[np.ix_(S, candidates)].sum(axis=0)
            + K[candidates, candidates]
        ) / t**2
        S.append(int(candidates[int(np.argmax(data_term - proto_term))]))
    return np.array(S)


def naive_witness(K, S):
    """w(x_i) = 1/n sum_j k(x_i, x_j) - 1/m sum_{j in S} k(x_i, x_j)."""
    return K.mean(axis=0) - K[list(S)].mean(axis=0)


def naive_criticisms(K, S, k, regularizer="logdet"):
    """Greedy: add the candidate with the largest L(C + {c}) = sum |w| + log det K_CC."""
    w = np.abs(naive_witness(K, S))
    C: list[int] = []
    for _ in range(k):
        candidates = np.setdiff1d(np.arange(len(K)), [*C, *S])
        values = w[C].sum() + w[candidates]
        if regularizer == "logdet":
            # K restricted to C + {c}, for every candidate c at once: (candidates, t+1, t+1).
            chosen = np.column_stack([np.tile(C, (len(candidates), 1)), candidates]).astype(int)
            sign, logdet = np.linalg.slogdet(K[chosen[:, :, None], chosen[:, None, :]])
            values = values + np.where(sign > 0, logdet, -np.inf)
        C.append(int(candidates[int(np.argmax(values))]))
    return np.array(C)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def naive_digits(digits):
    """Naive selections on digits (median-heuristic gamma), global and local, computed once."""
    X, y = digits
    gamma = median_heuristic_gamma(X)
    results = {}
    for local in (False, True):
        K = kernel_matrix(X, gamma, y if local else None)
        S = naive_prototypes(K, 100)
        results[local] = {
            "gamma": gamma,
            "prototypes": S,
            "witness": naive_witness(K, S),
            "mmd2": np.array([K.mean() - objective_j(K, S[:t]) for t in range(1, 101)]),
            "criticisms": naive_criticisms(K, S, 10),
        }
    return results


# ---------------------------------------------------------------- optimality on tiny problems
def test_greedy_prototypes_are_the_brute_force_optimum_on_planted_clusters():
    """Three tight clusters of 5, 4 and 3 points: the best 3 prototypes are one per cluster.

    Brute force over all 220 subsets of size 3 agrees with the greedy choice, and J of that
    set beats taking two points of the largest cluster (what a J without its diversity term
    -1/m^2 sum k(S, S) would prefer).
    """
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    sizes = [5, 4, 3]
    X = np.vstack(
        [c + 0.3 * rng.standard_normal((s, 2)) for c, s in zip(centres, sizes, strict=True)]
    )
    cluster = np.repeat([0, 1, 2], sizes)
    gamma = 0.5
    K = kernel_matrix(X, gamma)
    best = max(itertools.combinations(range(len(X)), 3), key=lambda S: objective_j(K, S))
    fit = MMDCritic(3, gamma=gamma, dtype="float64", device="cpu").fit(X)
    assert sorted(fit.prototype_indices_) == sorted(best)
    assert sorted(cluster[fit.prototype_indices_]) == [0, 1, 2]
    # best is sorted: best[0] lies in the 5-point cluster (rows 0-4), best[1] in the 4-point one.
    two_from_largest = [best[0], next(i for i in range(5) if i != best[0]), best[1]]
    assert objective_j(K, best) > objective_j(K, two_from_largest) + 0.05


@pytest.mark.parametrize("seed", range(12))
def test_greedy_is_optimal_for_one_prototype_and_within_1_minus_1_over_e(seed):
    """On 9 random points: m=1 greedy is the exact optimum; m=2, 3 within (1 - 1/e) of it."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((9, 2))
    gamma = 0.3
    K = kernel_matrix(X, gamma)
    for m in (1, 2, 3):
        fit = MMDCritic(m, gamma=gamma, dtype="float64", device="cpu").fit(X)
        optimum = max(objective_j(K, S) for S in itertools.combinations(range(9), m))
        greedy = objective_j(K, fit.prototype_indices_)
        assert optimum > 0  # the bound only means something for a positive optimum
        assert greedy <= optimum + 1e-12
        if m == 1:
            assert greedy == pytest.approx(optimum, abs=1e-12)
        assert greedy >= (1 - 1 / math.e) * optimum


def test_logdet_criticisms_are_diverse_where_witness_alone_repeats_itself():
    """A main cluster, four near-copies of one point (group A) and two of another (B).

    The prototypes leave |w| largest at the A copies. Ranked by |w| alone all three
    criticisms are A copies (K_CC almost singular); with log det K_CC only one is.
    """
    rng = np.random.default_rng(1)
    main = rng.standard_normal((60, 2))
    copies_a = np.array([8.0, 0.0]) + 0.01 * rng.standard_normal((4, 2))
    copies_b = np.array([0.0, 8.0]) + 0.01 * rng.standard_normal((2, 2))
    X = np.vstack([main, copies_a, copies_b])
    group_a = set(range(60, 64))
    K = kernel_matrix(X, 0.5)
    logdet = MMDCritic(6, 3, gamma=0.5, dtype="float64", device="cpu").fit(X)
    plain = MMDCritic(6, 3, gamma=0.5, regularizer="none", dtype="float64", device="cpu").fit(X)
    assert set(plain.criticism_indices_) <= group_a
    assert len(group_a & set(logdet.criticism_indices_)) == 1
    C_plain, C_logdet = plain.criticism_indices_, logdet.criticism_indices_
    assert np.linalg.slogdet(K[np.ix_(C_plain, C_plain)])[1] < -10
    assert np.linalg.slogdet(K[np.ix_(C_logdet, C_logdet)])[1] > -1


# ---------------------------------------------------------------- agreement with the naive side
@pytest.mark.parametrize("local", [False, True], ids=["global", "local"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_digits_prototypes_criticisms_witness_and_curve_match_naive(
    digits, naive_digits, local, dtype
):
    """Digits, m = 100, 10 criticisms: the same indices in the same order as the naive greedy
    on the full matrix, the witness at every point, and MMD^2 after every prototype."""
    X, y = digits
    naive = naive_digits[local]
    fit = MMDCritic(100, 10, gamma=naive["gamma"], local=local, dtype=dtype, device="cpu")
    fit.fit(X, y)
    np.testing.assert_array_equal(fit.prototype_indices_, naive["prototypes"])
    np.testing.assert_array_equal(fit.criticism_indices_, naive["criticisms"])
    for m in (10, 40):  # the greedy order is nested: a fit with m prototypes is the prefix
        prefix = MMDCritic(m, gamma=naive["gamma"], local=local, dtype=dtype, device="cpu")
        prefix.fit(X, y)
        np.testing.assert_array_equal(prefix.prototype_indices_, naive["prototypes"][:m])
    witness_tolerance = 1e-12 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(fit.witness_, naive["witness"], rtol=0, atol=witness_tolerance)
    curve_tolerance = 1e-9 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(fit.mmd2_curve_, naive["mmd2"], rtol=curve_tolerance)


def test_criticisms_without_regulariser_match_naive(digits):
    X, _ = digits
    gamma = 2 * median_heuristic_gamma(X)
    K = kernel_matrix(X, gamma)
    fit = MMDCritic(40, 15, gamma=gamma, regularizer="none", dtype="float64", device="cpu")
    fit.fit(X)
    expected = naive_criticisms(K, naive_prototypes(K, 40), 15, regularizer="none")
    np.testing.assert_array_equal(fit.criticism_indices_, expected)
