"""Explain a black box's predictions with LIME, for tables, images or text.

Fits or loads the model, explains a few held-out instances (their top class), draws each
explanation's deletion curve against random orders, and picks a covering set of explanations
with SP-LIME. Writes explanations.json (every explanation, readable again with
``surrogate.lime.Explanation.from_dict``), PNG bar charts, superpixel overlays and deletion
curves, and index.html.

Models: ``random_forest`` or ``logistic_regression`` (tables, fitted here), ``digits_logistic``
(images: a logistic regression on 8x8 digits that reads any image size), ``bag_of_words``
(text: tf-idf and logistic regression, fitted here), ``pretrained:NAME`` (a torch image
classifier shipped with seethrough, images (N, 3, H, W) in [-1, 1] to logits), or
``package.module:attribute`` naming a fitted model, a factory returning one, or a
``torch.nn.Module`` class (for images: a module taking (N, 3, H, W) in ``--model-range``).
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from surrogate.lime import (
    FEATURE_SELECTIONS,
    Explanation,
    ImageExplanation,
    LimeImageExplainer,
    LimeTabularExplainer,
    LimeTextExplainer,
    deletion_curve,
    submodular_pick,
)
from surrogate.lime.image import SEGMENTATIONS
from training.blackbox import BlackBox
from training.errors import ConfigError, InputError
from training.runs import RunFolder
from training.sources import fit_if_needed, resolve_model, split_rows

KINDS = ("tabular", "image", "text")
_DEFAULT_DATA = {"tabular": "breast_cancer", "image": "digits", "text": "reviews"}
_DEFAULT_MODEL = {"tabular": "random_forest", "image": "digits_logistic", "text": "bag_of_words"}
_DEFAULT_SAMPLES = {"tabular": 5000, "image": 1000, "text": 5000}
_DEFAULT_FEATURES = {"tabular": 6, "image": 10, "text": 6}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m surrogate lime``."""
    parser.add_argument("--kind", choices=KINDS, default="tabular", help="what the model reads")
    parser.add_argument(
        "--data",
        default=None,
        help="built-in data set or file: breast_cancer etc. or .npy/.npz/.csv (tabular), "
        "digits, scenes (held-out street scenes, label: is a lamp lit) or a .npy/.npz stack of "
        "images (image), reviews or a .tsv of label<TAB>text "
        "lines (text); None: breast_cancer, digits or reviews",
    )
    parser.add_argument(
        "--label-column",
        default=None,
        help="tables from a file: the column holding the labels (text or numbers)",
    )
    parser.add_argument(
        "--task",
        choices=("classification", "regression"),
        default=None,
        help="tables: explain class scores or a predicted value; None: from the model "
        "(a scikit-learn regressor or classifier) or else the labels (numbers with fractions "
        "or many distinct values are regressed)",
    )
    parser.add_argument(
        "--categorical",
        default=None,
        help="tables from a file: categorical columns, comma-separated; None: every "
        "non-numeric column (text, booleans)",
    )
    parser.add_argument(
        "--id-column",
        default=None,
        help="tables from a file: the column that names the rows; --instances and every "
        "output then name rows by it",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="random_forest | logistic_regression | digits_logistic | bag_of_words | "
        "pretrained:NAME | package.module:attribute (see the description); None: "
        "random_forest, digits_logistic or bag_of_words",
    )
    parser.add_argument(
        "--num-samples",
        type=int,
        default=None,
        help="neighbours per explanation; None: 5000 (tables, text) or 1000 (images)",
    )
    parser.add_argument(
        "--num-features",
        type=int,
        default=None,
        help="features in each explanation; None: 6 (tables, text) or 10 (images)",
    )
    parser.add_argument(
        "--instances",
        default=None,
        help="rows to explain, comma-separated: positions among the held-out rows, or with "
        "--id-column the rows' names (quote a name that holds a comma, as in a CSV line); "
        "None: the first three held-out rows",
    )
    parser.add_argument("--feature-selection", choices=FEATURE_SELECTIONS, default="auto")
    parser.add_argument(
        "--sampler", choices=("qmc", "random"), default="qmc", help="how neighbours are drawn"
    )
    parser.add_argument(
        "--discretizer",
        choices=("quartile", "decile", "entropy", "none"),
        default="quartile",
        help="tables: bins of continuous features (none keeps them continuous)",
    )
    parser.add_argument(
        "--segmentation",
        choices=tuple(SEGMENTATIONS),
        default="slic",
        help="images: superpixel algorithm (lime's quickshift suits photographs; SLIC suits "
        "small images such as digits)",
    )
    parser.add_argument(
        "--hide-color",
        type=_hide_color,
        default=0.0,
        help="images: value in [0, 1] that hidden superpixels take, or 'mean' for each "
        "superpixel's mean colour (lime's default)",
    )
    parser.add_argument(
        "--image-size", type=int, default=32, help="images: digits are upscaled to this size"
    )
    parser.add_argument(
        "--model-range",
        default="-1,1",
        help="images: value range a torch module expects, as low,high",
    )
    parser.add_argument(
        "--sp-size", type=int, default=40, help="held-out rows explained for SP-LIME (0: skip)"
    )
    parser.add_argument("--sp-pick", type=int, default=4, help="explanations SP-LIME picks")
    parser.add_argument(
        "--num-random", type=int, default=10, help="random orders per deletion curve"
    )
    parser.add_argument("--test-size", type=float, default=0.25, help="held-out share")


@dataclass
class Task:
    """What one run explains: the explainer, the black box and the held-out instances."""

    explainer: LimeTabularExplainer | LimeImageExplainer | LimeTextExplainer
    black_box: BlackBox
    instances: Any
    truth: list[str]
    data_name: str
    model_name: str
    accuracy: float | None
    options: dict[str, Any] = field(default_factory=dict)
    # With an id column: every row is an instance, named by its id; ``held_out`` lists the
    # positions of the held-out ones (the default instances and SP-LIME's candidates).
    row_names: list[str] | None = None
    held_out: list[int] | None = None

    def name(self, row: int) -> str:
        """How the page and the JSON name instance ``row``."""
        return self.row_names[row] if self.row_names is not None else f"held-out row {row}"

    def candidates(self) -> list[int]:
        """Instances that were not used to fit the model, in order."""
        return self.held_out if self.held_out is not None else list(range(len(self.instances)))


def run(args: argparse.Namespace, run_folder: RunFolder) -> None:
    """Explain, measure, and write JSON, PNG and index.html into ``run_folder``."""
    from training.devices import resolve_device
    from training.images import save_figure, save_png
    from training.progress import progress

    resolve_device(args.device)  # an unknown or absent device is an error before any work
    kind = args.kind
    num_samples = _DEFAULT_SAMPLES[kind] if args.num_samples is None else args.num_samples
    num_features = _DEFAULT_FEATURES[kind] if args.num_features is None else args.num_features
    if num_samples < 2:
        raise ConfigError(f"--num-samples must be at least 2, got {num_samples}")
    if num_features < 1:
        raise ConfigError(f"--num-features must be at least 1, got {num_features}")
    if kind != "tabular":  # options for tables would be ignored silently
        given = [
            f"--{name.replace('_', '-')}"
            for name in ("label_column", "task", "categorical", "id_column")
            if getattr(args, name) is not None
        ]
        if given:
            raise ConfigError(f"{', '.join(given)}: options of --kind tabular only, not of {kind}")
    task = _BUILDERS[kind](args)
    rows = _parse_instances(args.instances, task)

    started = time.perf_counter()
    explanations = task.explainer.explain_many(
        _take(task.instances, rows),
        task.black_box,
        top_labels=1,
        num_features=num_features,
        num_samples=num_samples,
        **task.options,
    )
    seconds = (time.perf_counter() - started) / len(rows)

    records: list[dict[str, Any]] = []
    curves = []
    for row, explanation in progress(
        zip(rows, explanations, strict=True), desc="deletion curves and pictures", total=len(rows)
    ):
        instance = _one(task.instances, row)
        curve = deletion_curve(
            task.explainer,
            instance,
            explanation,
            task.black_box,
            num_random=args.num_random,
            random_state=args.seed,
        )
        curves.append(curve)
        label = explanation.available_labels()[0]
        name = f"row{row}"
        pictures = {
            "bars": f"{name}_bars.png",
            "deletion": f"{name}_deletion.png",
        }
        save_figure(
            explanation.as_pyplot_figure(label, max_features=num_features),
            run_folder.path(pictures["bars"]),
        )
        save_figure(
            curve.figure(title=f"Deletion curve, {task.name(row)}"),
            run_folder.path(pictures["deletion"]),
        )
        if isinstance(explanation, ImageExplanation):
            pictures["overlay"] = f"{name}_overlay.png"
            save_png(_image_panel(explanation, label), run_folder.path(pictures["overlay"]))
        warnings = _warnings(explanation, label, curve)
        records.append(
            {
                "row": row,
                "row_name": task.name(row),
                "warnings": warnings,
                "true_label": task.truth[row] if task.truth else None,
                "label": label,
                "explanation": explanation.to_dict(),
                "deletion": curve.to_dict(),
                "pictures": pictures,
                "html": explanation.html_context([label]),
            }
        )

    picked = _submodular(args, task, num_features, num_samples)
    result = {
        "kind": kind,
        "data": task.data_name,
        "model": task.model_name,
        "held_out_accuracy": task.accuracy,
        "num_samples": num_samples,
        "num_features": num_features,
        "instances": [{k: v for k, v in r.items() if k != "html"} for r in records],
        "submodular_pick": picked,
    }
    run_folder.write_json("explanations.json", result)

    from training.pages import write_report

    mean_auc = float(np.mean([curve.auc for curve in curves]))
    mean_random = float(np.mean([curve.random_auc for curve in curves]))
    title = f"LIME: {kind} explanations of {task.model_name} on {task.data_name}"
    summary = (
        f"{len(rows)} explanation{'s' if len(rows) != 1 else ''}, {num_samples} neighbours each, "
        f"{seconds:.3g} s per explanation; deletion AUC {mean_auc:.3f} "
        f"vs {mean_random:.3f} for random orders"
    )
    # Timing goes to run.json, so that explanations.json is the same for the same seed.
    run_folder.extra["seconds_per_explanation"] = seconds
    write_report(
        run_folder,
        "lime_report.html",
        packages=("surrogate",),
        title=title,
        summary=summary,
        preview=records[0]["pictures"].get("overlay", records[0]["pictures"]["bars"]),
        result=result,
        records=records,
        mean_auc=mean_auc,
        mean_random_auc=mean_random,
        seconds_per_explanation=seconds,
    )


def _submodular(
    args: argparse.Namespace, task: Task, num_features: int, num_samples: int
) -> dict[str, Any] | None:
    """SP-LIME over the first ``--sp-size`` held-out rows."""
    candidates = task.candidates()[: max(0, args.sp_size)]
    size = len(candidates)
    if size <= 0:
        return None
    explanations = task.explainer.explain_many(
        _take(task.instances, candidates),
        task.black_box,
        top_labels=1,
        num_features=num_features,
        num_samples=num_samples,
        **task.options,
    )
    picked = submodular_pick(explanations, args.sp_pick)
    return {
        **picked.to_dict(),
        "candidates": size,
        "rows": [candidates[i] for i in picked.indices],
        "explanations": [
            {
                "row": candidates[i],
                "row_name": task.name(candidates[i]),
                "true_label": task.truth[candidates[i]] if task.truth else None,
                "label": explanations[i].available_labels()[0],
                "class_name": _class_name(explanations[i]),
                "top": explanations[i].as_list(explanations[i].available_labels()[0])[:5],
            }
            for i in picked.indices
        ],
    }


def _class_name(explanation: Explanation) -> str:
    label = explanation.available_labels()[0]
    names = explanation.class_names
    return names[label] if label < len(names) else str(label)


def _image_panel(explanation: ImageExplanation, label: int) -> np.ndarray:
    """Image, overlay and the supporting superpixels alone, side by side, enlarged."""
    from training.images import make_grid, to_uint8_images

    image = explanation.image
    if image is None:
        raise InputError("image explanation without its image")
    overlay = explanation.overlay(label, num_features=5)
    scale = overlay.shape[0] // image.shape[0]
    original = to_uint8_images(image[None], value_range=(0.0, 1.0))[0]
    shown = explanation.superpixel_mask(label, num_features=5)
    kept = np.where(shown[..., None], original, (original * 0.25).astype(np.uint8))
    enlarged = [p.repeat(scale, axis=0).repeat(scale, axis=1) for p in (original, kept)]
    return make_grid(np.stack([enlarged[0], overlay, enlarged[1]]), nrow=3, pad=4)


def _hide_color(text: str) -> float | None:
    if str(text).strip().lower() in ("mean", "none"):
        return None
    try:
        return float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a number or 'mean', got {text!r}") from err


def _parse_instances(text: str | None, task: Task) -> list[int]:
    """Instances named by ``--instances``: held-out positions, or row names with an id column."""
    held_out = task.candidates()
    if text is None:
        return held_out[:3]
    # Read as one CSV line, so that names holding commas can be quoted: "Allen, Miss. E",...
    parts = [part.strip() for part in next(csv.reader([str(text)], skipinitialspace=True), [])]
    parts = [part for part in parts if part]
    if not parts:
        raise ConfigError("--instances names no rows")
    if task.row_names is not None:
        index = {name: i for i, name in enumerate(task.row_names)}
        unknown = [part for part in parts if part not in index]
        if unknown:
            raise ConfigError(
                f"--instances {unknown} are not names of rows in the id column "
                f"(e.g. {', '.join(task.row_names[i] for i in held_out[:3])})"
            )
        return [index[part] for part in parts]
    try:
        rows = [int(part) for part in parts]
    except ValueError as err:
        raise ConfigError(f"--instances must be comma-separated row numbers, got {text!r}") from err
    outside = [row for row in rows if not 0 <= row < len(held_out)]
    if outside:
        raise ConfigError(f"--instances {outside} are outside the {len(held_out)} held-out rows")
    return [held_out[row] for row in rows]


def _take(instances: Any, rows: list[int]) -> Any:
    """Instances ``rows`` (DataFrame rows, array rows or list items)."""
    import pandas as pd

    if isinstance(instances, pd.DataFrame):
        return instances.iloc[rows].reset_index(drop=True)
    if isinstance(instances, np.ndarray):
        return instances[rows]
    return [instances[i] for i in rows]


def _one(instances: Any, row: int) -> Any:
    """Instance ``row`` (a Series for a DataFrame)."""
    import pandas as pd

    if isinstance(instances, pd.DataFrame):
        return instances.iloc[row]
    return instances[row]


_LOW_LOCAL_FIT = 0.1


def _warnings(explanation: Explanation, label: int, curve: Any) -> list[str]:
    """What says this explanation is probably wrong, in words for the page."""
    found = []
    score = explanation.scores[explanation._label(label)]
    if score < _LOW_LOCAL_FIT:
        found.append(
            f"The local linear model explains little of the black box's scores here (weighted "
            f"R\u00b2 {score:.2f}): the weights are probably not what drives this prediction."
        )
    if curve.auc > curve.random_auc:
        found.append(
            f"Removing features in the explanation's order moves the score less than random "
            f"orders do (deletion AUC {curve.auc:.3f} vs {curve.random_auc:.3f}): the ranking "
            "is probably wrong."
        )
    return found


# ---- models ----------------------------------------------------------------------------------


def _held_out_accuracy(black_box: BlackBox, X: Any, y: np.ndarray | None) -> float | None:
    """Share of ``y`` the black box's top class matches; labels are matched to the model's
    ``classes_`` by value (an error if it never saw them), else taken as class numbers."""
    from training.sources import match_labels

    if y is None:
        return None
    scores = black_box(X)
    if scores.shape[1] == 1:
        return None
    if black_box.classes_ is not None:
        truth = match_labels(y, black_box.classes_, what="held-out labels")
    elif np.asarray(y).dtype.kind in "iub":
        truth = np.asarray(y)
    else:
        return None  # text labels and a model that does not say which column is which
    return float(np.mean(np.argmax(scores, axis=1) == truth))


# ---- tables ----------------------------------------------------------------------------------


def _tabular(args: argparse.Namespace) -> Task:
    from sklearn.base import is_classifier, is_regressor

    from training.sources import load_dataset, tabular_model

    data = load_dataset(
        args.data or _DEFAULT_DATA["tabular"],
        label_column=args.label_column,
        categorical=_names(args.categorical),
        id_column=args.id_column,
        task=args.task,
    )
    if data.y is None:
        raise InputError(
            f"tabular data {data.name!r} has no labels to fit or describe a model "
            "(for a table file, name the label column with --label-column)"
        )
    model_spec = args.model or _DEFAULT_MODEL["tabular"]
    regression = data.task == "regression"
    builtins = {
        "random_forest": lambda: tabular_model(_random_forest(regression, args.seed), data),
        "logistic_regression": lambda: tabular_model(_logistic_regression(args.seed), data),
    }
    model = resolve_model(model_spec, builtins, args.device)
    if args.task is None and model_spec not in builtins:  # the model says what it predicts
        regression = bool(is_regressor(model)) or (regression and not is_classifier(model))
    train, test = split_rows(
        len(data.X), data.y, args.test_size, args.seed, stratify=not regression
    )
    model = fit_if_needed(model, data.model_rows(train), data.y[train])
    black_box = BlackBox(model, table=data.table)
    by_id = data.row_ids is not None
    instances = data.model_rows(np.arange(len(data.X)) if by_id else test)
    training_rows = data.model_rows(train)
    explainer = LimeTabularExplainer(
        training_rows,
        mode="regression" if regression else "classification",
        training_labels=None if regression else data.y[train],
        feature_names=data.feature_names,
        categorical_features=data.table.categorical_indices if data.table else None,
        class_names=None if regression else _class_names(black_box, data),
        feature_selection=args.feature_selection,
        discretize_continuous=args.discretizer != "none",
        discretizer=args.discretizer if args.discretizer != "none" else "quartile",
        random_state=args.seed,
        sampler=args.sampler,
    )
    labels = data.y if by_id else data.y[test]
    truth = (
        [f"{float(value):.4g}" for value in labels]
        if regression
        else [_name(data.target_names, label) for label in labels]
    )
    return Task(
        explainer=explainer,
        black_box=black_box,
        instances=instances,
        truth=truth,
        data_name=data.name,
        model_name=model_spec,
        accuracy=None
        if regression
        else _held_out_accuracy(black_box, data.model_rows(test), data.y[test]),
        row_names=data.row_ids,
        held_out=[int(row) for row in test] if by_id else None,
    )


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in str(text).split(",") if part.strip()]


def _class_names(black_box: BlackBox, data: Any) -> list[str] | None:
    """Names of the black box's output columns: its ``classes_`` (by name where the data set
    names its integer classes), else the data set's class names."""
    if black_box.classes_ is not None:
        return [_name(data.target_names, label) for label in black_box.classes_]
    return data.target_names


def _random_forest(regression: bool, seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    if regression:
        return RandomForestRegressor(random_state=seed)
    return RandomForestClassifier(random_state=seed)


def _logistic_regression(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))


def _name(names: list[str] | None, label: Any) -> str:
    if (
        names is not None
        and isinstance(label, (int, float, np.integer, np.floating))
        and float(label).is_integer()
        and 0 <= int(label) < len(names)
    ):
        return names[int(label)]
    return str(label)


# ---- images ----------------------------------------------------------------------------------


class DigitsClassifier:
    """A logistic regression on 8x8 digits that reads RGB images of any multiple of 8 pixels.

    Images (n, H, W, 3) in [0, 1] are turned grey and averaged down to 8x8 blocks, the
    resolution the regression was fitted at.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.classes_ = model.classes_

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float64)
        n, height, width = images.shape[:3]
        grey = images.mean(axis=-1)
        blocks = grey.reshape(n, 8, height // 8, 8, width // 8).mean(axis=(2, 4))
        return np.asarray(self.model.predict_proba(blocks.reshape(n, 64) * 16.0))


def _image(args: argparse.Namespace) -> Task:
    from training.sources import load_dataset

    data = load_dataset(args.data or _DEFAULT_DATA["image"])
    if data.image_shape is None:
        raise InputError(f"--data {data.name!r} holds no images (expected (N, H, W[, C]) arrays)")
    images = _as_rgb_unit(data.X.reshape(len(data.X), *data.image_shape))
    if data.name == "digits" and args.image_size != images.shape[1]:
        if args.image_size % 8:
            raise ConfigError(f"--image-size must be a multiple of 8, got {args.image_size}")
        factor = args.image_size // 8
        images = images.repeat(factor, axis=1).repeat(factor, axis=2)
    train, test = split_rows(len(images), data.y, args.test_size, args.seed)
    model_spec = args.model or _DEFAULT_MODEL["image"]
    builtins = {"digits_logistic": lambda: _digits_logistic(data, train, args.seed)}
    model = resolve_model(model_spec, builtins, args.device)
    black_box, class_names = _image_black_box(model, args.model_range, data.target_names)
    explainer = LimeImageExplainer(
        feature_selection=args.feature_selection,
        random_state=args.seed,
        sampler=args.sampler,
        class_names=class_names,
    )
    y = data.y
    return Task(
        explainer=explainer,
        black_box=black_box,
        instances=images[test],
        truth=[_name(class_names, label) for label in y[test]] if y is not None else [],
        data_name=data.name,
        model_name=model_spec,
        accuracy=_held_out_accuracy(black_box, images[test], None if y is None else y[test]),
        options={"segmentation_fn": args.segmentation, "hide_color": args.hide_color},
    )


def _digits_logistic(data: Any, train: np.ndarray, seed: int) -> DigitsClassifier:
    from sklearn.linear_model import LogisticRegression

    if data.name != "digits":
        raise ConfigError("--model digits_logistic reads 8x8 digits only; use --data digits")
    regression = LogisticRegression(max_iter=2000, random_state=seed)
    return DigitsClassifier(regression.fit(data.X[train], data.y[train]))


def _as_rgb_unit(images: np.ndarray) -> np.ndarray:
    """Images as float (n, H, W, 3) in [0, 1], from grey or RGB, uint8, [0, 1] or [-1, 1]."""
    if images.ndim == 4 and images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
        images = images.transpose(0, 2, 3, 1)  # channels first to channels last
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise InputError(f"images must be (N, H, W), (N, H, W, C) or (N, C, H, W); {images.shape}")
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    images = images.astype(np.float64)
    low, high = float(images.min()), float(images.max())
    if high > 1.0:  # 8-bit, or digits' 0..16
        return images / (16.0 if high <= 16.0 else 255.0)
    if low < 0.0:
        return (images + 1.0) / 2.0
    return images


def _image_black_box(
    model: Any, model_range: str, target_names: list[str] | None
) -> tuple[BlackBox, list[str] | None]:
    """The black box the explainer calls with (n, H, W, 3) images in [0, 1]."""
    if isinstance(model, torch.nn.Module):
        low, high = _parse_range(model_range)
        names = getattr(model, "class_names", None)
        wrapped = ChannelsLastImages(model, low, high)
        return BlackBox(wrapped, softmax=True), list(names) if names is not None else None
    return BlackBox(model), target_names


def _parse_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in str(text).split(","))
    except ValueError as err:
        raise ConfigError(f"--model-range must be low,high (e.g. -1,1), got {text!r}") from err
    if not low < high:
        raise ConfigError(f"--model-range must have low < high, got {text!r}")
    return low, high


class ChannelsLastImages(torch.nn.Module):
    """Feed the explainer's (n, H, W, 3) images in [0, 1] to a torch image classifier that
    reads (n, 3, H, W) in [low, high]."""

    def __init__(self, module: torch.nn.Module, low: float, high: float) -> None:
        super().__init__()
        self.module = module
        self.low, self.high = low, high

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of ``images`` (n, H, W, 3)."""
        scaled = images.permute(0, 3, 1, 2) * (self.high - self.low) + self.low
        output: torch.Tensor = self.module(scaled.contiguous())
        return output


# ---- text ------------------------------------------------------------------------------------

_POSITIVE = ("good", "great", "excellent", "lovely", "moving", "superb", "fun", "charming")
_NEGATIVE = ("bad", "awful", "poor", "boring", "dull", "weak", "clumsy", "tedious")
_NEUTRAL = (
    "the movie was",
    "the plot felt",
    "its actors were",
    "the music seemed",
    "this story is",
    "the ending was",
    "the camera work looked",
    "the dialogue sounded",
)


def reviews_corpus(n_documents: int = 600, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """A small procedural corpus of film reviews, label 1 positive and 0 negative.

    Each review has three clauses; the label is the majority sentiment of their adjectives, so
    the words that decide it are known.
    """
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n_documents):
        signs = rng.integers(0, 2, 3)
        clauses = [
            f"{rng.choice(_NEUTRAL)} {rng.choice(_POSITIVE if sign else _NEGATIVE)}"
            for sign in signs
        ]
        texts.append(", ".join(clauses) + ".")
        labels.append(int(signs.sum() >= 2))
    return texts, np.asarray(labels)


def _read_texts(path: Path) -> tuple[list[str], np.ndarray]:
    if not path.is_file():
        raise InputError(f"--data {str(path)!r} is neither 'reviews' nor an existing text file")
    texts, labels = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        label, tab, text = line.partition("\t")
        if not tab or not label.strip().lstrip("-").isdigit():
            raise InputError(f"{path}:{number}: expected 'label<TAB>text' with an integer label")
        texts.append(text)
        labels.append(int(label))
    if not texts:
        raise InputError(f"{path} holds no documents")
    return texts, np.asarray(labels)


def _text(args: argparse.Namespace) -> Task:
    source = args.data or _DEFAULT_DATA["text"]
    if source == "reviews":
        texts, labels = reviews_corpus(seed=args.seed)
        class_names: list[str] | None = ["negative", "positive"]
    else:
        texts, labels = _read_texts(Path(source))
        class_names = None
    train, test = split_rows(len(texts), labels, args.test_size, args.seed)
    model_spec = args.model or _DEFAULT_MODEL["text"]
    builtins = {"bag_of_words": lambda: _bag_of_words(args.seed)}
    model = fit_if_needed(
        resolve_model(model_spec, builtins, args.device),
        [texts[i] for i in train],
        labels[train],
    )
    black_box = BlackBox(model)
    held_out = [texts[i] for i in test]
    explainer = LimeTextExplainer(
        class_names=class_names,
        feature_selection=args.feature_selection,
        random_state=args.seed,
        sampler=args.sampler,
    )
    return Task(
        explainer=explainer,
        black_box=black_box,
        instances=held_out,
        truth=[_name(class_names, label) for label in labels[test]],
        data_name=source if source == "reviews" else Path(source).name,
        model_name=model_spec,
        accuracy=_held_out_accuracy(black_box, held_out, labels[test]),
    )


def _bag_of_words(seed: int) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=2000, random_state=seed))


_BUILDERS: dict[str, Callable[[argparse.Namespace], Task]] = {
    "tabular": _tabular,
    "image": _image,
    "text": _text,
}
