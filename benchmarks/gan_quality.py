"""How far generated street scenes lie from real ones, seen through the shipped segmenter.

Run from the repository root::

    python -m benchmarks.gan_quality --samples 2000
    python -m benchmarks.gan_quality --samples 2000 \
        --checkpoint runs/train/gan64/checkpoints/last.ckpt

Prints one table: the real-vs-real floor (``--samples`` held-out real scenes against as many
other held-out ones), the shipped generator (``training/weights/generator.pt``) and every
generator checkpoint given with ``--checkpoint`` (a ``GANModule`` Lightning checkpoint; its
averaged generator when it kept one), each as the Fréchet distance, KID x 1e3 with its standard
error, precision and recall (k = 3) in the segmenter's pooled bottleneck features
(:class:`training.evaluation.ImageQuality`). ``--json`` also writes the figures. ``--grid PNG``
writes 32 images of the last generator measured (first four rows) above 32 held-out real scenes
(last four rows), to look at side by side.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.shipped_models import add_shipped_options, load_shipped
from training.evaluation import ImageQuality, generate, quality_table
from training.images import save_grid
from training.modules import generator_from_checkpoint
from training.runs import atomic_write_json
from training.scenes import held_out_sample


def measure_generators(
    quality: ImageQuality, generators: dict[str, Any], *, samples: int, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """The floor and each generator's figures (``samples`` images from latents of ``seed``)."""
    results: dict[str, dict[str, Any]] = {"real vs real (floor)": dict(quality.floor_)}
    for name, generator in generators.items():
        started = time.perf_counter()
        results[name] = quality.measure(generate(generator, samples, seed=seed))
        results[name]["seconds"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--checkpoint", action="append", default=[], help="GANModule .ckpt")
    parser.add_argument("--no-shipped", action="store_true", help="skip the shipped generator")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated latents")
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("--grid", default=None, help="PNG: 32 generated above 32 real scenes")
    add_shipped_options(parser)
    args = parser.parse_args(argv)
    shipped, segmenter = load_shipped(args)
    generators: dict[str, Any] = {} if args.no_shipped else {"shipped generator": shipped}
    for path in args.checkpoint:
        generators[str(path)] = generator_from_checkpoint(path)
    started = time.perf_counter()
    size = int(shipped.size)  # type: ignore[arg-type]
    quality = ImageQuality(segmenter, n=args.samples, size=size)
    results = measure_generators(quality, generators, samples=args.samples, seed=args.seed)
    print(
        f"{args.samples} samples each against {args.samples} held-out real scenes, in the "
        f"shipped segmenter's pooled bottleneck features ({quality.reference_.shape[1]} dims), "
        f"{args.threads} thread(s), {time.perf_counter() - started:.0f} s"
    )
    print(quality_table(list(results.items())))
    if args.grid and generators:
        generated = generate(list(generators.values())[-1], 32, seed=args.seed)
        real = held_out_sample(32, size=size).images
        both = np.concatenate([np.asarray(generated), np.asarray(real)])
        print(f"grid: {save_grid(both, args.grid, nrow=8, scale=2, value_range=(-1.0, 1.0))}")
    if args.json:
        atomic_write_json(
            Path(args.json),
            {"samples": args.samples, "seed": args.seed, "argv": sys.argv, "results": results},
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
