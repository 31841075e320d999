"""Tables as users have them, and the codes the explainers compute with.

A table is a pandas DataFrame (numeric, categorical/string and boolean columns, missing values)
or a numeric array. :class:`TableSchema` remembers its columns and their dtypes and turns rows
into *codes*, a float64 array with one column per table column:

- a numeric column keeps its values, a missing value is NaN;
- a categorical column (strings, ``category``, booleans, or any column the caller names) holds
  the index of its value in the column's ``categories``, the values seen in the training table,
  sorted; a missing value is a category of its own, ``MISSING``, the last one, when the training
  table had one.

:meth:`TableSchema.decode` turns codes back into a DataFrame with the original column names and
dtypes, so a model fitted on a DataFrame (an unchanged scikit-learn ``Pipeline``) is called with
what it was fitted on. :meth:`TableSchema.one_hot` gives the numeric design matrix that trees and
kernels need (numeric columns, a missing indicator where a numeric column has missing values, one
column per category), with names that read as raw columns (``sex=female``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from training.errors import InputError

MISSING = "missing"
"""How a categorical column's missing values are named, as a category of their own."""


@dataclass(frozen=True)
class Column:
    """One column of a table: its name, original dtype and, if categorical, its categories."""

    name: str
    dtype: Any
    categories: tuple[Any, ...] | None = None  # seen values, sorted; None for a numeric column
    has_missing: bool = False  # a categorical column's last category is MISSING
    label: Any = None  # the DataFrame's own column label (e.g. an integer), when not ``name``

    @property
    def key(self) -> Any:
        """The column's label in the user's DataFrame."""
        return self.name if self.label is None else self.label

    @property
    def is_categorical(self) -> bool:
        """Whether the column is explained by category rather than by value."""
        return self.categories is not None

    def category_names(self) -> list[str]:
        """Readable names of the categories, ``MISSING`` last where there is one."""
        names = [str(value) for value in self.categories or ()]
        return [*names, MISSING] if self.has_missing else names


@dataclass(frozen=True)
class OneHotColumn:
    """Where a column of :meth:`TableSchema.one_hot`'s design matrix comes from."""

    column: int  # index of the table column
    category: int | None  # the category's code, or None for a numeric value or its indicator
    missing: bool = False  # the indicator of a numeric column's missing values
    name: str = ""


class TableSchema:
    """The columns of a training table, and the map between its rows and their codes.

    Build one with :meth:`from_data`; ``schema.encode(rows)`` gives codes, ``schema.decode(codes)``
    a DataFrame with the original columns and dtypes.
    """

    def __init__(self, columns: Sequence[Column], from_frame: bool) -> None:
        self.columns = list(columns)
        self.from_frame = from_frame
        self.names = [column.name for column in self.columns]

    # ---- building ------------------------------------------------------------------------

    @classmethod
    def from_data(
        cls,
        data: Any,
        *,
        categorical: Sequence[str | int] | None = None,
        feature_names: Sequence[str] | None = None,
        what: str = "data",
    ) -> tuple[TableSchema, np.ndarray]:
        """The schema of ``data`` (a DataFrame or a 2-D array) and ``data``'s codes.

        ``categorical`` names (or indexes) the categorical columns; ``None`` takes every
        non-numeric column of a DataFrame (text, ``category``, booleans) and none of an array.
        A numeric array's categorical columns hold integer codes already. A column named
        numeric that holds text, an infinite value, an empty table, or a column with no value
        at all is one :class:`InputError` that names the column.
        """
        if isinstance(data, pd.DataFrame):
            frame = data
            from_frame = True
        else:
            array = two_dimensional(data, what)
            names = (
                [str(name) for name in feature_names]
                if feature_names is not None
                else [str(i) for i in range(array.shape[1])]
            )
            if len(names) != array.shape[1]:
                raise InputError(
                    f"feature_names has {len(names)} names for {array.shape[1]} columns"
                )
            frame = pd.DataFrame(array, columns=names)
            from_frame = False
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise InputError(f"{what} is empty ({frame.shape[0]} rows, {frame.shape[1]} columns)")
        names = [str(name) for name in frame.columns]
        if len(set(names)) != len(names):
            twice = sorted({name for name in names if names.count(name) > 1})
            raise InputError(f"{what} has repeated column names: {twice}")
        chosen = _categorical_columns(frame, names, categorical, from_frame, what)
        columns = []
        for index, name in enumerate(names):
            series = frame.iloc[:, index]
            if index in chosen:
                column = _categorical_column(name, series, from_frame, what)
            else:
                column = _numeric_column(name, series, what)
            label = frame.columns[index]
            columns.append(replace(column, label=label) if label != name else column)
        schema = cls(columns, from_frame)
        return schema, schema.encode(frame, what=what)

    # ---- what the columns are ------------------------------------------------------------

    @property
    def n_columns(self) -> int:
        """Number of table columns (and of code columns)."""
        return len(self.columns)

    @property
    def categorical_indices(self) -> list[int]:
        """Indices of the categorical columns."""
        return [i for i, column in enumerate(self.columns) if column.is_categorical]

    @property
    def numeric_indices(self) -> list[int]:
        """Indices of the numeric columns."""
        return [i for i, column in enumerate(self.columns) if not column.is_categorical]

    def category_names(self) -> dict[int, list[str]]:
        """``{column: [name of code 0, name of code 1, ...]}`` for the categorical columns."""
        return {i: self.columns[i].category_names() for i in self.categorical_indices}

    def describe(self) -> list[dict[str, Any]]:
        """One JSON-able record per column: name, dtype, kind and categories."""
        return [
            {
                "name": column.name,
                "dtype": str(column.dtype),
                "kind": "categorical" if column.is_categorical else "numeric",
                **({"categories": column.category_names()} if column.is_categorical else {}),
            }
            for column in self.columns
        ]

    # ---- rows <-> codes ------------------------------------------------------------------

    def encode(self, rows: Any, *, what: str = "rows") -> np.ndarray:
        """Codes (n, d) of ``rows``: a DataFrame with the schema's columns, a Series or dict
        (one row), or an array that already holds codes (checked)."""
        if isinstance(rows, pd.Series):
            rows = rows.to_frame().T
        elif isinstance(rows, dict):
            rows = pd.DataFrame([rows])
        if not isinstance(rows, pd.DataFrame):
            return self._checked_codes(two_dimensional(rows, what), what)
        present = {str(label): label for label in rows.columns}
        missing = [name for name in self.names if name not in present]
        if missing:
            raise InputError(f"{what} lack the column(s) {missing} of the training table")
        codes = np.empty((len(rows), self.n_columns), dtype=np.float64)
        for index, column in enumerate(self.columns):
            series = rows[present[column.name]]
            if column.is_categorical:
                codes[:, index] = _category_codes(column, series, what)
            else:
                codes[:, index] = _numeric_values(column.name, series, what)
        return codes

    def decode(self, codes: np.ndarray) -> pd.DataFrame:
        """A DataFrame with the original columns and dtypes for codes (n, d).

        Categorical codes become their values (``MISSING`` becomes a missing value); numeric
        columns are float64, or their original integer dtype when every value is whole.
        """
        codes = np.asarray(codes, dtype=np.float64)
        data: dict[str, Any] = {}
        for index, column in enumerate(self.columns):
            values = codes[:, index]
            if column.is_categorical:
                data[column.key] = _category_values(column, values)
            else:
                data[column.key] = _numeric_series(column, values)
        return pd.DataFrame(data)

    def _checked_codes(self, codes: np.ndarray, what: str) -> np.ndarray:
        if codes.shape[1] != self.n_columns:
            raise InputError(
                f"{what} have {codes.shape[1]} columns but the training table has {self.n_columns}"
            )
        if np.isinf(codes).any():
            column = self.names[int(np.flatnonzero(np.isinf(codes).any(axis=0))[0])]
            raise InputError(f"{what} hold an infinite value in column {column!r}")
        for index in self.categorical_indices:
            values = codes[:, index]
            size = len(self.columns[index].category_names())
            absent = np.isnan(values)
            if self.columns[index].has_missing and absent.any():  # the MISSING category
                codes = codes.copy()  # never write into the caller's array
                codes[absent, index] = size - 1
                values = codes[:, index]
            bad = ~np.isfinite(values) | (values != np.round(values)) | (values < 0)
            bad |= values >= size
            if bad.any():
                raise InputError(
                    f"{what}: column {self.names[index]!r} is categorical and holds codes 0 to "
                    f"{size - 1}, got {values[np.flatnonzero(bad)[0]]}"
                )
        return codes

    # ---- design matrices for trees and kernels -------------------------------------------

    def one_hot(
        self, codes: np.ndarray, *, fill: np.ndarray | None = None
    ) -> tuple[np.ndarray, list[OneHotColumn]]:
        """A numeric design matrix of codes (n, d) and where each of its columns comes from.

        Numeric columns come first as they are, a missing value replaced by ``fill`` (one value
        per table column; 0 when not given), followed by an indicator of missing values where
        the training table had any; every categorical column becomes one 0/1 column per
        category (``MISSING`` included).
        """
        codes = np.asarray(codes, dtype=np.float64)
        parts: list[np.ndarray] = []
        origin: list[OneHotColumn] = []
        for index, column in enumerate(self.columns):
            values = codes[:, index]
            if column.is_categorical:
                names = column.category_names()
                levels = np.arange(len(names), dtype=np.float64)
                parts.append((values[:, None] == levels[None, :]).astype(np.float64))
                origin.extend(
                    OneHotColumn(index, level, name=f"{column.name}={name}")
                    for level, name in enumerate(names)
                )
                continue
            absent = np.isnan(values)
            filled = np.where(absent, 0.0 if fill is None else fill[index], values)
            parts.append(filled[:, None])
            origin.append(OneHotColumn(index, None, name=column.name))
            if column.has_missing:
                parts.append(absent[:, None].astype(np.float64))
                origin.append(
                    OneHotColumn(index, None, missing=True, name=f"{column.name} missing")
                )
        return np.hstack(parts), origin


# ---- helpers ---------------------------------------------------------------------------------


def two_dimensional(data: Any, what: str) -> np.ndarray:
    """``data`` as a non-empty float64 (rows, columns) array, or one error naming ``what``."""
    try:
        array = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"{what} must be a numeric table or a pandas DataFrame: {err}") from err
    if array.ndim != 2:
        raise InputError(f"{what} must be a 2-D table (rows, columns), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"{what} is empty (shape {array.shape})")
    return array


def _is_numeric(series: pd.Series) -> bool:
    return bool(
        pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
    )


def _categorical_columns(
    frame: pd.DataFrame,
    names: list[str],
    categorical: Sequence[str | int] | None,
    from_frame: bool,
    what: str,
) -> set[int]:
    if categorical is None:
        return {i for i in range(len(names)) if not _is_numeric(frame.iloc[:, i])}
    chosen: set[int] = set()
    for item in categorical:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not 0 <= int(item) < len(names):
                raise InputError(
                    f"categorical column {int(item)} does not exist: {what} has columns 0 to "
                    f"{len(names) - 1}"
                )
            chosen.add(int(item))
        elif str(item) in names:
            chosen.add(names.index(str(item)))
        else:
            raise InputError(
                f"categorical column {item!r} is not a column of {what} ({', '.join(names)})"
            )
    for index, name in enumerate(names):
        series = frame.iloc[:, index]
        if index not in chosen and not _is_numeric(series):
            example = series.dropna().iloc[0] if series.notna().any() else None
            raise InputError(
                f"column {name!r} holds non-numeric values (e.g. {example!r}) but is not among "
                "the categorical columns: name it there, or make it numeric"
            )
    return chosen


def _sorted_values(values: Sequence[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:  # mixed types: order by text, which is stable and readable
        return sorted(values, key=lambda value: (type(value).__name__, str(value)))


def _categorical_column(name: str, series: pd.Series, from_frame: bool, what: str) -> Column:
    present = series.dropna()
    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = [c for c in series.dtype.categories if (present == c).any()]
    elif from_frame:
        categories = _sorted_values(pd.unique(present).tolist())
    else:  # integer codes of an array: the codes are the categories
        values = present.to_numpy(dtype=np.float64)
        if (values != np.round(values)).any() or (values < 0).any():
            raise InputError(
                f"column {name!r} of {what} is categorical, so it must hold integer codes "
                "0, 1, 2, ...; got non-integer or negative values"
            )
        categories = list(range(int(values.max()) + 1)) if len(values) else []
    if not categories:
        raise InputError(f"column {name!r} of {what} has no value in any row")
    return Column(name, series.dtype, tuple(categories), bool(series.isna().any()))


def _numeric_column(name: str, series: pd.Series, what: str) -> Column:
    values = _numeric_values(name, series, what)
    if np.isnan(values).all():
        raise InputError(f"column {name!r} of {what} has no value in any row")
    return Column(name, series.dtype, None, bool(np.isnan(values).any()))


def _numeric_values(name: str, series: pd.Series, what: str) -> np.ndarray:
    try:
        values = pd.to_numeric(series, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as err:
        bad = series[pd.to_numeric(series, errors="coerce").isna() & series.notna()]
        example = bad.iloc[0] if len(bad) else "?"
        raise InputError(
            f"column {name!r} of {what} is numeric but holds {example!r} (row {bad.index[0]})"
            if len(bad)
            else f"column {name!r} of {what} is numeric but cannot be read as numbers: {err}"
        ) from err
    if np.isinf(values).any():
        row = int(np.flatnonzero(np.isinf(values))[0])
        raise InputError(f"column {name!r} of {what} holds an infinite value (row {row})")
    return values


def _category_codes(column: Column, series: pd.Series, what: str) -> np.ndarray:
    categories = column.categories or ()
    lookup = {_key(value): code for code, value in enumerate(categories)}
    codes = np.empty(len(series), dtype=np.float64)
    absent = series.isna().to_numpy()
    if absent.any() and not column.has_missing:
        raise InputError(
            f"{what}: column {column.name!r} has a missing value (row {int(np.argmax(absent))}) "
            "but the training table has none in it"
        )
    codes[absent] = len(categories)
    for row in np.flatnonzero(~absent):
        value = series.iloc[row]
        code = lookup.get(_key(value))
        if code is None:
            raise InputError(
                f"{what}: column {column.name!r} has the value {value!r} (row {row}), which the "
                f"training table never holds (it holds {', '.join(map(str, categories[:10]))}"
                f"{', ...' if len(categories) > 10 else ''})"
            )
        codes[row] = code
    return codes


def _key(value: Any) -> Any:
    """A dictionary key under which equal values meet (1 == 1.0 == np.int64(1); True apart)."""
    if isinstance(value, (bool, np.bool_)):
        return ("bool", bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return ("number", float(value))
    return ("other", value)


def _category_values(column: Column, codes: np.ndarray) -> pd.Series:
    categories = column.categories or ()
    values = np.empty(len(codes), dtype=object)
    whole = codes.astype(np.intp)
    present = whole < len(categories)
    values[present] = np.asarray(categories, dtype=object)[whole[present]]
    values[~present] = None
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.Series(pd.Categorical(values, dtype=dtype))
    if pd.api.types.is_bool_dtype(dtype) and (~present).any():
        return pd.Series(values, dtype=object)
    try:
        return pd.Series(values).astype(dtype)
    except (TypeError, ValueError):
        return pd.Series(values, dtype=object)


def _numeric_series(column: Column, values: np.ndarray) -> pd.Series:
    dtype = column.dtype
    if (
        pd.api.types.is_integer_dtype(dtype)
        and np.isfinite(values).all()
        and (values == np.round(values)).all()
    ):
        return pd.Series(values).astype(dtype)
    return pd.Series(values, dtype=np.float64)
