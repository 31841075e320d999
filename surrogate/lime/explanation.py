"""What a LIME explainer returns: the local surrogate of each explained label, and its views.

An :class:`Explanation` prints itself as a list (``as_list``), a map (``as_map``), a bar chart
(``as_pyplot_figure``), strict JSON that reads back to an equal object (``to_json`` /
``from_json``) and a self-contained HTML page (``to_html``, or ``lime``'s ``as_html``,
``show_in_notebook`` and ``save_to_file``: no script is fetched from the network). Image
explanations (:class:`ImageExplanation`) add the superpixel mask and an overlay picture.

The attributes are ``lime``'s, with ``lime``'s types: ``intercept`` and ``local_exp`` are dicts
keyed by label, ``score`` (weighted R^2 of the surrogate) is a float and ``local_pred`` (the
surrogate's prediction for the instance) a one-element array, both of the last label explained.
``scores`` and ``local_preds`` hold them for every label. A regression explanation has ``lime``'s
labels: 1 for the value and 0 for its negation (``as_list`` reads label 1), and
``predicted_value``, ``min_value`` and ``max_value`` (the extremes over the neighbours).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from training.errors import InputError
from training.runs import atomic_write_text, dumps_json, to_jsonable

FORMAT = "seethrough.lime.explanation/1"


class Explanation:
    """The LIME explanation of one instance.

    Parameters
    ----------
    kind:
        ``"tabular"``, ``"image"`` or ``"text"``.
    mode:
        ``"classification"`` or ``"regression"``.
    feature_names:
        The name of each interpretable feature, indexed by feature id (for tables the
        discretised or ``name=value`` form, for text the word, for images ``"superpixel i"``).
    class_names:
        One name per column of the black box's output.
    predict_proba:
        The black box's scores of the instance itself.
    local_exp:
        ``{label: [(feature_id, weight), ...]}`` ordered by decreasing absolute weight.
    intercept, scores, local_preds:
        ``{label: float}``; ``score`` and ``local_pred`` are those of the last label.
    top_labels:
        The labels with the highest scores, best first, when they were asked for.
    feature_values:
        For tables: the instance's values as shown to people.
    instance:
        What the kind needs to show the instance again (text and its tokens, superpixels).
    params:
        The options that produced the explanation (num_samples, kernel_width, random_state...).
    predicted_value, min_value, max_value:
        Regression only: the black box's value of the instance and the extremes over its
        neighbours.
    """

    kind = "tabular"

    def __init__(
        self,
        *,
        mode: str,
        feature_names: list[str],
        class_names: list[str],
        predict_proba: np.ndarray,
        local_exp: dict[int, list[tuple[int, float]]],
        intercept: dict[int, float],
        scores: dict[int, float],
        local_preds: dict[int, float],
        top_labels: list[int] | None = None,
        feature_values: list[str] | None = None,
        instance: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        kind: str | None = None,
        predicted_value: float | None = None,
        min_value: float | None = None,
        max_value: float | None = None,
    ) -> None:
        if kind is not None:
            self.kind = kind
        self.mode = mode
        self.feature_names = list(feature_names)
        self.class_names = list(class_names)
        self.predict_proba = np.asarray(predict_proba, dtype=np.float64)
        self.local_exp = local_exp
        self.intercept = intercept
        self.scores = scores
        self.local_preds = local_preds
        last = list(scores)[-1] if scores else None
        # lime's types and meaning: the last label's fit, a float and a one-element array.
        self.score = None if last is None else float(scores[last])
        self.local_pred = None if last is None else np.array([local_preds[last]])
        if mode == "regression":
            self.predicted_value = predicted_value
            self.min_value = 0.0 if min_value is None else min_value
            self.max_value = 1.0 if max_value is None else max_value
            self.dummy_label = 1
        self.top_labels = top_labels
        self.feature_values = feature_values
        self.instance = instance or {}
        self.params = params or {}

    def __repr__(self) -> str:
        labels = ", ".join(str(label) for label in self.available_labels())
        return f"{type(self).__name__}({self.kind}, labels=[{labels}])"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Explanation):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def available_labels(self) -> list[int]:
        """The labels explained: the top labels best first, else in the order explained
        (for regression, label 1: the value)."""
        if self.mode == "regression":
            return [self._label(1)]
        return list(self.top_labels) if self.top_labels else list(self.local_exp)

    def _label(self, label: int) -> int:
        if self.mode == "regression":  # one output; lime ignores the label here too
            return 1 if 1 in self.local_exp else next(iter(self.local_exp))
        if label not in self.local_exp:
            raise KeyError(
                f"label {label} was not explained; explained labels: {self.available_labels()}"
            )
        return label

    def as_list(self, label: int = 1, **kwargs: Any) -> list[tuple[str, float]]:
        """``[(feature name, weight), ...]`` of ``label``, by decreasing absolute weight.

        Text takes ``positions=True`` as ``lime`` does: names become ``word_3-17``, the word
        and the character offsets where it occurs.
        """
        pairs = self.local_exp[self._label(label)]
        names = self._feature_labels(**kwargs)
        return [(names[f], float(w)) for f, w in pairs]

    def _feature_labels(self, **kwargs: Any) -> list[str]:
        """The name of each feature as ``as_list`` shows it (kinds add their own options)."""
        if kwargs.pop("positions", False) and self.kind == "text":
            starts = np.cumsum([0] + [len(t) for t in self.instance["tokens"]])
            words = np.asarray(self.instance["token_words"], dtype=np.intp)
            return [
                f"{name}_{'-'.join(str(int(p)) for p in starts[:-1][words == f])}"
                for f, name in enumerate(self.feature_names)
            ]
        if kwargs and self.kind == "tabular":
            raise TypeError(f"as_list() got unexpected keyword arguments {sorted(kwargs)}")
        return self.feature_names

    def as_map(self) -> dict[int, list[tuple[int, float]]]:
        """``{label: [(feature_id, weight), ...]}`` for every explained label."""
        return {label: list(pairs) for label, pairs in self.local_exp.items()}

    def feature_order(self, label: int = 1) -> list[int]:
        """Feature ids from the most to the least supportive of ``label`` (by signed weight)."""
        pairs = self.local_exp[self._label(label)]
        return [f for f, _ in sorted(pairs, key=lambda pair: -pair[1])]

    def as_pyplot_figure(
        self, label: int = 1, *, max_features: int | None = None, **kwargs: Any
    ) -> Any:
        """A horizontal bar chart of ``label``'s weights (green supports it, red opposes);
        ``kwargs`` go to :meth:`as_list` (``positions=True`` for text), as in ``lime``."""
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        pairs = self.as_list(label, **kwargs)[:max_features]
        names = [name for name, _ in reversed(pairs)]
        values = [weight for _, weight in reversed(pairs)]
        figure, axes = plt.subplots(figsize=(6.4, 0.6 + 0.32 * max(len(pairs), 1)))
        colors = ["#2f8f4e" if v > 0 else "#c8413b" for v in values]
        axes.barh(np.arange(len(values)), values, color=colors)
        axes.set_yticks(np.arange(len(values)), names)
        axes.axvline(0.0, color="#1d2330", linewidth=0.8)
        axes.xaxis.set_major_locator(MaxNLocator(5))
        axes.set_xlabel("weight in the local linear surrogate")
        axes.set_title(f"Local explanation for {self.label_title(label)}")
        figure.tight_layout()
        return figure

    def label_title(self, label: int) -> str:
        """What ``label``'s score is, for people: ``"class benign"``, ``"the predicted value"``."""
        if self.mode == "regression":
            return "the predicted value"
        name = self.class_names[label] if label < len(self.class_names) else str(label)
        return f"class {name}"

    # ---- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready dict of everything the explanation holds."""
        labels = {
            str(label): {
                "features": [f for f, _ in pairs],
                "weights": [w for _, w in pairs],
                "intercept": self.intercept[label],
                "score": self.scores[label],
                "local_pred": self.local_preds[label],
            }
            for label, pairs in self.local_exp.items()
        }
        result: dict[str, Any] = {
            "format": FORMAT,
            "kind": self.kind,
            "mode": self.mode,
            "class_names": self.class_names,
            "feature_names": self.feature_names,
            "feature_values": self.feature_values,
            "predict_proba": self.predict_proba,
            "top_labels": self.top_labels,
            "labels": labels,
            "instance": self.instance,
            "params": self.params,
        }
        if self.mode == "regression":
            result["predicted_value"] = self.predicted_value
            result["min_value"] = self.min_value
            result["max_value"] = self.max_value
        return dict(to_jsonable(result))

    def to_json(self) -> str:
        """Strict JSON text; :meth:`from_json` reads it back to an equal explanation."""
        return dumps_json(self.to_dict())

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Explanation:
        """Rebuild an explanation (an :class:`ImageExplanation` for images) from ``to_dict``."""
        if record.get("format") != FORMAT:
            raise InputError(f"not a seethrough LIME explanation (format {record.get('format')!r})")
        labels = {int(label): entry for label, entry in record["labels"].items()}
        target = ImageExplanation if record["kind"] == "image" else Explanation
        return target(
            kind=record["kind"],
            mode=record["mode"],
            feature_names=record["feature_names"],
            class_names=record["class_names"],
            predict_proba=np.asarray(record["predict_proba"], dtype=np.float64),
            local_exp={
                label: [
                    (int(f), float(w))
                    for f, w in zip(entry["features"], entry["weights"], strict=True)
                ]
                for label, entry in labels.items()
            },
            intercept={label: float(entry["intercept"]) for label, entry in labels.items()},
            scores={label: float(entry["score"]) for label, entry in labels.items()},
            local_preds={label: float(entry["local_pred"]) for label, entry in labels.items()},
            top_labels=record["top_labels"],
            feature_values=record["feature_values"],
            instance=dict(record["instance"]),
            params=dict(record["params"]),
            predicted_value=record.get("predicted_value"),
            min_value=record.get("min_value"),
            max_value=record.get("max_value"),
        )

    @classmethod
    def from_json(cls, text: str) -> Explanation:
        """Read an explanation written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    # ---- HTML ----------------------------------------------------------------------------

    def bar_rows(self, label: int = 1) -> list[dict[str, Any]]:
        """Rows of a diverging bar chart of ``label``: name, value, width in % of the largest."""
        pairs = self.as_list(label)
        largest = max((abs(w) for _, w in pairs), default=0.0) or 1.0
        return [
            {"name": name, "weight": w, "width": round(100.0 * abs(w) / largest, 2)}
            for name, w in pairs
        ]

    def html_context(
        self,
        labels: Iterable[int] | None = None,
        *,
        predict_proba: bool = True,
        show_predicted_value: bool = True,
        show_table: bool = True,
        show_all: bool = False,
        text: bool = True,
    ) -> dict[str, Any]:
        """What the ``lime_explanation`` block needs to show this explanation; the flags are
        ``lime``'s ``as_html`` options (class scores, predicted value, the instance's table,
        the highlighted text)."""
        chosen = list(labels) if labels is not None else self.available_labels()
        if self.mode == "regression":
            chosen = [self._label(1)]
        return {
            "show_scores": predict_proba,
            "show_predicted_value": show_predicted_value,
            "table": self._value_table(chosen[0], show_all) if show_table and chosen else None,
            "explanation": self,
            "sections": [
                {
                    "label": label,
                    "title": self.label_title(label),
                    "rows": self.bar_rows(label),
                    "intercept": self.intercept[self._label(label)],
                    "score": self.scores[self._label(label)],
                    "local_pred": self.local_preds[self._label(label)],
                    "tokens": self._highlighted_tokens(label) if text else None,
                }
                for label in chosen
            ],
            "scores": self._best_scores(5),
            "picture": self._picture_data_uri(chosen[0]) if chosen else None,
        }

    def _best_scores(self, count: int) -> list[dict[str, Any]]:
        """The ``count`` best scored outputs of the black box, best first, with their names."""
        order = np.argsort(-self.predict_proba, kind="stable")[:count]
        names = self.class_names
        return [
            {"name": names[k] if k < len(names) else str(k), "value": float(self.predict_proba[k])}
            for k in order
        ]

    def _value_table(self, label: int, show_all: bool) -> list[dict[str, Any]] | None:
        """For tables: each explained feature (every feature with ``show_all``) as ``as_list``
        names it, the instance's own value of its column, and its weight."""
        if self.kind != "tabular" or self.feature_values is None:
            return None
        raw = self.instance.get("values") or self.feature_values
        weights = dict(self.local_exp[self._label(label)])
        shown = range(len(self.feature_names)) if show_all else list(weights)
        return [
            {
                "name": self.feature_names[f],
                "value": "missing"
                if raw[f] is None
                else f"{raw[f]:.2f}"
                if isinstance(raw[f], float)
                else str(raw[f]),
                "weight": weights.get(f, 0.0),
            }
            for f in shown
        ]

    def _highlighted_tokens(self, label: int) -> list[dict[str, Any]] | None:
        """For text: the document's tokens, each with its word's weight (None when unweighted)."""
        if self.kind != "text":
            return None
        weights = dict(self.local_exp[self._label(label)])
        largest = max((abs(w) for w in weights.values()), default=0.0) or 1.0
        tokens = []
        for token, word in zip(self.instance["tokens"], self.instance["token_words"], strict=True):
            weight = weights.get(word) if word >= 0 else None
            strength = 0.0 if weight is None else round(abs(weight) / largest, 3)
            tokens.append({"text": token, "weight": weight, "strength": strength})
        return tokens

    def _picture_data_uri(self, label: int) -> str | None:
        return None

    def to_html(
        self,
        labels: Iterable[int] | None = None,
        *,
        title: str | None = None,
        predict_proba: bool = True,
        show_predicted_value: bool = True,
        show_table: bool = True,
        show_all: bool = False,
        text: bool = True,
    ) -> str:
        """A self-contained HTML page (no scripts or files from the network) of the explanation;
        the flags are those of :meth:`as_html`."""
        from training.pages import render_page

        return render_page(
            "lime_explanation.html",
            packages=("surrogate",),
            title=title or f"LIME explanation ({self.kind})",
            **self.html_context(
                labels,
                predict_proba=predict_proba,
                show_predicted_value=show_predicted_value,
                show_table=show_table,
                show_all=show_all,
                text=text,
            ),
        )

    def as_html(
        self,
        labels: Iterable[int] | None = None,
        predict_proba: bool = True,
        show_predicted_value: bool = True,
        **kwargs: Any,
    ) -> str:
        """``lime``'s ``as_html``: the page of :meth:`to_html`, self-contained.

        ``labels`` are shown as bar charts (all explained by default), ``predict_proba`` adds
        the class scores, ``show_predicted_value`` the value of a regression; ``show_table``
        and ``show_all`` (tables) list the instance's values of the explained or all features,
        ``text`` (text) shows the document with its words highlighted (``opacity`` is
        accepted: the highlight always scales with the weight).
        """
        unknown = set(kwargs) - {"show_table", "show_all", "text", "opacity"}
        if unknown:
            raise TypeError(f"as_html() got unexpected keyword arguments {sorted(unknown)}")
        return self.to_html(
            labels,
            predict_proba=predict_proba,
            show_predicted_value=show_predicted_value,
            show_table=bool(kwargs.get("show_table", True)),
            show_all=bool(kwargs.get("show_all", False)),
            text=bool(kwargs.get("text", True)),
        )

    def show_in_notebook(
        self,
        labels: Iterable[int] | None = None,
        predict_proba: bool = True,
        show_predicted_value: bool = True,
        **kwargs: Any,
    ) -> None:
        """Show :meth:`as_html` in a Jupyter notebook (needs IPython, as ``lime`` does)."""
        from IPython.display import HTML, display

        display(HTML(self.as_html(labels, predict_proba, show_predicted_value, **kwargs)))

    def save_to_file(
        self,
        file_path: str | Path,
        labels: Iterable[int] | None = None,
        predict_proba: bool = True,
        show_predicted_value: bool = True,
        **kwargs: Any,
    ) -> Path:
        """Write :meth:`as_html` to ``file_path`` (atomically); returns the path."""
        html = self.as_html(labels, predict_proba, show_predicted_value, **kwargs)
        return atomic_write_text(file_path, html)


class ImageExplanation(Explanation):
    """An image explanation: superpixels (``segments``) and, when known, the image itself."""

    kind = "image"

    def __init__(self, *, image: np.ndarray | None = None, **fields: Any) -> None:
        super().__init__(**fields)
        self.image = image
        self.segments = np.asarray(self.instance["segments"], dtype=np.intp)

    def get_image_and_mask(
        self,
        label: int,
        positive_only: bool = True,
        negative_only: bool = False,
        hide_rest: bool = False,
        num_features: int = 5,
        min_weight: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(image, mask)`` as ``lime``'s ``get_image_and_mask`` makes them.

        The mask marks the ``num_features`` strongest superpixels (1 for support, -1 for
        opposition when both signs are shown); ``hide_rest`` blacks out the others.
        """
        if positive_only and negative_only:
            raise InputError("positive_only and negative_only cannot both be true")
        image = self._require_image()
        pairs = self.local_exp[self._label(label)]
        mask = np.zeros(self.segments.shape, dtype=self.segments.dtype)
        picture = np.zeros(image.shape, dtype=image.dtype) if hide_rest else image.copy()
        if positive_only or negative_only:
            sign = 1.0 if positive_only else -1.0
            kept = [f for f, w in pairs if sign * w > 0 and abs(w) > min_weight][:num_features]
            inside = np.isin(self.segments, kept)
            picture[inside] = image[inside]
            mask[inside] = 1
            return picture, mask
        peak = image.max()
        for feature, weight in pairs[:num_features]:
            if abs(weight) < min_weight:
                continue
            inside = self.segments == feature
            mask[inside] = -1 if weight < 0 else 1
            picture[inside] = image[inside]
            picture[inside, 0 if weight < 0 else 1] = peak
        return picture, mask

    def superpixel_mask(self, label: int = 1, *, num_features: int = 5) -> np.ndarray:
        """Boolean (H, W) mask of the ``num_features`` superpixels that most support ``label``."""
        chosen = self.feature_order(label)[:num_features]
        return np.isin(self.segments, chosen)

    def overlay(self, label: int = 1, *, num_features: int = 5, min_size: int = 256) -> np.ndarray:
        """A uint8 picture of the image with thin superpixel borders (yellow), the
        ``num_features`` most supportive superpixels of ``label`` tinted green and the most
        opposing ones red; small images are enlarged (nearest neighbour) to ``min_size``."""
        from skimage.segmentation import find_boundaries

        from training.images import overlay_mask, to_uint8_images

        picture = to_uint8_images(self._require_image(), value_range=self._value_range())[0]
        scale = max(1, -(-min_size // max(picture.shape[:2])))
        picture = picture.repeat(scale, axis=0).repeat(scale, axis=1)
        segments = self.segments.repeat(scale, axis=0).repeat(scale, axis=1)
        weights = dict(self.local_exp[self._label(label)])
        order = self.feature_order(label)
        support = [f for f in order[:num_features] if weights[f] > 0]
        oppose = [f for f in reversed(order[-num_features:]) if weights[f] < 0]
        tinted = overlay_mask(picture, np.isin(segments, support), color=(40, 170, 70))
        tinted = overlay_mask(tinted, np.isin(segments, oppose), color=(210, 50, 45))
        borders = find_boundaries(segments, mode="inner")
        return overlay_mask(tinted, borders, color=(255, 220, 40), alpha=0.8)[0]

    def _value_range(self) -> tuple[float, float] | None:
        image = self._require_image()
        if image.dtype == np.uint8:
            return None
        return (0.0, 255.0) if float(image.max()) > 1.0 else (float(min(image.min(), 0)), 1.0)

    def _require_image(self) -> np.ndarray:
        if self.image is None:
            raise InputError(
                "this image explanation holds no image (it was read from JSON); "
                "set explanation.image to the image that was explained"
            )
        image = np.asarray(self.image)
        return image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)

    def _picture_data_uri(self, label: int) -> str | None:
        if self.image is None:
            return None
        from training.images import png_bytes

        picture = self.overlay(label)
        return "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode("ascii")
