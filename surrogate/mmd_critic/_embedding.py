"""The space MMD-critic's RBF kernel works in: a table's rows as points where no column dominates.

A table (a pandas DataFrame, or codes with categorical columns) becomes one point per row:

- a numeric column, standardised by the training table's mean and standard deviation, so a
  column in grams weighs what one in kilograms does;
- a categorical column, one-hot over its categories (a missing value is a category of its own)
  times 1/sqrt(2): two rows that differ in the column differ in two coordinates by 1/sqrt(2),
  so a mismatch adds exactly 1 to the squared distance, whatever the number of categories;
- a numeric column with missing values gets the training mean (0 once standardised) where a
  value is missing, and an indicator of missing values scaled by the column's standard
  deviation (1 once standardised). Missing against present then costs 1 + z^2, and on average
  over the table 2: the same as two present values differ on average (E (z_1 - z_2)^2 = 2), and
  a missing value is one category mismatch away from the mean.

So the squared distance between two rows is the standardised numeric squared distance plus the
number of category mismatches (and of missing/present mismatches), and
exp(-gamma * that) is an RBF kernel on an embedding: positive definite, so MMD, the witness
function and the log-det criticism term keep their meaning.

A plain numeric array is used as it is unless standardisation is asked for: its columns share
one unit (pixels), and standardising would weigh a nearly constant border pixel like the centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training.tables import OneHotColumn, TableSchema

CATEGORY_SCALE = 1.0 / math.sqrt(2.0)
"""One-hot coordinates of a categorical column are this value, so a mismatch costs 1."""


@dataclass(frozen=True)
class KernelEmbedding:
    """Fitted map from rows (a DataFrame or codes) to the points the RBF kernel compares.

    ``schema`` is None for a plain numeric array. ``names`` names each coordinate
    (``age``, ``age missing``, ``sex=female``); a point is ``(design - shift) * scale`` with
    ``design`` the schema's one-hot design matrix, where a missing number is ``fill`` (the
    training mean of its column).
    """

    schema: TableSchema | None
    names: list[str]
    shift: np.ndarray
    scale: np.ndarray
    standardized: bool
    fill: np.ndarray | None = None

    @classmethod
    def fit(
        cls, codes: np.ndarray, schema: TableSchema | None, *, standardize: bool
    ) -> KernelEmbedding:
        """The embedding of a training table given as ``codes`` (n, d) of ``schema``.

        With ``schema=None`` the codes are a plain numeric array (no missing values, no
        categories): standardised columns, or the array as it is.
        """
        if schema is None:
            d = codes.shape[1]
            names = [str(i) for i in range(d)]
            if not standardize:
                return cls(None, names, np.zeros(d), np.ones(d), False)
            mean, std = codes.mean(axis=0), codes.std(axis=0)
            return cls(None, names, mean, 1.0 / _usable(std), True)
        numeric = schema.numeric_indices
        means = np.zeros(schema.n_columns)
        stds = np.ones(schema.n_columns)
        if numeric:
            values = codes[:, numeric]
            means[numeric] = np.nanmean(values, axis=0)
            stds[numeric] = _usable(np.nanstd(values, axis=0))
        _, origins = schema.one_hot(codes[:1], fill=means)
        shift = np.zeros(len(origins))
        scale = np.ones(len(origins))
        for k, origin in enumerate(origins):
            shift[k], scale[k] = _coordinate(origin, means, stds, standardize)
        names = [origin.name for origin in origins]
        return cls(schema, names, shift, scale, standardize, means)

    def transform(self, rows: Any) -> np.ndarray:
        """Points (n, len(names)) of ``rows``: a DataFrame with the training columns, or codes."""
        if self.schema is None:
            if not self.standardized:
                return np.asarray(rows, dtype=np.float64)
            return (np.asarray(rows, dtype=np.float64) - self.shift) * self.scale
        if isinstance(rows, pd.DataFrame):  # the schema names columns as text
            rows = rows.rename(columns=str)
        return self.embed_codes(self.schema.encode(rows, what="X"))

    def embed_codes(self, codes: np.ndarray) -> np.ndarray:
        """Points of checked ``codes`` (n, d) of the schema (or of a plain numeric array)."""
        if self.schema is None:
            return self.transform(codes)
        design, _ = self.schema.one_hot(codes, fill=self.fill)
        return (design - self.shift) * self.scale


def _coordinate(
    origin: OneHotColumn, means: np.ndarray, stds: np.ndarray, standardize: bool
) -> tuple[float, float]:
    """(shift, scale) of one design column (see the module docstring)."""
    if origin.category is not None:
        return 0.0, CATEGORY_SCALE
    std = float(stds[origin.column])
    if origin.missing:  # one category mismatch once standardised; one std in raw units
        return 0.0, 1.0 if standardize else std
    return float(means[origin.column]), 1.0 / std if standardize else 1.0


def _usable(std: np.ndarray) -> np.ndarray:
    """Standard deviations with 0 (a constant column, which adds nothing) replaced by 1."""
    return np.where(std > 0, std, 1.0)
