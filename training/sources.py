"""Where commands get their data and models: built-in data sets, files, and import paths.

Commands accept ``--data`` as a built-in name (scikit-learn's bundled data sets, which need no
network) or a file (``.npy``, ``.npz`` with ``X`` and optional ``y``, or ``.csv`` whose last
column is the label when ``label_column`` says so), and ``--model`` as a built-in name or an
import path ``package.module:attribute`` naming a fitted model, a factory function, or a
``torch.nn.Module`` class.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.errors import ConfigError, InputError

BUILTIN_DATASETS = ("breast_cancer", "digits", "iris", "wine", "diabetes", "scenes")
SCENES_IN_DATASET = 400
"""How many held-out street scenes the built-in ``scenes`` data set holds."""


@dataclass
class Dataset:
    """A table of features with optional labels and the names that make them readable."""

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    target_names: list[str] | None = None
    image_shape: tuple[int, ...] | None = None  # set when each row is a flattened image
    name: str = "data"
    task: str = "classification"  # or "regression"
    notes: dict[str, Any] = field(default_factory=dict)


def _scenes() -> Dataset:
    """Held-out 64 px street scenes (never trained on), labelled "is any lamp lit?".

    Rows are flattened channels-last images in [0, 1]; each label is the truth the shipped
    ``lamp_classifier`` was trained to tell: 1 when at least one lamp of the scene is lit.
    """
    from training.scenes import held_out_scenes

    scenes = held_out_scenes(SCENES_IN_DATASET)
    images = (scenes.images.transpose(0, 2, 3, 1) + 1.0) / 2.0
    return Dataset(
        X=images.reshape(len(images), -1).astype(np.float64),
        y=scenes.any_lamp_lit.astype(np.int64),
        feature_names=[],
        target_names=["no lamp lit", "lamp lit"],
        image_shape=images.shape[1:],
        name="scenes",
    )


def load_dataset(source: str | Path, *, label_column: str | int | None = None) -> Dataset:
    """A built-in data set by name, or a data file (see the module docstring)."""
    text = str(source)
    if text in BUILTIN_DATASETS:
        return _builtin(text)
    path = Path(text)
    if not path.is_file():
        raise InputError(
            f"--data {text!r} is neither a built-in data set ({', '.join(BUILTIN_DATASETS)}) "
            "nor an existing .npy/.npz/.csv file"
        )
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _checked(Dataset(np.load(path, allow_pickle=False), None, [], name=path.stem))
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            if "X" not in archive:
                raise InputError(f"{path} has no array named 'X' (found {list(archive.keys())})")
            y = archive.get("y")
            return _checked(Dataset(archive["X"], y, [], name=path.stem))
    if suffix == ".csv":
        return _read_csv(path, label_column)
    raise InputError(f"cannot read {path}: expected .npy, .npz or .csv")


def _builtin(name: str) -> Dataset:
    if name == "scenes":
        return _scenes()
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    data = Dataset(
        X=np.asarray(bunch.data, dtype=np.float64),
        y=np.asarray(bunch.target),
        feature_names=[str(n) for n in bunch.feature_names],
        target_names=[str(n) for n in bunch.target_names] if "target_names" in bunch else None,
        name=name,
        task="regression" if name == "diabetes" else "classification",
    )
    if name == "digits":
        data.image_shape = (8, 8)
    return data


def _read_csv(path: Path, label_column: str | int | None) -> Dataset:
    with path.open(encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    has_header = any(not _is_number(cell) for cell in header)
    table = np.genfromtxt(path, delimiter=",", skip_header=int(has_header), dtype=np.float64)
    if table.ndim == 1:
        table = table[:, None]
    names = header if has_header else [f"x{i}" for i in range(table.shape[1])]
    y = None
    if label_column is not None:
        index = names.index(label_column) if isinstance(label_column, str) else int(label_column)
        y = table[:, index]
        table = np.delete(table, index, axis=1)
        names = [n for i, n in enumerate(names) if i != index]
    return _checked(Dataset(table, y, names, name=path.stem))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _checked(data: Dataset) -> Dataset:
    X = np.asarray(data.X)
    if X.ndim > 2 and data.image_shape is None:  # a stack of images: keep the shape of one
        data.image_shape = tuple(X.shape[1:])
    if X.ndim != 2:
        X = X.reshape(len(X), -1) if X.ndim > 2 else X
        if X.ndim != 2:
            raise InputError(f"data must be a 2-D table, got shape {np.shape(data.X)}")
    if X.shape[0] == 0:
        raise InputError("data has no rows")
    if X.dtype.kind not in "biuf":
        raise InputError(f"data must be numeric, got dtype {X.dtype}")
    if not np.isfinite(X).all():
        rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
        raise InputError(f"data has NaN or infinite values in {rows.size} rows (first: {rows[0]})")
    data.X = X.astype(np.float64)
    if not data.feature_names:
        data.feature_names = [f"x{i}" for i in range(X.shape[1])]
    if data.y is not None and len(data.y) != len(X):
        raise InputError(f"data has {len(X)} rows but {len(data.y)} labels")
    return data


def import_object(spec: str) -> Any:
    """The object named by ``package.module:attribute`` (attribute may be dotted)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"{spec!r} is not an import path of the form package.module:attribute")
    try:
        value: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"cannot import {module_name!r} (from {spec!r}): {err}") from err
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise ConfigError(f"{module_name!r} has no attribute {attribute!r}")
        value = getattr(value, part)
    return value


def resolve_model(spec: str, builtins: dict[str, Callable[[], Any]], device: str = "auto") -> Any:
    """The model ``--model`` names: a built-in, ``pretrained:NAME`` or ``package.module:attr``.

    A class or function named by an import path is called with no arguments (a factory); a
    shipped model (:func:`training.pretrained.load_pretrained`) is put on ``device``.
    """
    if spec in builtins:
        return builtins[spec]()
    if spec.startswith("pretrained:"):
        from training.devices import resolve_device
        from training.pretrained import load_pretrained

        return load_pretrained(spec.partition(":")[2], device=resolve_device(device))
    if ":" not in spec:
        raise ConfigError(
            f"--model {spec!r} is not one of {', '.join(builtins)}, pretrained:NAME, "
            "or package.module:attribute"
        )
    model = import_object(spec)
    if inspect.isclass(model) or inspect.isfunction(model):
        model = model()
    return model


def fit_if_needed(model: Any, X: Any, y: Any) -> Any:
    """Fit a scikit-learn estimator that comes unfitted; leave anything else as it is."""
    if not (hasattr(model, "fit") and hasattr(model, "get_params")):
        return model
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError:
        model.fit(X, y)
    return model


def split_rows(
    n_rows: int, y: Any, test_size: float, seed: int, *, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out row indices, stratified by ``y`` when it looks like classes.

    Stratification needs at least two rows of every class and fewer classes than half the
    rows; otherwise (and with ``stratify=False``, e.g. for regression) the split is plain.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise ConfigError(f"the held-out share must lie strictly between 0 and 1, got {test_size}")
    groups = None
    if stratify and y is not None:
        labels = np.asarray(y)
        counts = np.unique(labels, return_counts=True)[1]
        if counts.min() >= 2 and len(counts) < 0.5 * n_rows:
            groups = labels
    train, test = train_test_split(
        np.arange(n_rows), test_size=test_size, random_state=seed, stratify=groups
    )
    return np.asarray(train), np.asarray(test)
