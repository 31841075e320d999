"""Remove the shipped GAN's lamps by ablating its lamp units, and insert them in a region.

Run from the repository root, once ``training/weights/`` holds the shipped models::

    python -m benchmarks.intervention_ablation       # layer3, 8 % of its units, 1000 samples
    python -m benchmarks.intervention_ablation --layer layer4 --units 4

The units (at most 8 % of the layer) are the first of a learned ablation mask (Adam on a soft
mask over the units with an L2 penalty, on latents of their own stream), beside the first by
IoU with lamp in a 1000-sample dissection and three sets of random units. Each set is switched
off (to 0) on the same ``--samples`` latents, other than those it was chosen on, and the
shipped segmenter counts every concept before and after. Printed: the share of lamp pixels
removed (net and pixel by pixel) with a bootstrap interval over samples, every other concept's
relative change, the light that remains around removed lamp pixels, the ACE of inserting the
units inside a pixel box, and the effect-versus-units curve of the three rankings. Pictures
(the same streets before / after / difference, the curve) go to
``benchmarks/intervention_figures/``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.shipped_models import add_shipped_options, load_shipped, unit_budget
from gan_dissect.dissection import dissect
from gan_dissect.effects import (
    BRIGHT,
    BRIGHT_MIN_PIXELS,
    EFFECT_STREAM,
    InterventionEffect,
    bright_pixels,
    effect_curve,
    measure_effect,
    random_orders,
)
from gan_dissect.intervention import UnitEdit, ablate, box_region
from gan_dissect.ranking import OTHERS_REDUCTIONS, LearnSettings, learn_unit_mask
from gan_dissect.streams import latents
from gan_dissect.subject import Subject
from training import pages as report
from training.images import to_uint8_images

FIGURES = Path(__file__).resolve().parent / "intervention_figures"
TARGETS = {"removed": 0.70, "others": 0.10, "random": 0.10}


def _interval(effect: InterventionEffect, rounds: int = 1000) -> tuple[float, float]:
    """95 % bootstrap interval (over samples) of the net share of lamp pixels removed."""
    c = effect.concept_index
    before, after = effect.before[:, c], effect.ablated[:, c]
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(before), size=(rounds, len(before)))
    shares = 1.0 - after[draws].sum(1) / np.maximum(before[draws].sum(1), 1)
    low, high = np.quantile(shares, [0.025, 0.975])
    return float(low), float(high)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="layer3")
    parser.add_argument("--units", type=int, default=None, help="units ablated (8 %% of the layer)")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--region", default="0,32,32,64", help="insertion box x0,y0,x1,y1")
    parser.add_argument("--region-samples", type=int, default=500)
    parser.add_argument("--curve", default="1,2,3,5,8,12,16,24")
    parser.add_argument("--curve-samples", type=int, default=300)
    parser.add_argument("--learn-steps", type=int, default=200)
    parser.add_argument(
        "--keep-others", type=float, default=0.0, help="learned mask: penalty on other concepts"
    )
    parser.add_argument(
        "--others-reduce",
        choices=OTHERS_REDUCTIONS,
        default="mean",
        help="learned mask: penalise the mean or the largest change of the other concepts",
    )
    parser.add_argument(
        "--learn-budget",
        action="store_true",
        help="learned mask: keep its sum at most the number of units ablated",
    )
    parser.add_argument(
        "--figures", type=Path, default=FIGURES, help="folder of the pictures (%(default)s)"
    )
    add_shipped_options(parser)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    generator, segmenter = load_shipped(args)
    subject = Subject.build(generator, segmenter, batch_size=50)
    dissection = dissect(subject, args.layer, num_samples=1000)
    lamp = dissection.concept_index("lamp")
    units_in_layer = dissection.units
    k = unit_budget(units_in_layer, args.units)
    settings = LearnSettings(
        steps=args.learn_steps,
        lr=0.05,
        l2=0.005,
        keep_others=args.keep_others,
        others_reduce=args.others_reduce,
        budget=float(k) if args.learn_budget else None,
    )
    mask = learn_unit_mask(subject, args.layer, "lamp", settings=settings)
    learned = mask.order()[:k]
    by_iou = dissection.units_for("lamp")[:k]
    on = dissection.mean_activation_in_concept[:, lamp]
    print(
        f"shipped generator {args.layer} ({units_in_layer} units), {k} units = "
        f"{k / units_in_layer:.1%} of the layer; {args.samples} samples (effect stream), "
        f"torch threads {args.threads}"
    )
    penalty = (
        f"; penalty {args.keep_others} x {args.others_reduce} change of the other concepts"
        if args.keep_others
        else ""
    )
    budget = f"; budget {k}" if args.learn_budget else ""
    print(f"learned ranking ({args.learn_steps} steps of 8 latents{penalty}{budget}): {learned}")
    print(f"IoU ranking (1000-sample dissection): units {by_iou}")
    effect, _ = measure_effect(
        subject, UnitEdit(args.layer, learned, on=on), "lamp", num_samples=args.samples
    )
    low, high = _interval(effect)
    other, change = effect.largest_other_change()
    print("\nablation of the learned units")
    print(
        f"  lamp pixels removed: {effect.removed_share():.1%} (95 % interval {low:.1%} - "
        f"{high:.1%}); pixel by pixel {effect.removed_pixel_share():.1%}   "
        f"[target >= {TARGETS['removed']:.0%}]"
    )
    print("  relative change of every other concept's pixels:")
    for name, value in effect.relative_changes().items():
        if name != "lamp" and value is not None:
            print(f"    {name:9s} {value:+.1%}")
    print(f"  largest: {other} {change:.1%}   [target <= {TARGETS['others']:.0%}]")
    glow = effect.glow
    print(
        f"  light left around removed lamp pixels (ring of {glow['radius']} px): brightening "
        f"over the surroundings {glow['brightening_before']:.4f} before, "
        f"{glow['brightening_after']:.4f} after = {glow['brightening_remaining']:.0%} remains"
    )
    ace = effect.ace(in_region=False)
    assert ace is not None
    print(
        f"  ACE of the units on the lamp share (insert everywhere - ablate): {ace['ace']:+.4f} "
        f"(inserted {ace['inserted_share']:.4f}, ablated {ace['ablated_share']:.4f}, "
        f"unedited {ace['before_share']:.4f})"
    )
    iou_effect, _ = measure_effect(
        subject, UnitEdit(args.layer, by_iou), "lamp", num_samples=args.samples
    )
    print(
        f"\nablation of the {k} best units by IoU: {iou_effect.removed_share():.1%} removed; "
        f"largest other change {iou_effect.largest_other_change()[0]} "
        f"{iou_effect.largest_other_change()[1]:.1%}"
    )
    randoms = []
    for order in random_orders(units_in_layer, 3, seed=0).values():
        random_effect, _ = measure_effect(
            subject, UnitEdit(args.layer, order[:k]), "lamp", num_samples=args.samples
        )
        randoms.append(random_effect.removed_share())
    print(
        f"ablation of {k} random units (3 sets): {', '.join(f'{r:.1%}' for r in randoms)} "
        f"removed (mean {np.mean(randoms):.1%})   [target < {TARGETS['random']:.0%}]"
    )
    box = [float(v) for v in args.region.split(",")]
    region = box_region(int(np.sqrt(effect.image_pixels)), box)
    in_region, _ = measure_effect(
        subject, UnitEdit(args.layer, learned, on=on, region=region, region_name=args.region),
        "lamp", num_samples=args.region_samples,
    )  # fmt: skip
    inside = in_region.ace(in_region=True)
    assert inside is not None
    print(
        f"\ninsertion inside the box {args.region} ({in_region.region_pixels} px, "
        f"{args.region_samples} samples): ACE {inside['ace']:+.4f} +- "
        f"{inside['standard_error']:.4f} (lamp share of the box inserted "
        f"{inside['inserted_share']:.4f}, ablated {inside['ablated_share']:.4f}, unedited "
        f"{inside['before_share']:.4f})"
    )
    counts = [int(c) for c in args.curve.split(",") if int(c) <= units_in_layer]
    orders = {
        "learned ranking": mask.order(),
        "IoU ranking": dissection.units_for("lamp"),
        **random_orders(units_in_layer, 3, seed=1),
    }
    curve = effect_curve(
        subject, args.layer, "lamp", orders, counts, num_samples=args.curve_samples
    )
    print(f"\nlamp pixels removed by the first k units ({args.curve_samples} samples per point)")
    print("  k      " + " ".join(f"{c:>6d}" for c in curve.counts))
    for name in ("learned ranking", "IoU ranking"):
        print(f"  {name[:7]:7s}" + " ".join(f"{v:6.1%}" for v in curve.removed[name]))
    random_mean = np.mean([curve.removed[n] for n in curve.orders if n.startswith("random")], 0)
    print("  random " + " ".join(f"{v:6.1%}" for v in random_mean))
    args.figures.mkdir(parents=True, exist_ok=True)
    report.line_chart(
        args.figures / "ablation_curve.png", curve.counts, curve.removed,
        xlabel=f"units of {args.layer} ablated", ylabel="share of lamp pixels removed",
        title=f"Shipped GAN: lamp removal by ablation ({args.curve_samples} samples per point)",
        reference=TARGETS["removed"], reference_label="target 70 %",
    )  # fmt: skip
    _pictures(subject, effect, args.layer, learned, args.figures)
    print(f"\npictures in {args.figures}; {time.perf_counter() - started:.0f} s")
    return 0


def _pictures(
    subject: Subject, effect: InterventionEffect, layer: str, units: list[int], figures: Path
) -> None:
    """The 8 samples with the most lamp pixels: before, after and difference in one picture;
    printed: how many of them show a lit lamp head (bright lamp pixels) before and after."""
    generator = subject.generator
    lamp = effect.before[:, effect.concept_index]
    shown = sorted(int(i) for i in np.argsort(-lamp, kind="stable")[:8])
    z = latents(effect.seed, shown, subject.z_shape, stream=EFFECT_STREAM)
    with torch.inference_mode():
        before = generator(z)
        with ablate(generator, layer, units):
            after = generator(z)
        lit = [
            bright_pixels(images, subject.segmentation(images), effect.concept_index)
            for images in (before, after)
        ]
    showing = [int((count >= BRIGHT_MIN_PIXELS).sum()) for count in lit]
    print(
        f"the {len(shown)} streets of ablation_streets.png showing a lit lamp head (>= "
        f"{BRIGHT_MIN_PIXELS} lamp pixels of luminance >= {BRIGHT:g}): {showing[0]} before, "
        f"{showing[1]} after; bright lamp pixels {int(lit[0].sum())} -> {int(lit[1].sum())} "
        f"({1 - lit[1].sum() / max(lit[0].sum(), 1):.1%} fewer)"
    )
    rows = np.concatenate(
        [
            to_uint8_images(before, value_range=(-1.0, 1.0)),
            to_uint8_images(after, value_range=(-1.0, 1.0)),
            report.difference_pictures(before, after),
        ]
    )
    report.save_row(figures, "ablation_streets.png", rows, nrow=len(shown), scale=2)


if __name__ == "__main__":
    raise SystemExit(main())
