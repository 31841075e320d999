"""Evaluate the shipped models on held-out scenes and print every figure the README quotes.

    python benchmarks/evaluate_training.py [--scenes 1024] [--samples 1024] [--json out.json]

- segmenter: mIoU and per-concept IoU (lamp IoU among them) on the held-out scenes, against
  their exact masks (targets: mIoU >= 0.90, lamp IoU >= 0.80);
- lamp classifier: accuracy on the held-out scenes (target >= 0.95);
- generator (and generator32 when shipped): its images and held-out real scenes, both labelled
  by the shipped segmenter: each concept's mean pixel share (target: within 30 % of real), lamp
  presence (target: >= 70 % of the real rate) and the Fréchet segmentation distance; and, in
  the segmenter's pooled deepest features, FD, KID +- s.e., precision and recall (targets:
  >= 0.7) against the held-out scenes, beside the real-vs-real floor (see
  ``python -m benchmarks.gan_quality`` for the 2,000-sample table);
- the scene renderer's speed, each model's recorded training time, the weights' total size.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from training.evaluation import (
    LAMP_PRESENCE_TARGET,
    REL_SHARE_TARGET,
    ImageQuality,
    evaluate_classifier,
    evaluate_generator,
    evaluate_segmenter,
    generate,
    lamp_occlusion_effect,
    quality_table,
)
from training.pretrained import WEIGHTS_DIR, load_pretrained, read_model_card
from training.runs import atomic_write_json
from training.scenes import CONCEPTS, held_out_sample, held_out_scenes, render_scenes


def _verdict(ok: bool) -> str:
    return "meets target" if ok else "BELOW TARGET"


def _minutes(name: str) -> str:
    card = read_model_card(name)
    return f"{card['train_time_s'] / 60:.1f} min ({card['epochs']} epochs, {card['command']})"


def _generator_report(
    name: str, segmenter: torch.nn.Module, scenes: int, samples: int
) -> dict[str, Any]:
    generator = load_pretrained(name)
    size = int(generator.size)  # type: ignore[arg-type]
    real = held_out_sample(scenes, size=size)  # spread over 64 chunks of the held-out stream
    result = evaluate_generator(generator, segmenter, real, n=samples, seed=0)
    print(f"\n{name} ({generator.size} px), {samples} samples vs {scenes} held-out scenes,")
    print("both labelled by the shipped segmenter:")
    print(f"  {'concept':<9} {'real':>7} {'generated':>9} {'rel.err':>8} {'present real/gen':>17}")
    for concept in CONCEPTS:
        row = result["concepts"][concept]
        presence = f"{row['real_presence']:.1%}/{row['generated_presence']:.1%}"
        print(
            f"  {concept:<9} {row['real_share']:7.2%} {row['generated_share']:9.2%} "
            f"{row['relative_error']:8.1%} {presence:>17}"
        )
    print(
        f"  worst share error {result['max_relative_error']:.1%} ({result['worst_concept']}): "
        f"{_verdict(result['max_relative_error'] <= REL_SHARE_TARGET)}"
    )
    print(
        f"  lamp presence {result['lamp_presence_ratio']:.1%} of real: "
        f"{_verdict(result['lamp_presence_ratio'] >= LAMP_PRESENCE_TARGET)}"
    )
    print(f"  Fréchet segmentation distance {result['fsd']:.2f} (shares in percent)")
    n = min(scenes, samples)
    quality = ImageQuality(segmenter, n=n, size=size)
    features = quality.measure(generate(generator, n, seed=0))
    result["features"] = features
    print(f"  in the segmenter's pooled features, {n} samples against {n} held-out scenes:")
    table = quality_table([("real vs real (floor)", features["floor"]), (name, features)])
    print("\n".join("    " + line for line in table.splitlines()))
    print(
        f"  precision {features['precision']:.3f}, recall {features['recall']:.3f}: "
        f"{_verdict(min(features['precision'], features['recall']) >= 0.7)}"
    )
    print(f"  training time {_minutes(name)}")
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Print the figures and return them (also written to ``--json`` when given)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", type=int, default=1024, help="held-out scenes")
    parser.add_argument("--samples", type=int, default=1024, help="generated images")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    figures: dict[str, Any] = {"scenes": args.scenes, "samples": args.samples}

    started = time.perf_counter()
    render_scenes(2048, seed=1)
    figures["scenes_per_second"] = 2048 / (time.perf_counter() - started)
    print(f"scene renderer: {figures['scenes_per_second']:.0f} scenes/s (64 px)")

    held_out = held_out_scenes(args.scenes)
    segmenter = load_pretrained("segmenter")
    seg = evaluate_segmenter(segmenter, held_out)
    figures["segmenter"] = seg
    print(f"\nsegmenter on {args.scenes} held-out scenes:")
    print(f"  mIoU {seg['miou']:.4f}: {_verdict(seg['miou'] >= 0.90)}")
    print(f"  lamp IoU {seg['lamp_iou']:.4f}: {_verdict(seg['lamp_iou'] >= 0.80)}")
    print("  " + ", ".join(f"{c} {v:.3f}" for c, v in seg["iou"].items()))
    print(f"  training time {_minutes('segmenter')}")

    classifier = load_pretrained("lamp_classifier")
    cls = evaluate_classifier(classifier, held_out)
    figures["lamp_classifier"] = cls
    print(f"\nlamp classifier on {args.scenes} held-out scenes ({cls['positive_rate']:.0%} lit):")
    print(f"  accuracy {cls['accuracy']:.4f}: {_verdict(cls['accuracy'] >= 0.95)}")
    occlusion = lamp_occlusion_effect(classifier, held_out)
    figures["lamp_classifier_occlusion"] = occlusion
    print(
        f"  occluding the lit lamps flips {occlusion['flipped_lamps_occluded']:.0%} of "
        f"{occlusion['scenes']} scenes it calls lit; the same boxes elsewhere flip "
        f"{occlusion['flipped_elsewhere_occluded']:.0%}"
    )
    print(f"  training time {_minutes('lamp_classifier')}")

    for name in ("generator", "generator32"):
        if (WEIGHTS_DIR / f"{name}.pt").is_file():
            figures[name] = _generator_report(name, segmenter, args.scenes, args.samples)

    total = sum(p.stat().st_size for p in WEIGHTS_DIR.glob("*.pt"))
    figures["weights_mb"] = total / 1e6
    print(f"\nshipped weights: {total / 1e6:.1f} MB in {WEIGHTS_DIR}")
    if args.json:
        atomic_write_json(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
