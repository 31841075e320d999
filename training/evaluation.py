"""How good the trained models are, measured the same way by callbacks, export and benchmarks.

- Segmenter: a confusion matrix over all pixels of held-out scenes, per-concept IoU and mIoU.
- Classifier: accuracy on held-out scenes.
- Generator: its images are labelled by the segmenter and their concept statistics compared
  with those of real scenes labelled by the same segmenter (so the segmenter's own errors
  cancel): each concept's mean pixel share, how often it is present, and the Fréchet distance
  between the two distributions of per-image concept shares (a "Fréchet segmentation distance",
  Bau et al. 2019, here on shares in percent).
"""

from __future__ import annotations

from collections.abc import Iterator
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
    device = module_device(segmenter)
    was_training = segmenter.training
    segmenter.eval()
    try:
        parts = []
        for batch in _batches(images, batch_size):
            if size is not None and batch.shape[-1] != size:
                batch = F.interpolate(
                    batch, size=(size, size), mode="bilinear", align_corners=False
                )
            parts.append(segmenter(batch.to(device)).argmax(1).cpu().numpy())
    finally:
        segmenter.train(was_training)
    return np.concatenate(parts).astype(np.int64)


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
