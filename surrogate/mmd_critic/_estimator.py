"""The MMDCritic estimator: prototypes and criticisms of a data set (Kim, Khanna, Koyejo 2016)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from surrogate.mmd_critic._gamma import median_heuristic_gamma, select_gamma
from surrogate.mmd_critic._greedy import mmd_critic
from surrogate.mmd_critic._nearest import nearest_prototype, staged_errors
from training.devices import resolve_device
from training.errors import InputError

GAMMA_RULES = ("median", "accuracy", "mmd")
DEFAULT_GAMMA_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class MMDCritic(BaseEstimator):
    """Summarise a data set by prototypes and criticisms under an RBF kernel (MMD-critic).

    Prototypes S are chosen greedily to maximise
    J(S) = 2/(n m) sum_{i, j in S} k(x_i, x_j) - 1/m^2 sum_{i, j in S} k(x_i, x_j)
    (i.e. to minimise MMD^2 between the data and S); criticisms C greedily maximise
    sum_{c in C} |w(x_c)| + log det K_CC, where w is the witness function
    w(x) = 1/n sum_i k(x, x_i) - 1/m sum_{j in S} k(x, x_j). The kernel matrix is never stored:
    its column sums are computed block by block, so memory is O(n (d + block_size)).

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
    prototypes_, criticisms_ : ndarray
        The chosen rows of ``X``.
    prototype_labels_ : ndarray (m,)
        Labels of the prototypes (only when fitted with ``y``).
    classes_ : ndarray
        Sorted distinct labels (only when fitted with ``y``).
    gamma_ : float
        The gamma used.
    gamma_scores_ : dict
        Held-out score of each candidate gamma (``"accuracy"``: error; ``"mmd"``: MMD^2).
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

    def fit(self, X: Any, y: Any = None) -> MMDCritic:
        """Choose prototypes and criticisms of ``X`` (n, d); ``y`` (n,) enables ``predict``.

        Returns ``self``.
        """
        X, y = self._validate_input(X, y)
        self._check_parameters(len(X), y)
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
        self.prototypes_ = X[self.prototype_indices_]
        self.criticisms_ = X[self.criticism_indices_]
        if y is not None:
            self.classes_ = np.unique(y)
            self.prototype_labels_ = y[self.prototype_indices_]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The label of the nearest prototype (Euclidean) of each row of ``X``."""
        labels = self._fitted_labels()
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return labels[nearest_prototype(X, self.prototypes_, device=resolve_device(self.device))]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy of :meth:`predict` on ``(X, y)``."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def error_curve(self, X: Any, y: Any) -> np.ndarray:
        """Nearest-prototype error on ``(X, y)`` using the first t prototypes, t = 1..m.

        Because the greedy choice is nested, entry t - 1 is the error of the classifier that
        MMD-critic with ``n_prototypes=t`` would give.
        """
        labels = self._fitted_labels()
        X = validate_data(self, X, reset=False, dtype=np.float64)
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise InputError(f"y must have one label per row of X ({len(X)}), got {y.shape}")
        return staged_errors(X, y, self.prototypes_, labels, device=resolve_device(self.device))

    def _fitted_labels(self) -> np.ndarray:
        check_is_fitted(self, "prototype_indices_")
        if not hasattr(self, "prototype_labels_"):
            raise InputError("predict needs labels: fit with y to use the prototype classifier")
        labels: np.ndarray = self.prototype_labels_
        return labels

    def _validate_input(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray | None]:
        try:
            if y is None:
                X = validate_data(self, X, dtype=np.float64)
            else:
                X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=False)
        except ValueError as err:
            raise InputError(f"MMDCritic.fit: {err}") from err
        if y is not None:
            y = np.asarray(y)
        if self.local and y is None:
            raise InputError("local=True selects prototypes per class: fit(X, y) needs labels y")
        return X, y

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


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
