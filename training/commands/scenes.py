"""Render street scenes with their exact concept masks, the lamps' glow and their statistics.

Writes ``scenes.png`` (the images), ``labels.png`` (every pixel's concept), ``lamps.png``
(lamp masks outlined: pole and head, never the glow), ``glow.png`` (the light lamps add, which
is no label), ``statistics.json`` (concept shares and presence, lamp counts, render speed) and
``index.html``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from training.evaluation import concept_statistics
from training.images import overlay_mask, save_grid
from training.pages import write_report
from training.runs import RunFolder
from training.scenes import CONCEPT_COLORS, CONCEPTS, SIZES, colorize_labels, render_scenes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m training scenes``."""
    parser.add_argument("--num-scenes", type=int, default=32, help="scenes shown in the grids")
    parser.add_argument(
        "--stats-scenes", type=int, default=2048, help="scenes the statistics are measured on"
    )
    parser.add_argument("--size", type=int, default=64, choices=SIZES, help="image side")


def run(args: argparse.Namespace, run: RunFolder) -> None:
    """Render, measure and write the pictures, statistics and page."""
    started = time.perf_counter()
    scenes = render_scenes(max(args.num_scenes, args.stats_scenes), size=args.size, seed=args.seed)
    per_second = len(scenes.images) / (time.perf_counter() - started)
    shown = scenes.subset(slice(0, args.num_scenes))
    scale = max(1, 192 // args.size)
    save_grid(shown.images, run.path("scenes.png"), nrow=8, scale=scale)
    save_grid(colorize_labels(shown.labels), run.path("labels.png"), nrow=8, scale=scale)
    lamp = shown.labels == CONCEPTS.index("lamp")
    save_grid(
        overlay_mask(shown.images, lamp, color=(255, 0, 255), outline=True),
        run.path("lamps.png"),
        nrow=8,
        scale=scale,
    )
    save_grid(shown.glow, run.path("glow.png"), nrow=8, scale=scale, value_range=(0.0, 1.0))
    stats = concept_statistics(scenes.labels)
    lamp_all = scenes.labels == CONCEPTS.index("lamp")
    counts = np.bincount(scenes.lamp_count, minlength=scenes.lamp_present.shape[1] + 1)
    statistics = {
        "scenes": len(scenes.images),
        "size": args.size,
        "seed": args.seed,
        "scenes_per_second": per_second,
        "concept_share": dict(zip(CONCEPTS, stats["shares"].mean(0), strict=True)),
        "concept_presence": dict(zip(CONCEPTS, stats["present"].mean(0), strict=True)),
        "lamp_count_distribution": (counts / counts.sum()).tolist(),
        "scenes_with_a_lit_lamp": float(scenes.any_lamp_lit.mean()),
        "lit_share_of_lamps": float(scenes.lamp_lit.sum() / max(scenes.lamp_present.sum(), 1)),
        "glowing_pixels_outside_lamps": float(((scenes.glow > 0.1) & ~lamp_all).mean()),
    }
    run.write_json("statistics.json", statistics)
    write_report(
        run,
        "scenes.html",
        title=f"Street scenes ({args.size} px)",
        summary=(
            f"{len(CONCEPTS)} concepts with exact masks; "
            f"{statistics['scenes_with_a_lit_lamp']:.0%} of scenes have a lit lamp"
        ),
        preview="scenes.png",
        subtitle="Procedural streets at dusk: what the GAN learns and the segmenter labels.",
        statistics=statistics,
        legend=[(name, "#" + bytes(CONCEPT_COLORS[i]).hex()) for i, name in enumerate(CONCEPTS)],
    )
