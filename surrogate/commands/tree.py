"""Explain a black box globally with a decision tree whose fidelity is measured.

Splits the data into a training and a held-out part (stratified), fits or loads the model on
the training part, fits a tree surrogate to the model's predictions there (with oracle
samples labelled by the model), and measures on the held-out part how often tree and model
agree (fidelity) next to the tree's accuracy on the true labels, for the surrogate and for a
plain tree without oracle samples, at every depth up to --max-depth.

Writes tree.json (parameters, figures, nodes, rules, curves, the held-out rows on which tree
and model disagree, warnings), rules.txt, tree.png, fidelity_curve.png and index.html. A result
that is probably wrong says so on the page and in tree.json: a plain tree more faithful than
the surrogate at the reported depth.

--data is a built-in data set or a file; a table (.csv, .tsv, .parquet) is read by pandas with
its text, categorical and boolean columns and missing values (--categorical names the columns
to treat as categories, default every non-numeric one; --id-column the column that names the
rows). --task says whether the labels are classes or values (default: from the model, else the
labels). The tree is fitted on the table's rows as they are, so its rules read
``sex in {female}`` and ``age is missing``.

--model is a built-in name (random_forest: 100 trees, fitted here, for a table with categories
or missing values inside a one-hot encoding, median-imputing Pipeline), pretrained:NAME (a
shipped torch model), or package.module:attribute naming a fitted model, a factory returning
one, a class, or a plain predict function; an unfitted scikit-learn estimator is fitted on the
training part (on the DataFrame for a table, so an unchanged Pipeline works).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import clone, is_classifier, is_regressor

from surrogate.tree import TreeSurrogate, curve_rows, fit_each_depth, plot_fidelity_curve
from surrogate.tree._sampling import SAMPLERS
from training.blackbox import BlackBox
from training.errors import ConfigError, InputError
from training.images import save_figure
from training.pages import write_report
from training.runs import RunFolder
from training.sources import (
    TASKS,
    Dataset,
    fit_if_needed,
    load_dataset,
    resolve_model,
    split_rows,
    tabular_model,
)

BUILTIN_MODELS = ("random_forest",)
DISAGREEMENTS_SHOWN = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m surrogate tree``."""
    parser.add_argument(
        "--data",
        default="breast_cancer",
        help="built-in data set (breast_cancer, digits, iris, wine, diabetes) or "
        ".npy/.npz/.csv/.tsv/.parquet",
    )
    parser.add_argument(
        "--label-column", default=None, help="for a table file: the column holding the labels"
    )
    parser.add_argument(
        "--categorical",
        default=None,
        help="comma-separated columns of a table file to treat as categories "
        "(default: every non-numeric column)",
    )
    parser.add_argument(
        "--id-column", default=None, help="for a table file: the column that names the rows"
    )
    parser.add_argument(
        "--task",
        choices=TASKS,
        default=None,
        help="classes or values to regress (default: from the model, else from the labels)",
    )
    parser.add_argument(
        "--model",
        default="random_forest",
        help="random_forest, pretrained:NAME, or package.module:attribute",
    )
    parser.add_argument("--test-size", type=float, default=0.5, help="share of rows held out")
    parser.add_argument("--max-depth", type=int, default=5, help="depth of the surrogate tree")
    parser.add_argument(
        "--max-leaf-nodes", type=int, default=None, help="most leaves (grown best-first)"
    )
    parser.add_argument(
        "--oracle-samples",
        type=int,
        default=20,
        help="oracle samples per training row, labelled by the model; 0 for a plain tree",
    )
    parser.add_argument("--sampler", choices=SAMPLERS, default="neighbours", help="how")
    parser.add_argument(
        "--noise", type=float, default=None, help="spread of oracle samples (sampler default)"
    )
    parser.add_argument(
        "--n-neighbors", type=int, default=None, help="neighbours a sample uses (sampler default)"
    )
    parser.add_argument(
        "--criterion", choices=("entropy", "gini", "log_loss"), default="entropy", help="growth"
    )
    parser.add_argument(
        "--refine-passes", type=int, default=10, help="TAO refinement passes; 0 keeps greedy"
    )
    parser.add_argument(
        "--curve-depths",
        default=None,
        help="comma-separated depths of the fidelity curve (default: 1 to --max-depth)",
    )
    parser.add_argument(
        "--plot-depth", type=int, default=4, help="levels drawn in tree.png (deeper: in text)"
    )


def run(args: argparse.Namespace, run: RunFolder) -> None:
    """Fit, measure, and write the report into ``run``."""
    from training.devices import resolve_device

    resolve_device(args.device)  # an unknown or absent device is an error before any work
    data = load_dataset(
        args.data,
        label_column=args.label_column,
        categorical=_column_list(args.categorical),
        id_column=args.id_column,
        task=args.task,
    )
    if data.y is None:
        raise InputError(f"data {data.name!r} has no labels: the tree's accuracy needs them")
    model = resolve_model(args.model, _builtins(args, data), args.device)
    task = _task(args.task, data, model)
    regression = task == "regression"
    train, test = split_rows(
        len(data.X), data.y, args.test_size, args.seed, stratify=not regression
    )
    model = fit_if_needed(model, data.model_rows(train), data.y[train])
    box = BlackBox(model, table=data.table)
    table = data.table if data.frame is not None else None
    surrogate = TreeSurrogate(
        max_depth=args.max_depth,
        max_leaf_nodes=args.max_leaf_nodes,
        oracle_samples=args.oracle_samples,
        sampler=args.sampler,
        noise=args.noise,
        n_neighbors=args.n_neighbors,
        criterion=args.criterion,
        refine_passes=args.refine_passes,
        validation_fraction=0.0,  # the held-out part measures fidelity
        task="regression" if regression else "classification",
        random_state=args.seed,
        categorical_features=None
        if table is None
        else [table.names[i] for i in table.categorical_indices],
    )
    plain_tree = clone(surrogate).set_params(oracle_samples=0, refine_passes=0)
    X_train, y_train = data.model_rows(train), data.y[train]
    X_test, y_test = data.model_rows(test), data.y[test]
    depths = sorted({*_curve_depths(args.curve_depths, args.max_depth), args.max_depth})
    fitted = {
        "oracle samples": fit_each_depth(surrogate, X_train, box, depths, y=y_train),
        "plain tree": fit_each_depth(plain_tree, X_train, box, depths, y=y_train, label="plain"),
    }
    curves = {label: curve_rows(trees, X_test, box, y_test) for label, trees in fitted.items()}
    # Wall-clock times go to run.json, so that tree.json is the same for the same seed.
    run.extra["fit_seconds"] = {
        label: {str(row["depth"]): row.pop("fit_seconds") for row in rows}
        for label, rows in curves.items()
    }
    surrogate = fitted["oracle samples"][args.max_depth]
    plain_tree = fitted["plain tree"][args.max_depth]
    output_names = _output_names(surrogate, data)
    feature_names = data.feature_names
    results = _results(args, data, surrogate, plain_tree, box, X_test, y_test, output_names)
    results["curves"] = curves
    results["disagreements"] = _disagreements(surrogate, box, data, test, output_names)
    results["warnings"] = _warnings(results)
    run.write_json("tree.json", results)
    run.write_text("rules.txt", surrogate.export_text(feature_names, output_names, as_rules=True))
    save_figure(
        surrogate.plot(feature_names, output_names, max_depth=args.plot_depth),
        run.path("tree.png"),
    )
    save_figure(
        plot_fidelity_curve(
            curves, black_box_accuracy=results["black_box"]["accuracy"], regression=regression
        ),
        run.path("fidelity_curve.png"),
    )
    title = f"Tree surrogate of {args.model} on {data.name}"
    summary = (
        f"depth-{surrogate.get_depth()} tree, {surrogate.get_n_leaves()} leaves: fidelity "
        f"{results['surrogate']['fidelity']:.3f} on held-out rows "
        f"(plain tree {results['plain_tree']['fidelity']:.3f})"
        + (" - PROBABLY WRONG, see the warning" if results["warnings"] else "")
    )
    write_report(
        run,
        "tree_report.html",
        packages=("surrogate",),
        title=title,
        summary=summary,
        preview="fidelity_curve.png",
        results=results,
        tree_text=surrogate.export_text(feature_names, output_names),
    )


def _column_list(spec: str | None) -> list[str] | None:
    if spec is None:
        return None
    return [name.strip() for name in spec.split(",") if name.strip()]


def _task(requested: str | None, data: Dataset, model: Any) -> str:
    """The task: as asked, else a classifier's or regressor's own, else the labels'."""
    if requested is not None:
        return requested
    if is_classifier(model) or getattr(model, "classes_", None) is not None:
        return "classification"
    if is_regressor(model):
        return "regression"
    return _labels_task(data)


def _labels_task(data: Dataset) -> str:
    """The task the labels suggest: a table's or built-in set's own; for arrays from .npz,
    regression when the labels are floats with fractions or many distinct values."""
    if data.frame is not None or data.task == "regression" or data.y is None:
        return data.task
    y = np.asarray(data.y)
    if y.dtype.kind != "f":
        return "classification"
    whole = bool(np.all(np.mod(y, 1) == 0))
    return "classification" if whole and len(np.unique(y)) <= max(2, len(y) // 5) else "regression"


def _builtins(args: argparse.Namespace, data: Dataset) -> dict[str, Callable[[], Any]]:
    def random_forest() -> Any:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        task = args.task or _labels_task(data)
        forest = RandomForestRegressor if task == "regression" else RandomForestClassifier
        return tabular_model(forest(n_estimators=100, random_state=args.seed), data)

    return {"random_forest": random_forest}


def _output_names(surrogate: TreeSurrogate, data: Dataset) -> list[str] | None:
    """Class names from the data set where the model's classes are its label indices."""
    if surrogate.task_ != "classification" or not data.target_names:
        return None
    names = []
    for label in surrogate.classes_:
        is_index = isinstance(label, (int, np.integer)) or (
            isinstance(label, (float, np.floating)) and float(label).is_integer()
        )
        index = int(label) if is_index else -1
        names.append(
            data.target_names[index] if 0 <= index < len(data.target_names) else str(label)
        )
    return names


def _disagreements(
    surrogate: TreeSurrogate,
    box: BlackBox,
    data: Dataset,
    test: np.ndarray,
    output_names: list[str] | None,
) -> dict[str, Any]:
    """The held-out rows on which tree and model disagree most, named by the data's own ids:
    for classes, each with both predictions; for scores, the largest differences."""
    X_test = data.model_rows(test)
    tree = surrogate.predict(X_test)
    model = surrogate.black_box_predictions(X_test, box)
    rows: list[dict[str, Any]]
    if surrogate.task_ == "classification":
        labels = [str(label) for label in surrogate.classes_]
        name = dict(zip(labels, output_names or labels, strict=True))
        order = np.flatnonzero(tree != model)
        rows = [
            {
                "row": data.row_name(int(test[i])),
                "black_box": name[str(model[i])],
                "surrogate": name[str(tree[i])],
            }
            for i in order
        ]
    else:
        values = model if model.ndim == 1 else model.mean(axis=1)
        tree_values = tree if tree.ndim == 1 else tree.mean(axis=1)
        order = np.argsort(-np.abs(values - tree_values), kind="stable")
        rows = [
            {
                "row": data.row_name(int(test[i])),
                "black_box": float(values[i]),
                "surrogate": float(tree_values[i]),
            }
            for i in order
        ]
    return {"count": len(order), "rows": rows[:DISAGREEMENTS_SHOWN]}


def _warnings(results: dict[str, Any]) -> list[str]:
    """What on this page is probably wrong, in words (empty when nothing is)."""
    warnings = []
    surrogate, plain = results["surrogate"], results["plain_tree"]
    if plain["fidelity"] > surrogate["fidelity"]:
        warnings.append(
            f"A plain tree of the same depth is more faithful than the surrogate "
            f"({plain['fidelity']:.3f} against {surrogate['fidelity']:.3f} on held-out rows): "
            "its oracle samples mislead it here, so read the plain tree's figures, or try "
            "another --sampler, --noise or fewer --oracle-samples."
        )
    return warnings


def _curve_depths(spec: str | None, max_depth: int) -> list[int]:
    if spec is None:
        return list(range(1, max_depth + 1))
    try:
        depths = sorted({int(part) for part in str(spec).split(",") if part.strip()})
    except ValueError as err:
        raise ConfigError(f"--curve-depths must be comma-separated integers, got {spec!r}") from err
    if not depths or depths[0] < 1:
        raise ConfigError(f"--curve-depths must be positive integers, got {spec!r}")
    return depths


def _results(
    args: argparse.Namespace,
    data: Dataset,
    surrogate: TreeSurrogate,
    plain_tree: TreeSurrogate,
    box: BlackBox,
    X_test: Any,
    y_test: np.ndarray,
    output_names: list[str] | None,
) -> dict[str, Any]:
    """Everything tree.json holds but the curves."""
    black_box_accuracy = surrogate.black_box_accuracy_on(X_test, box, y_test)

    def measured(tree: TreeSurrogate) -> dict[str, Any]:
        return {
            "fidelity": tree.score(X_test, box),
            "accuracy": tree.accuracy_on(X_test, y_test),
            "depth": tree.get_depth(),
            "n_leaves": tree.get_n_leaves(),
            "n_oracle_samples": tree.n_oracle_samples_,
        }

    return {
        "data": {
            "name": data.name,
            "rows": len(data.X),
            "features": data.X.shape[1],
            "columns": data.table.describe() if data.frame is not None and data.table else None,
            "id_column": args.id_column,
            "test_rows": len(X_test),
            "test_size": args.test_size,
        },
        "black_box": {
            "model": args.model,
            "description": repr(box),
            "accuracy": black_box_accuracy,
        },
        "fidelity_definition": (
            "share of held-out rows on which the tree predicts the black box's class"
            if surrogate.task_ == "classification"
            else "R^2 of the tree's scores against the black box's scores on held-out rows"
        ),
        "surrogate": measured(surrogate),
        "plain_tree": measured(plain_tree),
        "tree": surrogate.to_dict(data.feature_names, output_names),
        "tree_text": surrogate.export_text(data.feature_names, output_names),
    }
