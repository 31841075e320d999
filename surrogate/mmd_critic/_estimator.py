"""The MMDCritic estimator: prototypes and criticisms of a data set (Kim, Khanna, Koyejo 2016)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_consistent_length, check_is_fitted, validate_data

from surrogate.mmd_critic._embedding import KernelEmbedding
from surrogate.mmd_critic._gamma import median_heuristic_gamma, select_gamma
from surrogate.mmd_critic._greedy import mmd_critic
from surrogate.mmd_critic._nearest import nearest_prototype, staged_errors
from training.devices import resolve_device
from training.errors import InputError
from training.tables import TableSchema

GAMMA_RULES = ("median", "accuracy", "mmd")
DEFAULT_GAMMA_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class MMDCritic(BaseEstimator):
    """Summarise a data set or a table by prototypes and criticisms under an RBF kernel.

    Prototypes S are chosen greedily to maximise
    J(S) = 2/(n m) sum_{i, j in S} k(x_i, x_j) - 1/m^2 sum_{i, j in S} k(x_i, x_j)
    (i.e. to minimise MMD^2 between the data and S); criticisms C greedily maximise
    sum_{c in C} |w(x_c)| + log det K_CC, where w is the witness function
    w(x) = 1/n sum_i k(x, x_i) - 1/m sum_{j in S} k(x, x_j). The kernel matrix is never stored:
    its column sums are computed block by block, so memory is O(n (d + block_size)).

    Tables: ``X`` may be a pandas DataFrame (numeric, text, ``category`` and boolean columns,
    missing values) or an array of codes with ``categorical_features``. The kernel then works
    on an embedding of the rows in which no column dominates by its units: numeric columns
    standardised by the training table's mean and standard deviation, categorical columns
    one-hot times 1/sqrt(2), so that

        k(x, y) = exp(-gamma (||standardised numeric x - y||^2 + number of category mismatches)),

    an RBF kernel on an embedding, hence positive definite: MMD, the witness function and the
    log-det criticism term keep their meaning. A missing category is a category of its own; a
    missing number is the column's mean plus an indicator of missingness that costs one
    mismatch, so on average a missing value is as far from a present one as two present
    values are from each other. ``embedding_`` holds the map. Rows given to ``predict`` and
    ``error_curve`` hold the training table's columns and only categories seen in ``fit``
    (anything else is an ``InputError`` that names the column and the value).

    Parameters
    ----------
    n_prototypes : int
        Number of prototypes m (1 <= m <= n).
    n_criticisms : int
        Number of criticisms (0 <= k <= n - m); never a prototype.
    gamma : float or {"median", "accuracy", "mmd"}
        RBF kernel k(x, y) = exp(-gamma ||x - y||^2). ``"median"``: 1/(2 sigma^2) with sigma
        the median pairwise distance. ``"accuracy"`` (needs ``y``) and ``"mmd"``: the best of
        ``gamma_factors`` times the median gamma, judged on a held-out ``validation_fraction``
        of the data by nearest-prototype error, or by MMD^2 to the held-out points measured
        with the median-heuristic kernel.
    gamma_factors : tuple of float
        Multiples of the median gamma tried by ``"accuracy"`` and ``"mmd"``.
    validation_fraction : float
        Share of the data held out to choose gamma (stratified by ``y`` when possible).
    regularizer : {"logdet", "none"}
        ``"logdet"`` adds log det K_CC to the criticism objective (the paper), so criticisms
        are diverse; ``"none"`` ranks by |witness| alone.
    local : bool
        The paper's "local" selection: the kernel is zero between points of different classes
        (``y`` required), and one greedy run over all points divides the prototypes among the
        classes. Witness and criticisms are then per class too.
    block_size : int
        Largest side of the kernel tiles (memory grows with ``block_size^2``). A class or data
        set is cut into at least four row blocks (of at least 256 rows), since the diagonal
        tiles are computed whole. The choice never changes which points are picked.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    dtype : {"float32", "float64"}
        Precision of kernel evaluations (sums are always accumulated in float64).
    random_state : int or None
        Seeds the subsample of the median heuristic and the held-out split for gamma.
    categorical_features : list of str or int, or None
        Categorical columns (names or positions). ``None``: the non-numeric columns of a
        DataFrame, none of an array. Given for an array, the array holds codes (a category's
        index in its categorical columns, NaN for a missing number) and is read as a table.
    standardize : {"auto", True, False}
        Whether numeric columns are standardised. ``"auto"``: for a DataFrame and for codes
        with categorical columns; not for a plain numeric array, whose columns share one unit
        (pixels) and are compared as they are.

    Attributes
    ----------
    prototype_indices_ : ndarray (m,)
        Rows of ``X`` chosen as prototypes, in the greedy order (the first t are the greedy
        choice for t prototypes).
    criticism_indices_ : ndarray (k,)
        Rows of ``X`` chosen as criticisms, in the greedy order.
    witness_ : ndarray (n,)
        The witness function at every row of ``X``: positive where the data are
        under-represented by the prototypes, negative where over-represented.
    mmd2_curve_ : ndarray (m,)
        MMD^2 between ``X`` and the first t prototypes, t = 1..m (under the local kernel when
        ``local``).
    prototypes_, criticisms_ : ndarray or DataFrame
        The chosen rows of ``X`` (DataFrame rows, with their original values, for a DataFrame).
    prototype_labels_ : ndarray (m,)
        Labels of the prototypes (only when fitted with ``y``).
    classes_ : ndarray
        Sorted distinct labels (only when fitted with ``y``).
    gamma_ : float
        The gamma used.
    gamma_scores_ : dict
        Held-out score of each candidate gamma (``"accuracy"``: error; ``"mmd"``: MMD^2).
    embedding_ : KernelEmbedding
        The map from rows to the points the kernel compares (``embedding_.transform(rows)``;
        ``embedding_.names`` names its coordinates, e.g. ``sex=female``, ``age missing``).
    feature_names_in_ : ndarray
        Column names of a DataFrame ``X``.
    """

    def __init__(
        self,
        n_prototypes: int = 10,
        n_criticisms: int = 0,
        *,
        gamma: float | str = "median",
        gamma_factors: tuple[float, ...] = DEFAULT_GAMMA_FACTORS,
        validation_fraction: float = 0.25,
        regularizer: str = "logdet",
        local: bool = False,
        block_size: int = 1024,
        device: str = "auto",
        dtype: str = "float32",
        random_state: int | None = 0,
        categorical_features: Sequence[str | int] | None = None,
        standardize: bool | str = "auto",
    ) -> None:
        self.n_prototypes = n_prototypes
        self.n_criticisms = n_criticisms
        self.gamma = gamma
        self.gamma_factors = gamma_factors
        self.validation_fraction = validation_fraction
        self.regularizer = regularizer
        self.local = local
        self.block_size = block_size
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.categorical_features = categorical_features
        self.standardize = standardize

    def fit(self, X: Any, y: Any = None) -> MMDCritic:
        """Choose prototypes and criticisms of ``X`` (n, d): an array or a DataFrame.

        ``y`` (n,), labels of any type, enables ``predict``. Returns ``self``.
        """
        rows, codes, schema, y = self._validate_input(X, y)
        self._check_parameters(len(codes), y)
        self.embedding_ = KernelEmbedding.fit(
            codes, schema, standardize=self._standardizes(rows, schema)
        )
        X = self.embedding_.embed_codes(codes)
        device = resolve_device(self.device)
        dtype = _DTYPES[self.dtype]
        self.gamma_scores_: dict[float, float] = {}
        if isinstance(self.gamma, str):
            if self.gamma == "median":
                self.gamma_ = median_heuristic_gamma(X, random_state=self.random_state)
            else:
                self.gamma_, self.gamma_scores_ = select_gamma(
                    X,
                    y,
                    criterion=self.gamma,
                    factors=tuple(self.gamma_factors),
                    n_prototypes=self.n_prototypes,
                    local=self.local,
                    validation_fraction=self.validation_fraction,
                    random_state=self.random_state,
                    block_size=self.block_size,
                    dtype=dtype,
                    device=device,
                )
        else:
            self.gamma_ = float(self.gamma)
        selection = mmd_critic(
            X,
            self.gamma_,
            self.n_prototypes,
            self.n_criticisms,
            groups=y if self.local else None,
            regularizer=self.regularizer,
            block_size=self.block_size,
            dtype=dtype,
            device=device,
        )
        self.prototype_indices_ = selection.prototype_indices
        self.criticism_indices_ = selection.criticism_indices
        self.witness_ = selection.witness
        self.mmd2_curve_ = selection.mmd2_curve
        self._prototype_points = X[self.prototype_indices_]
        self.prototypes_ = _rows(rows, self.prototype_indices_)
        self.criticisms_ = _rows(rows, self.criticism_indices_)
        if y is not None:
            self.classes_ = np.unique(y)
            self.prototype_labels_ = y[self.prototype_indices_]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The label of the nearest prototype of each row of ``X``, Euclidean in the kernel's
        embedding (see the class docstring)."""
        labels = self._fitted_labels()
        points = self._points(X)
        device = resolve_device(self.device)
        return labels[nearest_prototype(points, self._prototype_points, device=device)]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy of :meth:`predict` on ``(X, y)``."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def error_curve(self, X: Any, y: Any) -> np.ndarray:
        """Nearest-prototype error on ``(X, y)`` using the first t prototypes, t = 1..m.

        Because the greedy choice is nested, entry t - 1 is the error of the classifier that
        MMD-critic with ``n_prototypes=t`` would give.
        """
        labels = self._fitted_labels()
        points = self._points(X)
        y = np.asarray(y)
        if y.shape != (len(points),):
            raise InputError(f"y must have one label per row of X ({len(points)}), got {y.shape}")
        device = resolve_device(self.device)
        return staged_errors(points, y, self._prototype_points, labels, device=device)

    def _fitted_labels(self) -> np.ndarray:
        check_is_fitted(self, "prototype_indices_")
        if not hasattr(self, "prototype_labels_"):
            raise InputError("predict needs labels: fit with y to use the prototype classifier")
        labels: np.ndarray = self.prototype_labels_
        return labels

    def _points(self, X: Any) -> np.ndarray:
        """Rows to predict as points of the fitted embedding, checked like the training rows."""
        check_is_fitted(self, "prototype_indices_")
        try:
            if self.embedding_.schema is None:
                X = validate_data(self, X, reset=False, dtype=np.float64)
            elif isinstance(X, pd.DataFrame):
                validate_data(self, X, reset=False, skip_check_array=True)
            else:
                X = validate_data(
                    self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan"
                )
        except InputError:
            raise
        except ValueError as err:
            raise InputError(f"MMDCritic: {err}") from err
        return self.embedding_.transform(X)

    def _validate_input(
        self, X: Any, y: Any
    ) -> tuple[Any, np.ndarray, TableSchema | None, np.ndarray | None]:
        """``(rows, codes, schema, y)``: the rows as given (checked), their codes, the table's
        schema (None for a plain numeric array) and the labels as an array."""
        schema = None
        try:
            if isinstance(X, pd.DataFrame):
                validate_data(self, X, skip_check_array=True)  # column names, n_features_in_
                rows = X
            elif self.categorical_features is not None:  # codes of a table
                rows = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
            else:
                rows = validate_data(self, X, dtype=np.float64)
            if y is not None:
                y = np.asarray(y)
                if y.ndim != 1:
                    raise InputError(f"y must be one label per row of X, got shape {y.shape}")
                check_consistent_length(rows, y)
        except InputError:
            raise
        except ValueError as err:
            raise InputError(f"MMDCritic.fit: {err}") from err
        if isinstance(rows, pd.DataFrame) or self.categorical_features is not None:
            table = rows.rename(columns=str) if isinstance(rows, pd.DataFrame) else rows
            schema, codes = TableSchema.from_data(
                table, categorical=self.categorical_features, what="X"
            )
        else:
            codes = rows
        if self.local and y is None:
            raise InputError("local=True selects prototypes per class: fit(X, y) needs labels y")
        return rows, codes, schema, y

    def _standardizes(self, rows: Any, schema: TableSchema | None) -> bool:
        if self.standardize == "auto":
            has_categories = schema is not None and bool(schema.categorical_indices)
            return isinstance(rows, pd.DataFrame) or has_categories
        return bool(self.standardize)

    def _check_parameters(self, n: int, y: np.ndarray | None) -> None:
        if not _is_int(self.n_prototypes) or not 1 <= self.n_prototypes <= n:
            raise InputError(
                f"n_prototypes must be an integer from 1 to the number of samples (n_samples={n}), "
                f"got {self.n_prototypes!r}"
            )
        if not _is_int(self.n_criticisms) or not 0 <= self.n_criticisms <= n - self.n_prototypes:
            raise InputError(
                "n_criticisms must be an integer from 0 to n_samples - n_prototypes "
                f"({n - self.n_prototypes}), got {self.n_criticisms!r}"
            )
        if isinstance(self.gamma, str):
            if self.gamma not in GAMMA_RULES:
                raise InputError(
                    f"gamma must be a positive number or one of {GAMMA_RULES}, got {self.gamma!r}"
                )
            if self.gamma == "accuracy" and y is None:
                raise InputError('gamma="accuracy" scores prototypes by labels: pass y to fit')
            if self.gamma != "median":
                if not 0.0 < self.validation_fraction < 1.0:
                    raise InputError(
                        "validation_fraction must lie strictly between 0 and 1, "
                        f"got {self.validation_fraction!r}"
                    )
                if not self.gamma_factors or any(not f > 0 for f in self.gamma_factors):
                    raise InputError(
                        f"gamma_factors must be positive numbers, got {self.gamma_factors!r}"
                    )
        elif (
            not isinstance(self.gamma, numbers.Real)
            or isinstance(self.gamma, bool)
            or not np.isfinite(self.gamma)
            or self.gamma <= 0
        ):
            raise InputError(f"gamma must be a positive finite number, got {self.gamma!r}")
        if self.regularizer not in ("logdet", "none"):
            raise InputError(f'regularizer must be "logdet" or "none", got {self.regularizer!r}')
        if not _is_int(self.block_size) or self.block_size < 1:
            raise InputError(f"block_size must be a positive integer, got {self.block_size!r}")
        if self.dtype not in _DTYPES:
            raise InputError(f"dtype must be one of {tuple(_DTYPES)}, got {self.dtype!r}")
        if not isinstance(self.standardize, bool) and self.standardize != "auto":
            raise InputError(f'standardize must be "auto", True or False, got {self.standardize!r}')


def _rows(rows: Any, indices: np.ndarray) -> Any:
    """Rows ``indices`` of a DataFrame (original values and index) or of an array."""
    return rows.iloc[indices] if isinstance(rows, pd.DataFrame) else rows[indices]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
