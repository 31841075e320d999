"""Oracle samples: extra inputs drawn near the data, for the black box to label.

Three models of "near the data" (neighbours are found in units of each feature's standard
deviation, so that no feature dominates by its scale):

- ``"gaussian"``: a data row plus independent Gaussian noise, ``noise * std`` per feature
  (a kernel density estimate; the TREPAN-style baseline).
- ``"neighbours"``: a point on the segment from a data row to one of its ``n_neighbors``
  nearest rows, plus the same Gaussian noise. Segments between neighbours stay on the data's
  manifold (two images of a 3 make a plausible 3, not a blur of noise), so the black box is
  asked about the kind of input it will really meet.
- ``"local"``: a Gaussian around a data row whose covariance is ``noise**2`` times that of the
  row and its ``n_neighbors`` nearest rows, so the spread follows the directions in which the
  data varies there (correlated measurements vary together).

Samples are clipped to the range each feature spans in the data, so that a pixel never goes
negative and a count never exceeds what was seen.

Rows of a table with categorical columns or missing values are sampled as codes
(:mod:`training.tables`), so that every sample is a row the table could hold: a categorical
column is never interpolated; it takes the category of the row (``"gaussian"``), of the row or
its partner (``"neighbours"``: the partner's with the same probability as the step towards it)
or of a random member of the neighbourhood (``"local"``). A missing number stays missing,
except that ``"neighbours"`` may take the partner's value (or its missingness) in the same way.
Only categories seen in the data ever appear, and a numeric column that holds only whole
numbers (a year, a count) gets whole numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from sklearn.neighbors import NearestNeighbors

Sampler = Literal["gaussian", "neighbours", "local"]
SAMPLERS: tuple[Sampler, ...] = ("gaussian", "neighbours", "local")
# (noise, n_neighbors) each sampler uses when they are not given
DEFAULTS: dict[str, tuple[float, int]] = {
    "gaussian": (0.3, 0),
    "neighbours": (0.3, 5),
    "local": (1.0, 15),
}


def draw_oracle_samples(
    X: np.ndarray,
    per_row: int,
    *,
    sampler: Sampler,
    noise: float,
    n_neighbors: int,
    rng: np.random.RandomState,
    categorical: Sequence[int] = (),
    units: np.ndarray | None = None,
) -> np.ndarray:
    """``per_row`` samples around every row of ``X``: an array of shape (len(X) * per_row, d).

    ``X`` holds numbers, or a table's codes: ``categorical`` names the columns that hold
    category codes, and NaN marks a missing number. ``units`` (one row per row of ``X``) is
    the space in which nearest rows are found; by default ``X`` in units of each column's std.
    """
    if per_row == 0:
        return np.empty((0, X.shape[1]))
    seeds = np.repeat(np.arange(len(X)), per_row)
    if len(categorical) or np.isnan(X).any():
        return _table_samples(X, seeds, sampler, noise, n_neighbors, rng, categorical, units)
    scale = X.std(axis=0)
    if units is None:
        units = X / np.where(scale > 0, scale, 1.0)
    samples = X[seeds].copy()
    if sampler == "local" and len(X) > 1:
        around = np.hstack([np.arange(len(X))[:, None], _nearest_neighbours(units, n_neighbors)])
        centre = X[around].mean(axis=1)[seeds]
        # sum_j w_j (x_j - centre) / sqrt(m), w ~ N(0, 1): covariance = the group's covariance
        weights = rng.normal(size=(seeds.size, around.shape[1])) * (
            noise / np.sqrt(around.shape[1])
        )
        for j in range(around.shape[1]):
            samples += weights[:, j : j + 1] * (X[around[seeds, j]] - centre)
    else:
        if sampler == "neighbours" and len(X) > 1:
            neighbours = _nearest_neighbours(units, n_neighbors)
            partner = neighbours[seeds, rng.randint(neighbours.shape[1], size=seeds.size)]
            samples += rng.uniform(size=(seeds.size, 1)) * (X[partner] - samples)
        samples += rng.normal(size=samples.shape) * (noise * scale)
    np.clip(samples, X.min(axis=0), X.max(axis=0), out=samples)
    return samples


def _table_samples(
    X: np.ndarray,
    seeds: np.ndarray,
    sampler: Sampler,
    noise: float,
    n_neighbors: int,
    rng: np.random.RandomState,
    categorical: Sequence[int],
    units: np.ndarray | None,
) -> np.ndarray:
    """Samples of a table's codes: numbers as for arrays, categories and missing values whole."""
    is_numeric = np.ones(X.shape[1], bool)
    is_numeric[list(categorical)] = False
    numeric = np.flatnonzero(is_numeric)
    filled = X.copy()
    for column in numeric:
        absent = np.isnan(X[:, column])
        filled[absent, column] = np.median(X[~absent, column]) if (~absent).any() else 0.0
    scale = np.zeros(X.shape[1])
    scale[numeric] = filled[:, numeric].std(axis=0)
    if units is None:
        units = filled / np.where(scale > 0, scale, 1.0)
    samples = X[seeds].copy()
    if sampler != "gaussian" and len(X) > 1:
        neighbours = _nearest_neighbours(units, n_neighbors)
        if sampler == "neighbours":
            partner = neighbours[seeds, rng.randint(neighbours.shape[1], size=seeds.size)]
            step = rng.uniform(size=(seeds.size, 1))
            theirs = X[partner]
            # what cannot be interpolated (a category, a missing number on either side) is
            # the partner's with the probability of the step towards it
            take_theirs = rng.uniform(size=samples.shape) < step
            indivisible = np.isnan(samples) | np.isnan(theirs)
            indivisible[:, ~is_numeric] = True
            between = samples + step * (
                np.where(indivisible, 0.0, theirs) - np.where(indivisible, 0.0, samples)
            )
            samples = np.where(indivisible, np.where(take_theirs, theirs, samples), between)
        else:
            around = np.hstack([np.arange(len(X))[:, None], neighbours])
            centre = filled[around].mean(axis=1)[seeds]
            weights = rng.normal(size=(seeds.size, around.shape[1])) * (
                noise / np.sqrt(around.shape[1])
            )
            values = filled[seeds].copy()
            for j in range(around.shape[1]):
                values += weights[:, j : j + 1] * (filled[around[seeds, j]] - centre)
            samples[:, numeric] = np.where(
                np.isnan(samples[:, numeric]), np.nan, values[:, numeric]
            )
            member = around[seeds, rng.randint(around.shape[1], size=seeds.size)]
            samples[:, ~is_numeric] = X[member][:, ~is_numeric]
    if sampler != "local":
        samples[:, numeric] += rng.normal(size=(seeds.size, numeric.size)) * (
            noise * scale[numeric]
        )
    present = ~np.isnan(X[:, numeric])
    low = np.where(present, X[:, numeric], np.inf).min(axis=0)
    high = np.where(present, X[:, numeric], -np.inf).max(axis=0)
    samples[:, numeric] = np.clip(samples[:, numeric], low, high)  # NaN stays NaN
    # a column of whole numbers (a year, a count) keeps them, so decoded rows keep its dtype
    whole = [c for j, c in enumerate(numeric) if np.all(np.mod(X[present[:, j], c], 1) == 0)]
    samples[:, whole] = np.round(samples[:, whole])
    return samples


def _nearest_neighbours(units: np.ndarray, n_neighbors: int) -> np.ndarray:
    """(n, k): the k nearest other rows of each row of ``units``."""
    k = min(n_neighbors, len(units) - 1)
    index = NearestNeighbors(n_neighbors=k + 1).fit(units).kneighbors(units, return_distance=False)
    # a row is usually its own nearest neighbour, but a duplicate may come first: drop it by id
    is_other = index != np.arange(len(units))[:, None]
    first_others = np.argsort(~is_other, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(index, first_others, axis=1)
