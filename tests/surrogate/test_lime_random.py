"""Randomness: scrambled Sobol points keep their balance, streams depend on instance and seed."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from surrogate.lime._random import array_key, instance_rng, scrambled_sobol, uniforms
from training.errors import InputError


def test_scrambled_sobol_points_stay_a_net():
    points = scrambled_sobol(np.random.default_rng(0), 1024, 12)
    for column in points.T:  # one point in each of the 1024 equal intervals of every axis
        assert np.array_equal(np.sort(np.floor(column * 1024)), np.arange(1024))
    boxes = np.floor(points[:, 0] * 32) * 32 + np.floor(points[:, 1] * 32)
    assert len(np.unique(boxes)) == 1024  # and of the 32 x 32 boxes of the first two axes


def test_scrambled_sobol_points_are_uniform_and_differ_by_seed():
    first = uniforms(np.random.default_rng(1), 3000, 5, "qmc")
    second = uniforms(np.random.default_rng(2), 3000, 5, "qmc")
    assert not np.array_equal(first, second)
    for column in np.hstack([first, second]).T:
        assert stats.kstest(column, "uniform").pvalue > 1e-3
    # Across scrambles, a fixed point (here row 7) is uniform too: no point is pinned.
    seventh = [uniforms(np.random.default_rng(s), 16, 1, "qmc")[7, 0] for s in range(400)]
    assert stats.kstest(seventh, "uniform").pvalue > 1e-3


def test_streams_depend_on_seed_and_instance_only():
    row = np.arange(4.0)

    def draw(seed, values):
        return instance_rng(seed, array_key(values)).random(3)

    assert np.array_equal(draw(3, row), draw(3, row.copy()))
    assert not np.array_equal(draw(3, row), draw(4, row))
    assert not np.array_equal(draw(3, row), draw(3, row + 1e-12))
    with pytest.raises(InputError, match="'qmc' or 'random'"):
        uniforms(np.random.default_rng(0), 3, 2, "sobol")
