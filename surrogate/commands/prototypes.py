"""MMD-critic prototypes and criticisms of a data set, as a gallery.

Chooses prototypes (points whose set is closest to the data in MMD) and criticisms (points the
prototypes under-represent, by the witness function, kept diverse by a log-det term) and writes
them as images (per class with --local) or, for tabular data, as a table of raw values named by
the file's own row ids (--id-column), with their witness values; the MMD^2-vs-m curve; and, when
the data have labels, the nearest-prototype error on a held-out part of the data for every m,
next to randomly chosen prototypes and the majority-class error. A table read from a file is
compared in the estimator's table kernel (standardised numbers, category mismatches).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from surrogate.mmd_critic import MMDCritic
from surrogate.mmd_critic._estimator import GAMMA_RULES
from surrogate.mmd_critic._nearest import staged_errors
from training.errors import ConfigError, InputError
from training.images import save_figure
from training.pages import write_report
from training.runs import RunFolder
from training.sources import Dataset, load_dataset
from training.tables import MISSING

RANDOM_DRAWS = 5  # random prototype sets averaged for the baseline error curve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m surrogate prototypes``."""
    parser.add_argument(
        "--data",
        default="digits",
        help="built-in data set (digits, breast_cancer, iris, wine), a .npy/.npz file, or a "
        ".csv/.tsv/.parquet table",
    )
    parser.add_argument(
        "--label-column", default=None, help="label column of a table file (name or index)"
    )
    parser.add_argument(
        "--categorical",
        default=None,
        help="COL,... categorical columns of a table file (default: its non-numeric columns)",
    )
    parser.add_argument(
        "--id-column",
        default=None,
        help="column of a table file that names its rows (prototypes are named by it)",
    )
    parser.add_argument(
        "--image-shape",
        default=None,
        help="H,W (or C,H,W) to show the rows of a data file as images, e.g. 28,28",
    )
    parser.add_argument("--n-prototypes", type=int, default=40, help="number of prototypes m")
    parser.add_argument("--n-criticisms", type=int, default=20, help="number of criticisms")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--local",
        dest="local",
        action="store_const",
        const=True,
        default=None,
        help="class-local kernel: prototypes and criticisms per class (default with labels)",
    )
    scope.add_argument(
        "--global",
        dest="local",
        action="store_const",
        const=False,
        help="one kernel over all points, labels ignored for the choice",
    )
    parser.add_argument(
        "--gamma",
        default="median",
        help=f"RBF gamma: a positive number or one of {', '.join(GAMMA_RULES)}",
    )
    parser.add_argument(
        "--regularizer",
        choices=("logdet", "none"),
        default="logdet",
        help="criticism diversity term (logdet, the paper) or none",
    )
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=0.25,
        help="share of labelled data held out for the error-vs-m curve (0: no curve)",
    )
    parser.add_argument("--block-size", type=int, default=1024, help="kernel tile side")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")


def run(args: argparse.Namespace, run_folder: RunFolder) -> None:
    """Fit MMD-critic and write prototypes.json, the PNG figures and index.html."""
    data = load_dataset(
        args.data,
        label_column=args.label_column,
        categorical=_column_list(args.categorical),
        id_column=args.id_column,
    )
    if args.image_shape:
        data.image_shape = _parse_shape(args.image_shape, data.X.shape[1])
    labelled = data.y is not None and data.task == "classification"
    local = labelled if args.local is None else bool(args.local)
    if local and not labelled:
        raise InputError(f"--local needs class labels, and {data.name} has none; use --global")
    if labelled and not 0.0 <= args.test_fraction < 1.0:
        raise ConfigError(f"--test-fraction must lie in [0, 1), got {args.test_fraction}")

    train, test = _split(data, args.test_fraction if labelled else 0.0, args.seed)
    y = data.y[train] if labelled and data.y is not None else None
    estimator = MMDCritic(
        n_prototypes=args.n_prototypes,
        n_criticisms=args.n_criticisms,
        gamma=_parse_gamma(args.gamma),
        regularizer=args.regularizer,
        local=local,
        block_size=args.block_size,
        device=args.device,
        dtype=args.dtype,
        random_state=args.seed,
        categorical_features=_categorical_names(data),
    ).fit(_rows(data, train), y)

    curves: dict[str, Any] = {"m": list(range(1, args.n_prototypes + 1))}
    curves["mmd2"] = estimator.mmd2_curve_
    evaluated = _seen_rows(data, train, test)
    if labelled and len(evaluated) and data.y is not None:
        curves["error"] = estimator.error_curve(_rows(data, evaluated), data.y[evaluated])
        curves["random_error"] = _random_errors(
            data, estimator, train, evaluated, args.n_prototypes, args.seed
        )
        curves["majority_error"] = _majority_error(data.y[train], data.y[evaluated])

    results = _results(data, train, test, evaluated, estimator, curves, local, args)
    run_folder.write_json("prototypes.json", results)
    figures = _figures(data, train, estimator, curves, local, run_folder)
    write_report(
        run_folder,
        "prototypes.html",
        packages=("surrogate",),
        title=f"MMD-critic prototypes: {data.name}",
        summary=_summary(results),
        preview="prototypes.png" if data.image_shape is not None else None,
        results=results,
        figures=figures,
        feature_names=data.feature_names,
        show_table=data.image_shape is None,
        missing=MISSING,
    )


def _column_list(text: str | list[str] | None) -> list[str] | None:
    """``--categorical a,b`` (or a YAML list) as column names."""
    if text is None:
        return None
    parts = text if isinstance(text, list) else str(text).split(",")
    return [str(part).strip() for part in parts if str(part).strip()]


def _categorical_names(data: Dataset) -> list[str] | None:
    """The categorical columns of a table read from a file, as the estimator should read it."""
    if data.frame is None or data.table is None:
        return None
    return [data.table.names[i] for i in data.table.categorical_indices]


def _rows(data: Dataset, rows: np.ndarray) -> Any:
    """Rows as the estimator takes them: DataFrame rows of a table file, else the array."""
    if data.frame is not None:
        return data.frame.iloc[rows].reset_index(drop=True)
    return data.X[rows]


def _seen_rows(data: Dataset, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Held-out rows whose categories all occur among the training rows.

    The kernel has no place for a category it never saw, so a held-out row with one is left
    out of the error curves (the JSON and the page say how many).
    """
    if data.table is None or len(test) == 0:
        return test
    keep = np.ones(len(test), dtype=bool)
    for column in data.table.categorical_indices:
        keep &= np.isin(data.X[test, column], data.X[train, column])
    return test[keep]


def _parse_gamma(text: str | float) -> float | str:
    if isinstance(text, (int, float)):
        return float(text)
    if text in GAMMA_RULES:
        return text
    try:
        return float(text)
    except ValueError:
        raise ConfigError(
            f"--gamma must be a positive number or one of {', '.join(GAMMA_RULES)}, got {text!r}"
        ) from None


def _parse_shape(text: str, n_features: int) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in str(text).replace("x", ",").split(","))
    except ValueError:
        raise ConfigError(f"--image-shape must look like 28,28 or 3,32,32, got {text!r}") from None
    if math.prod(shape) != n_features or len(shape) not in (2, 3):
        raise ConfigError(f"--image-shape {text} does not hold the {n_features} features of a row")
    return shape


def _split(data: Dataset, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows to choose prototypes from, and held-out rows for the error curve (stratified)."""
    rows = np.arange(len(data.X))
    if test_fraction == 0.0:
        return rows, rows[:0]
    train, test = train_test_split(
        rows, test_size=test_fraction, random_state=seed, stratify=data.y
    )
    return np.sort(train), np.sort(test)


def _random_errors(
    data: Dataset, estimator: MMDCritic, train: np.ndarray, test: np.ndarray, m: int, seed: int
) -> np.ndarray:
    """Mean nearest-prototype error of random prototype sequences (the baseline), measured
    in the estimator's kernel space like its own prototypes."""
    assert data.y is not None
    points = estimator.embedding_.transform(_rows(data, train))
    test_points = estimator.embedding_.transform(_rows(data, test))
    rng = np.random.default_rng(seed)
    errors = []
    for _ in range(RANDOM_DRAWS):
        chosen = rng.choice(len(train), size=m, replace=False)
        labels = data.y[train[chosen]]
        errors.append(staged_errors(test_points, data.y[test], points[chosen], labels))
    mean: np.ndarray = np.mean(errors, axis=0)
    return mean


def _majority_error(train_labels: np.ndarray, test_labels: np.ndarray) -> float:
    """Held-out error of always answering the most common training label."""
    values, counts = np.unique(train_labels, return_counts=True)
    return float(np.mean(test_labels != values[np.argmax(counts)]))


def _label_name(data: Dataset, label: Any) -> str:
    if data.target_names is not None and float(label).is_integer():
        index = int(label)
        if 0 <= index < len(data.target_names):
            return data.target_names[index]
    return str(label)


def _items(data: Dataset, train: np.ndarray, estimator: MMDCritic, kind: str) -> list[dict]:
    """One record per chosen point: greedy order, row in the data set, witness, label."""
    indices = estimator.prototype_indices_ if kind == "prototype" else estimator.criticism_indices_
    items = []
    for order, index in enumerate(indices):
        row = int(train[index])
        item: dict[str, Any] = {
            "order": order + 1,
            "row": row,
            "witness": float(estimator.witness_[index]),
        }
        if data.row_ids is not None:
            item["id"] = data.row_name(row)
        if data.image_shape is None:  # tables show the values; images are in the figures
            item["values"] = _values(data, row)
        if data.y is not None:
            item["label"] = _label_name(data, data.y[row])
        items.append(item)
    return items


def _values(data: Dataset, row: int) -> list[Any]:
    """The row's values as the file holds them (None where one is missing), as JSON values."""
    if data.frame is None:
        values: list[Any] = data.X[row].tolist()
        return values
    return [_json_value(value) for value in data.frame.iloc[row].tolist()]


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or bool(pd.isna(value)):
        return None
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def _results(
    data: Dataset,
    train: np.ndarray,
    test: np.ndarray,
    evaluated: np.ndarray,
    estimator: MMDCritic,
    curves: dict[str, Any],
    local: bool,
    args: argparse.Namespace,
) -> dict[str, Any]:
    prototypes = _items(data, train, estimator, "prototype")
    counts: dict[str, int] = {}
    for item in prototypes:
        if "label" in item:
            counts[item["label"]] = counts.get(item["label"], 0) + 1
    return {
        "data": data.name,
        "n_rows": len(data.X),
        "n_features": data.X.shape[1],
        "n_train": len(train),
        "n_test": len(test),
        "n_test_unseen_categories": len(test) - len(evaluated),
        "id_column": args.id_column,
        "feature_names": data.feature_names,
        "categorical": [data.feature_names[i] for i in _categorical_indices(data)],
        "standardized": estimator.embedding_.standardized,
        "kernel_coordinates": estimator.embedding_.names,
        "local": local,
        "gamma": estimator.gamma_,
        "gamma_rule": args.gamma,
        "gamma_scores": {f"{g:.6g}": s for g, s in estimator.gamma_scores_.items()},
        "regularizer": args.regularizer,
        "dtype": args.dtype,
        "prototypes_per_class": counts,
        "prototypes": prototypes,
        "criticisms": _items(data, train, estimator, "criticism"),
        "curves": curves,
        "final_mmd2": float(estimator.mmd2_curve_[-1]),
        "final_error": float(curves["error"][-1]) if "error" in curves else None,
        "final_random_error": (
            float(curves["random_error"][-1]) if "random_error" in curves else None
        ),
        "majority_error": curves.get("majority_error"),
        "warnings": _warnings(curves),
    }


def _warnings(curves: dict[str, Any]) -> list[str]:
    """What the error curves say that a reader should not miss."""
    if "error" not in curves:
        return []
    error = float(curves["error"][-1])
    majority, random = curves["majority_error"], float(curves["random_error"][-1])
    if error >= majority:
        return [
            f"the nearest-prototype error ({100 * error:.1f}%) is not below the majority-class "
            f"error ({100 * majority:.1f}%): the prototypes do not tell the classes apart in "
            "this kernel; try --gamma accuracy, or check which columns the table holds"
        ]
    if error >= random:
        return [
            f"randomly chosen prototypes do as well ({100 * random:.1f}% against "
            f"{100 * error:.1f}%): the prototypes summarise the data, but as a classifier they "
            "are no better than a random sample of the same size"
        ]
    return []


def _categorical_indices(data: Dataset) -> list[int]:
    return data.table.categorical_indices if data.frame is not None and data.table else []


def _summary(results: dict[str, Any]) -> str:
    scope = "class-local" if results["local"] else "global"
    text = (
        f"{len(results['prototypes'])} prototypes and {len(results['criticisms'])} criticisms "
        f"of {results['n_train']} rows ({scope} kernel, gamma {results['gamma']:.3g}); "
        f"MMD^2 {results['final_mmd2']:.3g}"
    )
    if results["final_error"] is not None:
        text += (
            f"; nearest-prototype error on {results['n_test']} held-out rows "
            f"{100 * results['final_error']:.1f}% "
            f"(random prototypes {100 * results['final_random_error']:.1f}%, "
            f"majority class {100 * results['majority_error']:.1f}%)"
        )
    return text


def _figures(
    data: Dataset,
    train: np.ndarray,
    estimator: MMDCritic,
    curves: dict[str, Any],
    local: bool,
    run_folder: RunFolder,
) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    figures = {"mmd2": "mmd2_curve.png"}
    save_figure(
        _curve_figure(curves["m"], {"MMD-critic": curves["mmd2"]}, "MMD$^2$(data, prototypes)"),
        run_folder.path(figures["mmd2"]),
    )
    if "error" in curves:
        figures["error"] = "error_curve.png"
        lines = {
            "MMD-critic": curves["error"],
            f"random (mean of {RANDOM_DRAWS})": curves["random_error"],
        }
        majority = ("majority class", curves["majority_error"])
        figure = _curve_figure(
            curves["m"], lines, "nearest-prototype error (held out)", percent=True, level=majority
        )
        save_figure(figure, run_folder.path(figures["error"]))
    if data.image_shape is not None:
        labels = data.y[train] if local and data.y is not None else None
        for kind, indices in (
            ("prototypes", estimator.prototype_indices_),
            ("criticisms", estimator.criticism_indices_),
        ):
            if len(indices):
                figure = _gallery_figure(data, train, indices, estimator.witness_, labels, kind)
                figures[kind] = f"{kind}.png"
                save_figure(figure, run_folder.path(figures[kind]))
    return figures


def _curve_figure(
    m: list[int],
    lines: dict[str, np.ndarray],
    ylabel: str,
    *,
    percent: bool = False,
    level: tuple[str, float] | None = None,
) -> Any:
    """Curves against m; ``level`` (name, value) is drawn as a horizontal dashed line."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.2, 3.4))
    scale = 100.0 if percent else 1.0
    for name, values in lines.items():
        axes.plot(m, np.asarray(values) * scale, label=name, linewidth=1.6)
    if level is not None:
        axes.axhline(level[1] * scale, color="0.35", linestyle="--", linewidth=1.2, label=level[0])
    axes.set_xlabel("number of prototypes m")
    axes.set_ylabel(ylabel + (" (%)" if percent else ""))
    if percent:  # errors read best on a linear scale from 0
        axes.set_ylim(bottom=0)
    else:  # MMD^2 falls by orders of magnitude
        axes.set_yscale("log")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(frameon=False)
    return figure


def _gallery_figure(
    data: Dataset,
    train: np.ndarray,
    indices: np.ndarray,
    witness: np.ndarray,
    labels: np.ndarray | None,
    kind: str,
) -> Any:
    """Images with their witness values; one row per class when ``labels`` is given."""
    import matplotlib.pyplot as plt

    assert data.image_shape is not None
    if labels is None:
        columns = min(10, len(indices))
        rows = [list(indices[i : i + columns]) for i in range(0, len(indices), columns)]
        row_names = [""] * len(rows)
    else:
        classes = sorted(set(labels[indices].tolist()))
        rows = [[i for i in indices if labels[i] == c] for c in classes]
        row_names = [_label_name(data, c) for c in classes]
        columns = max(len(r) for r in rows)
    figure, axes = plt.subplots(
        len(rows), columns, figsize=(1.05 * columns + 0.6, 1.25 * len(rows) + 0.5), squeeze=False
    )
    for r, (members, name) in enumerate(zip(rows, row_names, strict=True)):
        for c in range(columns):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c >= len(members):
                axis.axis("off")
                continue
            image = data.X[train[members[c]]].reshape(data.image_shape)
            if image.ndim == 3:
                image = np.moveaxis(image, 0, -1)
                image = (image - image.min()) / max(float(np.ptp(image)), 1e-12)
            axis.imshow(image, cmap="gray_r", interpolation="nearest")
            axis.set_xlabel(f"w={witness[members[c]]:+.2g}", fontsize=7)
            if c == 0 and name:
                axis.set_ylabel(name, fontsize=9)
    figure.suptitle(f"{kind} (w = witness value)", fontsize=10)
    figure.tight_layout()
    return figure
