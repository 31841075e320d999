"""What the ablate, actmax and invert commands share: the models, and which units to edit.

Units are chosen in one of three ways (``--units``): ``auto``, the first ``--num-units`` (a
number or a share of the layer) of a ranking of ``--layer``'s units for ``--concept``
(``--ranking iou``: by IoU in a dissection, read from ``--dissection`` or made here;
``--ranking learned``: by a learned ablation mask, or with a segmenter that returns labels by
what each unit removes when ablated alone); a list of unit numbers; or the folder of an earlier
``ablate`` run, whose layer, units and off / on values are used as they were. ``--layer auto``
and ``--concept auto`` read the dissection: the concept (lamp when the segmenter has one) and
the layer of the unit of highest IoU / ceiling.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_dissect.commands.dissect import load_segmenter, prepare_generator
from gan_dissect.dissection import (
    DissectionResult,
    Segmentation,
    dissect_layers,
    load_dissection,
)
from gan_dissect.hooks import find_layer
from gan_dissect.intervention import unit_numbers, unit_quantiles
from gan_dissect.models import CheckedGenerator
from gan_dissect.ranking import (
    LEARN_BATCH,
    LEARN_L2,
    LEARN_LR,
    LEARN_STEPS,
    LEARN_UNITS,
    OTHERS_REDUCTIONS,
    LearnedMask,
    gives_scores,
    learn_unit_mask,
    rank_units_by_ablation,
)
from training.errors import ConfigError, InputError

EFFECT_FILE = "effect.json"


def add_unit_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose the layer and units to edit (see the module docstring)."""
    units = parser.add_argument_group("which units")
    units.add_argument(
        "--concept",
        default="auto",
        help="the concept whose units are edited; 'auto': lamp when the segmenter has it, else "
        "the concept of the dissected unit of highest IoU / ceiling",
    )
    units.add_argument(
        "--layer",
        default="auto",
        help="layer whose units are edited; 'auto': the dissected layer whose best unit for "
        "--concept has the highest IoU / ceiling",
    )
    units.add_argument(
        "--units",
        default="auto",
        help="'auto' (the first --num-units of --ranking), unit numbers '3,17,40', or the "
        "folder of an ablate run whose layer, units and off/on levels are used",
    )
    units.add_argument(
        "--num-units",
        default=LEARN_UNITS,
        help="units chosen by 'auto': a number, or a share of the layer's units such as '8%%' "
        "(rounded down, at least 1)",
    )
    units.add_argument(
        "--ranking",
        choices=("learned", "iou"),
        default="learned",
        help="'learned': a soft ablation mask optimised to remove the concept (with a segmenter "
        "that returns labels, which give no gradient: each unit ablated alone); 'iou': by IoU",
    )
    units.add_argument(
        "--dissection",
        default="auto",
        help="a dissect run folder or dissection.json holding --layer, or 'auto' (dissect "
        "--layer, or every layer dissect would choose, here on --dissect-samples samples); "
        "gives IoU ranks and 'on' values",
    )
    units.add_argument(
        "--dissect-samples", type=int, default=500, help="samples of an 'auto' dissection"
    )
    learn = parser.add_argument_group("learned ranking")
    learn.add_argument("--learn-steps", type=int, default=LEARN_STEPS, help="Adam steps")
    learn.add_argument("--learn-batch", type=int, default=LEARN_BATCH, help="latents per step")
    learn.add_argument("--learn-lr", type=float, default=LEARN_LR, help="Adam learning rate")
    learn.add_argument("--learn-l2", type=float, default=LEARN_L2, help="L2 penalty on the mask")
    learn.add_argument(
        "--learn-budget",
        default="none",
        help="'num-units': the mask's sum is kept at most --num-units (units compete for that "
        "many places); 'none': only the penalty; or a number",
    )
    learn.add_argument(
        "--keep-others",
        type=float,
        default=0.0,
        help="weight of the other concepts' relative change in the loss",
    )
    learn.add_argument(
        "--others-reduce",
        choices=OTHERS_REDUCTIONS,
        default="mean",
        help="the other concepts' change that --keep-others weighs: their mean, or the largest "
        "(so that no single concept may absorb the change)",
    )
    values = parser.add_argument_group("what 'off' and 'on' mean")
    values.add_argument(
        "--off-level",
        default="zero",
        help="ablated units' value: 'zero', 'quantile:Q' (each unit's Q quantile) or a number",
    )
    values.add_argument(
        "--on-level",
        default="mean",
        help="inserted units' value: 'mean' (each unit's mean where the concept is), "
        "'quantile:Q' or a number",
    )


@dataclass
class UnitChoice:
    """The layer, units and values an edit uses, and how they were chosen."""

    layer: str
    units: list[int]
    concept: str
    off: float | np.ndarray
    on: float | np.ndarray
    how: str
    dissection: DissectionResult | None = None
    learned: LearnedMask | None = None
    source: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.layer} units {', '.join(map(str, self.units))} ({self.how})"

    def values_for_record(self) -> dict[str, Any]:
        def pick(values: float | np.ndarray) -> float | list[float]:
            if isinstance(values, np.ndarray):
                return [float(values[u]) for u in self.units]
            return float(values)

        return {"off": pick(self.off), "on": pick(self.on)}


def load_models(
    args: argparse.Namespace, device: torch.device
) -> tuple[CheckedGenerator, Any, Segmentation]:
    """The checked generator (eval mode, mapped to [-1, 1], its latent shape), the segmenter
    and its checked :class:`Segmentation`."""
    checked = prepare_generator(args, device)
    segmenter = load_segmenter(args.segmenter, device)
    concepts = split(args.concepts)
    return checked, segmenter, Segmentation(segmenter, concepts)


def choose_units(
    args: argparse.Namespace,
    generator: torch.nn.Module,
    segmenter: Any,
    segmentation: Segmentation,
    z_shape: tuple[int, ...],
) -> UnitChoice:
    """The units to edit and the values to set them to, as the options say."""
    if args.concept != "auto" and args.concept not in segmentation.concepts:
        raise ConfigError(
            f"--concept {args.concept!r} is not one of the segmenter's concepts: "
            f"{', '.join(segmentation.concepts)}"
        )
    folder = Path(str(args.units))
    if args.units != "auto" and (folder / EFFECT_FILE).is_file():
        return _units_of_run(folder, generator, z_shape)
    if args.units != "auto" and not _looks_like_numbers(str(args.units)):
        raise ConfigError(
            f"--units {args.units!r} is neither 'auto', unit numbers, nor an ablate run folder "
            f"(no {EFFECT_FILE} there)"
        )
    if args.layer and args.layer != "auto":
        find_layer(generator, args.layer)
    dissections = _dissections(args, generator, segmenter, segmentation, z_shape)
    concept = _concept(args.concept, dissections)
    layer = _layer(args.layer, concept, dissections)
    dissection = dissections[layer]
    c = dissection.concept_index(concept)
    learned = None
    off = _level(args.off_level, "off-level", generator, layer, args, dissection, c)
    if args.units == "auto":
        count = unit_count(args.num_units, dissection.units, layer)
        if args.ranking == "learned":
            learned, how = _learned_ranking(
                args, generator, segmenter, segmentation, z_shape, layer, concept, off, count
            )
            units = learned.order()[:count]
        else:
            units = dissection.units_for(concept)[:count]
            how = f"top {count} by IoU with {concept}"
    else:
        numbers = [int(u) for u in split(str(args.units)) or []]
        repeated = sorted({u for u in numbers if numbers.count(u) > 1})
        if repeated:
            raise ConfigError(f"--units names unit(s) {repeated} more than once")
        units = [int(u) for u in unit_numbers(np.asarray(numbers), dissection.units)]
        how = "given"
    return UnitChoice(
        layer=layer,
        units=units,
        concept=concept,
        off=off,
        on=_level(args.on_level, "on-level", generator, layer, args, dissection, c),
        how=how,
        dissection=dissection,
        learned=learned,
    )


def _learned_ranking(
    args: argparse.Namespace,
    generator: torch.nn.Module,
    segmenter: Any,
    segmentation: Segmentation,
    z_shape: tuple[int, ...],
    layer: str,
    concept: str,
    off: float | np.ndarray,
    count: int,
) -> tuple[LearnedMask, str]:
    """The learned ranking, or with a segmenter that returns labels (no gradient to follow)
    the ranking by single-unit ablation; and how the units were chosen, in words."""
    from gan_dissect.dissection import latents
    from training.devices import module_device

    with torch.no_grad():
        probe = generator(latents(args.seed, [0, 1], z_shape).to(module_device(generator)))
    if not gives_scores(segmenter, probe):
        ranking = rank_units_by_ablation(
            generator,
            segmenter,
            layer,
            concept,
            off=off,
            batch_size=args.learn_batch,
            seed=args.seed,
            z_shape=z_shape,
            concepts=segmentation.concepts,
        )
        return ranking, (
            f"top {count} by the {concept} each removes when ablated alone (the segmenter "
            "returns labels, which a learned mask cannot follow)"
        )
    learned = learn_unit_mask(
        generator,
        segmenter,
        layer,
        concept,
        off=off,
        init=None,
        steps=args.learn_steps,
        batch_size=args.learn_batch,
        lr=args.learn_lr,
        l2=args.learn_l2,
        keep_others=args.keep_others,
        others_reduce=args.others_reduce,
        budget=_budget(args, count),
        seed=args.seed,
        z_shape=z_shape,
        concepts=segmentation.concepts,
    )
    return learned, f"top {count} of a learned ablation mask"


def _concept(requested: str, dissections: dict[str, DissectionResult]) -> str:
    """--concept, or for 'auto' lamp when the segmenter has it (the shipped models' running
    example), else the concept of the unit of highest IoU / ceiling in any dissected layer."""
    concepts = next(iter(dissections.values())).concepts
    if requested != "auto":
        return requested
    if "lamp" in concepts:
        return "lamp"
    best: tuple[float, str] = (-1.0, concepts[0])
    for result in dissections.values():
        fraction = np.nan_to_num(result.rule_ceiling_fraction(), nan=-1.0)
        fraction[~result.matched()] = -1.0
        unit, c = np.unravel_index(int(np.argmax(fraction)), fraction.shape)
        if fraction[unit, c] > best[0]:
            best = (float(fraction[unit, c]), concepts[int(c)])
    return best[1]


def _layer(requested: str | None, concept: str, dissections: dict[str, DissectionResult]) -> str:
    """--layer, or for 'auto' the dissected layer whose best unit for ``concept`` has the
    highest IoU / ceiling."""
    if requested and requested != "auto":
        if requested not in dissections:
            raise ConfigError(f"the dissection has no layer {requested!r}")
        return requested

    def score(result: DissectionResult) -> float:
        column = result.rule_ceiling_fraction()[:, result.concept_index(concept)]
        return float(np.nanmax(column)) if np.isfinite(column).any() else -1.0

    return max(dissections, key=lambda name: score(dissections[name]))


def unit_count(value: object, layer_units: int, layer: str = "the layer") -> int:
    """How many units ``--num-units`` asks for: a whole number in 1..``layer_units``, or a share
    of the layer such as ``"8%"`` (rounded down, at least 1)."""
    text = str(value).strip()
    try:
        if text.endswith("%"):
            share = float(text[:-1]) / 100
            if not 0 < share <= 1:
                raise ValueError(text)
            count = max(1, int(share * layer_units + 1e-9))
        else:
            count = int(text)
    except ValueError as err:
        raise ConfigError(
            f"--num-units must be a whole number or a share of the layer such as '8%', got "
            f"{value!r}"
        ) from err
    if not 1 <= count <= layer_units:
        raise ConfigError(
            f"--num-units must lie in 1..{layer_units} (units of {layer}), got {value!r}"
        )
    return count


def _budget(args: argparse.Namespace, count: int) -> float | None:
    text = str(args.learn_budget).strip().lower()
    if text == "num-units":
        return float(count)
    if text == "none":
        return None
    try:
        value = float(text)
    except ValueError as err:
        raise ConfigError(
            f"--learn-budget must be num-units, none or a number, got {args.learn_budget!r}"
        ) from err
    if not value > 0:
        raise ConfigError(f"--learn-budget must be positive, got {value}")
    return value


def _looks_like_numbers(text: str) -> bool:
    parts = split(text) or []
    return bool(parts) and all(part.lstrip("-").isdigit() for part in parts)


def _units_of_run(folder: Path, generator: torch.nn.Module, z_shape: tuple[int, ...]) -> UnitChoice:
    """The choice recorded by an earlier ablate run."""
    path = folder / EFFECT_FILE
    try:
        choice = json.loads(path.read_text(encoding="utf-8"))["choice"]
        layer = str(choice["layer"])
        values = choice["values"]
        recorded = np.asarray(choice["units"], dtype=np.int64)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"--units {str(folder)!r}: {path} is not the effect record of an ablate run ({err})"
        ) from err
    num_units = layer_units(generator, layer, z_shape)
    units = [int(u) for u in unit_numbers(recorded, num_units)]
    return UnitChoice(
        layer=layer,
        units=units,
        concept=str(choice["concept"]),
        off=_per_unit(values["off"], units, num_units),
        on=_per_unit(values["on"], units, num_units),
        how=f"as in the ablate run {folder}: {choice['how']}",
        source={"run": str(folder)},
    )


def _per_unit(values: float | list[float], units: list[int], num_units: int) -> float | np.ndarray:
    """A recorded value per chosen unit back to a vector over the layer (others: 0)."""
    if isinstance(values, (int, float)):
        return float(values)
    vector = np.zeros(num_units, np.float64)
    vector[units] = values
    return vector


def layer_units(generator: torch.nn.Module, layer: str, z_shape: tuple[int, ...]) -> int:
    """How many units (channels) ``layer`` of ``generator`` outputs."""
    from gan_dissect.dissection import latents
    from gan_dissect.hooks import trace
    from training.devices import module_device

    find_layer(generator, layer)
    z = latents(0, [0, 1], z_shape).to(module_device(generator))
    with torch.no_grad(), trace(generator, layer, stop=True) as record:
        generator(z)
    if record.output is None or record.output.dim() != 4:
        raise ConfigError(f"layer {layer!r} does not output feature maps (N, units, h, w)")
    return int(record.output.shape[1])


def _dissections(
    args: argparse.Namespace,
    generator: torch.nn.Module,
    segmenter: Any,
    segmentation: Segmentation,
    z_shape: tuple[int, ...],
) -> dict[str, DissectionResult]:
    """Dissections by layer: of --layer (or every layer) from --dissection, or made here."""
    named = args.layer if args.layer and args.layer != "auto" else None
    if args.dissection != "auto":
        results = load_dissection(args.dissection)
        if named is not None and named not in results:
            raise ConfigError(
                f"the dissection {args.dissection} has no layer {named!r} "
                f"(it has {', '.join(results)})"
            )
        first = next(iter(results.values()))
        if first.concepts != segmentation.concepts:
            raise ConfigError(
                f"the dissection {args.dissection} was made with concepts {first.concepts}, "
                f"the segmenter has {segmentation.concepts}"
            )
        return {named: results[named]} if named is not None else results
    if args.dissect_samples < 1:
        raise ConfigError("--dissect-samples must be at least 1")
    from gan_dissect.commands.dissect import choose_layers

    layers = [named] if named is not None else choose_layers(generator, "auto", z_shape)
    return dissect_layers(
        generator,
        segmenter,
        layers,
        num_samples=args.dissect_samples,
        batch_size=args.batch_size,
        seed=args.seed,
        concepts=segmentation.concepts,
        z_shape=z_shape,
    )


def _level(
    text: str,
    name: str,
    generator: torch.nn.Module,
    layer: str,
    args: argparse.Namespace,
    dissection: DissectionResult,
    concept: int,
) -> float | np.ndarray:
    """--off-level / --on-level as a number or a per-unit vector."""
    text = str(text).strip()
    if text == "zero":
        return 0.0
    if text == "mean":
        if name == "off-level":
            raise ConfigError("--off-level 'mean' is not an ablation level; use zero or quantile:Q")
        means = np.asarray(dissection.mean_activation_in_concept[:, concept], np.float64)
        return np.nan_to_num(means, nan=0.0)
    if text.startswith("quantile:"):
        try:
            level = float(text.split(":", 1)[1])
        except ValueError as err:
            raise ConfigError(f"--{name} {text!r}: quantile:Q needs a number Q") from err
        try:
            levels = unit_quantiles(generator, layer, level, seed=args.seed)
        except InputError as err:
            raise ConfigError(f"--{name} {text!r}: {err}") from err
        return levels[:, 0].numpy().astype(np.float64)
    try:
        value = float(text)
    except ValueError as err:
        raise ConfigError(
            f"--{name} must be zero, {'mean, ' if name == 'on-level' else ''}quantile:Q or a "
            f"number, "
            f"got {text!r}"
        ) from err
    if not np.isfinite(value):
        raise ConfigError(f"--{name} must be a finite number, got {text!r}")
    return value


def split(text: str | None) -> list[str] | None:
    """Comma-separated parts, stripped; None stays None."""
    if text is None:
        return None
    return [part.strip() for part in str(text).split(",") if part.strip()]


def parse_box(
    text: str | None, size: tuple[int, int], flag: str = "--insert-region"
) -> torch.Tensor | None:
    """A box 'x0,y0,x1,y1' as an (H, W) mask: shares of the image's width and height when every
    value lies in [0, 1] (so '0,0.5,0.5,1' is the lower left quarter at any size), else pixels;
    None / 'none' / 'everywhere' is None. A bad box is a :class:`ConfigError` naming ``flag``."""
    if text is None or str(text).strip().lower() in ("none", "everywhere", ""):
        return None
    from gan_dissect.intervention import box_region

    height, width = size
    try:
        box = [float(part) for part in split(str(text)) or []]
    except ValueError as err:
        raise ConfigError(
            f"{flag} {text!r}: a region is 'x0,y0,x1,y1', as shares of the image (0..1) or in "
            "pixels"
        ) from err
    if len(box) == 4 and all(0.0 <= v <= 1.0 for v in box):
        box = [box[0] * width, box[1] * height, box[2] * width, box[3] * height]
    try:
        return box_region((height, width), box)
    except InputError as err:
        raise ConfigError(
            f"{flag} {text!r}: {err}; give shares of the image such as 0,0.5,0.5,1 (the lower "
            "left quarter) or pixels inside it"
        ) from err
