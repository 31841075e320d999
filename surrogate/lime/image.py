"""LIME for images: superpixels switched on and off, pictures made a batch at a time.

The image is cut into superpixels (scikit-image's quickshift with ``lime``'s settings by
default; SLIC or Felzenszwalb on request, or any function of the image). A neighbour is an
on/off vector over the superpixels, each on with probability 1/2; "off" superpixels take the
hide colour, or by default the superpixel's mean colour. Neighbours are weighted by the
exponential kernel (width 0.25) of their cosine distance to the all-on vector.

Unlike ``lime``, no picture is built pixel by pixel in Python: a batch of masks becomes a batch
of pictures in one ``numpy.where``, and the batch is as large as the memory budget allows
(``lime`` calls the model on 10 pictures at a time).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import numpy as np

from surrogate.lime._base import LimeExplainer, Neighbourhood
from surrogate.lime._random import RandomState, array_key, instance_rng, uniforms
from surrogate.lime.explanation import Explanation, ImageExplanation
from training.errors import InputError

SEGMENTATIONS: dict[str, dict[str, Any]] = {
    # lime's own default.
    "quickshift": {"kernel_size": 4, "max_dist": 200, "ratio": 0.2},
    "slic": {"n_segments": 50, "compactness": 10.0, "start_label": 0},
    "felzenszwalb": {"scale": 100.0, "sigma": 0.5, "min_size": 50},
}
# quickshift's tie-breaking seed: scikit-image's default, which lime 0.2.0.1 ends up using too
# (its wrapper drops its own seed), so superpixels depend on the image alone.
_QUICKSHIFT_SEED = 42
# Pictures per black-box call are capped so that one batch of pictures stays near this size.
_BATCH_BYTES = 1 << 25


class LimeImageExplainer(LimeExplainer):
    """Explains predictions on images (``lime.lime_image.LimeImageExplainer``'s interface).

    Parameters
    ----------
    kernel_width:
        Width of the exponential kernel on the cosine distance (0.25 as in ``lime``).
    kernel:
        ``kernel(distances, kernel_width) -> weights``; LIME's exponential kernel by default.
    verbose:
        Print each fit's intercept, local prediction and the classifier's own score.
    feature_selection:
        How superpixels are chosen (see :func:`surrogate.lime.fit_surrogate`).
    random_state:
        An integer makes every explanation a function of the image and the options only (our
        own stream: the same seed gives other on/off patterns than ``lime``'s); a NumPy
        ``Generator`` or ``RandomState`` is drawn from in turn.
    sampler:
        ``"qmc"`` (scrambled Sobol on/off patterns) or ``"random"`` (independent coin flips).
    class_names:
        Names of the classifier's output columns.
    """

    kind = "image"

    def __init__(
        self,
        kernel_width: float = 0.25,
        kernel: Callable[[np.ndarray, float], np.ndarray] | None = None,
        verbose: bool = False,
        feature_selection: str = "auto",
        random_state: RandomState = None,
        sampler: str = "qmc",
        class_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            kernel_width=kernel_width,
            kernel=kernel,
            feature_selection=feature_selection,
            random_state=random_state,
            sampler=sampler,
            class_names=class_names,
            verbose=verbose,
        )

    def explain_instance(
        self,
        image: Any,
        classifier_fn: Any,
        labels: Sequence[int] | None = (1,),
        hide_color: float | Sequence[float] | None = None,
        top_labels: int | None = 5,
        num_features: int = 100000,
        num_samples: int = 1000,
        batch_size: int | None = None,
        segmentation_fn: str | Callable[[np.ndarray], np.ndarray] | None = None,
        distance_metric: str = "cosine",
        model_regressor: Any = None,
        random_seed: int | None = None,
    ) -> ImageExplanation:
        """Explain the classifier's scores of one image (H, W, 3), or (H, W) grey.

        ``classifier_fn`` maps a batch (n, H, W, 3) to (n, k) scores. ``segmentation_fn`` is
        ``"quickshift"`` (default), ``"slic"``, ``"felzenszwalb"`` or a function of the image
        returning an (H, W) integer label map; ``random_seed`` seeds quickshift's tie-breaking
        (42, scikit-image's default, when not given). ``model_regressor`` replaces the weighted
        ridge, as in ``lime``. ``batch_size=None`` (the default) sends about 32 MB of pictures per
        call (``lime`` sends 10); pass ``batch_size=10`` for ``lime``'s calls.
        """
        array = np.asarray(image)
        if array.ndim not in (2, 3):
            raise InputError(f"image must be (H, W, 3) or (H, W), got shape {array.shape}")
        explanation = self.explain_many(
            array[None],
            classifier_fn,
            labels=labels,
            hide_color=hide_color,
            top_labels=top_labels,
            num_features=num_features,
            num_samples=num_samples,
            batch_size=batch_size,
            segmentation_fn=segmentation_fn,
            distance_metric=distance_metric,
            model_regressor=model_regressor,
            random_seed=random_seed,
        )[0]
        return cast(ImageExplanation, explanation)

    def explain_many(
        self,
        images: Any,
        classifier_fn: Any,
        labels: Sequence[int] | None = (1,),
        hide_color: float | Sequence[float] | None = None,
        top_labels: int | None = 5,
        num_features: int = 100000,
        num_samples: int = 1000,
        batch_size: int | None = None,
        segmentation_fn: str | Callable[[np.ndarray], np.ndarray] | None = None,
        distance_metric: str = "cosine",
        model_regressor: Any = None,
        random_seed: int | None = None,
    ) -> list[Explanation]:
        """Explain each of ``images`` (n, H, W, 3) or (n, H, W), pooling the classifier calls.

        Image i's explanation equals ``explain_instance(images[i], ...)``.
        """
        return self._explain(
            images,
            classifier_fn,
            labels=labels,
            top_labels=top_labels,
            num_features=num_features,
            num_samples=num_samples,
            batch_size=batch_size,
            options={
                "hide_color": hide_color,
                "segmentation_fn": segmentation_fn,
                "distance_metric": distance_metric,
                "random_seed": random_seed,
            },
            model_regressor=model_regressor,
        )

    def data_labels(
        self,
        image: np.ndarray,
        fudged_image: np.ndarray,
        segments: np.ndarray,
        classifier_fn: Any,
        num_samples: int,
        batch_size: int = 10,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``lime``'s ``data_labels``: ``(data, labels)``, ``num_samples`` on/off rows over the
        superpixels ``segments`` (0..K-1; row 0 all on) and the classifier's scores of the
        pictures they make, "off" superpixels taken from ``fudged_image``; ``batch_size``
        pictures per call."""
        image = np.asarray(image)
        segments = np.asarray(segments, dtype=np.intp)
        n_segments = int(np.unique(segments).shape[0])
        rng = instance_rng(self.random_state, self._stream_key + array_key(image))
        data = np.ones((num_samples, n_segments), dtype=np.int64)
        data[1:] = uniforms(rng, num_samples - 1, n_segments, self.sampler) < 0.5
        compose = _Composer(image, segments, np.asarray(fudged_image, dtype=image.dtype))
        black_box = self.as_black_box(classifier_fn, batch_size)
        labels = [
            black_box(compose(data[start : start + batch_size].astype(bool)))
            for start in range(0, num_samples, batch_size)
        ]
        return data, np.concatenate(labels, axis=0)

    def inputs_without(
        self, instance: Any, explanation: Explanation, removed: np.ndarray
    ) -> np.ndarray:
        """Pictures of ``instance`` whose superpixels marked in ``removed`` (m, d) are hidden
        as they were while explaining (hide colour or superpixel mean)."""
        image = self._check_instances(np.asarray(instance)[None])[0]
        if not isinstance(explanation, ImageExplanation):
            raise InputError("inputs_without needs the image's ImageExplanation")
        hidden = hidden_image(image, explanation.segments, explanation.params.get("hide_color"))
        return _Composer(image, explanation.segments, hidden)(~np.asarray(removed, dtype=bool))

    # ---- the adapter ----------------------------------------------------------------------

    def _check_instances(self, instances: Any) -> np.ndarray:
        images = np.asarray(instances)
        if images.ndim == 3:  # grey images become RGB, as lime's gray2rgb does
            images = np.repeat(images[..., None], 3, axis=-1)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise InputError(
                f"images must be (n, H, W, 3) or (n, H, W) grey, got shape {images.shape}"
            )
        if images.shape[0] == 0 or images.shape[1] < 2 or images.shape[2] < 2:
            raise InputError(f"images are empty or too small: shape {images.shape}")
        if images.dtype.kind not in "biuf":
            raise InputError(f"images must be numeric, got dtype {images.dtype}")
        if images.dtype.kind == "f" and not np.isfinite(images).all():
            bad = np.flatnonzero(~np.isfinite(images).reshape(len(images), -1).all(axis=1))
            raise InputError(
                f"images hold NaN or infinite values in {bad.size} image(s) (first: {bad[0]})"
            )
        return images

    def _instance_key(self, instance: np.ndarray) -> bytes:
        return array_key(instance)

    def _default_batch(self, instances: Sequence[Any]) -> int:
        return int(np.clip(_BATCH_BYTES // max(np.asarray(instances[0]).nbytes, 1), 1, 4096))

    def _neighbourhood(
        self,
        instance: np.ndarray,
        num_samples: int,
        rng: np.random.Generator,
        options: Mapping[str, Any],
    ) -> Neighbourhood:
        image = instance
        hide_color = options["hide_color"]
        distance_metric = options["distance_metric"]
        seed = _QUICKSHIFT_SEED if options["random_seed"] is None else options["random_seed"]
        segments, segmentation = segment(image, options["segmentation_fn"], random_seed=seed)
        n_segments = int(segments.max()) + 1
        if n_segments < 2:
            warnings.warn(
                f"the segmentation {segmentation['name']!r} found one superpixel in a "
                f"{image.shape[0]}x{image.shape[1]} image, so the explanation has a single "
                "feature: use another segmentation_fn or finer settings (e.g. quickshift, or "
                "SLIC with more n_segments)",
                stacklevel=4,
            )
        hidden = hidden_image(image, segments, hide_color)
        data = np.ones((num_samples, n_segments))
        data[1:] = uniforms(rng, num_samples - 1, n_segments, self.sampler) < 0.5
        if distance_metric == "cosine":
            # Cosine distance of a 0/1 row with k ones to the all-ones row: 1 - sqrt(k / d).
            distances = 1.0 - np.sqrt(data.sum(axis=1) / n_segments)
        else:
            from sklearn.metrics import pairwise_distances

            distances = pairwise_distances(data, data[:1], metric=distance_metric).ravel()

        compose = _Composer(image, segments, hidden)
        switches = data.astype(bool)

        def inputs(start: int, stop: int) -> np.ndarray:
            return compose(switches[start:stop])

        return Neighbourhood(
            data=data,
            distances=distances,
            inputs=inputs,
            fields={
                "feature_names": [f"superpixel {i}" for i in range(n_segments)],
                "instance": {"segments": segments, "shape": list(image.shape)},
                "image": image,
            },
            params={
                "segmentation": segmentation,
                "hide_color": hide_color,
                "distance_metric": distance_metric,
            },
            explanation_type=ImageExplanation,
        )


def segment(
    image: np.ndarray,
    segmentation_fn: str | Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    random_seed: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Superpixels of ``image`` as labels 0..K-1, and a record of how they were made."""
    if segmentation_fn is None:
        segmentation_fn = "quickshift"
    if isinstance(segmentation_fn, str):
        if segmentation_fn not in SEGMENTATIONS:
            raise InputError(
                f"segmentation {segmentation_fn!r} is not one of {', '.join(SEGMENTATIONS)} "
                "(or pass a function of the image)"
            )
        from skimage import segmentation as algorithms

        options = dict(SEGMENTATIONS[segmentation_fn])
        if segmentation_fn == "quickshift":
            options["rng"] = random_seed
        labels = getattr(algorithms, segmentation_fn)(image, **options)
        record: dict[str, Any] = {"name": segmentation_fn, **options}
    else:
        labels = segmentation_fn(image)
        record = {"name": getattr(segmentation_fn, "__name__", type(segmentation_fn).__name__)}
    labels = np.asarray(labels)
    if labels.shape != image.shape[:2]:
        raise InputError(
            f"segmentation returned shape {labels.shape} for an image of shape {image.shape[:2]}"
        )
    # Number superpixels 0..K-1 whatever labels the algorithm used (SLIC may start at 1).
    _, dense = np.unique(labels, return_inverse=True)
    return dense.reshape(labels.shape).astype(np.intp), record


def hidden_image(
    image: np.ndarray, segments: np.ndarray, hide_color: float | Sequence[float] | None
) -> np.ndarray:
    """What "off" superpixels show: ``hide_color``, or each superpixel's mean colour.

    The result has the image's dtype (means are truncated into integer images, as in ``lime``).
    """
    if hide_color is not None:
        return np.broadcast_to(np.asarray(hide_color).astype(image.dtype), image.shape)
    flat = segments.ravel()
    counts = np.bincount(flat)
    means = np.stack(
        [
            np.bincount(flat, weights=image[..., c].ravel().astype(np.float64)) / counts
            for c in range(image.shape[-1])
        ],
        axis=1,
    )
    return means[segments].astype(image.dtype)


class _Composer:
    """Pictures from on/off switches over superpixels: shown ones from the image, others hidden.

    The switches are gathered at one superpixel id per pixel *and channel*, so that
    ``numpy.where`` runs over contiguous memory (with a broadcast channel axis it is 3x slower),
    into a mask buffer kept from batch to batch (allocating it afresh costs page faults).
    """

    def __init__(self, image: np.ndarray, segments: np.ndarray, hidden: np.ndarray) -> None:
        self.image = image
        self.hidden = hidden
        self.channel_segments = np.repeat(segments[..., None], image.shape[-1], axis=-1)
        self._mask = np.empty((0, *image.shape), dtype=bool)

    def __call__(self, switches: np.ndarray) -> np.ndarray:
        if len(self._mask) < len(switches):
            self._mask = np.empty((len(switches), *self.image.shape), dtype=bool)
        mask = self._mask[: len(switches)]
        np.take(switches, self.channel_segments, axis=1, out=mask)
        return np.where(mask, self.image, self.hidden)
