"""Random numbers for LIME: one reproducible stream per instance, and vectorised samplers.

An explanation is a function of the instance, the ``random_state`` and the options only: the
stream that draws an instance's neighbours is seeded from ``random_state`` and a hash of the
instance itself, so explaining rows one by one, in another order or all at once with
``explain_many`` gives bit-identical results.
"""

from __future__ import annotations

import hashlib
import warnings
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from training.errors import InputError

RandomState = int | np.integer | np.random.Generator | np.random.RandomState | None
_TINY = 2.0**-60
_SOBOL_BITS = 30
_BLOCK_ROWS = 2048


def check_random_state(random_state: RandomState) -> RandomState:
    """Validate ``random_state``: a non-negative integer, a NumPy ``Generator`` or
    ``RandomState`` (``lime``'s type), or ``None``."""
    if random_state is None or isinstance(
        random_state, (np.random.Generator, np.random.RandomState)
    ):
        return random_state
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise InputError(f"random_state must be non-negative, got {random_state}")
        return int(random_state)
    raise InputError(
        "random_state must be a non-negative integer, a numpy.random.Generator or "
        "RandomState, or None; "
        f"got {type(random_state).__name__}"
    )


def instance_rng(random_state: RandomState, key: bytes) -> np.random.Generator:
    """The generator that draws the neighbourhood of the instance identified by ``key``.

    An integer ``random_state`` gives a stream that depends on it and on ``key`` only; a
    ``Generator`` is used as it is (its state advances from call to call); a ``RandomState``
    seeds a fresh stream per call from its own draws (so it advances too, as in ``lime``);
    ``None`` draws fresh entropy.
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 1 << 32, size=4).tolist())
    if random_state is None:
        return np.random.default_rng()
    digest = np.frombuffer(hashlib.blake2b(key, digest_size=16).digest(), dtype=np.uint32)
    return np.random.default_rng(np.random.SeedSequence([int(random_state), *digest.tolist()]))


def array_key(array: np.ndarray) -> bytes:
    """Bytes that identify an array's values, shape and dtype (for :func:`instance_rng`)."""
    array = np.ascontiguousarray(array)
    return f"{array.dtype.str}{array.shape}".encode() + array.tobytes()


def uniforms(rng: np.random.Generator, n: int, d: int, sampler: str) -> np.ndarray:
    """(n, d) uniforms on (0, 1) from which every neighbour is drawn.

    ``"random"`` gives independent draws. ``"qmc"`` gives a scrambled Sobol sequence
    (randomised quasi-Monte Carlo): each row is still uniform on the cube, so every neighbour
    has the distribution LIME prescribes and the estimator is unchanged, but the rows cover the
    cube more evenly than independent draws, which lowers the variance of the surrogate's
    weights at a given number of samples. Either may be a column-major array.
    """
    if sampler == "random":
        # Keep inverse CDFs finite: a draw may be 0 exactly.
        return np.maximum(rng.random((n, d)), _TINY)
    if sampler != "qmc":
        raise InputError(f"sampler must be 'qmc' or 'random', got {sampler!r}")
    if n == 0 or d == 0:
        return np.zeros((n, d))
    return scrambled_sobol(rng, n, d)


def scrambled_sobol(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """The first ``n`` points of a d-dimensional Sobol sequence with a random linear matrix
    scramble and a random digital shift (Matousek's scramble, as ``scipy.stats.qmc.Sobol``
    applies it), as an (n, d) column-major array of floats in (0, 1).

    The scramble multiplies each dimension's direction numbers by a random lower-triangular
    binary matrix with a unit diagonal, so the points stay a (t, m, s)-net while each is uniform
    on the cube; points are then made in Gray-code order by one cumulative XOR per dimension,
    and placed at the centre of their cell of the 2^-30 grid (so none is 0 or 1).
    """
    count = max(1, (n - 1).bit_length())
    directions = _linear_scramble(_direction_numbers(d, count), rng)
    steps = np.arange(1, n, dtype=np.int64)
    steps = np.log2((steps & -steps).astype(np.float64)).astype(np.intp)  # trailing zeros
    points = np.zeros((d, n), dtype=np.uint32)  # one contiguous row per dimension
    np.bitwise_xor.accumulate(directions[:, steps], axis=1, out=points[:, 1:])
    points ^= rng.integers(0, 1 << _SOBOL_BITS, size=(d, 1), dtype=np.uint32)
    unit = np.add(points, 0.5, dtype=np.float64)
    unit *= 2.0**-_SOBOL_BITS
    return unit.T


@lru_cache(maxsize=64)
def _direction_numbers(d: int, count: int) -> np.ndarray:
    """(d, count) direction numbers of scipy's Sobol sequence: in its Gray-code order, point
    2^k differs from point 2^k - 1 by direction number k."""
    from scipy.stats import qmc

    engine = qmc.Sobol(d, scramble=False, bits=_SOBOL_BITS)
    columns = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a pair of points is not a power of two
        for k in range(count):
            engine.reset()
            if k:
                engine.fast_forward(2**k - 1)
            pair = np.round(engine.random(2) * 2.0**_SOBOL_BITS).astype(np.uint32)
            columns.append(pair[0] ^ pair[1])
    directions = np.stack(columns, axis=1)
    directions.flags.writeable = False
    return directions


def _linear_scramble(directions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Multiply each dimension's direction numbers (bits as vectors, most significant first)
    by its own random lower-triangular binary matrix with ones on the diagonal."""
    d = directions.shape[0]
    digits = np.left_shift(np.uint32(1), np.arange(_SOBOL_BITS - 1, -1, -1, dtype=np.uint32))
    above = np.uint32((1 << _SOBOL_BITS) - 1) ^ ((digits << np.uint32(1)) - np.uint32(1))
    noise = rng.integers(0, 1 << _SOBOL_BITS, size=(d, _SOBOL_BITS), dtype=np.uint32)
    rows = (noise & above) | digits  # row r: random more significant digits, and digit r
    # Output digit r of each direction number is the parity of (row r AND the number).
    bits = _parity(directions[:, None, :] & rows[:, :, None]) * digits[None, :, None]
    return np.bitwise_or.reduce(bits, axis=1)


def _parity(words: np.ndarray) -> np.ndarray:
    """1 where an unsigned 32-bit word has an odd number of set bits, else 0."""
    for shift in (16, 8, 4, 2, 1):
        words = words ^ (words >> np.uint32(shift))
    return words & np.uint32(1)


class Categories:
    """Categorical distributions of several columns, drawn by inverse CDF.

    ``frequencies`` holds one probability vector per column. A uniform u of a column picks its
    category by a ``searchsorted`` of u in the column's cumulative frequencies (the rule
    ``numpy.random.Generator.choice`` uses). Draws are flat indices into the concatenation of
    all columns' categories; ``offsets`` says where each column starts.
    """

    def __init__(self, frequencies: list[np.ndarray]) -> None:
        sizes = np.array([len(f) for f in frequencies], dtype=np.intp)
        self.offsets = np.cumsum(sizes) - sizes
        self.cumulative = [np.cumsum(f) for f in frequencies]

    def draw(self, uniforms: np.ndarray) -> np.ndarray:
        """Flat category indices (n, columns) for uniforms (n, columns)."""
        drawn = np.empty(uniforms.shape, dtype=np.intp)
        # One small search per column beats one search over all columns' thresholds.
        for column, (cumulative, offset) in enumerate(
            zip(self.cumulative, self.offsets, strict=True)
        ):
            local = np.searchsorted(cumulative, uniforms[:, column], side="right")
            np.minimum(local, len(cumulative) - 1, out=local)
            np.add(local, offset, out=drawn[:, column])
        return drawn


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
        mirror = low_z > 0
        cdf_low = ndtr(np.where(mirror, -high_z, low_z))
        cdf_width = ndtr(np.where(mirror, -low_z, high_z)) - cdf_low
        scale = np.where(mirror, -std, std)
        # Without mass, draw z = 0 at scale 0 from the end nearest the mean.
        empty = ~(cdf_width > 0)
        nearest = np.where(np.abs(low_z) < np.abs(high_z), low, high)
        self.cdf_low = np.where(empty, 0.5, cdf_low)
        self.cdf_width = np.where(empty, 0.0, cdf_width)
        self.loc = np.where(empty, nearest, mean)
        self.scale = np.where(empty, 0.0, scale)
        self.low, self.high = low, high

    def sample(
        self, uniforms: np.ndarray, index: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Draw from distribution ``index`` (flat indices) for each of ``uniforms``, into
        ``out`` when given. Rows are drawn a block at a time, in place, through one scratch
        buffer that every gathered parameter passes through in turn (fresh temporaries of this
        size cost more in page faults than the arithmetic)."""
        if out is None:
            out = np.empty(np.shape(uniforms))
        scratch = np.empty((min(_BLOCK_ROWS, len(out)), *np.shape(uniforms)[1:]))
        for start in range(0, len(out), _BLOCK_ROWS):
            rows = slice(start, start + _BLOCK_ROWS)
            cells, values = index[rows], out[rows]
            parameter = scratch[: len(values)]
            np.multiply(uniforms[rows], self.cdf_width.take(cells, out=parameter), out=values)
            values += self.cdf_low.take(cells, out=parameter)
            ndtri(values, out=values)
            values *= self.scale.take(cells, out=parameter)
            values += self.loc.take(cells, out=parameter)
            np.maximum(values, self.low.take(cells, out=parameter), out=values)
            np.minimum(values, self.high.take(cells, out=parameter), out=values)
        return out
