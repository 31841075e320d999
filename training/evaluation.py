"""How good the trained models are, measured the same way by callbacks, export and benchmarks.

- Segmenter: a confusion matrix over all pixels of held-out scenes, per-concept IoU and mIoU.
- Classifier: accuracy on held-out scenes.
- Generator: its images are labelled by the segmenter and their concept statistics compared
  with those of real scenes labelled by the same segmenter (so the segmenter's own errors
  cancel): each concept's mean pixel share, how often it is present, and the Fréchet distance
  between the two distributions of per-image concept shares (a "Fréchet segmentation distance",
  Bau et al. 2019, here on shares in percent).
- Generator, as a person sees it: :class:`ImageQuality` describes every image by the shipped
  segmenter's deepest features (its bottleneck, 8 x 8 at 64 px, pooled to the mean and standard
  deviation of each channel over positions) and compares generated with held-out real scenes by
  the Fréchet distance, the kernel distance (KID, Bińkowski et al. 2018: unbiased MMD^2 with the
  cubic polynomial kernel, mean and standard error over disjoint subsets) and improved precision
  and recall (Kynkäänniemi et al. 2019: k-nearest-neighbour balls around each set). Beside every
  figure it reports the same figure between two disjoint sets of real scenes, the floor a
  perfect generator would reach at that sample count.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from scipy import linalg
from torch.nn import functional as F

from training.devices import module_device
from training.scenes import CONCEPTS, Scenes, concept_shares

PRESENCE_SHARE = 0.005
"""A concept is *present* in an image when it covers at least this share of its pixels
(20 pixels at 64 x 64: about half a street lamp)."""
REL_SHARE_TARGET = 0.30
LAMP_PRESENCE_TARGET = 0.70


def confusion_matrix(predicted: torch.Tensor, target: torch.Tensor, classes: int) -> torch.Tensor:
    """int64 (classes, classes) counts; rows are true labels, columns predictions."""
    index = target.reshape(-1).long() * classes + predicted.reshape(-1).long()
    return torch.bincount(index, minlength=classes * classes).reshape(classes, classes)


def iou_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """Per-class intersection over union from a confusion matrix (NaN for an absent class)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    hits = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - hits
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, hits / union, np.nan)


def _batches(images: np.ndarray | torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    for start in range(0, len(images), size):
        yield torch.as_tensor(images[start : start + size]).float()


SEGMENTER_SIZE = 64
"""The image size the shipped segmenter was trained at; other sizes are resized to it."""


@torch.no_grad()
def segment(
    segmenter: torch.nn.Module,
    images: np.ndarray | torch.Tensor,
    *,
    batch_size: int = 128,
    size: int | None = SEGMENTER_SIZE,
) -> np.ndarray:
    """Label maps (N, size, size) int64: the segmenter's best concept per pixel.

    Images of another side than ``size`` are first resized to it (bilinear), since a
    convolutional segmenter recognises objects at the scale it was trained on; ``size=None``
    keeps them as they are.
    """
    parts = [scores.argmax(1).cpu().numpy() for scores in _run(segmenter, images, batch_size, size)]
    return np.concatenate(parts).astype(np.int64)


def _run(
    segmenter: torch.nn.Module,
    images: np.ndarray | torch.Tensor,
    batch_size: int,
    size: int | None,
) -> Iterator[torch.Tensor]:
    """The segmenter's output for each batch of ``images`` (resized to ``size``), in eval mode
    and without gradients; the segmenter's own mode is restored afterwards."""
    device = module_device(segmenter)
    was_training = segmenter.training
    segmenter.eval()
    try:
        for batch in _batches(images, batch_size):
            if size is not None and batch.shape[-1] != size:
                batch = F.interpolate(
                    batch, size=(size, size), mode="bilinear", align_corners=False
                )
            with torch.no_grad():
                output = segmenter(batch.to(device))
            yield output
    finally:
        segmenter.train(was_training)


def evaluate_segmenter(
    segmenter: torch.nn.Module, scenes: Scenes, *, batch_size: int = 128
) -> dict[str, Any]:
    """mIoU, per-concept IoU and pixel accuracy of ``segmenter`` on ``scenes``."""
    predicted = segment(segmenter, scenes.images, batch_size=batch_size, size=None)
    confusion = confusion_matrix(
        torch.from_numpy(predicted), torch.from_numpy(scenes.labels), len(CONCEPTS)
    ).numpy()
    iou = iou_from_confusion(confusion)
    return {
        "miou": float(np.nanmean(iou)),
        "lamp_iou": float(iou[CONCEPTS.index("lamp")]),
        "iou": {name: float(iou[i]) for i, name in enumerate(CONCEPTS)},
        "pixel_accuracy": float(np.trace(confusion) / confusion.sum()),
        "scenes": len(scenes.images),
    }


@torch.no_grad()
def evaluate_classifier(
    classifier: torch.nn.Module, scenes: Scenes, *, batch_size: int = 256
) -> dict[str, Any]:
    """Accuracy of a lamp classifier on ``scenes`` (class 1 = any lamp lit)."""
    device = module_device(classifier)
    was_training = classifier.training
    classifier.eval()
    try:
        predicted = np.concatenate(
            [
                classifier(batch.to(device)).argmax(1).cpu().numpy()
                for batch in _batches(scenes.images, batch_size)
            ]
        )
    finally:
        classifier.train(was_training)
    truth = scenes.any_lamp_lit.astype(np.int64)
    return {
        "accuracy": float((predicted == truth).mean()),
        "confusion": confusion_matrix(
            torch.from_numpy(predicted), torch.from_numpy(truth), 2
        ).tolist(),
        "positive_rate": float(truth.mean()),
        "scenes": len(truth),
    }


@torch.no_grad()
def lamp_occlusion_effect(
    classifier: torch.nn.Module, scenes: Scenes, *, max_scenes: int = 200, seed: int = 0
) -> dict[str, float]:
    """Where a lamp classifier's evidence lies, measured by occlusion on scenes with a lit lamp.

    Each lit lamp's head and glow (an 18 x 18 box round the head) is filled with the image's
    mean colour; as a control, the same boxes are moved half the image width sideways instead.
    Returns the mean "lamp lit" probability before and after each, and, among the scenes first
    answered "lamp lit", the share whose answer flips. A classifier that looks at the lamps
    flips under the first occlusion and not under the second.
    """
    rng = np.random.default_rng(seed)
    chosen = np.flatnonzero(scenes.any_lamp_lit)[:max_scenes]
    images = torch.from_numpy(scenes.images[chosen])
    on_lamps, elsewhere = images.clone(), images.clone()
    for j, i in enumerate(chosen):
        mean = images[j].mean((1, 2), keepdim=True)
        for k in np.flatnonzero(scenes.lamp_lit[i]):
            x0, y0, x1, _ = scenes.lamp_boxes[i, k]
            centre = (x0 + x1) // 2
            on_lamps[j, :, max(0, y0 - 8) : y0 + 10, max(0, centre - 9) : centre + 9] = mean
            shifted, top = (centre + images.shape[-1] // 2) % images.shape[-1], rng.integers(0, 10)
            elsewhere[j, :, top : top + 18, max(0, shifted - 9) : shifted + 9] = mean
    device = module_device(classifier)
    was_training = classifier.training
    classifier.eval()
    try:
        lit = [
            classifier(x.to(device)).softmax(1)[:, 1].cpu() for x in (images, on_lamps, elsewhere)
        ]
    finally:
        classifier.train(was_training)
    answered_lit = lit[0] >= 0.5
    return {
        "scenes": int(answered_lit.sum()),
        "lit_probability": float(lit[0].mean()),
        "lit_probability_lamps_occluded": float(lit[1].mean()),
        "lit_probability_elsewhere_occluded": float(lit[2].mean()),
        "flipped_lamps_occluded": float((lit[1][answered_lit] < 0.5).float().mean()),
        "flipped_elsewhere_occluded": float((lit[2][answered_lit] < 0.5).float().mean()),
    }


@torch.no_grad()
def generate(
    generator: torch.nn.Module, n: int, *, seed: int = 0, batch_size: int = 128
) -> torch.Tensor:
    """``n`` images (N, 3, H, W) from latents drawn with ``seed``, made in eval mode on the CPU."""
    device = module_device(generator)
    z_dim = int(generator.z_dim)  # type: ignore[arg-type]
    z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))
    was_training = generator.training
    generator.eval()
    try:
        return torch.cat(
            [generator(z[i : i + batch_size].to(device)).cpu() for i in range(0, n, batch_size)]
        )
    finally:
        generator.train(was_training)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and of ``b``."""
    mean_a, mean_b = a.mean(0), b.mean(0)
    # a tiny ridge keeps the square root defined when a concept never varies (always absent)
    ridge = 1e-6 * np.eye(a.shape[1])
    cov_a, cov_b = np.cov(a, rowvar=False) + ridge, np.cov(b, rowvar=False) + ridge
    root = np.real(linalg.sqrtm(cov_a @ cov_b))
    distance = ((mean_a - mean_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root)
    return float(max(distance, 0.0))


def concept_statistics(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image concept shares (N, C) and presence (N, C) of label maps."""
    shares = concept_shares(labels)
    return {"shares": shares, "present": shares >= PRESENCE_SHARE}


def compare_statistics(real_labels: np.ndarray, generated_labels: np.ndarray) -> dict[str, Any]:
    """Concept statistics of generated label maps against real ones, with the quality targets.

    Returns per-concept mean shares, relative share errors and presence rates, the lamp
    presence ratio (generated / real), the Fréchet segmentation distance, and ``meets_targets``:
    every share within 30 % of real and lamps present at least 70 % as often as in real scenes.
    """
    real = concept_statistics(real_labels)
    fake = concept_statistics(generated_labels)
    real_share, fake_share = real["shares"].mean(0), fake["shares"].mean(0)
    rel_error = np.abs(fake_share - real_share) / np.maximum(real_share, 1e-12)
    real_present, fake_present = real["present"].mean(0), fake["present"].mean(0)
    lamp = CONCEPTS.index("lamp")
    lamp_ratio = float(fake_present[lamp] / max(real_present[lamp], 1e-12))
    per_concept = {
        name: {
            "real_share": float(real_share[i]),
            "generated_share": float(fake_share[i]),
            "relative_error": float(rel_error[i]),
            "real_presence": float(real_present[i]),
            "generated_presence": float(fake_present[i]),
        }
        for i, name in enumerate(CONCEPTS)
    }
    return {
        "concepts": per_concept,
        "max_relative_error": float(rel_error.max()),
        "worst_concept": CONCEPTS[int(rel_error.argmax())],
        "lamp_presence_ratio": lamp_ratio,
        "fsd": frechet_distance(real["shares"] * 100, fake["shares"] * 100),
        "meets_targets": bool(
            rel_error.max() <= REL_SHARE_TARGET and lamp_ratio >= LAMP_PRESENCE_TARGET
        ),
        "real_images": len(real_labels),
        "generated_images": len(generated_labels),
    }


def evaluate_generator(
    generator: torch.nn.Module,
    segmenter: torch.nn.Module,
    real: Scenes,
    *,
    n: int = 1024,
    seed: int = 0,
    batch_size: int = 128,
) -> dict[str, Any]:
    """Concept statistics of ``n`` generated images against ``real`` scenes, both segmented.

    Also reports the segmenter's own view of the real scenes against their true labels, so a
    reader can tell a generator's shortfall from a segmenter's bias.
    """
    fake_images = generate(generator, n, seed=seed, batch_size=batch_size)
    result = compare_statistics(
        segment(segmenter, real.images, batch_size=batch_size),
        segment(segmenter, fake_images, batch_size=batch_size),
    )
    true_share = concept_shares(real.labels).mean(0)
    for i, name in enumerate(CONCEPTS):
        result["concepts"][name]["real_true_share"] = float(true_share[i])
    result["seed"] = seed
    return result


FEATURE_LAYER = "bottleneck"
"""The segmenter layer whose features describe an image (the shipped U-Net's deepest)."""


@torch.no_grad()
def image_features(
    segmenter: torch.nn.Module,
    images: np.ndarray | torch.Tensor,
    *,
    layer: str = FEATURE_LAYER,
    batch_size: int = 256,
    size: int | None = SEGMENTER_SIZE,
) -> np.ndarray:
    """float64 (N, 2 C): each channel's mean and standard deviation over positions of ``layer``.

    The mean says which things a scene holds, the deviation how they vary across it (a blurred
    or speckled scene changes the second before the first). Images are resized to ``size`` as
    in :func:`segment`.
    """
    modules = dict(segmenter.named_modules())
    if layer not in modules:
        raise ValueError(f"the segmenter has no layer {layer!r} to take features from")
    captured: list[torch.Tensor] = []
    handle = modules[layer].register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        parts = []
        for _ in _run(segmenter, images, batch_size, size):
            maps = captured.pop().float().flatten(2)
            parts.append(torch.cat([maps.mean(2), maps.std(2)], 1).cpu().double().numpy())
    finally:
        handle.remove()
    return np.concatenate(parts)


def kernel_distance(
    a: np.ndarray, b: np.ndarray, *, subsets: int = 10, seed: int = 0
) -> tuple[float, float]:
    """KID: the unbiased MMD^2 between the rows of ``a`` and ``b``, and its standard error.

    Kernel ``k(x, y) = (x . y / d + 1) ** 3``. Both sets are shuffled and cut into ``subsets``
    disjoint, equal parts; the unbiased estimate (diagonal terms left out) of each pair of parts
    is independent of the others, so their mean is unbiased and ``std / sqrt(subsets)`` is its
    standard error. Returns ``(mean, standard_error)``.
    """
    if subsets < 2:
        raise ValueError(f"subsets must be >= 2 to give a standard error, got {subsets}")
    m = min(len(a), len(b)) // subsets
    if m < 2:
        raise ValueError(f"{min(len(a), len(b))} samples are too few for {subsets} subsets")
    rng = np.random.default_rng(seed)
    order_a, order_b = rng.permutation(len(a)), rng.permutation(len(b))
    d = a.shape[1]
    estimates = []
    for i in range(subsets):
        x = a[order_a[i * m : (i + 1) * m]]
        y = b[order_b[i * m : (i + 1) * m]]
        k_xx, k_yy, k_xy = ((p @ q.T / d + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        estimates.append(within - 2 * k_xy.mean())
    values = np.asarray(estimates)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(subsets))


def _pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


def _knn_radii(points: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row."""
    distances = _pairwise_distances(points, points)
    # column 0 of the sorted rows is the point itself (distance 0)
    return np.partition(distances, k, axis=1)[:, k]


def precision_recall(real: np.ndarray, generated: np.ndarray, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of feature rows.

    Each set's manifold is the union of balls round its points, each ball reaching to the point's
    ``k``-th nearest neighbour in its own set. Precision: the share of generated points inside the
    real manifold (are the samples realistic?); recall: the share of real points inside the
    generated one (is all of reality covered?). Returns ``(precision, recall)``.
    """
    if min(len(real), len(generated)) <= k:
        raise ValueError(f"need more than k={k} points in each set")
    real_radii, generated_radii = _knn_radii(real, k), _knn_radii(generated, k)
    distances = _pairwise_distances(generated, real)  # (generated, real)
    precision = (distances <= real_radii[None, :]).any(1).mean()
    recall = (distances <= generated_radii[:, None]).any(0).mean()
    return float(precision), float(recall)


def feature_quality(
    real: np.ndarray, generated: np.ndarray, *, subsets: int = 10, k: int = 3, seed: int = 0
) -> dict[str, float]:
    """Fréchet distance, KID with its standard error, precision and recall of two feature sets."""
    kid, kid_se = kernel_distance(real, generated, subsets=subsets, seed=seed)
    precision, recall = precision_recall(real, generated, k=k)
    return {
        "fd": frechet_distance(real, generated),
        "kid": kid,
        "kid_se": kid_se,
        "precision": precision,
        "recall": recall,
        "samples": min(len(real), len(generated)),
    }


class ImageQuality:
    """How far generated images lie from held-out real scenes, in the segmenter's feature space.

    Built once from a segmenter and ``n`` reference real scenes; a second, disjoint set of ``n``
    real scenes gives the floor. Both are drawn at random from 64 chunks of the held-out stream
    (:func:`training.scenes.held_out_sample`) unless given.

    Parameters
    ----------
    segmenter:
        The network whose ``layer`` features describe an image (the shipped segmenter).
    n:
        Real scenes in the reference set and in the floor set (compare ``n`` generated images).
    size:
        Side of the real scenes rendered (the generator's image size).
    real:
        Optional real images (2 n, 3, size, size) to use instead: the first n are the
        reference, the next n the floor set.
    subsets, k, seed:
        KID subsets, the precision/recall neighbourhood size, the KID shuffling seed.
    """

    def __init__(
        self,
        segmenter: torch.nn.Module,
        *,
        n: int = 2000,
        size: int = 64,
        real: np.ndarray | torch.Tensor | None = None,
        layer: str = FEATURE_LAYER,
        subsets: int = 10,
        k: int = 3,
        seed: int = 0,
        batch_size: int = 256,
    ) -> None:
        from training.scenes import held_out_sample

        self.segmenter = segmenter
        self.n = n
        self.layer = layer
        self.subsets = subsets
        self.k = k
        self.seed = seed
        self.batch_size = batch_size
        images = held_out_sample(2 * n, size=size).images if real is None else real
        if len(images) < 2 * n:
            raise ValueError(f"need 2 x {n} real images (reference and floor), got {len(images)}")
        features = self.features(images[: 2 * n])
        self.reference_, self.floor_set_ = features[:n], features[n:]
        self.floor_ = feature_quality(
            self.reference_, self.floor_set_, subsets=subsets, k=k, seed=seed
        )

    def features(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """The pooled segmenter features of ``images`` (see :func:`image_features`)."""
        return image_features(self.segmenter, images, layer=self.layer, batch_size=self.batch_size)

    def measure(self, images: np.ndarray | torch.Tensor) -> dict[str, Any]:
        """FD, KID and its s.e., precision and recall of ``images`` against the reference,
        with the real-vs-real floor beside them (key ``floor``)."""
        result: dict[str, Any] = feature_quality(
            self.reference_, self.features(images), subsets=self.subsets, k=self.k, seed=self.seed
        )
        result["floor"] = dict(self.floor_)
        return result


def quality_table(rows: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """A plain-text table of named :func:`feature_quality` results (FD, KID +- s.e., P, R)."""
    lines = [f"{'':<34} {'FD':>8} {'KID x 1e3':>16} {'precision':>9} {'recall':>7} {'n':>6}"]
    for name, r in rows:
        kid = f"{r['kid'] * 1e3:.3f} +- {r['kid_se'] * 1e3:.3f}"
        lines.append(
            f"{name:<34} {r['fd']:8.3f} {kid:>16} {r['precision']:9.3f} {r['recall']:7.3f} "
            f"{r['samples']:6d}"
        )
    return "\n".join(lines)
