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
"""

from __future__ import annotations

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
) -> np.ndarray:
    """``per_row`` samples around every row of ``X``: an array of shape (len(X) * per_row, d)."""
    if per_row == 0:
        return np.empty((0, X.shape[1]))
    scale = X.std(axis=0)
    seeds = np.repeat(np.arange(len(X)), per_row)
    samples = X[seeds].copy()
    if sampler == "local" and len(X) > 1:
        around = np.hstack([np.arange(len(X))[:, None], _nearest_neighbours(X, scale, n_neighbors)])
        centre = X[around].mean(axis=1)[seeds]
        # sum_j w_j (x_j - centre) / sqrt(m), w ~ N(0, 1): covariance = the group's covariance
        weights = rng.normal(size=(seeds.size, around.shape[1])) * (
            noise / np.sqrt(around.shape[1])
        )
        for j in range(around.shape[1]):
            samples += weights[:, j : j + 1] * (X[around[seeds, j]] - centre)
    else:
        if sampler == "neighbours" and len(X) > 1:
            neighbours = _nearest_neighbours(X, scale, n_neighbors)
            partner = neighbours[seeds, rng.randint(neighbours.shape[1], size=seeds.size)]
            samples += rng.uniform(size=(seeds.size, 1)) * (X[partner] - samples)
        samples += rng.normal(size=samples.shape) * (noise * scale)
    np.clip(samples, X.min(axis=0), X.max(axis=0), out=samples)
    return samples


def _nearest_neighbours(X: np.ndarray, scale: np.ndarray, n_neighbors: int) -> np.ndarray:
    """(n, k): the k nearest other rows of each row, in units of each feature's std."""
    units = X / np.where(scale > 0, scale, 1.0)
    k = min(n_neighbors, len(X) - 1)
    index = NearestNeighbors(n_neighbors=k + 1).fit(units).kneighbors(units, return_distance=False)
    # a row is usually its own nearest neighbour, but a duplicate may come first: drop it by id
    is_other = index != np.arange(len(X))[:, None]
    first_others = np.argsort(~is_other, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(index, first_others, axis=1)
