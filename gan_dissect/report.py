"""Write a dissection as JSON, pictures and one ``index.html``, all from the same results.

Per layer the page shows how many units match each concept (a table and a bar chart) and, per
unit, a table row sortable by IoU with a strip of its top-activating samples: on top each
generated image with the unit's thresholded activation outlined in red, below it the unit's
concept mask (white) with the same outline, so the overlap that IoU counts can be seen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_dissect.dissection import DissectionResult, save_dissection
from gan_dissect.hooks import trace
from gan_dissect.stats import Upsampler
from gan_dissect.subject import Segmentation, Subject
from training import pages
from training.devices import module_device
from training.images import make_grid, overlay_mask, save_figure, to_uint8_images
from training.runs import RunFolder, atomic_write_bytes

OUTLINE = (255, 40, 40)
MASK_ON = (235, 235, 235)
MASK_OFF = (45, 45, 55)


def unit_pictures(
    results: dict[str, DissectionResult], subject: Subject, report_units: int = 64
) -> dict[str, dict[int, np.ndarray]]:
    """By layer and unit, the picture strip of ``report_units`` units per layer (those of
    highest IoU): the unit's top samples, regenerated with ``subject``'s generator, with its
    thresholded activation outlined (top row) over the samples and over their concept masks."""
    return {
        name: _unit_strips(
            result,
            _units_to_show(result, report_units),
            subject.generator,
            subject.segmentation,
            subject.batch_size,
        )
        for name, result in results.items()
    }


def write_report(
    run: RunFolder,
    results: dict[str, DissectionResult],
    pictures: dict[str, dict[int, np.ndarray]],
    *,
    title: str = "GAN dissection",
    summary: str = "",
    subtitle: str = "",
) -> Path:
    """Write ``dissection.json``, the unit strips of :func:`unit_pictures`, bar charts and
    ``index.html`` into ``run``; every unit gets a table row. Nothing here runs a model.

    ``title`` and the one-line ``summary`` are what the runs index shows; the thumbnail is the
    strip of the unit of highest IoU. Returns the page's path.
    """
    folder = run.root
    save_dissection(folder / "dissection.json", results)
    layers = []
    for name, result in results.items():
        strips = pictures.get(name, {})
        images = {}
        for unit, strip in strips.items():
            relative = Path("units") / safe_name(name) / f"unit{unit:04d}.png"
            _save_png(strip, folder / relative)
            images[unit] = relative.as_posix()
        chart = Path("figures") / f"{safe_name(name)}_concepts.png"
        _concept_chart(result, folder / chart)
        context = _layer_context(result, images, chart.as_posix())
        # shown at twice their size: 64 px samples are too small to judge at 1:1
        context["strip_width"] = 2 * next(iter(strips.values())).shape[1] if strips else 0
        layers.append(context)
    return pages.write_report(
        run,
        "dissection.html",
        title=title,
        summary=summary,
        preview=_preview(folder, results),
        packages=("gan_dissect",),
        subtitle=subtitle,
        layers=layers,
        extra={},
    )


def _preview(folder: Path, results: dict[str, DissectionResult]) -> str | None:
    """The picture strip of the unit with the highest IoU of any layer (the index thumbnail)."""
    best = max(results.values(), key=lambda result: float(result.best_iou().max()))
    unit = int(best.best_iou().argmax())
    strip = f"units/{safe_name(best.layer)}/unit{unit:04d}.png"
    return strip if (folder / strip).is_file() else None


def _units_to_show(result: DissectionResult, count: int) -> list[int]:
    best = result.best_iou()
    order = np.lexsort((np.arange(result.units), -best))
    return [int(u) for u in order[: max(0, count)]]


def _layer_context(result: DissectionResult, images: dict[int, str], chart: str) -> dict[str, Any]:
    best, fraction = result.best_concepts(), result.rule_ceiling_fraction()
    matched = result.matched()
    rows = []
    for record in result.unit_records():
        unit = record["unit"]
        rows.append(
            {
                **record,
                "label": record["concept"] if record["matched"] else "",
                "fraction": fraction[unit, best[unit]],
                "image": images.get(unit),
            }
        )
    rows.sort(key=lambda row: (-row["iou"], row["unit"]))
    return {
        "name": result.layer,
        "anchor": safe_name(result.layer),
        "shape": result.layer_shape,
        "units": result.units,
        "matched": int(matched.sum()),
        "concepts": result.concept_summary(),
        "rows": rows,
        "chart": chart,
        "threshold_mode": result.threshold_mode,
        "quantile": result.quantile,
        "iou_floor": result.iou_floor,
        "num_samples": result.num_samples,
        "selection_samples": result.selection_samples,
        "segmentation_size": result.segmentation_size,
        "quantile_error": result.quantile_error["relative"],
        "shown": len(images),
    }


def _unit_strips(
    result: DissectionResult,
    units: Sequence[int],
    generator: torch.nn.Module,
    segmentation: Segmentation,
    batch_size: int,
) -> dict[int, np.ndarray]:
    """Per unit a picture: its top samples outlined (top row) and their concept masks."""
    needed: dict[int, list[tuple[int, int]]] = defaultdict(list)  # sample -> (unit, rank)
    for unit in units:
        for rank, sample in enumerate(result.top_samples[unit]):
            needed[int(sample)].append((unit, rank))
    samples = sorted(needed)
    k = result.top_samples.shape[1]
    height, width = result.segmentation_size
    upsample = Upsampler((result.layer_shape[1], result.layer_shape[2]), (height, width))
    best = result.best_concepts()
    tiles = {unit: np.zeros((2 * k, height, width, 3), np.uint8) for unit in units}
    device = module_device(generator)
    with torch.inference_mode():
        for start in range(0, len(samples), batch_size):
            batch = samples[start : start + batch_size]
            z = result.latents(batch).to(device)
            with trace(generator, result.layer, clone=True) as record:
                images = generator(z)
            labels = segmentation(images).cpu()
            assert record.output is not None
            activations = record.output.cpu()
            pictures = to_uint8_images(images.cpu(), value_range=(-1.0, 1.0))
            for row, sample in enumerate(batch):
                for unit, rank in needed[sample]:
                    concept = int(best[unit])
                    threshold = result.threshold_for(unit)
                    unit_map = upsample(activations[row, unit])
                    unit_mask = (unit_map > threshold).numpy()
                    concept_mask = (labels[row] == concept).numpy()
                    tiles[unit][rank] = overlay_mask(
                        pictures[row], unit_mask, color=OUTLINE, outline=True
                    )[0]
                    tiles[unit][k + rank] = overlay_mask(
                        _mask_picture(concept_mask), unit_mask, color=OUTLINE, outline=True
                    )[0]
    return {unit: make_grid(tiles[unit], nrow=k, pad=2) for unit in units}


def _mask_picture(mask: np.ndarray) -> np.ndarray:
    picture = np.empty((*mask.shape, 3), np.uint8)
    picture[:] = MASK_OFF
    picture[mask] = MASK_ON
    return picture


def _concept_chart(result: DissectionResult, path: Path) -> None:
    """Bar chart: how many units of the layer match each concept."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = [row for row in result.concept_summary() if row["units"] > 0]
    figure, axis = plt.subplots(figsize=(max(3.0, 0.6 * len(rows) + 1.5), 2.6))
    if rows:
        axis.bar([row["concept"] for row in rows], [row["units"] for row in rows], color="#2a62c9")
        axis.set_ylabel("units")
        axis.yaxis.set_major_locator(MaxNLocator(integer=True))
        axis.tick_params(axis="x", rotation=45)
    else:
        axis.text(0.5, 0.5, "no unit clears the IoU floor", ha="center", va="center")
        axis.set_axis_off()
    axis.set_title(f"{result.layer}: units per concept (IoU > {result.iou_floor:g})", fontsize=10)
    save_figure(figure, path)


def _save_png(picture: np.ndarray, path: Path) -> None:
    from training.images import png_bytes

    atomic_write_bytes(path, png_bytes(picture))


def safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "layer"
