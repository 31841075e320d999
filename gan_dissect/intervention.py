"""Switch units of a generator layer off or on, everywhere or inside a region, within a block.

Every edit is a :func:`~gan_dissect.hooks.trace` edit, so it lasts exactly as long as its
``with`` block::

    with ablate(generator, "layer3", lamp_units):
        no_lamps = generator(z)
    with insert(generator, "layer3", lamp_units, on_values, region=box):
        lamp_in_box = generator(z)
    generator(z)  # the unedited generator again

An edit blends each chosen unit's activation ``r`` towards a value ``v``:
``r' = (1 - a) r + a v`` with ``a = strength[u] * region[h, w]`` (Bau et al. 2019). Ablation takes
``v`` = 0 or a low quantile of the unit, insertion the unit's typical value where the concept is
present (:attr:`DissectionResult.mean_activation_in_concept`). ``strength`` is 1 for the chosen
units and 0 elsewhere, or any per-unit soft mask in [0, 1], which is what
:func:`gan_dissect.ranking.learn_unit_mask` optimises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.nn import functional as F

from gan_dissect.hooks import Trace, find_layer, trace
from gan_dissect.stats import QuantileSketch
from gan_dissect.streams import LEVELS_STREAM
from training.errors import InputError

if TYPE_CHECKING:
    from gan_dissect.subject import Subject

Units = Sequence[int] | np.ndarray | torch.Tensor
Values = float | Sequence[float] | np.ndarray | torch.Tensor
Region = np.ndarray | torch.Tensor


@dataclass(frozen=True)
class UnitEdit:
    """An edit of one layer's units, as :func:`~gan_dissect.effects.measure_effect` applies it:
    ``units`` of ``layer`` switched off (to ``off``) and, with ``on``, on (to ``on``), only
    inside ``region`` (an (H, W) mask at the image's resolution) when one is given;
    ``region_name`` describes the region in records (default: "everywhere" / "a region")."""

    layer: str
    units: Units
    off: Values = 0.0
    on: Values | None = None
    region: Region | None = None
    region_name: str = ""


def unit_strength(units: Units, num_units: int) -> torch.Tensor:
    """Per-unit strength (num_units,) float32: 1 at ``units``, 0 elsewhere.

    ``units`` is a list of unit numbers, a boolean mask over the layer's units, or a soft mask:
    a float tensor or array of the layer's length with values in [0, 1], returned as it is
    (a tensor keeps its graph, so gradients flow through it). Anything else raises one
    :class:`InputError` naming the problem.
    """
    if isinstance(units, torch.Tensor) and units.dtype.is_floating_point:
        if tuple(units.shape) != (num_units,):
            raise InputError(
                f"a soft unit mask must have shape ({num_units},), got {tuple(units.shape)}"
            )
        if not bool(torch.isfinite(units.detach()).all()):
            raise InputError("the soft unit mask holds NaN or infinite values")
        return units
    array = np.asarray(units.detach().cpu() if isinstance(units, torch.Tensor) else units)
    if array.dtype == bool:
        if array.shape != (num_units,):
            raise InputError(
                f"a boolean unit mask must have one entry per unit ({num_units}), "
                f"got shape {array.shape}"
            )
        return torch.from_numpy(array.astype(np.float32))
    if isinstance(units, np.ndarray) and np.issubdtype(array.dtype, np.floating):
        if array.shape != (num_units,) or not np.all((array >= 0) & (array <= 1)):
            raise InputError(
                f"a soft unit mask must hold {num_units} values in [0, 1] (no NaN), "
                f"got shape {array.shape}"
            )
        return torch.from_numpy(array.astype(np.float32))
    index = unit_numbers(array, num_units)
    strength = torch.zeros(num_units)
    strength[torch.from_numpy(index)] = 1.0
    return strength


def unit_numbers(array: np.ndarray, num_units: int | None) -> np.ndarray:
    """Unit numbers (k,) int64 from any array of whole numbers in 0..num_units - 1 (any
    number >= 0 while the layer's size is not known, ``num_units`` None)."""
    flat = array.reshape(-1)
    if flat.size == 0:
        return flat.astype(np.int64)
    if not (np.issubdtype(flat.dtype, np.integer) or np.issubdtype(flat.dtype, np.floating)):
        raise InputError(f"units must be unit numbers, got {flat.tolist()!r}")
    if np.issubdtype(flat.dtype, np.floating) and not (
        np.all(np.isfinite(flat)) and np.all(flat == np.round(flat))
    ):
        raise InputError(f"units must be whole unit numbers, got {flat.tolist()}")
    index = flat.astype(np.int64)
    if num_units is None:
        if int(index.min()) < 0:
            raise InputError(f"unit numbers are >= 0, got {sorted(set(index[index < 0]))}")
        return index
    if int(index.min()) < 0 or int(index.max()) >= num_units:
        bad = sorted({int(u) for u in index if not 0 <= u < num_units})
        raise InputError(
            f"unit(s) {bad} out of range: the layer has {num_units} units (0..{num_units - 1})"
        )
    return index


def _unit_values(values: Values, num_units: int) -> torch.Tensor:
    """(num_units,) float32 from a scalar or a per-unit vector of the layer's length."""
    tensor = torch.as_tensor(
        values.detach() if isinstance(values, torch.Tensor) else np.asarray(values, np.float32)
    ).to(torch.float32)
    if not bool(torch.isfinite(tensor).all()):
        raise InputError("the values to set units to hold NaN or infinite numbers")
    if tensor.dim() == 0:
        return tensor.expand(num_units)
    if tuple(tensor.shape) != (num_units,):
        raise InputError(
            f"values must be one number or one per unit of the layer ({num_units}), "
            f"got shape {tuple(tensor.shape)}"
        )
    return tensor


def region_weights(region: Region, size: tuple[int, int]) -> torch.Tensor:
    """A region (H, W) or (N, H, W), boolean or in [0, 1], as weights (1 or N, 1, h, w).

    The region is given at the layer's resolution ``size`` (h, w) or at any whole multiple of
    it (the image's); a finer region is area-averaged onto the layer's grid, so a layer cell
    half covered by the region is edited half way.
    """
    tensor = torch.as_tensor(region).detach().to(torch.float32)
    if tensor.dim() == 2:
        tensor = tensor[None]
    if tensor.dim() != 3:
        raise InputError(f"a region must be (H, W) or (N, H, W), got shape {tuple(tensor.shape)}")
    if not bool(((tensor >= 0) & (tensor <= 1)).all()):
        raise InputError("region weights must lie in [0, 1] (no NaN)")
    height, width = int(tensor.shape[-2]), int(tensor.shape[-1])
    h, w = int(size[0]), int(size[1])
    if height < h or width < w or height % h or width % w or height // h != width // w:
        raise InputError(
            f"a region of {height}x{width} does not fit the layer's {h}x{w} grid; give it at "
            f"the layer's resolution or a whole multiple of it (e.g. the image's)"
        )
    tensor = tensor[:, None]
    if (height, width) != (h, w):
        tensor = F.avg_pool2d(tensor, height // h)
    return tensor


def box_region(size: int | tuple[int, int], box: Sequence[float]) -> torch.Tensor:
    """A boolean (H, W) mask of the pixel box ``(x0, y0, x1, y1)`` (end exclusive)."""
    height, width = (size, size) if isinstance(size, int) else size
    if len(box) != 4:
        raise InputError(f"a box is x0,y0,x1,y1, got {list(box)}")
    x0, y0, x1, y1 = (round(float(v)) for v in box)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise InputError(f"box {list(box)} does not lie inside the {width}x{height} image")
    mask = torch.zeros(height, width, dtype=torch.bool)
    mask[y0:y1, x0:x1] = True
    return mask


def make_edit(
    units: Units, values: Values, region: Region | None = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The edit ``r -> (1 - a) r + a v`` as a function of a layer's output (N, U, h, w).

    Shapes are checked against the first output it sees (units within the layer, a per-sample
    region of the batch's size); the result is a new tensor, so an in-place activation after
    the layer cannot change what was edited. What can be checked without the layer (whole
    unit numbers, finite values, a region's shape and range) is checked at once.
    """
    _check_early(units, values, region)
    cache: dict[str, Any] = {}

    def edit(output: torch.Tensor) -> torch.Tensor:
        if output.dim() != 4:
            raise InputError(
                f"unit edits need feature maps (N, units, h, w); the layer outputs "
                f"{tuple(output.shape)}"
            )
        n, num_units, h, w = output.shape
        if cache.get("units") != num_units:
            cache["units"] = num_units
            cache["strength"] = unit_strength(units, num_units)
            cache["values"] = _unit_values(values, num_units)
            cache["region"] = None if region is None else region_weights(region, (h, w))
        strength = cache["strength"].to(output.device, output.dtype)[None, :, None, None]
        target = cache["values"].to(output.device, output.dtype)[None, :, None, None]
        weight = strength
        if cache["region"] is not None:
            where = cache["region"].to(output.device, output.dtype)
            if where.shape[0] not in (1, n) or where.shape[-2:] != (h, w):
                raise InputError(
                    f"the region covers {where.shape[0]} samples but the batch has {n}"
                )
            weight = strength * where
        # lerp gives exactly the target where the weight is 1, so an ablation to 0 is exact
        return torch.lerp(output, target.expand_as(output), weight.expand_as(output))

    return edit


def _check_early(units: Units, values: Values, region: Region | None) -> None:
    """Raise :class:`InputError` for what is wrong whatever the layer turns out to be."""
    soft = isinstance(units, (torch.Tensor, np.ndarray)) and (
        units.dtype.is_floating_point
        if isinstance(units, torch.Tensor)
        else np.issubdtype(units.dtype, np.floating)
    )
    array = np.asarray(units.detach().cpu() if isinstance(units, torch.Tensor) else units)
    if not soft and array.dtype != bool:
        unit_numbers(array, None)
    value_array = np.asarray(
        values.detach().cpu() if isinstance(values, torch.Tensor) else values, np.float64
    )
    if not np.all(np.isfinite(value_array)):
        raise InputError("the values to set units to hold NaN or infinite numbers")
    if region is not None:
        area = torch.as_tensor(region).detach().to(torch.float32)
        if area.dim() not in (2, 3):
            raise InputError(f"a region must be (H, W) or (N, H, W), got shape {tuple(area.shape)}")
        if not bool(((area >= 0) & (area <= 1)).all()):
            raise InputError("region weights must lie in [0, 1] (no NaN)")


@contextlib.contextmanager
def intervene(
    generator: torch.nn.Module,
    layer: str,
    units: Units,
    values: Values,
    *,
    region: Region | None = None,
) -> Iterator[Trace]:
    """Within the block, ``layer``'s ``units`` are blended to ``values`` (in ``region``).

    Parameters
    ----------
    units:
        Unit indices, or a soft per-unit strength (float tensor of the layer's length, values
        in [0, 1]; differentiable).
    values:
        One number, or one per unit of the layer (only the chosen units' entries matter).
    region:
        None (everywhere), or (H, W) / (N, H, W) weights in [0, 1] at any resolution, averaged
        onto the layer's grid.

    Yields the :class:`~gan_dissect.hooks.Trace` of the layer (its edited output, kept with its
    graph so that an objective can be optimised through it).
    """
    with trace(generator, layer, edit=make_edit(units, values, region), detach=False) as record:
        yield record


def ablate(
    generator: torch.nn.Module,
    layer: str,
    units: Units,
    *,
    off: Values = 0.0,
    region: Region | None = None,
) -> contextlib.AbstractContextManager[Trace]:
    """Within the block, switch ``units`` of ``layer`` off (to ``off``: 0, or per-unit levels
    such as :func:`unit_quantiles` at 0.01), everywhere or inside ``region``."""
    return intervene(generator, layer, units, off, region=region)


def insert(
    generator: torch.nn.Module,
    layer: str,
    units: Units,
    on: Values,
    *,
    region: Region | None = None,
) -> contextlib.AbstractContextManager[Trace]:
    """Within the block, switch ``units`` of ``layer`` on, to ``on`` (per unit: its typical value
    where the concept is present), everywhere or inside ``region``."""
    return intervene(generator, layer, units, on, region=region)


def unit_quantiles(
    subject: Subject, layer: str, quantiles: float | Sequence[float], *, num_samples: int = 500
) -> torch.Tensor:
    """Each unit's activation quantiles (units, len(quantiles)) over ``num_samples`` latents
    (stream :data:`~gan_dissect.streams.LEVELS_STREAM` of ``subject.seed``).

    Raw (not upsampled) activations at every position, from a
    :class:`~gan_dissect.stats.QuantileSketch` (relative error 2^-8). A low quantile (0.01) is
    the usual "off" level of a unit whose minimum is not 0.
    """
    levels = [quantiles] if isinstance(quantiles, (int, float)) else list(quantiles)
    if not levels or not all(0.0 <= q <= 1.0 for q in levels):
        raise InputError(f"quantiles must lie in [0, 1], got {levels}")
    if num_samples < 1:
        raise InputError("num_samples must be positive")
    find_layer(subject.generator, layer)
    sketch = QuantileSketch()
    with torch.inference_mode():
        for _, z in subject.batches(num_samples, LEVELS_STREAM):
            with trace(subject.generator, layer, stop=True, clone=True) as record:
                subject.generator(z)
            assert record.output is not None
            sketch.add(record.output.transpose(0, 1).reshape(record.output.shape[1], -1))
    return sketch.quantiles(levels)
