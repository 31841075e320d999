"""Where commands get their data and models: built-in data sets, files, and import paths.

Commands accept ``--data`` as a built-in name (scikit-learn's bundled data sets, which need no
network) or a file: ``.npy``, ``.npz`` with ``X`` and optional ``y``, or a table in ``.csv``,
``.tsv`` or ``.parquet`` read by pandas (text, categorical and boolean columns, missing values,
a label column of any type, and a column of row names). ``--model`` is a built-in name or an
import path ``package.module:attribute`` naming a fitted model, a factory, a plain predict
function, or a ``torch.nn.Module`` class.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.errors import ConfigError, InputError
from training.tables import TableSchema

BUILTIN_DATASETS = ("breast_cancer", "digits", "iris", "wine", "diabetes", "scenes")
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
TASKS = ("classification", "regression")
SCENES_IN_DATASET = 400
"""How many held-out street scenes the built-in ``scenes`` data set holds."""


@dataclass
class Dataset:
    """A table of features with optional labels and the names that make them readable.

    ``X`` holds the features as numbers: for a table read from a file, the codes of its
    ``table`` schema (category indices; NaN where a numeric value is missing) and ``frame`` the
    table as read. ``y`` holds the labels as they are in the data (numbers or text);
    ``target_names`` names class ``k`` when labels are the integers ``0..k-1``.
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    target_names: list[str] | None = None
    image_shape: tuple[int, ...] | None = None  # set when each row is a flattened image
    name: str = "data"
    task: str = "classification"  # or "regression"
    notes: dict[str, Any] = field(default_factory=dict)
    table: TableSchema | None = None  # set for tables (files and built-in numeric sets)
    frame: Any = None  # the features as a pandas DataFrame, for tables read from a file
    row_ids: list[str] | None = None  # each row's name (--id-column), else its position
    label_column: str | None = None

    def model_rows(self, rows: Any) -> Any:
        """The features of ``rows`` as a model is fitted on them: DataFrame rows (index reset)
        for a table read from a file, the numeric array otherwise."""
        if self.frame is not None:
            return self.frame.iloc[rows].reset_index(drop=True)
        return self.X[rows]

    def row_name(self, row: int) -> str:
        """The name of row ``row`` (its ``--id-column`` value, else its number)."""
        return self.row_ids[row] if self.row_ids is not None else str(row)


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


def load_dataset(
    source: str | Path,
    *,
    label_column: str | int | None = None,
    categorical: list[str] | None = None,
    id_column: str | None = None,
    task: str | None = None,
) -> Dataset:
    """A built-in data set by name, or a data file (see the module docstring).

    For a table file: ``label_column`` names (or numbers) the labels' column, ``id_column``
    the column that names the rows, ``categorical`` the categorical columns (default: every
    non-numeric one), and ``task`` says whether the labels are classes or values to regress
    (default: classes unless they are numbers with many distinct or fractional values).
    """
    text = str(source)
    if task is not None and task not in TASKS:
        raise ConfigError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    if text in BUILTIN_DATASETS:
        data = _builtin(text)
        if task is not None and task != data.task:
            raise ConfigError(f"built-in data set {text!r} is for {data.task}, not {task}")
        return data
    path = Path(text)
    if not path.is_file():
        raise InputError(
            f"--data {text!r} is neither a built-in data set ({', '.join(BUILTIN_DATASETS)}) "
            "nor an existing .npy/.npz/.csv/.tsv/.parquet file"
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
    if suffix in TABLE_SUFFIXES:
        return read_table(
            path,
            label_column=label_column,
            categorical=categorical,
            id_column=id_column,
            task=task,
        )
    raise InputError(f"cannot read {path}: expected .npy, .npz, .csv, .tsv or .parquet")


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
    else:
        data.table = TableSchema.from_data(data.X, feature_names=data.feature_names)[0]
    return data


def read_table(
    path: str | Path,
    *,
    label_column: str | int | None = None,
    categorical: list[str] | None = None,
    id_column: str | None = None,
    task: str | None = None,
) -> Dataset:
    """A table file (``.csv``, ``.tsv``, ``.parquet``) read by pandas, as a :class:`Dataset`.

    CSV: comma-separated, quoted fields and a byte-order mark allowed, a header row; empty
    fields and ``NA``-like text are missing values. See :func:`load_dataset` for the options.
    """
    import pandas as pd

    path = Path(path)
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
        else:
            separator = "\t" if path.suffix.lower() == ".tsv" else ","
            frame = pd.read_csv(path, sep=separator, encoding="utf-8-sig")
    except (ValueError, OSError, ImportError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read {path} as a table: {err}") from err
    frame.columns = [str(name).strip() for name in frame.columns]
    return table_dataset(
        frame,
        label_column=label_column,
        categorical=categorical,
        id_column=id_column,
        task=task,
        name=path.stem,
    )


def table_dataset(
    frame: Any,
    *,
    label_column: str | int | None = None,
    categorical: list[str] | None = None,
    id_column: str | None = None,
    task: str | None = None,
    name: str = "data",
) -> Dataset:
    """A :class:`Dataset` of a pandas DataFrame (see :func:`load_dataset` for the options)."""
    names = [str(column) for column in frame.columns]
    if frame.shape[0] == 0:
        raise InputError(f"table {name!r} has no rows")
    notes: dict[str, Any] = {}
    y = None
    label_name = None
    if label_column is not None:
        label_name = _column(names, label_column, "--label-column", name)
        unlabelled = frame[label_name].isna().to_numpy()
        if unlabelled.all():
            raise InputError(f"label column {label_name!r} of {name!r} holds no label at all")
        if unlabelled.any():  # rows without a label can be neither fitted nor scored
            rows = np.flatnonzero(unlabelled)
            notes["unlabelled_rows_left_out"] = [int(row) for row in rows]
            print(
                f"note: {rows.size} row(s) of {name!r} have no label in {label_name!r} and are "
                f"left out (first: row {rows[0]})",
                file=sys.stderr,
            )
            frame = frame.loc[~unlabelled].reset_index(drop=True)
        labels = frame[label_name]
        y = labels.to_numpy()
    row_ids = None
    if id_column is not None:
        id_name = _column(names, id_column, "--id-column", name)
        ids = frame[id_name].astype(str)
        if ids.duplicated().any():
            twice = ids[ids.duplicated()].iloc[0]
            raise InputError(f"id column {id_name!r} names several rows {twice!r}")
        row_ids = ids.tolist()
    dropped = [column for column in (label_name, id_name if id_column else None) if column]
    features = frame.drop(columns=dropped).reset_index(drop=True)
    if features.shape[1] == 0:
        raise InputError(f"table {name!r} has no feature columns besides the label and id")
    schema, codes = TableSchema.from_data(features, categorical=categorical, what=f"table {name!r}")
    data = Dataset(
        X=codes,
        y=None,
        feature_names=list(schema.names),
        name=name,
        table=schema,
        frame=features,
        row_ids=row_ids,
        label_column=label_name,
        notes=notes,
    )
    if y is not None:
        data.task = task or ("regression" if _looks_like_values(y) else "classification")
        if data.task == "regression":
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError) as err:
                raise InputError(
                    f"label column {label_name!r} holds text, so it cannot be regressed: "
                    "use --task classification"
                ) from err
        data.y = y
    return data


def _column(names: list[str], column: str | int, flag: str, table: str) -> str:
    if isinstance(column, str) and column in names:
        return column
    if isinstance(column, int) or (isinstance(column, str) and column.lstrip("-").isdigit()):
        index = int(column)
        if -len(names) <= index < len(names):
            return names[index]
    raise InputError(f"{flag} {column!r} is not a column of {table!r} ({', '.join(names)})")


def _looks_like_values(y: np.ndarray) -> bool:
    """Whether labels are values to regress: numbers with fractions or many distinct values."""
    if y.dtype.kind not in "iuf":
        return False
    values = y.astype(np.float64)
    if not np.all(np.mod(values, 1) == 0):
        return True
    return len(np.unique(values)) > max(20, len(values) // 5)


def match_labels(labels: Any, classes: Any, *, what: str = "labels") -> np.ndarray:
    """Index of each label in ``classes`` (a model's ``classes_``), or one error listing
    the labels the model does not know."""
    classes = np.asarray(classes)
    known = {_label_key(value): i for i, value in enumerate(classes.tolist())}
    values = np.asarray(labels).tolist()
    unknown = sorted({str(value) for value in values if _label_key(value) not in known})
    if unknown:
        raise InputError(
            f"{what} {unknown[:5]} are not among the model's classes "
            f"{[str(c) for c in classes.tolist()]}: the model was fitted on other labels"
        )
    return np.array([known[_label_key(value)] for value in values], dtype=np.intp)


def _label_key(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value).is_integer():
        return int(value)
    return value


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

    An import path may name a fitted model (used as it is), a class (instantiated with no
    arguments), or a function: one that can be called with no arguments is a factory and is
    called; one that needs an argument is a plain predict function (rows to scores) and is the
    black box itself. A shipped model (:func:`training.pretrained.load_pretrained`) is put on
    ``device``.
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
    if inspect.isclass(model) or (inspect.isfunction(model) and is_factory(model)):
        model = model()
    return model


def is_factory(function: Callable[..., Any]) -> bool:
    """Whether ``function`` can be called with no arguments (a factory, not a predictor)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return False
    return all(
        parameter.default is not inspect.Parameter.empty
        or parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        for parameter in signature.parameters.values()
    )


def fit_if_needed(model: Any, X: Any, y: Any) -> Any:
    """Fit a scikit-learn estimator that comes unfitted; leave anything else as it is.

    ``X`` is what the model should be fitted on: :meth:`Dataset.model_rows` (a DataFrame for a
    table read from a file, so an unchanged ``Pipeline`` is fitted as its author meant)."""
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


def tabular_model(estimator: Any, data: Dataset) -> Any:
    """A built-in ``estimator`` made fit for ``data``'s table.

    For a table with categorical columns or missing values, a scikit-learn ``Pipeline`` that
    one-hot encodes the categories (missing as a category, unseen ones ignored), imputes
    missing numbers by the median, and ends in ``estimator``; it is fitted on DataFrames, so it
    is called with DataFrames. Otherwise ``estimator`` itself.
    """
    table = data.table
    if table is None or data.frame is None:
        return estimator
    numeric_missing = [c.name for c in table.columns if not c.is_categorical and c.has_missing]
    categorical = [table.names[i] for i in table.categorical_indices]
    if not categorical and not numeric_missing:
        return estimator
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    steps: list[tuple[str, Any, list[str]]] = []
    if categorical:
        encoder = make_pipeline(
            FunctionTransformer(categories_as_text, feature_names_out="one-to-one"),
            OneHotEncoder(handle_unknown="ignore"),
        )
        steps.append(("categories", encoder, categorical))
    if numeric_missing:
        steps.append(("impute", SimpleImputer(strategy="median"), numeric_missing))
    columns = ColumnTransformer(steps, remainder="passthrough")
    return Pipeline([("columns", columns), ("model", estimator)])


def categories_as_text(frame: Any) -> Any:
    """Categorical columns as text, a missing value as ``"missing"`` (one type for the encoder)."""
    return frame.astype(object).where(frame.notna(), "missing").astype(str)
