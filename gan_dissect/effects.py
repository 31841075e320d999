"""What an intervention does to the images, measured through a segmenter.

:func:`measure_effect` generates the same latents three times (unedited, with the units ablated,
with them inserted) and counts every concept's pixels in each, which gives:

- the share of the concept's pixels that ablation removes, net (``1 - after / before``, so lamp
  pixels that appear elsewhere count against it) and pixel by pixel (pixels that were the
  concept and are not any more);
- the relative change of every other concept's pixel count (what else the units draw);
- the average causal effect ``ACE = E[share with units inserted] - E[share with units ablated]``
  (Bau et al. 2019), over the whole image and inside the edited region;
- the light that remains: the brightness, before and after, of a ring of pixels around the
  removed concept pixels (outside the concept), beside a wider ring as the local background.

:func:`effect_curve` ablates the first k units of several unit orders (IoU ranking, learned
ranking, random) on the same latents, for effect-versus-number-of-units curves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from gan_dissect.distributed import gather
from gan_dissect.intervention import UnitEdit, Values, ablate, insert, unit_numbers
from gan_dissect.streams import EFFECT_STREAM
from gan_dissect.subject import Subject
from training.errors import InputError
from training.progress import progress

LUMINANCE = (0.299, 0.587, 0.114)


def luminance(images: torch.Tensor) -> torch.Tensor:
    """Luminance (N, H, W) in [0, 1] of images (N, 3, H, W) in [-1, 1] (Rec. 601 weights)."""
    weights = torch.tensor(LUMINANCE, device=images.device, dtype=images.dtype)
    return (torch.einsum("nchw,c->nhw", images.clamp(-1, 1), weights) + 1.0) / 2.0


BRIGHT = 0.75
"""Luminance from which a concept's pixel counts as lit (a lamp head, not its dark pole)."""
BRIGHT_MIN_PIXELS = 2
"""Lit pixels from which an image shows a lit object (a lamp head is 2-3 pixels wide at 64 px)."""


def bright_pixels(
    images: torch.Tensor, labels: torch.Tensor, concept: int, *, brightness: float = BRIGHT
) -> np.ndarray:
    """Per image, how many pixels the segmenter labels ``concept`` have a luminance of at least
    ``brightness`` (images (N, 3, H, W) in [-1, 1], labels (N, H, W)): for lamps, the lit
    heads, which a count of all lamp pixels (mostly dark poles) does not see."""
    lit = (labels == concept) & (luminance(images.float()) >= brightness)
    return lit.flatten(1).sum(dim=1).cpu().numpy().astype(np.int64)


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Boolean masks (N, H, W) grown by ``radius`` pixels (a square neighbourhood)."""
    if radius <= 0:
        return mask
    grown = F.max_pool2d(mask[:, None].to(torch.float32), 2 * radius + 1, 1, radius)
    return grown[:, 0] > 0


def ring_radius(size: int) -> int:
    """Width in pixels of the ring in which the remaining light is measured (3 at 64 px)."""
    return max(1, round(3 * size / 64))


@dataclass
class GlowTally:
    """Brightness around removed concept pixels, before and after ablation.

    ``near``: pixels within ``radius`` of a removed pixel and not the concept before the edit;
    ``far``: the band from ``radius`` to ``3 radius``, the local background. The light a lamp
    casts makes ``near`` brighter than ``far``; what remains of that difference after the lamp
    is removed is the glow that remains (an estimate: the background ring is not lamp-free).
    """

    radius: int
    near_pixels: int = 0
    far_pixels: int = 0
    near_before: float = 0.0
    near_after: float = 0.0
    far_before: float = 0.0
    far_after: float = 0.0

    def add(
        self,
        before: torch.Tensor,
        after: torch.Tensor,
        concept_before: torch.Tensor,
        removed: torch.Tensor,
    ) -> None:
        """Fold in one batch: images (N, 3, H, W) and boolean masks (N, H, W)."""
        self.fold(self.measure(before, after, concept_before, removed))

    def measure(
        self,
        before: torch.Tensor,
        after: torch.Tensor,
        concept_before: torch.Tensor,
        removed: torch.Tensor,
    ) -> tuple[int, int, float, float, float, float]:
        """One batch's pixel counts and luminance sums (near, far, near before / after, far
        before / after), to :meth:`fold` in later (in batch order, for the same float sums)."""
        inner = dilate(removed, self.radius)
        near = inner & ~concept_before
        far = dilate(removed, 3 * self.radius) & ~inner & ~concept_before
        light_before, light_after = luminance(before), luminance(after)
        return (
            int(near.sum()),
            int(far.sum()),
            float(light_before[near].sum(dtype=torch.float64)),
            float(light_after[near].sum(dtype=torch.float64)),
            float(light_before[far].sum(dtype=torch.float64)),
            float(light_after[far].sum(dtype=torch.float64)),
        )

    def fold(self, batch: tuple[int, int, float, float, float, float]) -> None:
        """Add one batch's :meth:`measure`."""
        self.near_pixels += batch[0]
        self.far_pixels += batch[1]
        self.near_before += batch[2]
        self.near_after += batch[3]
        self.far_before += batch[4]
        self.far_after += batch[5]

    def summary(self) -> dict[str, float | int | None]:
        """Mean luminances (0..1), the local brightening before and after, and its remaining
        share (None where no pixel was removed)."""
        if not self.near_pixels or not self.far_pixels:
            return {"radius": self.radius, "ring_pixels": self.near_pixels}
        near_before = self.near_before / self.near_pixels
        near_after = self.near_after / self.near_pixels
        far_before = self.far_before / self.far_pixels
        far_after = self.far_after / self.far_pixels
        excess_before, excess_after = near_before - far_before, near_after - far_after
        return {
            "radius": self.radius,
            "ring_pixels": self.near_pixels,
            "ring_luminance_before": near_before,
            "ring_luminance_after": near_after,
            "ring_luminance_change": near_after - near_before,
            "background_luminance_before": far_before,
            "background_luminance_after": far_after,
            "brightening_before": excess_before,
            "brightening_after": excess_after,
            "brightening_remaining": excess_after / excess_before if excess_before > 0 else None,
        }


@dataclass
class InterventionEffect:
    """What ablating (and inserting) a unit set did to ``num_samples`` generated images.

    Per-sample pixel counts are (num_samples, concepts) arrays: ``before`` (unedited),
    ``ablated`` and ``inserted`` (None without insertion), over the whole image, and the same
    inside the edited region (``*_in_region``; equal to the whole image without a region).
    """

    layer: str
    concept: str
    concepts: list[str]
    units: list[int]
    num_samples: int
    seed: int
    image_pixels: int
    region_pixels: int
    before: np.ndarray
    ablated: np.ndarray
    inserted: np.ndarray | None
    before_in_region: np.ndarray
    ablated_in_region: np.ndarray
    inserted_in_region: np.ndarray | None
    removed: np.ndarray  # (num_samples,) concept pixels of the unedited image gone after ablation
    glow: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def concept_index(self) -> int:
        return self.concepts.index(self.concept)

    def removed_share(self) -> float:
        """Net share of the concept's pixels that ablation removed: 1 - after / before."""
        c = self.concept_index
        total = self.before[:, c].sum()
        return float(1.0 - self.ablated[:, c].sum() / total) if total else float("nan")

    def removed_pixel_share(self) -> float:
        """Share of the concept's pixels that are no longer the concept after ablation."""
        total = self.before[:, self.concept_index].sum()
        return float(self.removed.sum() / total) if total else float("nan")

    def relative_changes(self) -> dict[str, float | None]:
        """Per concept, (pixels after ablation - before) / before (None for an absent one)."""
        before, after = self.before.sum(axis=0), self.ablated.sum(axis=0)
        return {
            name: float((after[c] - before[c]) / before[c]) if before[c] else None
            for c, name in enumerate(self.concepts)
        }

    def largest_other_change(self) -> tuple[str, float]:
        """The other concept whose pixel count moved most (relative), and by how much."""
        changes = {
            name: abs(value)
            for name, value in self.relative_changes().items()
            if name != self.concept and value is not None
        }
        if not changes:
            return "", 0.0
        name = max(changes, key=lambda key: changes[key])
        return name, changes[name]

    def shares(self) -> dict[str, list[float]]:
        """Mean share of the image per concept: before, ablated, inserted."""
        result = {
            "before": (self.before.mean(axis=0) / self.image_pixels).tolist(),
            "ablated": (self.ablated.mean(axis=0) / self.image_pixels).tolist(),
        }
        if self.inserted is not None:
            result["inserted"] = (self.inserted.mean(axis=0) / self.image_pixels).tolist()
        return result

    def ace(self, *, in_region: bool = True) -> dict[str, float] | None:
        """ACE of the concept, inserted minus ablated, with its standard error over samples.

        Shares are of the region's pixels (``in_region``) or of the whole image.
        """
        if self.inserted is None or self.inserted_in_region is None:
            return None
        c = self.concept_index
        if in_region:
            on, off, pixels = self.inserted_in_region, self.ablated_in_region, self.region_pixels
        else:
            on, off, pixels = self.inserted, self.ablated, self.image_pixels
        difference = (on[:, c] - off[:, c]) / pixels
        error = difference.std(ddof=1) / np.sqrt(len(difference)) if len(difference) > 1 else 0.0
        return {
            "ace": float(difference.mean()),
            "standard_error": float(error),
            "inserted_share": float(on[:, c].mean() / pixels),
            "ablated_share": float(off[:, c].mean() / pixels),
            "before_share": float(
                (self.before_in_region if in_region else self.before)[:, c].mean() / pixels
            ),
        }

    def summary(self) -> dict[str, Any]:
        """The headline numbers, as in the JSON file."""
        other, change = self.largest_other_change()
        return {
            "layer": self.layer,
            "concept": self.concept,
            "units": self.units,
            "num_units": len(self.units),
            "num_samples": self.num_samples,
            "removed_share": self.removed_share(),
            "removed_pixel_share": self.removed_pixel_share(),
            "relative_changes": self.relative_changes(),
            "largest_other_change": {"concept": other, "relative_change": change},
            "shares": self.shares(),
            "ace_in_region": self.ace(in_region=True),
            "ace_whole_image": self.ace(in_region=False),
            "glow": self.glow,
        }

    def to_dict(self) -> dict[str, Any]:
        """Every field (arrays as lists) plus :meth:`summary`."""
        record = {
            key: value.tolist() if isinstance(value, np.ndarray) else value
            for key, value in asdict(self).items()
        }
        record["summary"] = self.summary()
        return record


@dataclass
class Examples:
    """The first samples of a measurement, kept for pictures: images in [-1, 1] and labels."""

    before: torch.Tensor
    ablated: torch.Tensor
    inserted: torch.Tensor | None
    labels_before: torch.Tensor
    labels_ablated: torch.Tensor
    labels_inserted: torch.Tensor | None


def _counts(labels: torch.Tensor, num_concepts: int, where: torch.Tensor | None) -> np.ndarray:
    """Pixels per concept (N, C) of label maps, optionally only where ``where`` (H, W) holds."""
    flat = labels.reshape(labels.shape[0], -1)
    if where is not None:
        flat = flat[:, where.reshape(-1).to(flat.device)]
    valid = flat >= 0  # -1 marks a pixel of no concept
    offsets = torch.arange(flat.shape[0], device=flat.device)[:, None] * num_concepts
    index = (flat.clamp(min=0) + offsets)[valid]
    counts = torch.bincount(index, minlength=flat.shape[0] * num_concepts)
    return counts.view(flat.shape[0], num_concepts).cpu().numpy().astype(np.int64)


def measure_effect(
    subject: Subject, edit: UnitEdit, concept: str, *, num_samples: int = 1000, keep: int = 0
) -> tuple[InterventionEffect, Examples | None]:
    """Apply ``edit`` on ``num_samples`` latents (stream :data:`EFFECT_STREAM` of
    ``subject.seed``) and count every concept's pixels, unedited, with the units ablated and
    (with ``edit.on``) inserted; see the module docstring.

    ``edit.region`` (an (H, W) mask at the image's resolution) confines the edits to it, and
    the counts inside it give the ACE in the region. ``keep`` first samples are returned as
    :class:`Examples` for pictures (None when ``keep`` is 0). Inside a ``torch.distributed``
    group each process measures every world-th batch and every process returns the
    single-process result.
    """
    if num_samples < 1:
        raise InputError("num_samples must be positive")
    subject.check_layers([edit.layer])
    c = subject.concept_index(concept)
    region_mask = None if edit.region is None else torch.as_tensor(edit.region)
    if region_mask is not None and region_mask.dim() != 2:
        raise InputError("measure_effect takes one (H, W) region for every sample")
    unit_list = [int(u) for u in unit_numbers(np.asarray(edit.units), None)]
    segmentation, layer = subject.segmentation, edit.layer
    batches: list[dict[str, Any]] = []
    with torch.inference_mode():
        todo = subject.batches(num_samples, EFFECT_STREAM, shard=True)
        total = subject.count_batches(num_samples, shard=True)
        for index, z in progress(todo, desc="intervention effect", total=total):
            before = subject.generator(z)
            with ablate(subject.generator, layer, unit_list, off=edit.off, region=region_mask):
                ablated = subject.generator(z)
            inserted = None
            if edit.on is not None:
                with insert(subject.generator, layer, unit_list, edit.on, region=region_mask):
                    inserted = subject.generator(z)
            labels = {"before": segmentation(before), "ablated": segmentation(ablated)}
            if inserted is not None:
                labels["inserted"] = segmentation(inserted)
            height, width = labels["before"].shape[-2:]
            where = None
            if region_mask is not None:
                if tuple(region_mask.shape) != (height, width):
                    raise InputError(
                        f"region is {tuple(region_mask.shape)} but images are {height}x{width}"
                    )
                where = region_mask > 0
            record: dict[str, Any] = {"first": int(index[0]), "size": (int(height), int(width))}
            for key, value in labels.items():
                record[key] = _counts(value, len(segmentation.concepts), None)
                record[f"{key}_r"] = _counts(value, len(segmentation.concepts), where)
            was = labels["before"] == c
            gone = was & (labels["ablated"] != c)
            record["rm"] = gone.flatten(1).sum(1).cpu().numpy().astype(np.int64)
            record["glow"] = GlowTally(ring_radius(int(height))).measure(before, ablated, was, gone)
            if int(index[0]) < keep:
                images = {"before": before, "ablated": ablated, "inserted": inserted}
                for key, value in images.items():
                    if value is not None:
                        record[f"image_{key}"] = value.cpu()
                        record[f"labels_{key}"] = labels[key].cpu()
            batches.append(record)
    # every batch of every process, in sample order: the sums of one process, in its order
    ordered = sorted((b for part in gather(batches) for b in part), key=lambda b: b["first"])
    parts: dict[str, list[np.ndarray]] = {}
    glow: GlowTally | None = None
    for record in ordered:
        for key in ("before", "ablated", "inserted", "before_r", "ablated_r", "inserted_r", "rm"):
            if key in record:
                parts.setdefault(key, []).append(record[key])
        glow = glow or GlowTally(ring_radius(record["size"][0]))
        glow.fold(record["glow"])
    stacked = {key: np.concatenate(value) for key, value in parts.items()}
    height, width = ordered[-1]["size"]
    image_pixels = height * width
    effect = InterventionEffect(
        layer=layer,
        concept=concept,
        concepts=list(segmentation.concepts),
        units=unit_list,
        num_samples=num_samples,
        seed=subject.seed,
        image_pixels=image_pixels,
        region_pixels=int((region_mask > 0).sum()) if region_mask is not None else image_pixels,
        before=stacked["before"],
        ablated=stacked["ablated"],
        inserted=stacked.get("inserted"),
        before_in_region=stacked["before_r"],
        ablated_in_region=stacked["ablated_r"],
        inserted_in_region=stacked.get("inserted_r"),
        removed=stacked["rm"],
        glow=glow.summary() if glow is not None else {},
        params={
            "off": _describe_values(edit.off, unit_list),
            "on": None if edit.on is None else _describe_values(edit.on, unit_list),
            "region": edit.region_name or ("everywhere" if edit.region is None else "a region"),
            "batch_size": subject.batch_size,
            "stream": EFFECT_STREAM,
        },
    )
    return effect, _examples(ordered, keep)


def _examples(batches: list[dict[str, Any]], keep: int) -> Examples | None:
    """The first ``keep`` samples' images and labels kept by :func:`measure_effect`."""
    if keep <= 0:
        return None

    def first(key: str) -> torch.Tensor | None:
        kept = [b[key] for b in batches if key in b]
        return torch.cat(kept)[:keep] if kept else None

    return Examples(
        before=_required(first("image_before")),
        ablated=_required(first("image_ablated")),
        inserted=first("image_inserted"),
        labels_before=_required(first("labels_before")),
        labels_ablated=_required(first("labels_ablated")),
        labels_inserted=first("labels_inserted"),
    )


def _required(value: Any) -> Any:
    assert value is not None
    return value


def _describe_values(values: Values, units: list[int]) -> float | list[float]:
    """The values the chosen units were set to, for the record."""
    array = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values)
    if array.ndim == 0:
        return float(array)
    return [float(array[u]) for u in units]


@dataclass
class EffectCurve:
    """Effect of ablating the first k units of each unit order, for every k in ``counts``.

    ``removed[name][i]``: net share of the concept's pixels removed by the first ``counts[i]``
    units of order ``name``; ``largest_other[name][i]``: the largest relative change of another
    concept's pixel count there.
    """

    layer: str
    concept: str
    counts: list[int]
    orders: dict[str, list[int]]
    removed: dict[str, list[float]]
    largest_other: dict[str, list[float]]
    num_samples: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def effect_curve(
    subject: Subject,
    layer: str,
    concept: str,
    orders: Mapping[str, Sequence[int]],
    counts: Sequence[int],
    *,
    off: Values = 0.0,
    num_samples: int = 200,
) -> EffectCurve:
    """Ablate the first k units of every order in ``orders`` for each k in ``counts``, all on
    the same ``num_samples`` latents of :data:`EFFECT_STREAM` (the unedited images are
    generated once); spread over a ``torch.distributed`` group like :func:`measure_effect`."""
    counts = sorted({int(k) for k in counts})
    if not counts or counts[0] < 1:
        raise InputError(f"counts must be positive numbers of units, got {counts}")
    for name, order in orders.items():
        if len(order) < counts[-1]:
            raise InputError(f"order {name!r} has {len(order)} units, fewer than {counts[-1]}")
    subject.check_layers([layer])
    c = subject.concept_index(concept)
    num_concepts = len(subject.concepts)
    generator, segmentation = subject.generator, subject.segmentation
    before_total = np.zeros(num_concepts, np.int64)
    after_total = {(name, k): np.zeros(num_concepts, np.int64) for name in orders for k in counts}
    with torch.inference_mode():
        todo = subject.batches(num_samples, EFFECT_STREAM, shard=True)
        total = subject.count_batches(num_samples, shard=True)
        for _, z in progress(todo, desc="effect curve", total=total):
            before_total += _counts(segmentation(generator(z)), num_concepts, None).sum(0)
            for name, order in orders.items():
                for k in counts:
                    with ablate(generator, layer, list(order[:k]), off=off):
                        labels = segmentation(generator(z))
                    after_total[name, k] += _counts(labels, num_concepts, None).sum(0)
    # whole-number counts: their sum over processes is exact in any order
    shares = gather((before_total, after_total))
    before_total = np.sum([part[0] for part in shares], axis=0)
    after_total = {key: np.sum([part[1][key] for part in shares], axis=0) for key in after_total}
    removed: dict[str, list[float]] = {}
    largest: dict[str, list[float]] = {}
    others = [i for i in range(num_concepts) if i != c and before_total[i] > 0]
    for name in orders:
        removed[name], largest[name] = [], []
        for k in counts:
            after = after_total[name, k]
            removed[name].append(
                float(1 - after[c] / before_total[c]) if before_total[c] else float("nan")
            )
            change = np.abs(after[others] - before_total[others]) / before_total[others]
            largest[name].append(float(change.max()) if others else 0.0)
    return EffectCurve(
        layer=layer,
        concept=concept,
        counts=counts,
        orders={name: [int(u) for u in order] for name, order in orders.items()},
        removed=removed,
        largest_other=largest,
        num_samples=num_samples,
        seed=subject.seed,
    )


def random_orders(num_units: int, repeats: int, seed: int) -> dict[str, list[int]]:
    """``repeats`` random orders of a layer's units, named ``random-0`` ...: the control."""
    rng = np.random.default_rng([seed, 7])
    return {f"random-{i}": [int(u) for u in rng.permutation(num_units)] for i in range(repeats)}
