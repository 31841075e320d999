"""Switch a concept's units off (and on) and measure what it does to the images.

Chooses units of --layer for --concept (the first --num-units of a learned ablation mask or of
the IoU ranking of a dissection; or given numbers), ablates them on --num-samples generated
images and counts every concept's pixels through the segmenter before and after: the share of
the concept removed, the change of every other concept, the light that remains around removed
pixels, and the average causal effect of inserting them (everywhere, and inside
--insert-region). Ablating the first k units of each ranking and of random orders gives the
effect-versus-units curve. Writes effect.json, the pictures (the same samples before, after
and their difference) and index.html.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gan_dissect.commands._units import add_unit_arguments, parse_box, split, unit_spec
from gan_dissect.commands.dissect import add_model_arguments, subject_from_flags
from gan_dissect.effects import (
    BRIGHT,
    BRIGHT_MIN_PIXELS,
    EffectCurve,
    InterventionEffect,
    bright_pixels,
    effect_curve,
    measure_effect,
    random_orders,
)
from gan_dissect.intervention import ablate, insert
from gan_dissect.streams import EFFECT_STREAM
from gan_dissect.subject import Subject
from gan_dissect.units import EFFECT_FILE, UnitChoice, choose_units
from training import pages as report
from training.errors import ConfigError
from training.runs import RunFolder

DEFAULT_INSERT_REGION = "0,0.5,0.5,1"
"""The lower left quarter of the image, as shares of its width and height (x0, y0, x1, y1)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m gan_dissect ablate``."""
    add_model_arguments(parser)
    add_unit_arguments(parser)
    measure = parser.add_argument_group("measurement")
    measure.add_argument("--num-samples", type=int, default=1000, help="samples measured")
    measure.add_argument("--batch-size", type=int, default=50, help="samples per batch")
    measure.add_argument(
        "--insert-region",
        default=DEFAULT_INSERT_REGION,
        help="box x0,y0,x1,y1 in which units are inserted (and ablated) for the ACE in a "
        "region: shares of the image when every value lies in 0..1 (default: the lower left "
        "quarter), else pixels; or 'none'",
    )
    measure.add_argument(
        "--region-samples", type=int, default=300, help="samples of the region measurement"
    )
    measure.add_argument(
        "--curve-counts",
        default="1,2,4,8",
        help="numbers of units ablated for the effect-versus-units curve ('' skips it)",
    )
    measure.add_argument("--curve-samples", type=int, default=200, help="samples per curve point")
    measure.add_argument(
        "--random-repeats", type=int, default=3, help="random unit orders in the curve"
    )
    measure.add_argument("--show", type=int, default=6, help="samples shown before and after")


def run(args: argparse.Namespace, run_folder: RunFolder) -> None:
    """Choose the units, measure, and write effect.json, the pictures and index.html."""
    for name in ("num_samples", "batch_size", "region_samples", "curve_samples", "show"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
    subject = subject_from_flags(args)
    region = parse_box(args.insert_region, subject.image_size)
    choice = choose_units(subject, unit_spec(args))
    effect, _ = measure_effect(subject, choice.edit(), choice.concept, num_samples=args.num_samples)
    in_region = None
    if region is not None:
        in_region, _ = measure_effect(
            subject,
            choice.edit(region=region, region_name=args.insert_region),
            choice.concept,
            num_samples=args.region_samples,
        )
    curve = _curve(args, subject, choice)
    record: dict[str, Any] = {
        "choice": {
            "layer": choice.layer,
            "units": choice.units,
            "concept": choice.concept,
            "how": choice.how,
            "values": choice.values_for_record(),
            **choice.source,
        },
        "summary": effect.summary(),
        "effect": effect.to_dict(),
        "insertion_in_region": None if in_region is None else in_region.summary(),
        "curve": None if curve is None else curve.to_dict(),
        "learned_mask": None if choice.learned is None else choice.learned.to_dict(),
        "iou_of_units": _iou_of_units(choice),
    }
    shown = _show(subject, choice, effect, in_region, region, args.show)
    record["shown"] = shown.bright_record()
    run_folder.write_json(EFFECT_FILE, record)
    page = report.Page(run_folder.root)
    _headline(page, effect, in_region, curve, choice)
    _sections(page, args, choice, effect, in_region, curve, region, shown)
    page.write(
        run_folder,
        "intervention.html",
        packages=("gan_dissect",),
        title=f"Ablation of {choice.concept} units",
        summary=(
            f"{choice.layer} units {choice.units}: {report.percent(effect.removed_share())} of "
            f"{choice.concept} pixels removed over {args.num_samples} samples; largest other "
            f"change {effect.largest_other_change()[0]} "
            f"{report.percent(effect.largest_other_change()[1])}"
        ),
        preview="with_and_without.png",
        subtitle=f"{choice.describe()}; {args.num_samples} samples",
        intro=(
            f"Switching {len(choice.units)} units of {choice.layer} off (to "
            f"{_describe(choice.values_for_record()['off'])}) on {args.num_samples} generated "
            f"images, and on (to {_describe(choice.values_for_record()['on'])}), with every "
            "concept counted by the segmenter. The same samples with the units on and off "
            "are at the end of the page."
        ),
    )


def _describe(values: float | list[float]) -> str:
    if isinstance(values, list):
        return f"per-unit values {', '.join(f'{v:.3g}' for v in values)}"
    return f"{values:g}"


def _iou_of_units(choice: UnitChoice) -> list[dict[str, Any]] | None:
    if choice.dissection is None:
        return None
    c = choice.dissection.concept_index(choice.concept)
    rank = {u: i for i, u in enumerate(choice.dissection.units_for(choice.concept))}
    strength = None if choice.learned is None else choice.learned.strength
    return [
        {
            "unit": u,
            "iou": float(choice.dissection.iou[u, c]),
            "iou_rank": rank[u] + 1,
            "learned_strength": None if strength is None else float(strength[u]),
            "label": choice.dissection.label(u),
        }
        for u in choice.units
    ]


def _curve(args: argparse.Namespace, subject: Subject, choice: UnitChoice) -> EffectCurve | None:
    try:
        counts = sorted({int(k) for k in split(str(args.curve_counts)) or []})
    except ValueError as err:
        raise ConfigError(
            f"--curve-counts must be comma-separated unit counts, got {args.curve_counts!r}"
        ) from err
    if not counts or choice.dissection is None:
        return None
    units = choice.dissection.units
    counts = [k for k in counts if 1 <= k <= units] or [min(len(choice.units), units)]
    if len(choice.units) <= units and len(choice.units) not in counts:
        counts = sorted({*counts, len(choice.units)})
    orders: dict[str, list[int]] = {"IoU ranking": choice.dissection.units_for(choice.concept)}
    if choice.learned is not None:
        orders[_ranking_name(choice)] = choice.learned.order()
    orders.update(random_orders(units, args.random_repeats, args.seed))
    return effect_curve(
        subject,
        choice.layer,
        choice.concept,
        orders,
        counts,
        off=choice.off,
        num_samples=args.curve_samples,
    )


def _by_ablation(choice: UnitChoice) -> bool:
    """Whether the units were ranked by single-unit ablation (a segmenter of labels)."""
    return choice.learned is not None and choice.learned.params.get("method") == (
        "single-unit ablation"
    )


def _ranking_name(choice: UnitChoice) -> str:
    return "single-unit ablation ranking" if _by_ablation(choice) else "learned ranking"


def _random_removal(curve: EffectCurve | None, k: int) -> float | None:
    if curve is None or k not in curve.counts:
        return None
    i = curve.counts.index(k)
    values = [curve.removed[name][i] for name in curve.orders if name.startswith("random")]
    return float(np.mean(values)) if values else None


def _headline(
    page: report.Page,
    effect: InterventionEffect,
    in_region: InterventionEffect | None,
    curve: EffectCurve | None,
    choice: UnitChoice,
) -> None:
    concept = choice.concept
    other, change = effect.largest_other_change()
    page.add_headline(
        f"{concept} pixels removed",
        report.percent(effect.removed_share()),
        f"net (1 - after / before), {effect.num_samples} samples; pixel by pixel "
        f"{report.percent(effect.removed_pixel_share())}",
    )
    page.add_headline(
        "largest change of another concept",
        report.percent(change),
        f"{other} (relative change of its pixel count)",
    )
    random = _random_removal(curve, len(choice.units))
    if random is not None and curve is not None:
        page.add_headline(
            f"{len(choice.units)} random units remove",
            report.percent(random),
            f"mean of {sum(n.startswith('random') for n in curve.orders)} random sets, "
            f"{curve.num_samples} samples",
        )
    ace = effect.ace(in_region=False)
    if ace is not None:
        page.add_headline(
            f"ACE of the units on {concept} (whole image)",
            f"{ace['ace']:+.4f}",
            f"{concept} share inserted {ace['inserted_share']:.4f} minus ablated "
            f"{ace['ablated_share']:.4f} (unedited {ace['before_share']:.4f})",
        )
    region_ace = None if in_region is None else in_region.ace(in_region=True)
    if region_ace is not None and in_region is not None:
        page.add_headline(
            f"ACE inside the region {in_region.params['region']}",
            f"{region_ace['ace']:+.4f} ± {region_ace['standard_error']:.4f}",
            f"share of the region's pixels that are {concept}: inserted "
            f"{region_ace['inserted_share']:.4f}, ablated {region_ace['ablated_share']:.4f}, "
            f"unedited {region_ace['before_share']:.4f}",
        )
    glow = effect.glow
    if glow.get("brightening_remaining") is not None:
        page.add_headline(
            "light left around removed pixels",
            report.percent(glow["brightening_remaining"]),
            f"brightening of a {glow['radius']} px ring over its surroundings: "
            f"{glow['brightening_before']:.4f} before, {glow['brightening_after']:.4f} after "
            "(luminance 0..1)",
        )


@dataclass
class _Shown:
    """The samples the page shows, generated before the page is built: the ``samples`` with
    the most concept pixels ``before`` and ``after`` ablation, and the ``inserted_samples``
    where insertion in the region added the most, ``unedited`` and ``inserted``."""

    samples: list[int]
    before: torch.Tensor
    after: torch.Tensor
    inserted_samples: list[int]
    unedited: torch.Tensor | None
    inserted: torch.Tensor | None
    bright_before: list[int]  # per shown sample: bright concept pixels (see bright_pixels)
    bright_after: list[int]

    def bright_record(self) -> dict[str, Any]:
        """How many of the shown samples still show a bright (lit) pixel of the concept."""
        return {
            "samples": self.samples,
            "brightness": BRIGHT,
            "bright_pixels_before": self.bright_before,
            "bright_pixels_after": self.bright_after,
            "showing_before": sum(c >= BRIGHT_MIN_PIXELS for c in self.bright_before),
            "showing_after": sum(c >= BRIGHT_MIN_PIXELS for c in self.bright_after),
            "min_pixels": BRIGHT_MIN_PIXELS,
        }


def _show(
    subject: Subject,
    choice: UnitChoice,
    effect: InterventionEffect,
    in_region: InterventionEffect | None,
    region: torch.Tensor | None,
    count: int,
) -> _Shown:
    """Generate the samples the page shows (the measured latents, edited as measured)."""
    generator = subject.generator
    chosen, unedited, inserted = [], None, None
    if region is not None and in_region is not None:
        chosen = _insertion_samples(in_region, count)
        z = subject.latents(chosen, EFFECT_STREAM)
        with torch.inference_mode():
            unedited = generator(z).cpu()
            with insert(generator, choice.layer, choice.units, choice.on, region=region):
                inserted = generator(z).cpu()
    samples = _shown_samples(effect, count)
    z = subject.latents(samples, EFFECT_STREAM)
    concept = subject.concept_index(choice.concept)
    with torch.inference_mode():
        before = generator(z).cpu()
        with ablate(generator, choice.layer, choice.units, off=choice.off):
            after = generator(z).cpu()
        bright = [
            bright_pixels(images, subject.segmentation(images.to(subject.device)).cpu(), concept)
            for images in (before, after)
        ]
    return _Shown(samples, before, after, chosen, unedited, inserted, *(b.tolist() for b in bright))


def _sections(
    page: report.Page,
    args: argparse.Namespace,
    choice: UnitChoice,
    effect: InterventionEffect,
    in_region: InterventionEffect | None,
    curve: EffectCurve | None,
    region: torch.Tensor | None,
    shown: _Shown,
) -> None:
    folder = page.folder
    concepts = effect.concepts
    shares = effect.shares()
    changes = effect.relative_changes()
    rows = [
        [
            name,
            shares["before"][c],
            shares["ablated"][c],
            shares.get("inserted", [None] * 99)[c],
            changes[name],
        ]
        for c, name in enumerate(concepts)
    ]
    blocks = page.section("Every concept, before and after", "concepts")
    blocks.append(
        report.text(
            "Mean share of the image's pixels per concept on the unedited samples, with the units "
            "ablated and with them inserted everywhere; the last column is the relative change of "
            "each concept's pixel count under ablation."
        )
    )
    blocks.append(
        report.table(
            ["concept", "unedited", "ablated", "inserted", "relative change (ablated)"],
            rows,
            numeric=[1, 2, 3, 4],
        )
    )
    unit_rows = _iou_of_units(choice) or []
    blocks = page.section("The units", "units")
    blocks.append(report.text(f"Chosen: {choice.describe()}."))
    if unit_rows:
        blocks.append(
            report.table(
                [
                    "unit",
                    "IoU with " + choice.concept,
                    "IoU rank",
                    "removed when ablated alone" if _by_ablation(choice) else "learned strength",
                    "dissection label",
                ],
                [
                    [r["unit"], r["iou"], r["iou_rank"], r["learned_strength"], r["label"]]
                    for r in unit_rows
                ],
                numeric=[1, 2, 3],
            )
        )
    if curve is not None:
        chart = "curve.png"
        report.line_chart(
            folder / chart,
            curve.counts,
            curve.removed,
            xlabel=f"units of {choice.layer} ablated",
            ylabel=f"share of {choice.concept} removed",
            title=f"Effect versus number of units ({curve.num_samples} samples per point)",
        )
        blocks = page.section("Effect versus number of units", "curve")
        how = (
            "The single-unit ablation ranking orders units by the share of the concept each "
            "removes when switched off alone (the segmenter returns labels, through which no mask "
            "can be learned)"
            if _by_ablation(choice)
            else "The learned ranking optimises a soft mask over the units to remove the concept "
            "(with an L2 penalty)"
        )
        blocks.append(
            report.text(
                f"The first k units of each ranking ablated together. {how}; the IoU ranking "
                "orders units by how well their high activations coincide with it; random "
                "orders are the control."
            )
        )
        blocks.append(report.figure(chart, width=620))
    if region is not None and in_region is not None:
        assert shown.unedited is not None
        assert shown.inserted is not None
        chosen, unedited, inserted = shown.inserted_samples, shown.unedited, shown.inserted
        blocks = page.section(f"Inserting the units inside {args.insert_region}", "insertion")
        ace = in_region.ace() or {"ace": float("nan")}
        blocks.append(
            report.text(
                f"The units set to their typical value where {choice.concept} is, only inside "
                f"the box (outlined). Shown: the {len(chosen)} of the {in_region.num_samples} "
                f"measured samples where insertion added the most {choice.concept} pixels in the "
                f"box. ACE in the box over all of them: {ace['ace']:+.4f}."
            )
        )
        for name, label, pictures in (
            ("unedited.png", "as generated", _outline(unedited, region)),
            ("inserted.png", "units inserted inside the box", _outline(inserted, region)),
            (
                "inserted_difference.png",
                "difference",
                report.difference_pictures(unedited, inserted),
            ),
        ):
            src, width = report.save_row(folder, name, pictures, nrow=len(chosen))
            blocks.append(report.figure(src, label=label, width=width))
    bright = shown.bright_record()
    before: Any = shown.before  # torch images beside the uint8 difference pictures below
    after: Any = shown.after
    blocks = page.section(
        f"The same samples with and without the {choice.concept} units", "streets"
    )
    blocks.append(
        report.text(
            f"The {len(shown.samples)} of the {effect.num_samples} measured samples with the most "
            f"{choice.concept} pixels: as generated (top), with the {len(choice.units)} units "
            "ablated (middle), and what changed (bottom: |after - before|, amplified twice; black "
            "is unchanged). Samples that show a bright (lit) "
            f"{choice.concept}, at least {BRIGHT_MIN_PIXELS} pixels the segmenter labels "
            f"{choice.concept} with a luminance of {BRIGHT:g} or more: "
            f"{bright['showing_before']} of {len(shown.samples)} before, "
            f"{bright['showing_after']} after."
        )
    )
    for name, label, pictures in (
        ("before.png", "before", before),
        ("after.png", f"after: {len(choice.units)} units of {choice.layer} off", after),
        ("difference.png", "difference", report.difference_pictures(before, after)),
    ):
        src, width = report.save_row(folder, name, pictures, nrow=len(shown.samples))
        blocks.append(report.figure(src, label=label, width=width))
    # The runs index's thumbnail: four streets above, the same streets without lamps below.
    count = min(4, len(shown.samples))
    report.save_row(
        folder, "with_and_without.png", torch.cat([before[:count], after[:count]]), nrow=count
    )


def _shown_samples(effect: InterventionEffect, count: int) -> list[int]:
    """The measured samples with the most concept pixels, in sample order."""
    pixels = effect.before[:, effect.concept_index]
    order = np.lexsort((np.arange(len(pixels)), -pixels))
    return sorted(int(i) for i in order[: min(count, len(pixels))])


def _insertion_samples(effect: InterventionEffect, count: int) -> list[int]:
    """The measured samples where insertion added the most concept pixels in the region."""
    assert effect.inserted_in_region is not None
    c = effect.concept_index
    gain = effect.inserted_in_region[:, c] - effect.before_in_region[:, c]
    order = np.lexsort((np.arange(len(gain)), -gain))
    return sorted(int(i) for i in order[: min(count, len(gain))])


def _outline(images: torch.Tensor, region: torch.Tensor) -> np.ndarray:
    from training.images import overlay_mask

    masks = region[None].expand(len(images), -1, -1).numpy()
    return overlay_mask(images, masks, color=(255, 40, 40), outline=True)
