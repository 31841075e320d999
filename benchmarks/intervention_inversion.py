"""Invert held-out real scenes into the shipped GAN, then remove their lamps by unit ablation.

Run from the repository root, once ``training/weights/`` holds the shipped models::

    python -m benchmarks.intervention_inversion                   # 32 scenes with a lit lamp
    python -m benchmarks.intervention_inversion --order 13,30,46,47,43,37,20,33 --counts 5,8

Each scene is inverted three ways: z only from the best of 64 random latents; z only from the
shipped encoder's guess (when ``training/weights/encoder.pt`` exists); and the encoder's guess,
then z, then layer2's features refined. Printed per way: the mean absolute pixel error and PSNR
at each stage, and the segmenter's agreement with the exact labels on the reconstruction (next
to its agreement on the real scene itself). Then the first ``--counts`` lamp units (of the
learned ranking, as in ``intervention_ablation``, unless ``--order`` gives it) are switched off
on the inverted scenes and the edit is carried onto the real pictures, by mask (the
generator's pixels where the edit changed something) and by difference (the real pixels moved
by the generator's change): the lamp pixels the segmenter finds in the real scenes before and
after the edit (target: >= 50 % fewer), and the share of the exact lamp pixels still labelled
lamp. Pictures go to ``benchmarks/intervention_figures/``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.shipped_models import add_shipped_options, load_shipped, unit_budget
from gan_dissect.intervention import ablate
from gan_dissect.inversion import Inversion, InvertSettings, invert, paste, psnr
from gan_dissect.ranking import LearnSettings, learn_unit_mask
from gan_dissect.subject import Subject
from training import pages as report
from training.images import to_uint8_images
from training.pretrained import load_pretrained, weights_path
from training.scenes import CONCEPTS, held_out_scenes

FIGURES = Path(__file__).resolve().parent / "intervention_figures"
LAMP = CONCEPTS.index("lamp")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="layer3", help="layer of the lamp units")
    parser.add_argument(
        "--counts", default="", help="first k units of the ranking to ablate (8 %% of the layer)"
    )
    parser.add_argument("--order", default=None, help="unit ranking; default: learned")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--refine-layer", default="layer2")
    parser.add_argument("--z-steps", type=int, default=300)
    parser.add_argument("--feature-steps", type=int, default=200)
    parser.add_argument("--learn-steps", type=int, default=200)
    add_shipped_options(parser)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    generator, segmenter = load_shipped(args)
    encoder = None
    if weights_path("encoder", args.weights_dir).is_file():
        encoder = load_pretrained("encoder", weights_dir=args.weights_dir)
    subject = Subject.build(generator, segmenter, batch_size=16)
    if args.order:
        order = [int(u) for u in args.order.split(",")]
    else:
        settings = LearnSettings(steps=args.learn_steps, lr=0.05, l2=0.005)
        mask = learn_unit_mask(subject, args.layer, "lamp", settings=settings)
        order = mask.order()
    units_in_layer = generator.layer_shapes[args.layer][0]
    counts = [int(k) for k in args.counts.split(",") if k.strip()] or [unit_budget(units_in_layer)]
    pool = held_out_scenes(512)
    lit = np.flatnonzero(pool.any_lamp_lit & ((pool.labels == LAMP).reshape(512, -1).sum(1) > 0))
    chosen = lit[: args.images]
    real = torch.from_numpy(pool.images[chosen])
    exact = torch.from_numpy(pool.labels[chosen])
    print(
        f"shipped generator, {len(chosen)} held-out scenes with a lit lamp (of the first 512); "
        f"lamp units {args.layer} {order[: max(counts)]} (ranked); torch threads {args.threads}"
    )
    with torch.no_grad():
        real_labels = segmenter(real).argmax(1)
    print(
        f"segmenter on the real scenes: {float((real_labels == exact).float().mean()):.1%} of "
        f"pixels agree with the exact labels"
    )
    ways = {"random starts, z only": {"encoder": None, "layer": None}}
    if encoder is not None:
        ways["encoder start, z only"] = {"encoder": encoder, "layer": None}
        ways[f"encoder, z, then {args.refine_layer}"] = {
            "encoder": encoder, "layer": args.refine_layer
        }  # fmt: skip
    else:
        print("no shipped encoder (training/weights/encoder.pt): random starts only")
        ways[f"random, z, then {args.refine_layer}"] = {"encoder": None, "layer": args.refine_layer}
    final: Inversion | None = None
    for name, way in ways.items():
        begun = time.perf_counter()
        steps = InvertSettings(
            z_steps=args.z_steps, feature_steps=args.feature_steps, candidates=64
        )
        inversion = invert(
            subject, real, encoder=way["encoder"], layer=way["layer"], settings=steps
        )
        with torch.no_grad():
            labels = segmenter(inversion.reconstructions).argmax(1)
        stages = ", ".join(f"{stage} {error:.3f}" for stage, error in inversion.errors.items())
        print(
            f"{name:30s} pixel L1 by stage: {stages}; PSNR "
            f"{np.mean(psnr(inversion.reconstructions, real)):.1f} dB; segmenter agrees with the "
            f"exact labels on {float((labels == exact).float().mean()):.1%} of pixels "
            f"({time.perf_counter() - begun:.0f} s)"
        )
        final = inversion
    assert final is not None
    before_count = int((real_labels == LAMP).sum())
    exact_lamp = exact == LAMP
    shown_edit = None
    for k in counts:
        units = order[:k]
        with torch.no_grad(), final.applied(generator), ablate(generator, args.layer, units):
            edited = generator(final.z)
        with torch.no_grad():
            edited_labels = segmenter(edited).argmax(1)
            recon_labels = segmenter(final.reconstructions).argmax(1)
        print(
            f"\nedit: {args.layer} units {units} off ({k / units_in_layer:.1%} of the layer); "
            f"on the generator's own reconstruction {int((recon_labels == LAMP).sum())} -> "
            f"{int((edited_labels == LAMP).sum())} lamp pixels"
        )
        for mode in ("mask", "difference"):
            pasted = paste(real, final.reconstructions, edited, mode=mode)  # type: ignore[arg-type]
            with torch.no_grad():
                after = segmenter(pasted).argmax(1)
            after_count = int((after == LAMP).sum())
            still = float(((after == LAMP) & exact_lamp).sum() / exact_lamp.sum())
            outside = ~exact_lamp[:, None].expand_as(real)
            print(
                f"  paste by {mode:10s}: lamp pixels on the real scenes {before_count} -> "
                f"{after_count} = {1 - after_count / before_count:.1%} fewer [target >= 50 %]; "
                f"exact lamp pixels still lamp {still:.1%}; mean |change| outside the exact "
                f"lamps {float((pasted - real).abs()[outside].mean()):.4f}, inside "
                f"{float((pasted - real).abs()[~outside].mean()):.4f}"
            )
            if shown_edit is None and mode == "mask":
                shown_edit = pasted
    assert shown_edit is not None
    pasted = shown_edit
    FIGURES.mkdir(exist_ok=True)
    shown = slice(0, 8)
    rows = np.concatenate(
        [
            to_uint8_images(real[shown], value_range=(-1.0, 1.0)),
            to_uint8_images(final.reconstructions[shown], value_range=(-1.0, 1.0)),
            to_uint8_images(pasted[shown], value_range=(-1.0, 1.0)),
            report.difference_pictures(real[shown], pasted[shown]),
        ]
    )
    report.save_row(FIGURES, "inversion.png", rows, nrow=8, scale=2)
    print(f"picture (rows: real, reconstruction, edited real, difference) in {FIGURES}")
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
