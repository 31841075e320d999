"""Dissect a generator: find the concept each unit draws, by overlap with a segmentation.

Writes dissection.json (thresholds, IoU of every unit with every concept, ceilings, top samples),
a picture strip per unit and index.html. By default the shipped GAN and segmenter; any other with
--generator / --segmenter package.module:factory (a class, a function returning the model, or
the model object itself). The generator is checked on a first batch: a latent shape it does
not take names --z-shape, and its pixel range ([-1, 1], [0, 1] or [0, 255], detected, or
--output-range) is mapped to the [-1, 1] that segmenters and pictures get. Progress is
checkpointed next to --out: run the same command again after an interruption to resume.
Started by ``torchrun --nproc-per-node N -m gan_dissect dissect ...`` (or ``srun torchrun`` on
SLURM, on several nodes with --nnodes / --rdzv-endpoint), the samples are spread over the N
processes (one GPU each when there are GPUs), their statistics merged with torch.distributed,
and rank 0 alone writes --out: the same dissection.json as one process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from gan_dissect import distributed
from gan_dissect.dissection import (
    Checkpoint,
    DissectionResult,
    checkpoint_files,
    dissect_layers,
    model_digest,
)
from gan_dissect.loading import SHIPPED, load_generator, load_segmenter
from gan_dissect.models import parse_output_range
from gan_dissect.report import unit_pictures, write_report
from gan_dissect.subject import Segmentation, Subject
from training.devices import resolve_device
from training.errors import ConfigError
from training.runs import RunFolder, Terminated


def add_model_arguments(
    parser: argparse.ArgumentParser, title: str = "models"
) -> argparse._ArgumentGroup:
    """--generator, --segmenter, --concepts and --z-shape, shared by every gan_dissect command;
    returns their argument group so that a command can add its own model options to it."""
    models = parser.add_argument_group(title)
    models.add_argument(
        "--generator",
        default=SHIPPED,
        help="'shipped' (the project's GAN) or package.module:factory of a torch.nn.Module "
        "mapping latents to images (N, 3, H, W) (their range: --output-range)",
    )
    models.add_argument(
        "--segmenter",
        default=SHIPPED,
        help="'shipped' or package.module:factory of images in [-1, 1] -> labels (N, H, W) or "
        "scores (N, C, H, W), with a 'concepts' attribute (or give --concepts)",
    )
    models.add_argument("--concepts", default=None, help="comma-separated concept names")
    models.add_argument(
        "--z-shape",
        default=None,
        help="latent shape, e.g. 128 or 128,1,1; None: the generator's z_shape or z_dim",
    )
    models.add_argument(
        "--output-range",
        default="auto",
        help="the generator's pixel range 'low,high' (e.g. 0,1), mapped to the [-1, 1] that "
        "segmenters and pictures get; 'auto': [-1, 1], [0, 1] or [0, 255] told apart on a "
        "first batch (any negative pixel: [-1, 1]); write a negative low as --output-range=-1,1",
    )
    return models


def subject_from_flags(args: argparse.Namespace, layers: str = "", device: Any = None) -> Subject:
    """The :class:`~gan_dissect.subject.Subject` that --generator, --segmenter, --concepts,
    --z-shape, --output-range, --batch-size, --seed and --device (or ``device``) describe,
    checked on a first batch; ``layers`` ('auto' or names) are the layers to dissect."""
    where = resolve_device(args.device) if device is None else device
    generator = load_generator(args.generator, where)
    segmenter = load_segmenter(args.segmenter, where)
    return Subject.build(
        generator,
        Segmentation(segmenter, _split(args.concepts)),
        layers=layers,
        z_shape=_ints(args.z_shape),
        output_range=parse_output_range(getattr(args, "output_range", None)),
        batch_size=args.batch_size,
        seed=args.seed,
        device=where,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m gan_dissect dissect``."""
    models = add_model_arguments(parser, "what to dissect")
    models.add_argument(
        "--layers",
        default="auto",
        help="comma-separated layer names (named_modules), or 'auto': every top-level module "
        "whose output is a feature map smaller than the image",
    )
    method = parser.add_argument_group("method")
    method.add_argument("--num-samples", type=int, default=1000, help="samples to dissect")
    method.add_argument("--batch-size", type=int, default=32, help="samples per batch")
    method.add_argument(
        "--quantile", type=float, default=0.99, help="unit threshold: this activation quantile"
    )
    method.add_argument(
        "--iou-floor", type=float, default=0.04, help="a unit matches a concept above this IoU"
    )
    method.add_argument(
        "--thresholds",
        choices=("quantile", "maxiou"),
        default="quantile",
        help="'maxiou': per (unit, concept) thresholds maximising IoU on separate samples",
    )
    method.add_argument(
        "--selection-samples",
        type=int,
        default=500,
        help="samples on which --thresholds maxiou chooses thresholds",
    )
    method.add_argument("--top-k", type=int, default=8, help="top-activating samples per unit")
    method.add_argument(
        "--report-units", type=int, default=64, help="units per layer shown with pictures"
    )
    scale = parser.add_argument_group("scale and resumption")
    scale.add_argument(
        "--processes",
        type=int,
        default=1,
        help="1; spread the samples over N processes with torchrun --nproc-per-node N -m "
        "gan_dissect dissect ... instead",
    )
    scale.add_argument(
        "--checkpoint",
        default="auto",
        help="progress file: 'auto' (hidden, next to --out), a path, or 'off'",
    )
    scale.add_argument(
        "--checkpoint-interval", type=float, default=60.0, help="seconds between checkpoints"
    )


def run(args: argparse.Namespace, run_folder: RunFolder) -> None:
    """Load the models, dissect (over the processes of a launcher such as torchrun, when it
    started several), and write the report into ``run_folder`` (rank 0 alone)."""
    if args.processes != 1:
        raise ConfigError(
            f"--processes {args.processes}: start the processes with a launcher instead, e.g. "
            f"torchrun --nproc-per-node {args.processes} -m gan_dissect dissect ... (see README, "
            "Scale-out)"
        )
    with distributed.launched_group(resolve_device(args.device)) as device:
        subject = subject_from_flags(args, args.layers, device)
        checkpoint = _checkpoint_path(args, subject)
        results = _dissect(args, subject, checkpoint)
        if distributed.launched_rank() == 0:  # rank 0 alone writes the run folder
            run_folder.extra["processes"] = distributed.launched_world()  # in run.json
            _write(args, run_folder, results, subject)
        distributed.barrier()  # the report is written: every rank's progress may go
    if checkpoint is not None:  # exactly the file this process wrote, nothing else nearby
        files = checkpoint_files(checkpoint.path, distributed.launched_world())
        files[distributed.launched_rank()].unlink(missing_ok=True)


def _write(
    args: argparse.Namespace,
    run_folder: RunFolder,
    results: dict[str, DissectionResult],
    subject: Subject,
) -> None:
    pictures = unit_pictures(results, subject, args.report_units)  # computed, then shown
    write_report(
        run_folder,
        results,
        pictures,
        summary=summarise(results),
        subtitle=(
            f"{_name(args.generator, 'generator')} dissected with "
            f"{_name(args.segmenter, 'segmenter')}: {args.num_samples} samples, "
            f"layers {', '.join(subject.layers)}"
            f"{describe_range(subject, parse_output_range(args.output_range) == 'auto')}"
        ),
    )


def _dissect(
    args: argparse.Namespace, subject: Subject, checkpoint: Checkpoint | None
) -> dict[str, DissectionResult]:
    try:
        return dissect_layers(
            subject,
            args.num_samples,
            quantile=args.quantile,
            iou_floor=args.iou_floor,
            thresholds=args.thresholds,
            selection_samples=args.selection_samples,
            top_k=args.top_k,
            checkpoint=checkpoint,
        )
    except (KeyboardInterrupt, Terminated):
        world = distributed.launched_world()
        saved = [] if checkpoint is None else checkpoint_files(checkpoint.path, world)
        if saved and all(path.is_file() for path in saved):
            print(
                f"progress is saved in {checkpoint.path if checkpoint else ''}; run the same "
                "command again to resume",
                file=sys.stderr,
            )
        elif saved:
            print(
                "no progress was saved yet (the first checkpoint comes after "
                f"--checkpoint-interval {args.checkpoint_interval:g} s)",
                file=sys.stderr,
            )
        raise


def summarise(results: dict[str, DissectionResult]) -> str:
    """One line per run for the index page: matched units and the best unit per layer."""
    parts = []
    for name, result in results.items():
        best = int(result.best_iou().argmax())
        label = result.concepts[int(result.best_concepts()[best])]
        fraction = result.rule_ceiling_fraction()[best, result.best_concepts()[best]]
        rule = (
            "at its best threshold"
            if result.threshold_mode == "maxiou"
            else f"held to the top {1 - result.quantile:.0%} of pixels"
        )
        parts.append(
            f"{name}: {int(result.matched().sum())}/{result.units} units match a concept, "
            f"best unit {best} = {label} (IoU {result.best_iou()[best]:.3f}, "
            f"{fraction:.2f} of what a perfect unit reaches {rule})"
        )
    return "; ".join(parts)


# --- models ----------------------------------------------------------------------------------


def describe_range(subject: Subject, detected: bool) -> str:
    """'' for a generator drawing in [-1, 1], else how its pixels were mapped to [-1, 1]."""
    if subject.output_range == (-1.0, 1.0):
        return ""
    low, high = subject.output_range
    how = "detected" if detected else "stated"
    return f"; pixels in [{low:g}, {high:g}] ({how}) mapped to [-1, 1]"


# --- processes and checkpoints -----------------------------------------------------------------


# options that change where and how a run is written or shown, never its numbers
_OPTIONS_THAT_LEAVE_NUMBERS_ALONE = frozenset(
    ["out", "overwrite", "config", "checkpoint", "checkpoint_interval", "report_units", "device"]
)


def _checkpoint_path(args: argparse.Namespace, subject: Subject) -> Checkpoint | None:
    if args.checkpoint == "off":
        return None
    if args.checkpoint != "auto":
        return Checkpoint(Path(args.checkpoint), args.checkpoint_interval)
    # named after everything that shapes the numbers, so other settings never collide with it
    key = {k: v for k, v in vars(args).items() if k not in _OPTIONS_THAT_LEAVE_NUMBERS_ALONE}
    key["models"] = [model_digest(subject.generator), model_digest(subject.segmenter)]
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    out = Path(args.out)
    return Checkpoint(
        out.parent / f".{out.name}.dissect-{digest[:12]}.ckpt", args.checkpoint_interval
    )


# --- small helpers -------------------------------------------------------------------------------


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in str(text).split(",") if part.strip()]


def _ints(text: str | int | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(part) for part in str(text).split(","))
    except ValueError as err:
        raise ConfigError(f"--z-shape must be integers separated by commas, got {text!r}") from err


def _name(spec: str, role: str) -> str:
    return f"the shipped {role}" if spec == SHIPPED else spec
