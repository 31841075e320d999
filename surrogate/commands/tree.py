"""Explain a black box globally with a decision tree whose fidelity is measured.

Splits the data into a training and a held-out part (stratified), fits or loads the model on
the training part, fits a tree surrogate to the model's predictions there (with oracle
samples labelled by the model), and measures on the held-out part how often tree and model
agree (fidelity) next to the tree's accuracy on the true labels, for the surrogate and for a
plain tree without oracle samples, at every depth up to --max-depth.

Writes tree.json (parameters, figures, nodes, rules, curves), rules.txt, tree.png,
fidelity_curve.png and index.html.

--model is a built-in name (random_forest: 100 trees, fitted here), pretrained:NAME (a shipped
torch model), or package.module:attribute naming a fitted model, a factory returning one, or a
class; an unfitted scikit-learn estimator is fitted on the training part.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import clone

from surrogate.tree import TreeSurrogate, curve_rows, fit_each_depth, plot_fidelity_curve
from surrogate.tree._sampling import SAMPLERS
from training.blackbox import BlackBox
from training.errors import ConfigError, InputError
from training.images import save_figure
from training.pages import write_report
from training.runs import RunFolder
from training.sources import Dataset, fit_if_needed, load_dataset, resolve_model, split_rows

BUILTIN_MODELS = ("random_forest",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m surrogate tree``."""
    parser.add_argument(
        "--data",
        default="breast_cancer",
        help="built-in data set (breast_cancer, digits, iris, wine, diabetes) or .npy/.npz/.csv",
    )
    parser.add_argument(
        "--label-column", default=None, help="for a .csv: the column holding the labels"
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
    data = load_dataset(args.data, label_column=args.label_column)
    if data.y is None:
        raise InputError(f"data {data.name!r} has no labels: the tree's accuracy needs them")
    regression = data.task == "regression" or not _looks_like_classes(data.y)
    train, test = split_rows(
        len(data.X), data.y, args.test_size, args.seed, stratify=not regression
    )
    model = resolve_model(args.model, _builtins(args, regression), args.device)
    model = fit_if_needed(model, data.X[train], data.y[train])
    box = BlackBox(model)
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
        random_state=args.seed,
    )
    plain_tree = clone(surrogate).set_params(oracle_samples=0, refine_passes=0)
    X_train, y_train, X_test, y_test = data.X[train], data.y[train], data.X[test], data.y[test]
    depths = sorted({*_curve_depths(args.curve_depths, args.max_depth), args.max_depth})
    fitted = {
        "oracle samples": fit_each_depth(surrogate, X_train, box, depths, y=y_train),
        "plain tree": fit_each_depth(plain_tree, X_train, box, depths, y=y_train, label="plain"),
    }
    curves = {label: curve_rows(trees, X_test, box, y_test) for label, trees in fitted.items()}
    surrogate = fitted["oracle samples"][args.max_depth]
    plain_tree = fitted["plain tree"][args.max_depth]
    output_names = _output_names(surrogate, data)
    results = _results(args, data, surrogate, plain_tree, box, X_test, y_test, output_names)
    results["curves"] = curves
    run.write_json("tree.json", results)
    run.write_text(
        "rules.txt", surrogate.export_text(data.feature_names, output_names, as_rules=True)
    )
    save_figure(
        surrogate.plot(data.feature_names, output_names, max_depth=args.plot_depth),
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
    )
    write_report(
        run,
        "tree_report.html",
        packages=("surrogate",),
        title=title,
        summary=summary,
        preview="fidelity_curve.png",
        results=results,
        tree_text=surrogate.export_text(data.feature_names, output_names),
    )


def _looks_like_classes(y: np.ndarray) -> bool:
    """Whether labels are classes: not floats, or floats that are all whole numbers."""
    if y.dtype.kind not in "f":
        return True
    return bool(np.all(np.mod(y, 1) == 0)) and len(np.unique(y)) <= max(2, len(y) // 5)


def _builtins(args: argparse.Namespace, regression: bool) -> dict[str, Callable[[], Any]]:
    def random_forest() -> Any:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        forest = RandomForestRegressor if regression else RandomForestClassifier
        return forest(n_estimators=100, random_state=args.seed)

    return {"random_forest": random_forest}


def _output_names(surrogate: TreeSurrogate, data: Dataset) -> list[str] | None:
    """Class names from the data set where the model's classes are its label indices."""
    if surrogate.task_ != "classification" or not data.target_names:
        return None
    names = []
    for label in surrogate.classes_:
        index = int(label) if float(label).is_integer() else -1
        names.append(
            data.target_names[index] if 0 <= index < len(data.target_names) else str(label)
        )
    return names


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
    X_test: np.ndarray,
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
