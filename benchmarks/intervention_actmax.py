"""The most lamp the shipped GAN can draw, with and without its lamp units; pixel space beside.

Run from the repository root, once ``training/weights/`` holds the shipped models::

    python -m benchmarks.intervention_actmax                     # layer3, learned 5 units
    python -m benchmarks.intervention_actmax --units 46,47,20,39,33
    python -m benchmarks.intervention_actmax --sweep 8,16,24     # more units of the ranking

Generator-constrained activation maximisation (DGN-AM) of the lamp area (the segmenter's mean
lamp probability): z on the sphere of radius sqrt(128), Adam, ``--restarts`` starts. Then the
lamp units (the first of a learned ablation mask, as in ``intervention_ablation``, unless
``--units`` names them) are switched off and z is optimised again from the same starts and
from the best latents found before. Printed: the best lamp area before and under ablation and
its fall (target >= 50 %), the lamp pixels the segmenter labels in those best images, what
typical samples reach, and how scene-like the results are: the mean absolute pixel difference
to the nearest of 1024 held-out real scenes, for the constrained results, the pixel-space
results (the same objective over free pixels) and typical samples. The side-by-side picture
goes to ``benchmarks/intervention_figures/actmax.png``. With ``--sweep``, the best lamp area is
also measured with the first k units of the ranking off, for each k: how many units it takes
before even the best latent cannot draw a lamp.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.shipped_models import add_shipped_options, load_shipped, unit_budget
from gan_dissect.actmax import (
    ACTMAX_STREAM,
    concept_objective,
    maximise_latent,
    maximise_pixels,
)
from gan_dissect.intervention import ablate
from gan_dissect.ranking import LearnSettings, learn_unit_mask
from gan_dissect.streams import TYPICAL_STREAM, latents
from gan_dissect.subject import Subject
from training import pages as report
from training.images import to_uint8_images
from training.scenes import held_out_scenes

FIGURES = Path(__file__).resolve().parent / "intervention_figures"


def _nearest_real(images: torch.Tensor, real: torch.Tensor) -> float:
    distance = torch.cdist(images.flatten(1), real.flatten(1), p=1) / images[0].numel()
    return float(distance.min(dim=1).values.mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="layer3")
    parser.add_argument("--num-units", type=int, default=None, help="default: 8 %% of the layer")
    parser.add_argument("--units", default=None, help="unit numbers; default: learned ranking")
    parser.add_argument("--sweep", default="", help="numbers of ranked units to ablate too")
    parser.add_argument("--restarts", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--learn-steps", type=int, default=200)
    add_shipped_options(parser)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    generator, segmenter = load_shipped(args)
    subject = Subject.build(generator, segmenter)
    z_shape = subject.z_shape
    sweep = [int(k) for k in args.sweep.split(",") if k.strip()]
    if args.units and not sweep:
        order = [int(u) for u in args.units.split(",")]
    else:
        settings = LearnSettings(steps=args.learn_steps, lr=0.05, l2=0.005)
        mask = learn_unit_mask(subject, args.layer, "lamp", settings=settings)
        order = mask.order()
    if args.units:
        units = [int(u) for u in args.units.split(",")]
    else:
        units = order[: unit_budget(len(order), args.num_units)]
    objective = concept_objective(segmenter, "lamp")
    options = {"steps": args.steps, "lr": args.lr}
    before = maximise_latent(subject, objective, restarts=args.restarts, **options)
    starts = latents(0, range(args.restarts), z_shape, stream=ACTMAX_STREAM)
    with ablate(generator, args.layer, units):
        after = maximise_latent(
            subject, objective, start=torch.cat([starts, before.inputs]), **options
        )
        typical_after = _typical(generator, objective, z_shape)
    typical = _typical(generator, objective, z_shape)
    pixels = maximise_pixels(
        objective, tuple(before.images.shape[1:]), restarts=args.restarts, **options
    )
    lamp = segmenter.concepts.index("lamp")
    with torch.no_grad():
        hard_before = (segmenter(before.images).argmax(1) == lamp).float().mean((1, 2))
        hard_after = (segmenter(after.images).argmax(1) == lamp).float().mean((1, 2))
        samples = generator(latents(0, range(args.restarts), z_shape, stream=TYPICAL_STREAM))
    fall = 1.0 - after.scores.max() / before.scores.max()
    print(
        f"shipped generator; lamp units {args.layer} {units}; {args.restarts} restarts x "
        f"{args.steps} Adam steps (lr {args.lr}), z on the sphere; torch threads {args.threads}"
    )
    print(
        f"best lamp area (mean lamp probability) in the generator: {before.scores.max():.4f} "
        f"(restarts: {', '.join(f'{s:.3f}' for s in np.sort(before.scores)[::-1])})"
    )
    print(
        f"best lamp area with the units off ({len(after.scores)} restarts, from the same starts "
        f"and from the best latents above): {after.scores.max():.4f}"
    )
    print(f"fall of the best achievable lamp area: {fall:.1%}   [target >= 50 %]")
    print(
        f"lamp pixels (segmenter labels) in the best image: {float(hard_before.max()):.2%} of "
        f"the image before, {float(hard_after.max()):.2%} under ablation"
    )
    print(
        f"typical samples (500): mean lamp area {typical['mean']:.4f} (99th percentile "
        f"{typical['p99']:.4f}); under ablation {typical_after['mean']:.4f}"
    )
    real = torch.from_numpy(held_out_scenes(1024).images)
    print("distance to the nearest of 1024 held-out real scenes (mean |pixel difference|):")
    for name, images in (
        ("constrained actmax", before.images),
        ("constrained, under ablation", after.images[after.order()[: args.restarts]]),
        ("pixel-space actmax", pixels.images),
        ("typical generated samples", samples),
        ("real scenes (another 8)", torch.from_numpy(held_out_scenes(1032).images[1024:])),
    ):
        print(f"  {name:28s} {_nearest_real(images, real):.3f}")
    print(f"pixel-space best lamp area: {pixels.scores.max():.4f}")
    for k in sweep:
        with ablate(generator, args.layer, order[:k]):
            swept = maximise_latent(
                subject, objective, start=torch.cat([starts, before.inputs]), **options
            )
            mean = _typical(generator, objective, z_shape)["mean"]
        print(
            f"first {k} units of the learned ranking off: best lamp area {swept.scores.max():.4f} "
            f"({1 - swept.scores.max() / before.scores.max():.1%} lower), typical samples' mean "
            f"{mean:.4f}"
        )
    FIGURES.mkdir(exist_ok=True)
    rows = np.concatenate(
        [
            to_uint8_images(before.images[before.order()], value_range=(-1.0, 1.0)),
            to_uint8_images(pixels.images[pixels.order()], value_range=(-1.0, 1.0)),
            to_uint8_images(after.images[after.order()[: args.restarts]], value_range=(-1, 1)),
        ]
    )
    report.save_row(FIGURES, "actmax.png", rows, nrow=args.restarts, scale=2)
    print(f"picture (rows: constrained, pixel space, constrained under ablation) in {FIGURES}")
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


def _typical(generator: torch.nn.Module, objective, z_shape: tuple[int, ...]) -> dict[str, float]:
    scores = []
    with torch.no_grad():
        for start in range(0, 500, 50):
            z = latents(0, range(start, start + 50), z_shape, stream=TYPICAL_STREAM)
            scores.append(objective(generator(z), {}))
    values = torch.cat(scores).numpy()
    return {"mean": float(values.mean()), "p99": float(np.quantile(values, 0.99))}


if __name__ == "__main__":
    raise SystemExit(main())
