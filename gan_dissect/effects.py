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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from gan_dissect.dissection import Segmentation, latent_shape, latents
from gan_dissect.hooks import find_layer
from gan_dissect.intervention import Region, Values, ablate, insert, unit_numbers
from training.devices import module_device
from training.errors import InputError
from training.progress import progress

EFFECT_STREAM = 2
"""Latent stream of the samples on which effects are measured (dissection uses 0 and 1), so
units chosen on dissected samples are judged on others."""
LUMINANCE = (0.299, 0.587, 0.114)


def luminance(images: torch.Tensor) -> torch.Tensor:
    """Luminance (N, H, W) in [0, 1] of images (N, 3, H, W) in [-1, 1] (Rec. 601 weights)."""
    weights = torch.tensor(LUMINANCE, device=images.device, dtype=images.dtype)
    return (torch.einsum("nchw,c->nhw", images.clamp(-1, 1), weights) + 1.0) / 2.0


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
        inner = dilate(removed, self.radius)
        near = inner & ~concept_before
        far = dilate(removed, 3 * self.radius) & ~inner & ~concept_before
        light_before, light_after = luminance(before), luminance(after)
        self.near_pixels += int(near.sum())
        self.far_pixels += int(far.sum())
        self.near_before += float(light_before[near].sum(dtype=torch.float64))
        self.near_after += float(light_after[near].sum(dtype=torch.float64))
        self.far_before += float(light_before[far].sum(dtype=torch.float64))
        self.far_after += float(light_after[far].sum(dtype=torch.float64))

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
    generator: torch.nn.Module,
    segmenter: Callable[[torch.Tensor], torch.Tensor],
    layer: str,
    units: Sequence[int],
    concept: str,
    *,
    off: Values = 0.0,
    on: Values | None = None,
    region: Region | None = None,
    num_samples: int = 1000,
    batch_size: int = 50,
    seed: int = 0,
    stream: int = EFFECT_STREAM,
    z_shape: Sequence[int] | None = None,
    concepts: Sequence[str] | None = None,
    keep: int = 0,
    description: str = "",
) -> tuple[InterventionEffect, Examples | None]:
    """Ablate (and, with ``on``, insert) ``units`` of ``layer`` on ``num_samples`` latents and
    count every concept's pixels, before and after; see the module docstring.

    ``region`` (an (H, W) mask at the image's resolution) confines the edits to it, and the
    counts inside it give the ACE in the region. ``keep`` first samples are returned as
    :class:`Examples` for pictures (None when ``keep`` is 0).
    """
    if num_samples < 1 or batch_size < 1:
        raise InputError("num_samples and batch_size must be positive")
    find_layer(generator, layer)
    segmentation = Segmentation(segmenter, concepts)
    if concept not in segmentation.concepts:
        raise InputError(f"no concept {concept!r}; concepts: {', '.join(segmentation.concepts)}")
    c = segmentation.concepts.index(concept)
    shape = latent_shape(generator, z_shape)
    device = module_device(generator)
    region_mask = None if region is None else torch.as_tensor(region)
    if region_mask is not None and region_mask.dim() != 2:
        raise InputError("measure_effect takes one (H, W) region for every sample")
    unit_list = [int(u) for u in unit_numbers(np.asarray(units), None)]
    parts: dict[str, list[np.ndarray]] = {
        key: []
        for key in ("before", "ablated", "inserted", "before_r", "ablated_r", "inserted_r", "rm")
    }
    glow: GlowTally | None = None
    kept: dict[str, list[torch.Tensor]] = {}
    image_pixels = 0
    with torch.inference_mode():
        starts = range(0, num_samples, batch_size)
        for start in progress(starts, desc="intervention effect", total=len(starts)):
            index = range(start, min(start + batch_size, num_samples))
            z = latents(seed, index, shape, stream=stream).to(device)
            before = generator(z)
            with ablate(generator, layer, unit_list, off=off, region=region_mask):
                ablated = generator(z)
            inserted = None
            if on is not None:
                with insert(generator, layer, unit_list, on, region=region_mask):
                    inserted = generator(z)
            labels = {"before": segmentation(before), "ablated": segmentation(ablated)}
            if inserted is not None:
                labels["inserted"] = segmentation(inserted)
            height, width = labels["before"].shape[-2:]
            image_pixels = height * width
            where = None
            if region_mask is not None:
                if tuple(region_mask.shape) != (height, width):
                    raise InputError(
                        f"region is {tuple(region_mask.shape)} but images are {height}x{width}"
                    )
                where = region_mask > 0
            for key, value in labels.items():
                parts[key].append(_counts(value, len(segmentation.concepts), None))
                parts[f"{key}_r"].append(_counts(value, len(segmentation.concepts), where))
            was = labels["before"] == c
            gone = was & (labels["ablated"] != c)
            parts["rm"].append(gone.flatten(1).sum(1).cpu().numpy().astype(np.int64))
            glow = glow or GlowTally(ring_radius(int(height)))
            glow.add(before, ablated, was, gone)
            if len(kept.get("before", [])) * batch_size < keep:
                for key, value in (("before", before), ("ablated", ablated)):
                    kept.setdefault(key, []).append(value.cpu())
                    kept.setdefault(f"labels_{key}", []).append(labels[key].cpu())
                if inserted is not None:
                    kept.setdefault("inserted", []).append(inserted.cpu())
                    kept.setdefault("labels_inserted", []).append(labels["inserted"].cpu())
    stacked = {key: np.concatenate(value) if value else None for key, value in parts.items()}
    effect = InterventionEffect(
        layer=layer,
        concept=concept,
        concepts=list(segmentation.concepts),
        units=unit_list,
        num_samples=num_samples,
        seed=seed,
        image_pixels=image_pixels,
        region_pixels=int((region_mask > 0).sum()) if region_mask is not None else image_pixels,
        before=_required(stacked["before"]),
        ablated=_required(stacked["ablated"]),
        inserted=stacked["inserted"],
        before_in_region=_required(stacked["before_r"]),
        ablated_in_region=_required(stacked["ablated_r"]),
        inserted_in_region=stacked["inserted_r"],
        removed=_required(stacked["rm"]),
        glow=glow.summary() if glow is not None else {},
        params={
            "off": _describe_values(off, unit_list),
            "on": None if on is None else _describe_values(on, unit_list),
            "region": description or ("everywhere" if region is None else "a region"),
            "batch_size": batch_size,
            "stream": stream,
        },
    )
    examples = None
    if keep > 0:

        def first(key: str) -> torch.Tensor | None:
            return torch.cat(kept[key])[:keep] if key in kept else None

        examples = Examples(
            before=_required(first("before")),
            ablated=_required(first("ablated")),
            inserted=first("inserted"),
            labels_before=_required(first("labels_before")),
            labels_ablated=_required(first("labels_ablated")),
            labels_inserted=first("labels_inserted"),
        )
    return effect, examples


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
    generator: torch.nn.Module,
    segmenter: Callable[[torch.Tensor], torch.Tensor],
    layer: str,
    concept: str,
    orders: Mapping[str, Sequence[int]],
    counts: Sequence[int],
    *,
    off: Values = 0.0,
    num_samples: int = 200,
    batch_size: int = 50,
    seed: int = 0,
    stream: int = EFFECT_STREAM,
    z_shape: Sequence[int] | None = None,
    concepts: Sequence[str] | None = None,
) -> EffectCurve:
    """Ablate the first k units of every order in ``orders`` for each k in ``counts``, all on
    the same ``num_samples`` latents (the unedited images are generated once)."""
    counts = sorted({int(k) for k in counts})
    if not counts or counts[0] < 1:
        raise InputError(f"counts must be positive numbers of units, got {counts}")
    for name, order in orders.items():
        if len(order) < counts[-1]:
            raise InputError(f"order {name!r} has {len(order)} units, fewer than {counts[-1]}")
    find_layer(generator, layer)
    segmentation = Segmentation(segmenter, concepts)
    if concept not in segmentation.concepts:
        raise InputError(f"no concept {concept!r}; concepts: {', '.join(segmentation.concepts)}")
    c = segmentation.concepts.index(concept)
    num_concepts = len(segmentation.concepts)
    shape = latent_shape(generator, z_shape)
    device = module_device(generator)
    before_total = np.zeros(num_concepts, np.int64)
    after_total = {(name, k): np.zeros(num_concepts, np.int64) for name in orders for k in counts}
    with torch.inference_mode():
        starts = range(0, num_samples, batch_size)
        for start in progress(starts, desc="effect curve", total=len(starts)):
            index = range(start, min(start + batch_size, num_samples))
            z = latents(seed, index, shape, stream=stream).to(device)
            before_total += _counts(segmentation(generator(z)), num_concepts, None).sum(0)
            for name, order in orders.items():
                for k in counts:
                    with ablate(generator, layer, list(order[:k]), off=off):
                        labels = segmentation(generator(z))
                    after_total[name, k] += _counts(labels, num_concepts, None).sum(0)
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
        seed=seed,
    )


def random_orders(num_units: int, repeats: int, seed: int) -> dict[str, list[int]]:
    """``repeats`` random orders of a layer's units, named ``random-0`` ...: the control."""
    rng = np.random.default_rng([seed, 7])
    return {f"random-{i}": [int(u) for u in rng.permutation(num_units)] for i in range(repeats)}
