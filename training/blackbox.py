"""One adapter from any model to ``predict(X) -> (n, k)`` scores.

A *black box* is an sklearn estimator (``predict_proba``, ``decision_function`` or ``predict``),
a ``torch.nn.Module``, or a plain callable. Given the :class:`~training.tables.TableSchema` of
the table it explains, the adapter hands the model what it was fitted on: a DataFrame with the
original columns and dtypes for a model fitted on one (an unchanged scikit-learn ``Pipeline``)
or for a plain callable, the numeric codes for anything else. :class:`BlackBox` wraps any of
them into one call that batches the input, runs torch models under ``torch.inference_mode()``
in eval mode on the model's own device, and checks what comes back: the number of rows, a 1- or
2-axis shape, finite values and, where the output claims to be probabilities, values in [0, 1]
whose rows sum to 1. Every problem is one :class:`~training.errors.BlackBoxError` that names it.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from training.errors import BlackBoxError, InputError

if TYPE_CHECKING:
    from training.tables import TableSchema

Method = Literal["auto", "predict_proba", "decision_function", "predict"]
InputKind = Literal["auto", "frame", "codes"]
_PROBABILITY_TOLERANCE = 1e-4


def _is_torch_module(model: Any) -> bool:
    torch = sys.modules.get("torch")  # a torch module cannot exist unless torch is imported
    return torch is not None and isinstance(model, torch.nn.Module)


def _is_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


class BlackBox:
    """Wrap ``model`` so that ``black_box(X)`` returns a checked float64 array of shape (n, k).

    Parameters
    ----------
    model:
        An sklearn estimator, a ``torch.nn.Module`` or a callable taking a batch of inputs.
    method:
        For sklearn estimators: which method gives the scores. ``"auto"`` takes
        ``predict_proba``, else ``decision_function``, else ``predict`` (a classifier's labels
        become one-hot probabilities; a regressor's values become one column per output).
    probabilities:
        Whether the output claims to be class probabilities, and so must lie in [0, 1] with rows
        summing to 1. ``None``: true for ``predict_proba``, a classifier's ``predict`` and
        ``softmax=True``, false otherwise.
    softmax:
        Apply a softmax over the last axis to a module's or callable's output (logits).
    batch_size:
        Rows per call of the model; ``None`` picks 256 for torch modules and 8192 otherwise.
    table:
        The schema of the table whose rows (as codes) the black box is called with; ``None``
        passes inputs through unchanged.
    inputs:
        With a ``table``: ``"frame"`` calls the model with DataFrames, ``"codes"`` with the
        numeric codes, ``"auto"`` with DataFrames for a model that has ``feature_names_in_``
        (fitted on a DataFrame) or is a plain callable, and with codes otherwise.
    """

    def __init__(
        self,
        model: Any,
        *,
        method: Method = "auto",
        probabilities: bool | None = None,
        softmax: bool = False,
        batch_size: int | None = None,
        table: TableSchema | None = None,
        inputs: InputKind = "auto",
    ) -> None:
        if isinstance(model, BlackBox):
            raise InputError("model is already a BlackBox; pass it on as it is")
        model, method = _unbound(model, method)
        if not callable(model) and not hasattr(model, "predict"):
            raise InputError(
                f"{type(model).__name__} is not a black box: expected an sklearn estimator, "
                "a torch.nn.Module or a callable"
            )
        if batch_size is not None and batch_size < 1:
            raise InputError(f"batch_size must be positive, got {batch_size}")
        self.model = model
        self.is_torch = _is_torch_module(model)
        self.softmax = softmax
        self.batch_size = batch_size or (256 if self.is_torch else 8192)
        self.method = self._choose_method(method)
        self.classes_: np.ndarray | None = getattr(model, "classes_", None)
        self.one_hot = self.method == "predict" and self._is_classifier()
        if probabilities is None:
            probabilities = softmax or self.method == "predict_proba" or self.one_hot
        self.probabilities = bool(probabilities)
        if inputs not in ("auto", "frame", "codes"):
            raise InputError(f"inputs must be 'auto', 'frame' or 'codes', got {inputs!r}")
        self.table = table
        self.wants_frame = table is not None and (
            inputs == "frame" or (inputs == "auto" and self._fitted_on_frame())
        )

    def _fitted_on_frame(self) -> bool:
        if self.is_torch:
            return False
        if self.method == "call":  # a plain function: give it the table as the user has it
            return self.table is not None and self.table.from_frame
        return hasattr(self.model, "feature_names_in_")

    def _choose_method(self, method: Method) -> str:
        if self.is_torch or not hasattr(self.model, "predict"):
            if method not in ("auto", "predict"):
                raise InputError(f"method={method!r} only applies to sklearn estimators")
            return "module" if self.is_torch else "call"
        if method == "auto":
            for name in ("predict_proba", "decision_function", "predict"):
                if hasattr(self.model, name):
                    return name
        if not hasattr(self.model, method):
            raise InputError(f"{type(self.model).__name__} has no method {method!r}")
        return method

    def _is_classifier(self) -> bool:
        from sklearn.base import is_classifier

        if self.classes_ is not None:
            return True
        try:
            return bool(is_classifier(self.model))
        except AttributeError:  # an object with predict that is no scikit-learn estimator
            return False

    def __repr__(self) -> str:
        return f"BlackBox({type(self.model).__name__}, method={self.method!r})"

    def __call__(self, X: Any) -> np.ndarray:
        """Scores of ``X``: a float64 array with one row per input row."""
        return self.predict(X)

    def predict(self, X: Any) -> np.ndarray:
        """Scores of ``X``: a float64 array with one row per input row."""
        n_rows = _count_rows(X)
        parts = [self._predict_batch(batch) for batch in _batches(X, n_rows, self.batch_size)]
        widths = {part.shape[1] for part in parts}
        if len(widths) > 1:
            raise BlackBoxError(
                f"{self._name()} returned a different number of columns for different batches: "
                f"{sorted(widths)}"
            )
        scores = np.concatenate(parts, axis=0)
        if self.probabilities:
            _check_probabilities(scores, self._name())
        return scores

    def _name(self) -> str:
        return f"black box {type(self.model).__name__}.{self.method}"

    def _predict_batch(self, batch: Any) -> np.ndarray:
        n_rows = _count_rows(batch)
        batch = self._as_model_input(batch)
        if self.method == "module":
            raw = self._run_module(batch)
        elif self.method == "call":
            raw = self.model(batch)
        else:
            raw = getattr(self.model, self.method)(batch)
        if self.one_hot:
            raw = self._one_hot(np.asarray(raw))
        scores = _as_score_matrix(raw, n_rows, self._name())
        if self.softmax:
            shifted = scores - scores.max(axis=1, keepdims=True)
            scores = np.exp(shifted)
            scores /= scores.sum(axis=1, keepdims=True)
        return scores

    def _as_model_input(self, batch: Any) -> Any:
        """With a table schema: codes become a DataFrame for a model that wants one, and a
        DataFrame becomes codes for a model that does not."""
        table = self.table
        if table is None:
            return batch
        import pandas as pd

        is_frame = isinstance(batch, pd.DataFrame)
        if self.wants_frame and not is_frame:
            return table.decode(np.asarray(batch, dtype=np.float64))
        if not self.wants_frame and is_frame:
            return table.encode(batch)
        return batch

    def _one_hot(self, labels: np.ndarray) -> np.ndarray:
        classes = self.classes_ if self.classes_ is not None else np.unique(labels)
        index = {label: i for i, label in enumerate(np.asarray(classes).tolist())}
        unknown = [label for label in labels.tolist() if label not in index]
        if unknown:
            raise BlackBoxError(f"{self._name()} predicted labels not in classes_: {unknown[:3]}")
        encoded = np.zeros((len(labels), len(index)))
        encoded[np.arange(len(labels)), [index[label] for label in labels.tolist()]] = 1.0
        return encoded

    def _run_module(self, batch: Any) -> Any:
        import torch

        from training.devices import module_device

        device = module_device(self.model)
        dtype = next(
            (p.dtype for p in self.model.parameters() if p.is_floating_point()), torch.float32
        )
        if _is_tensor(batch):
            inputs = batch.to(device)
        else:
            array = np.asarray(batch)
            if array.dtype.kind not in "biuf":
                raise InputError(
                    f"a torch module needs numeric input, got an array of dtype {array.dtype}"
                )
            inputs = torch.as_tensor(array, device=device)
        if inputs.is_floating_point() or inputs.dtype == torch.bool:
            inputs = inputs.to(dtype)
        with _eval_mode(self.model), torch.inference_mode():
            return self.model(inputs)


def _unbound(model: Any, method: Method) -> tuple[Any, Method]:
    """A bound scoring method of a scikit-learn estimator (``forest.predict``) stands for the
    estimator with that method, so that its ``classes_`` are known: labels from a classifier's
    ``predict`` are classes, not numbers to regress."""
    owner = getattr(model, "__self__", None)
    name = getattr(model, "__name__", None)
    if (
        inspect.ismethod(model)
        and name in ("predict_proba", "decision_function", "predict")
        and hasattr(owner, "fit")
        and hasattr(owner, "get_params")
        and method in ("auto", name)
    ):
        return owner, name
    return model, method


def as_black_box(model: Any, **options: Any) -> BlackBox:
    """``model`` as a :class:`BlackBox` (returned unchanged if it already is one)."""
    if isinstance(model, BlackBox):
        if options:
            raise InputError("options cannot be changed on an existing BlackBox")
        return model
    return BlackBox(model, **options)


@contextlib.contextmanager
def _eval_mode(module: Any) -> Iterator[None]:
    """Put a module in eval mode and restore each submodule's own mode afterwards."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for submodule, mode in modes:
            submodule.training = mode


def _count_rows(X: Any) -> int:
    if X is None:
        raise InputError("input is None; expected a batch of rows")
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) == 0:
        raise InputError("input is a scalar; expected a batch with one row per instance")
    try:
        n_rows = int(shape[0]) if shape is not None else len(X)
    except TypeError as err:
        raise InputError(f"input of type {type(X).__name__} has no rows") from err
    if n_rows == 0:
        raise InputError("input has no rows")
    return n_rows


def _batches(X: Any, n_rows: int, size: int) -> Iterator[Any]:
    rows = X.iloc if hasattr(X, "iloc") else X
    for start in range(0, n_rows, size):
        yield rows[start : start + size] if n_rows > size else X


def _numpy_tensor_dtypes() -> frozenset[Any]:
    import torch

    return frozenset({torch.float32, torch.float64, torch.int64, torch.int32, torch.bool})


def _as_score_matrix(raw: Any, n_rows: int, name: str) -> np.ndarray:
    if _is_tensor(raw):
        raw = raw.detach().cpu()
        if raw.dtype not in _numpy_tensor_dtypes():  # e.g. bfloat16 has no NumPy twin
            raw = raw.double()
        raw = raw.numpy()
    try:
        scores = np.asarray(raw)
    except (TypeError, ValueError) as err:
        raise BlackBoxError(f"{name} returned {type(raw).__name__}, not an array") from err
    if scores.dtype.kind not in "biuf":
        raise BlackBoxError(
            f"{name} returned values of dtype {scores.dtype}, not numbers "
            "(a classifier's labels? give it predict_proba or use method='predict')"
        )
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.ndim != 2:
        raise BlackBoxError(
            f"{name} returned shape {scores.shape}; expected ({n_rows},) or ({n_rows}, k)"
        )
    if scores.shape[0] != n_rows:
        raise BlackBoxError(f"{name} returned {scores.shape[0]} rows for {n_rows} input rows")
    scores = scores.astype(np.float64)
    finite = np.isfinite(scores).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise BlackBoxError(
            f"{name} returned NaN or infinite scores in {bad.size} of {n_rows} rows "
            f"(first: row {bad[0]})"
        )
    return scores


def _check_probabilities(scores: np.ndarray, name: str) -> None:
    low, high = scores.min(), scores.max()
    if low < -_PROBABILITY_TOLERANCE or high > 1 + _PROBABILITY_TOLERANCE:
        raise BlackBoxError(
            f"{name} claims probabilities but returned values in [{low:.4g}, {high:.4g}]"
        )
    if scores.shape[1] > 1:
        sums = scores.sum(axis=1)
        off = np.abs(sums - 1.0) > _PROBABILITY_TOLERANCE
        if off.any():
            row = int(np.flatnonzero(off)[0])
            raise BlackBoxError(
                f"{name} claims probabilities but they do not sum to 1 "
                f"({off.sum()} rows; row {row} sums to {sums[row]:.6g})"
            )
