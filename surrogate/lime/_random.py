"""Random numbers for LIME: one reproducible stream per instance, and vectorised samplers.

An explanation is a function of the instance, the ``random_state`` and the options only: the
stream that draws an instance's neighbours is seeded from ``random_state`` and a hash of the
instance itself, so explaining rows one by one, in another order or all at once with
``explain_many`` gives bit-identical results.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from training.errors import InputError

RandomState = int | np.integer | np.random.Generator | None
_TINY = 2.0**-60
_EPSILON = 2.0**-53


def check_random_state(random_state: RandomState) -> RandomState:
    """Validate ``random_state``: a non-negative integer, a NumPy ``Generator`` or ``None``."""
    if random_state is None or isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise InputError(f"random_state must be non-negative, got {random_state}")
        return int(random_state)
    raise InputError(
        "random_state must be a non-negative integer, a numpy.random.Generator or None; "
        f"got {type(random_state).__name__}"
    )


def instance_rng(random_state: RandomState, key: bytes) -> np.random.Generator:
    """The generator that draws the neighbourhood of the instance identified by ``key``.

    An integer ``random_state`` gives a stream that depends on it and on ``key`` only; a
    ``Generator`` is used as it is (its state advances from call to call); ``None`` draws
    fresh entropy.
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    digest = np.frombuffer(hashlib.blake2b(key, digest_size=16).digest(), dtype=np.uint32)
    return np.random.default_rng(np.random.SeedSequence([int(random_state), *digest.tolist()]))


def array_key(array: np.ndarray) -> bytes:
    """Bytes that identify an array's values, shape and dtype (for :func:`instance_rng`)."""
    array = np.ascontiguousarray(array)
    return f"{array.dtype.str}{array.shape}".encode() + array.tobytes()


def uniforms(rng: np.random.Generator, n: int, d: int, sampler: str) -> np.ndarray:
    """(n, d) uniforms on [0, 1) from which every neighbour is drawn.

    ``"random"`` gives independent draws. ``"qmc"`` gives a scrambled Sobol sequence
    (randomised quasi-Monte Carlo): each row is still uniform on the cube, so every neighbour
    has the distribution LIME prescribes and the estimator is unchanged, but the rows cover the
    cube more evenly than independent draws, which lowers the variance of the surrogate's
    weights at a given number of samples.
    """
    if sampler == "random":
        return rng.random((n, d))
    if sampler != "qmc":
        raise InputError(f"sampler must be 'qmc' or 'random', got {sampler!r}")
    if d == 0:
        return np.empty((n, 0))
    from scipy.stats import qmc

    with warnings.catch_warnings():
        # Sobol points are balanced at powers of two; any prefix is still a valid RQMC sample.
        warnings.simplefilter("ignore", UserWarning)
        points = qmc.Sobol(d, scramble=True, rng=rng).random(n)
    # Keep inverse CDFs finite: a scrambled point may fall on 0 exactly.
    return np.clip(points, _TINY, 1.0 - _EPSILON)


def sample_categories(uniforms: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
    """Indices of categories drawn by inverse CDF: ``uniforms`` (n,) against a cumulative
    frequency vector; the same rule ``numpy.random.Generator.choice`` uses."""
    index = np.searchsorted(cumulative, uniforms, side="right")
    return np.minimum(index, len(cumulative) - 1)


class TruncatedNormals:
    """A table of normals, each truncated to an interval, sampled by inverse CDF.

    ``low``, ``high``, ``mean`` and ``std`` are equal-shape arrays, one entry per distribution
    (for LIME: per feature and bin). The normal CDF at each interval's ends is computed once
    here, so a draw costs one inverse normal CDF. The distribution is that of
    ``scipy.stats.truncnorm``. Intervals right of the mean are sampled as the mirror image of
    their left counterpart, where the CDF keeps its relative precision. An interval without
    normal mass in double precision yields its end nearest the mean, a single point itself.
    """

    def __init__(self, low: Any, high: Any, mean: Any, std: Any) -> None:
        low, high = np.asarray(low, np.float64).ravel(), np.asarray(high, np.float64).ravel()
        mean, std = np.asarray(mean, np.float64).ravel(), np.asarray(std, np.float64).ravel()
        low_z, high_z = (low - mean) / std, (high - mean) / std
        self.mirror = low_z > 0
        a = np.where(self.mirror, -high_z, low_z)
        b = np.where(self.mirror, -low_z, high_z)
        self.cdf_low = ndtr(a)
        self.cdf_width = ndtr(b) - self.cdf_low
        self.sign = np.where(self.mirror, -1.0, 1.0)
        self.low, self.high, self.mean, self.std = low, high, mean, std
        nearest = np.where(np.abs(low_z) < np.abs(high_z), low, high)
        self.fixed = np.where(self.cdf_width > 0, np.nan, nearest)
        self.any_fixed = bool(np.isfinite(self.fixed).any())

    def sample(self, uniforms: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Draw from distribution ``index`` (flat indices) for each of ``uniforms``."""
        z = ndtri(self.cdf_low.take(index) + uniforms * self.cdf_width.take(index))
        values = self.mean.take(index) + self.std.take(index) * self.sign.take(index) * z
        np.clip(values, self.low.take(index), self.high.take(index), out=values)
        if not self.any_fixed:
            return values
        fixed = self.fixed.take(index)
        return np.where(np.isnan(fixed), values, fixed)
