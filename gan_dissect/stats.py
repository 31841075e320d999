"""Streaming statistics for dissection: add batches, merge partial results, save and resume.

Every class here has the same four verbs: ``add(...)`` folds in one batch, ``merge(other)``
folds in another object that saw different samples, ``state_dict()`` returns plain tensors and
numbers (loadable with ``torch.load(weights_only=True)``), and ``load_state_dict(state)``
restores one. Memory never grows with the number of samples.

All of them are *exact* in the sense that matters for dissection: the result does not depend on
how the samples were split into batches, in what order they came, or across how many processes
they were spread. :class:`QuantileSketch` and :class:`TopK` keep integer counts and a total
order, so ``merge`` of two halves equals the whole bit for bit; :class:`IoUTally` and
:class:`CeilingTally` keep integer pixel counts; :class:`ConceptMeanTally`, the one float
statistic, agrees to float32 rounding (each batch is summed in float32, batches in float64).

Values of units are passed *unit-major*: ``(units, ...)``, each row holding one unit's values
over any number of pixels, which is the layout the per-unit reductions read fastest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from training.errors import InputError

# An activation below this magnitude counts as 0 for the quantile sketch: without a floor, the
# few tiny values that a layer produces would stretch the sketch over 100+ empty binades.
ZERO_FLOOR_EXPONENT = -30
_FLOAT_BITS_MANTISSA = 23
_MAX_EXACT_FLOAT32_COUNT = 2**24  # integers up to this add exactly in float32
# up to this many thresholds per unit, one pass per threshold beats a histogram of levels
_DIRECT_THRESHOLDS = 2


class QuantileSketch:
    """Per-unit quantiles of a stream of values, with a guaranteed (not probabilistic) error.

    Each value falls into a bucket given by its float32 sign, exponent and the top
    ``mantissa_bits`` bits of its mantissa; the sketch counts values per (unit, bucket). A
    quantile is read as the middle of the bucket that holds it, so for the exact q-quantile
    ``x_q`` (the value of rank ``ceil(q * n)`` among the ``n`` values, NumPy's
    ``method="inverted_cdf"``) the estimate ``x`` obeys::

        |x - x_q| <= max(2**-(mantissa_bits + 1) * |x_q|, 2**ZERO_FLOOR_EXPONENT)

    i.e. a relative error of 0.39 % for the default 7 bits. Memory is one int64 count per unit
    per bucket between the smallest and largest value seen (about 128 buckets per factor of two
    in magnitude), independent of the number of values.

    Unlike the randomised KLL sketch of the reference code, counts add exactly, so merging
    per-process sketches gives the same sketch as one process that saw everything.
    """

    def __init__(self, mantissa_bits: int = 7) -> None:
        if not 1 <= mantissa_bits <= 12:
            raise InputError(f"mantissa_bits must be in 1..12, got {mantissa_bits}")
        self.mantissa_bits = mantissa_bits
        self.units: int | None = None
        self.count = 0
        self.low = 0  # signed bucket key of counts[:, 0]
        self.counts = torch.zeros(0, 0, dtype=torch.int64)

    @property
    def shift(self) -> int:
        return _FLOAT_BITS_MANTISSA - self.mantissa_bits

    @property
    def relative_error(self) -> float:
        """The bound on ``|estimate - exact| / |exact|`` for values above the zero floor."""
        return 2.0 ** -(self.mantissa_bits + 1)

    @property
    def absolute_floor(self) -> float:
        """Values smaller in magnitude than this are counted as 0."""
        return 2.0**ZERO_FLOOR_EXPONENT

    def _floor_bucket(self) -> int:
        # bucket (of |x|'s bits) holding 2**ZERO_FLOOR_EXPONENT; buckets below it merge into 0
        return ((127 + ZERO_FLOOR_EXPONENT) << _FLOAT_BITS_MANTISSA) >> self.shift

    def _infinity_key(self) -> int:
        return (0x7F800000 >> self.shift) - (self._floor_bucket() - 1)

    def keys(self, values: torch.Tensor) -> torch.Tensor:
        """Signed bucket keys (int32) of float32 ``values``: monotone in the value, 0 for 0."""
        keys, _, _, pending = self._keys_and_range(values)
        return keys + pending

    def _keys_and_range(self, values: torch.Tensor) -> tuple[torch.Tensor, int, int, int]:
        """``(k, low, high, pending)``: the keys are ``k + pending``, between low and high.

        The pending constant is left for :meth:`add` to fold into its per-unit shifts, which
        saves a pass over the values on the common path (no negative values).
        """
        bits = values.contiguous().view(torch.int32)
        offset = self._floor_bucket() - 1
        keys = bits >> self.shift
        low, high = (int(k) for k in torch.aminmax(keys))
        if low < 0:  # negative values (their bits read as negative integers): the slow path
            magnitude = ((bits & 0x7FFFFFFF) >> self.shift).sub_(offset).clamp_(min=0)
            keys = torch.where(bits < 0, -magnitude, magnitude)
            low, high = (int(k) for k in torch.aminmax(keys))
            return keys, low, high, 0
        keys.clamp_(min=offset)  # magnitudes below the zero floor join bucket 0
        return keys, max(low - offset, 0), max(high - offset, 0), -offset

    def add(self, values: torch.Tensor) -> None:
        """Fold in ``values`` shaped (units, ...): every entry of row u is one value of unit u."""
        values = _check_unit_major(values, self.units, "QuantileSketch.add")
        if values.numel() == 0:
            return
        units = values.shape[0]
        flat = values.reshape(units, -1).to(torch.float32)
        keys, low, high, pending = self._keys_and_range(flat)
        # NaN and infinity have the largest exponent, so they show up as the extreme keys
        if max(high, -low) >= self._infinity_key():
            raise InputError("QuantileSketch.add got NaN or infinite values")
        if self.units is None:
            self.units = units
            self.counts = torch.zeros(units, 0, dtype=torch.int64, device=flat.device)
            self.low = low
        self._cover(low, high)
        width = self.counts.shape[1]
        if units * width + abs(pending) >= 2**31:
            keys = keys.to(torch.int64)
        # one bincount over all units: unit u's keys are shifted into its own row of the table
        shifts = torch.arange(units, dtype=keys.dtype, device=keys.device) * width
        keys += (shifts + (pending - self.low))[:, None]
        self.counts += torch.bincount(keys.view(-1), minlength=units * width).view(units, width)
        self.count += flat.shape[1]

    def _cover(self, low: int, high: int) -> None:
        """Widen the count table to hold keys ``low..high`` (in whole binades, to grow rarely)."""
        step = 1 << self.mantissa_bits
        current_high = self.low + self.counts.shape[1] - 1
        if self.counts.shape[1] and low >= self.low and high <= current_high:
            return
        if self.counts.shape[1]:
            low, high = min(low, self.low), max(high, current_high)
        new_low = (low // step) * step
        new_high = -(-(high + 1) // step) * step - 1
        grown = torch.zeros(
            self.counts.shape[0],
            new_high - new_low + 1,
            dtype=torch.int64,
            device=self.counts.device,
        )
        start = self.low - new_low
        grown[:, start : start + self.counts.shape[1]] = self.counts
        self.counts, self.low = grown, new_low

    def merge(self, other: QuantileSketch) -> None:
        """Fold in a sketch of other values of the same units."""
        if other.mantissa_bits != self.mantissa_bits:
            raise InputError(
                f"cannot merge sketches of {self.mantissa_bits} and {other.mantissa_bits} bits"
            )
        if other.units is None:
            return
        if self.units is None:
            self.units = other.units
            self.counts = torch.zeros(other.units, 0, dtype=torch.int64, device=other.counts.device)
            self.low = other.low
        elif other.units != self.units:
            raise InputError(f"cannot merge sketches of {self.units} and {other.units} units")
        self._cover(other.low, other.low + other.counts.shape[1] - 1)
        start = other.low - self.low
        self.counts[:, start : start + other.counts.shape[1]] += other.counts.to(self.counts.device)
        self.count += other.count

    def quantiles(self, q: float | Sequence[float] | torch.Tensor) -> torch.Tensor:
        """Estimates (units, len(q)) float64 of the ``q``-quantiles of every unit."""
        if self.units is None or self.count == 0:
            raise InputError("QuantileSketch has seen no values")
        levels = torch.as_tensor(q, dtype=torch.float64).reshape(-1)
        if bool(((levels < 0) | (levels > 1)).any()):
            raise InputError(f"quantile levels must lie in [0, 1], got {levels.tolist()}")
        ranks = torch.clamp(torch.ceil(levels * self.count), min=1).to(torch.int64)
        cumulative = self.counts.cpu().cumsum(dim=1)
        index = torch.searchsorted(cumulative, ranks.expand(self.units, -1).contiguous())
        return self.bucket_values(index + self.low)

    def bucket_values(self, keys: torch.Tensor) -> torch.Tensor:
        """The value (float64) the sketch reports for signed bucket ``keys``: the bucket middle."""
        magnitude = keys.abs().to(torch.int64)
        bucket = magnitude + self._floor_bucket() - 1
        low = _float_of_bits(bucket << self.shift)
        high = _float_of_bits(((bucket + 1) << self.shift) - 1)
        middle = torch.where(magnitude == 0, torch.zeros_like(low), (low + high) / 2)
        return torch.where(keys < 0, -middle, middle)

    def state_dict(self) -> dict[str, Any]:
        return {
            "mantissa_bits": self.mantissa_bits,
            "units": self.units,
            "count": self.count,
            "low": self.low,
            "counts": self.counts.cpu(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mantissa_bits = int(state["mantissa_bits"])
        self.units = None if state["units"] is None else int(state["units"])
        self.count = int(state["count"])
        self.low = int(state["low"])
        self.counts = state["counts"].clone().to(torch.int64)


class TopK:
    """Per unit, the ``k`` largest scores seen and the indices of the samples that gave them.

    Ties are broken towards the smaller sample index, so the result is one total order and does
    not depend on batching, order or merging.
    """

    def __init__(self, k: int = 8) -> None:
        if k < 1:
            raise InputError(f"TopK needs k >= 1, got {k}")
        self.k = k
        self.values = torch.zeros(0, 0, dtype=torch.float32)
        self.indices = torch.zeros(0, 0, dtype=torch.int64)

    def add(self, scores: torch.Tensor, indices: torch.Tensor) -> None:
        """Fold in ``scores`` (n, units) of the samples numbered ``indices`` (n,)."""
        if scores.dim() != 2 or indices.shape != (scores.shape[0],):
            raise InputError(
                f"TopK.add needs scores (n, units) and indices (n,), got "
                f"{tuple(scores.shape)} and {tuple(indices.shape)}"
            )
        if not bool(torch.isfinite(scores).all()):
            raise InputError("TopK.add got NaN or infinite scores")
        values = scores.detach().to(torch.float32).t().cpu()
        index = indices.to(torch.int64).cpu().expand(values.shape[0], -1)
        self._combine(values, index)

    def merge(self, other: TopK) -> None:
        """Fold in the top scores another TopK saw (for other samples)."""
        if other.values.numel():
            self._combine(other.values, other.indices)

    def _combine(self, values: torch.Tensor, indices: torch.Tensor) -> None:
        if self.values.numel():
            if values.shape[0] != self.values.shape[0]:
                raise InputError(f"TopK of {self.values.shape[0]} units got {values.shape[0]}")
            values = torch.cat([self.values, values], dim=1)
            indices = torch.cat([self.indices, indices], dim=1)
        # order by index, then stably by value (descending): ties keep the smaller index first
        by_index = torch.argsort(indices, dim=1, stable=True)
        values, indices = values.gather(1, by_index), indices.gather(1, by_index)
        by_value = torch.argsort(values, dim=1, descending=True, stable=True)[:, : self.k]
        self.values, self.indices = values.gather(1, by_value), indices.gather(1, by_value)

    def state_dict(self) -> dict[str, Any]:
        return {"k": self.k, "values": self.values.clone(), "indices": self.indices.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.k = int(state["k"])
        self.values = state["values"].clone()
        self.indices = state["indices"].clone()


class IoUTally:
    """Pixel counts behind IoU(unit, concept) for thresholded units, at K thresholds per unit.

    For each unit u, threshold t[u, k] and concept c, over all pixels added so far:
    ``intersection[u, k, c] = #{a_u > t[u, k] and label = c}``, ``unit_area[u, k] =
    #{a_u > t[u, k]}``, ``concept_area[c] = #{label = c}``; then
    ``IoU = intersection / (unit_area + concept_area - intersection)``. Pixels labelled -1 (no
    concept) count towards unit areas only.
    """

    def __init__(self, thresholds: torch.Tensor, num_concepts: int) -> None:
        thresholds = torch.as_tensor(thresholds, dtype=torch.float32)
        if thresholds.dim() == 1:
            thresholds = thresholds[:, None]
        if thresholds.dim() != 2 or num_concepts < 1:
            raise InputError(
                f"IoUTally needs thresholds (units,) or (units, K) and >= 1 concept, got "
                f"{tuple(thresholds.shape)} and {num_concepts}"
            )
        self.thresholds = thresholds.cpu()
        self.num_concepts = num_concepts
        units, k = thresholds.shape
        self.intersection = torch.zeros(units, k, num_concepts, dtype=torch.int64)
        self.unit_area = torch.zeros(units, k, dtype=torch.int64)
        self.concept_area = torch.zeros(num_concepts, dtype=torch.int64)
        self.pixels = 0

    def add(self, activations: torch.Tensor, labels: torch.Tensor) -> None:
        """Fold in ``activations`` (units, ...) and ``labels`` (...) over the same pixels.

        ``labels`` holds concept indices in [0, C) or -1 for pixels of no concept.
        """
        units = self.thresholds.shape[0]
        activations = _check_unit_major(activations, units, "IoUTally.add")
        flat = activations.reshape(units, -1)
        flat_labels = labels.reshape(-1)
        if flat_labels.numel() != flat.shape[1]:
            raise InputError(
                f"IoUTally.add got {flat.shape[1]} activation pixels but {flat_labels.numel()} "
                "labels"
            )
        _check_labels(flat_labels, self.num_concepts)
        # float32 sums count exactly only below 2**24 pixels at a time
        step = _MAX_EXACT_FLOAT32_COUNT - 1
        for start in range(0, flat.shape[1], step):
            self._add_chunk(flat[:, start : start + step], flat_labels[start : start + step])

    def _add_chunk(self, flat: torch.Tensor, labels: torch.Tensor) -> None:
        concepts = self.num_concepts
        column = torch.where(labels < 0, concepts, labels)  # pixels of no concept: column C
        flat = flat.to(torch.float32)
        thresholds = self.thresholds.to(flat.device)
        if thresholds.shape[1] <= _DIRECT_THRESHOLDS:
            above = torch.empty_like(flat)
            for k in range(thresholds.shape[1]):
                torch.gt(flat, thresholds[:, k : k + 1], out=above)  # 0/1 floats in one pass
                # per unit, add each pixel's 0/1 into its concept's column (exact below 2**24)
                counts = torch.zeros(flat.shape[0], concepts + 1, device=flat.device)
                counts.index_add_(1, column, above)
                self.intersection[:, k] += counts[:, :concepts].round().to(torch.int64).cpu()
                self.unit_area[:, k] += counts.sum(dim=1).round().to(torch.int64).cpu()
        else:
            self._add_by_levels(flat, labels, thresholds)
        self.concept_area += torch.bincount(column, minlength=concepts + 1)[:concepts].cpu()
        self.pixels += labels.numel()

    def _add_by_levels(
        self, flat: torch.Tensor, labels: torch.Tensor, thresholds: torch.Tensor
    ) -> None:
        """Many thresholds at once: histogram each value by how many thresholds it exceeds."""
        units, k = thresholds.shape
        concepts = self.num_concepts + 1  # the last column collects pixels of no concept
        ordered, order = thresholds.sort(dim=1)
        exceeded = torch.searchsorted(ordered, flat.contiguous())  # thresholds below each value
        cell = (exceeded * concepts).add_(torch.where(labels < 0, self.num_concepts, labels))
        cell += (torch.arange(units, device=flat.device) * ((k + 1) * concepts))[:, None]
        histogram = torch.bincount(cell.view(-1), minlength=units * (k + 1) * concepts)
        # a value above the j smallest thresholds is above sorted threshold i exactly when i < j
        above = histogram.view(units, k + 1, concepts).flip(1).cumsum(1).flip(1)[:, 1:].cpu()
        unsort = torch.argsort(order.cpu(), dim=1)
        above = above.gather(1, unsort[:, :, None].expand(-1, -1, concepts))
        self.intersection += above[:, :, : self.num_concepts]
        self.unit_area += above.sum(dim=2)

    def iou(self) -> torch.Tensor:
        """IoU (units, K, concepts) float64; 0 where both masks are empty."""
        union = self.unit_area[:, :, None] + self.concept_area[None, None, :] - self.intersection
        return self.intersection.to(torch.float64) / union.clamp(min=1).to(torch.float64)

    def merge(self, other: IoUTally) -> None:
        """Fold in counts made with the same thresholds on other samples."""
        if not torch.equal(other.thresholds, self.thresholds):
            raise InputError("cannot merge IoU tallies made with different thresholds")
        if other.num_concepts != self.num_concepts:
            raise InputError("cannot merge IoU tallies over different concepts")
        self.intersection += other.intersection
        self.unit_area += other.unit_area
        self.concept_area += other.concept_area
        self.pixels += other.pixels

    def state_dict(self) -> dict[str, Any]:
        return {
            "thresholds": self.thresholds.clone(),
            "num_concepts": self.num_concepts,
            "intersection": self.intersection.clone(),
            "unit_area": self.unit_area.clone(),
            "concept_area": self.concept_area.clone(),
            "pixels": self.pixels,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.thresholds = state["thresholds"].clone()
        self.num_concepts = int(state["num_concepts"])
        self.intersection = state["intersection"].clone()
        self.unit_area = state["unit_area"].clone()
        self.concept_area = state["concept_area"].clone()
        self.pixels = int(state["pixels"])


class CeilingTally:
    """The IoU an ideal unit at a layer's resolution could reach for each concept.

    The ideal unit for concept c is c's own mask, area-averaged down to the layer's size
    ``(h, w)`` and upsampled back exactly as unit activations are (``upsample``), i.e. the best
    a layer of that resolution can draw of c. Thresholded at each of ``levels`` (fractions in
    (0, 1)), it is tallied like a unit; the ceiling is its best IoU over the levels. It is a
    reference, not a strict bound: another map at the same resolution could do slightly better.
    """

    def __init__(
        self,
        num_concepts: int,
        layer_size: tuple[int, int],
        upsample: Upsampler,
        levels: torch.Tensor | None = None,
    ) -> None:
        self.num_concepts = num_concepts
        self.layer_size = (int(layer_size[0]), int(layer_size[1]))
        self.upsample = upsample
        self.levels = (
            torch.linspace(0.01, 0.99, 99, dtype=torch.float32)
            if levels is None
            else torch.as_tensor(levels, dtype=torch.float32)
        )
        shape = (num_concepts, self.levels.numel() + 1)
        # histograms over level buckets: ideal-unit values of all pixels, and of pixels of c
        self.all_pixels = torch.zeros(shape, dtype=torch.int64)
        self.concept_pixels = torch.zeros(shape, dtype=torch.int64)

    def add(self, labels: torch.Tensor) -> None:
        """Fold in segmentations ``labels`` (N, H, W) at the segmentation resolution."""
        if labels.dim() != 3:
            raise InputError(f"CeilingTally.add needs labels (N, H, W), got {tuple(labels.shape)}")
        _check_labels(labels.reshape(-1), self.num_concepts)
        concepts = torch.arange(self.num_concepts, device=labels.device)
        masks = (labels[:, None] == concepts[None, :, None, None]).to(torch.float32)
        coarse = torch.nn.functional.adaptive_avg_pool2d(masks, self.layer_size)
        ideal = self.upsample(coarse.transpose(0, 1))  # (C, N, H, W)
        bins = self.levels.numel() + 1
        # one histogram cell per (concept, pixel of that concept or not, level bucket)
        levels = self.levels.to(ideal.device)
        cell = torch.bucketize(ideal, levels, out_int32=True).reshape(self.num_concepts, -1)
        own = (labels.reshape(1, -1) == concepts[:, None]).to(torch.int32)
        own.mul_(bins).add_((concepts.to(torch.int32) * (2 * bins))[:, None])
        cell += own
        histogram = torch.bincount(cell.reshape(-1), minlength=self.num_concepts * 2 * bins)
        histogram = histogram.view(self.num_concepts, 2, bins).cpu()
        self.all_pixels += histogram.sum(dim=1)
        self.concept_pixels += histogram[:, 1]

    def _counts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # pixels of the ideal unit above level l are those in buckets l+1 and up
        above = self.all_pixels.flip(1).cumsum(1).flip(1)[:, 1:]
        inside = self.concept_pixels.flip(1).cumsum(1).flip(1)[:, 1:]
        area = self.concept_pixels.sum(1)
        return inside, above, area

    def iou(self) -> torch.Tensor:
        """IoU (concepts, levels) float64 of the ideal unit thresholded at each level."""
        inside, above, area = self._counts()
        union = above + area[:, None] - inside
        return inside.to(torch.float64) / union.clamp(min=1).to(torch.float64)

    def ceiling(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Best IoU per concept (concepts,) and the level that reached it."""
        best, where = self.iou().max(dim=1)
        return best, self.levels.to(torch.float64)[where]

    def at_share(self, share: float) -> torch.Tensor:
        """Best IoU per concept (concepts,) float64 of the ideal unit covering at most ``share``
        of all pixels, as a unit thresholded at its top quantile does (``share = 1 -
        quantile``: 0.01 at the 0.99 quantile): the best of its levels that cover no more, and
        its top ``share`` exactly. The ideal unit's values tie within a level bucket (every
        cell wholly inside a concept is 1), so the bucket where the share runs out contributes
        the needed fraction of its pixels, inside and outside the concept in its own
        proportion, as a unit with the ties broken at random would. At most ``share / area``
        for a concept of pixel share ``area``: a unit held to 1 % of the pixels cannot cover a
        concept of 3 % of them.
        """
        if not 0 < share <= 1:
            raise InputError(f"share must lie in (0, 1], got {share}")
        every = self.all_pixels.flip(1).to(torch.float64)  # buckets from the highest level down
        inside = self.concept_pixels.flip(1).to(torch.float64)
        total = every.sum(1, keepdim=True)
        target = share * total
        before = every.cumsum(1) - every  # pixels in the buckets above each bucket
        taken = ((target - before).clamp(min=0) / every.clamp(min=1)).clamp(max=1)
        taken = torch.where(every > 0, taken, torch.zeros_like(taken))
        covered = (taken * inside).sum(1)
        selected = (taken * every).sum(1)
        area = inside.sum(1)
        union = selected + area - covered
        exact = torch.where(union > 0, covered / union.clamp(min=1e-12), torch.zeros_like(union))
        _, above, _ = self._counts()
        levels = self.iou().masked_fill(above.to(torch.float64) > target, 0.0).max(dim=1).values
        return torch.maximum(exact, levels)

    def merge(self, other: CeilingTally) -> None:
        """Fold in a tally of other samples at the same layer size and levels."""
        if other.layer_size != self.layer_size or not torch.equal(other.levels, self.levels):
            raise InputError("cannot merge ceiling tallies of different layer sizes or levels")
        self.all_pixels += other.all_pixels
        self.concept_pixels += other.concept_pixels

    def state_dict(self) -> dict[str, Any]:
        return {
            "num_concepts": self.num_concepts,
            "layer_size": list(self.layer_size),
            "levels": self.levels.clone(),
            "all_pixels": self.all_pixels.clone(),
            "concept_pixels": self.concept_pixels.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.num_concepts = int(state["num_concepts"])
        self.layer_size = (int(state["layer_size"][0]), int(state["layer_size"][1]))
        self.levels = state["levels"].clone()
        self.all_pixels = state["all_pixels"].clone()
        self.concept_pixels = state["concept_pixels"].clone()


class ConceptMeanTally:
    """Each unit's mean upsampled activation over the pixels of each concept (units, concepts).

    The mean of a unit where c is present is a natural value to *insert* the unit at for c. It
    is summed at the layer's own resolution: the sum of the upsampled map over c's pixels
    equals the raw map weighted by c's mask carried back through the transposed upsampling,
    so the upsampled maps are never needed.
    """

    def __init__(self, num_concepts: int, upsample: Upsampler, *, by_batch: bool = False) -> None:
        self.num_concepts = num_concepts
        self.upsample = upsample
        self.sums = torch.zeros(0, num_concepts, dtype=torch.float64)
        self.concept_area = torch.zeros(num_concepts, dtype=torch.int64)
        # by_batch: keep each batch's sums apart and add them in batch order when asked, so that
        # processes that each took every other batch merge to one process's float64 sum exactly
        self.by_batch = by_batch
        self.parts: dict[int, torch.Tensor] = {}

    def add(self, activations: torch.Tensor, labels: torch.Tensor, batch: int = 0) -> None:
        """Fold in raw ``activations`` (N, units, h, w) and ``labels`` (N, H, W) of batch
        number ``batch`` (which orders the sums when the tally keeps them ``by_batch``)."""
        _check_labels(labels.reshape(-1), self.num_concepts)
        concepts = torch.arange(self.num_concepts, device=labels.device)
        masks = (labels[:, None] == concepts[None, :, None, None]).to(torch.float32)
        weights = self.upsample.transpose(masks)  # (N, C, h, w)
        sums = torch.einsum("nuhw,nchw->uc", activations.to(torch.float32), weights)
        self.concept_area += masks.sum(dim=(0, 2, 3)).round().to(torch.int64).cpu()
        if self.by_batch:
            self.parts[int(batch)] = sums.to(torch.float64).cpu()
            return
        if self.sums.numel() == 0:
            self.sums = torch.zeros(activations.shape[1], self.num_concepts, dtype=torch.float64)
        self.sums += sums.to(torch.float64).cpu()

    def total(self) -> torch.Tensor:
        """(units, concepts) float64 sums, batches added in batch order when kept apart (the
        order one process adds them in)."""
        if not self.by_batch or not self.parts:
            return self.sums
        first = next(iter(self.parts.values()))
        total = torch.zeros(first.shape, dtype=torch.float64)
        for batch in sorted(self.parts):
            total += self.parts[batch]
        return total

    def means(self) -> torch.Tensor:
        """(units, concepts) float64; NaN for a concept that never appeared."""
        area = self.concept_area.to(torch.float64)
        return self.total() / torch.where(area > 0, area, torch.nan)

    def merge(self, other: ConceptMeanTally) -> None:
        """Fold in sums over other samples (other batches, when kept ``by_batch``)."""
        if self.by_batch != other.by_batch:
            raise ValueError("cannot merge a tally kept by batch with one summed already")
        if self.by_batch:
            self.parts.update(other.parts)
        elif other.sums.numel():
            self.sums = other.sums.clone() if self.sums.numel() == 0 else self.sums + other.sums
        self.concept_area += other.concept_area

    def state_dict(self) -> dict[str, Any]:
        return {
            "num_concepts": self.num_concepts,
            "sums": self.sums.clone(),
            "concept_area": self.concept_area.clone(),
            "by_batch": self.by_batch,
            "parts": {batch: part.clone() for batch, part in self.parts.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.num_concepts = int(state["num_concepts"])
        self.sums = state["sums"].clone()
        self.concept_area = state["concept_area"].clone()
        self.by_batch = bool(state.get("by_batch", False))  # checkpoints from before: summed
        self.parts = {int(b): part.clone() for b, part in state.get("parts", {}).items()}


class Upsampler:
    """Bilinear upsampling of (..., h, w) maps to (..., H, W), as two small matrix products.

    Equal (to float rounding) to ``F.interpolate(mode="bilinear", align_corners=False)``, which
    places pixel centres consistently at both resolutions; the matrix form runs several times
    faster on a CPU and keeps any leading layout, e.g. unit-major ``(units, N, h, w)``.
    """

    def __init__(self, source: tuple[int, int], target: tuple[int, int]) -> None:
        self.source = (int(source[0]), int(source[1]))
        self.target = (int(target[0]), int(target[1]))
        self.rows = _interpolation_matrix(self.source[0], self.target[0])
        self.cols = _interpolation_matrix(self.source[1], self.target[1]).t().contiguous()

    def __call__(self, maps: torch.Tensor) -> torch.Tensor:
        if tuple(maps.shape[-2:]) != self.source:
            raise InputError(f"Upsampler for {self.source} got maps of shape {tuple(maps.shape)}")
        if self.source == self.target:
            return maps.to(torch.float32)
        lead = maps.shape[:-2]
        flat = maps.reshape(-1, *self.source).to(torch.float32)
        rows, cols = self.rows.to(flat.device), self.cols.to(flat.device)
        return torch.matmul(torch.matmul(rows, flat), cols).reshape(*lead, *self.target)

    def transpose(self, maps: torch.Tensor) -> torch.Tensor:
        """The adjoint: (..., H, W) to (..., h, w) with ``<up(x), y> == <x, transpose(y)>``."""
        if tuple(maps.shape[-2:]) != self.target:
            raise InputError(f"Upsampler to {self.target} got maps of shape {tuple(maps.shape)}")
        lead = maps.shape[:-2]
        flat = maps.reshape(-1, *self.target).to(torch.float32)
        rows, cols = self.rows.to(flat.device), self.cols.to(flat.device)
        return torch.matmul(torch.matmul(rows.t(), flat), cols.t()).reshape(*lead, *self.source)


def _interpolation_matrix(size: int, target: int) -> torch.Tensor:
    """(target, size) matrix of 1-D linear interpolation with align_corners=False."""
    identity = torch.eye(size, dtype=torch.float32)[:, None, :]
    return (
        torch.nn.functional.interpolate(identity, size=target, mode="linear", align_corners=False)[
            :, 0, :
        ]
        .t()
        .contiguous()
    )


def _float_of_bits(bits: torch.Tensor) -> torch.Tensor:
    return bits.to(torch.int32).view(torch.float32).to(torch.float64)


def _check_unit_major(values: torch.Tensor, units: int | None, where: str) -> torch.Tensor:
    if not isinstance(values, torch.Tensor) or values.dim() < 1:
        raise InputError(f"{where} needs a tensor shaped (units, ...)")
    if units is not None and values.shape[0] != units:
        raise InputError(f"{where} expects {units} units (first axis), got {values.shape[0]}")
    return values.detach()


def _check_labels(labels: torch.Tensor, num_concepts: int) -> None:
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise InputError(f"labels must be integer concept indices, got {labels.dtype}")
    if labels.numel():
        low, high = (int(v) for v in torch.aminmax(labels))
        if low < -1 or high >= num_concepts:
            raise InputError(
                f"labels must lie in [-1, {num_concepts}) (-1 = no concept), got {low}..{high}"
            )


Statistic = QuantileSketch | TopK | IoUTally | CeilingTally | ConceptMeanTally


def merge_across_processes(stat: Statistic) -> Statistic:
    """The merge of ``stat`` over all processes of the default ``torch.distributed`` group.

    Every process passes its own statistic (of its own samples) and gets back the same merged
    one, folded in rank order; without an initialised group (or with one process) ``stat`` is
    returned as it is. Every process must call this for the same statistics in the same order.
    """
    import copy

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return stat
    states: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(states, stat.state_dict())
    merged = copy.deepcopy(stat)
    merged.load_state_dict(states[0])
    for state in states[1:]:
        part = copy.deepcopy(stat)
        part.load_state_dict(state)
        merged.merge(part)  # type: ignore[arg-type]
    return merged
