"""Dissect the shipped GAN with the shipped segmenter: are there lamp units, and how good?

Run from the repository root, once ``training/weights/`` holds the shipped models::

    python -m benchmarks.dissect_shipped                 # 2000 samples, every layer
    python -m benchmarks.dissect_shipped --samples 10000
    python -m benchmarks.dissect_shipped --samples 1000 --thresholds maxiou

Prints, per layer, how many units match a concept and the lamp units (IoU > 0.04 with lamp as
their best concept) with IoU, the layer's lamp ceiling and the fraction of it reached; then
whether some layer has a lamp unit at >= 0.4 of its ceiling. Beside the ceiling (the ideal unit
at its best level) stands the ideal unit held, like the units, to its top 1 % of pixels, which
a concept larger than 1 % of the image cannot reach in full. Two controls use the same
segmenter and layers: the generator's architecture with fresh (untrained) weights, and the
shipped generator's best lamp layer with every unit shown another sample's map. The report
with pictures is ``python -m gan_dissect dissect --config configs/dissect.yaml``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

from benchmarks.shipped_models import add_shipped_options, load_shipped
from gan_dissect.dissection import DissectionResult, dissect, dissect_layers
from gan_dissect.subject import Subject
from gan_dissect.synthetic import ShuffledUnits
from training.pretrained import build_module, read_model_card

TARGET = 0.4  # lamp units at >= 0.4 of the layer's ceiling


def _lamp_lines(result: DissectionResult) -> list[str]:
    lamp = result.concept_index("lamp")
    fraction = result.ceiling_fraction()[:, lamp]
    units = result.units_for("lamp", matched_only=True)
    lines = [
        f"  {result.layer}: {int(result.matched().sum())}/{result.units} units match a concept; "
        f"lamp ceiling {result.ceiling[lamp]:.3f} (held to the units' top "
        f"{1 - result.quantile:.0%} of pixels: {result.ceiling_at_quantile[lamp]:.3f}); "
        f"{len(units)} lamp units"
    ]
    for unit in units[:5]:
        lines.append(
            f"    unit {unit:4d}: IoU {result.iou[unit, lamp]:.3f} = {fraction[unit]:.2f} of "
            f"ceiling (threshold {result.thresholds[unit, lamp]:.4g})"
        )
    best = int(np.argmax(result.iou[:, lamp]))
    lines.append(
        f"    highest lamp IoU of any unit: unit {best} {result.iou[best, lamp]:.3f} = "
        f"{fraction[best]:.2f} of ceiling (chance {result.chance_iou()[best, lamp]:.3f}; its best "
        f"concept {result.concepts[result.best_concepts()[best]]})"
    )
    if result.threshold_mode == "quantile":
        same_rule = result.iou[best, lamp] / result.ceiling_at_quantile[lamp]
        lines.append(f"      = {same_rule:.2f} of the ceiling held to the same share of pixels")
    return lines


def _lamp_best(result: DissectionResult) -> str:
    """The highest lamp IoU of any unit and its fraction of the ceiling, or why there is none."""
    lamp = result.concept_index("lamp")
    if not result.ceiling[lamp] > 0:
        return "none (no lamp in its images)"
    best = result.iou[:, lamp].max()
    line = f"{best:.3f} = {np.nanmax(result.ceiling_fraction()[:, lamp]):.2f}"
    if result.threshold_mode == "quantile":
        line += f" ({best / result.ceiling_at_quantile[lamp]:.2f} held to the same share)"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument(
        "--thresholds",
        choices=("quantile", "maxiou"),
        default="quantile",
        help="maxiou: per (unit, concept) thresholds maximising IoU on 500 other samples",
    )
    parser.add_argument("--shuffled-layer", default=None, help="default: the best lamp layer")
    add_shipped_options(parser, threads=2)
    args = parser.parse_args(argv)
    generator, segmenter = load_shipped(args)
    subject = Subject.build(generator, segmenter, layers="auto", batch_size=args.batch_size)
    layers = list(subject.layers)
    print(
        f"shipped GAN, layers {', '.join(layers)}; segmenter concepts "
        f"{', '.join(segmenter.concepts)}; {args.samples} samples (load {os.getloadavg()[0]:.2f})"
    )
    options = {"num_samples": args.samples, "thresholds": args.thresholds}
    results = dissect_layers(subject, **options)
    best_layer, best_fraction = None, -1.0
    for name, result in results.items():
        print("\n".join(_lamp_lines(result)))
        lamp = result.concept_index("lamp")
        matched = result.units_for("lamp", matched_only=True)
        if matched:
            fraction = float(np.nanmax(result.ceiling_fraction()[matched, lamp]))
            if fraction > best_fraction:
                best_layer, best_fraction = name, fraction
    verdict = "reached" if best_fraction >= TARGET else "NOT reached"
    found = f"{best_fraction:.2f} of the ceiling at {best_layer}" if best_layer else "none found"
    print(f"best lamp unit: {found} (target >= {TARGET}: {verdict})")

    card = read_model_card("generator", args.weights_dir)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        untrained = build_module(card["class"], card["kwargs"]).eval()
    control = Subject.build(untrained, segmenter, layers=layers, batch_size=args.batch_size)
    controls = dissect_layers(control, **options)
    best = ", ".join(f"{name} {r.best_iou().max():.3f}" for name, r in controls.items())
    print(f"untrained generator (same architecture), best IoU per layer: {best} (floor 0.04)")
    lamp_best = ", ".join(f"{name} {_lamp_best(r)}" for name, r in controls.items())
    print(f"  its highest lamp IoU per layer: {lamp_best}")
    shuffled_layer = args.shuffled_layer or best_layer or layers[-1]
    shuffled_units = ShuffledUnits(generator, shuffled_layer).eval()
    shuffled = dissect(
        Subject.build(shuffled_units, segmenter, batch_size=args.batch_size), "shuffled", **options
    )
    print(
        f"{shuffled_layer} with units shuffled across samples: best IoU "
        f"{shuffled.best_iou().max():.3f} (floor 0.04), highest lamp IoU {_lamp_best(shuffled)}  "
        f"(load {os.getloadavg()[0]:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
