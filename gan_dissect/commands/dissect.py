"""Dissect a generator: find the concept each unit draws, by overlap with a segmentation.

Writes dissection.json (thresholds, IoU of every unit with every concept, ceilings, top samples),
a picture strip per unit and index.html. By default the shipped GAN and segmenter; any other with
--generator / --segmenter package.module:factory (a class, a function returning the model, or
the model object itself). The generator is checked on a first batch: a latent shape it does
not take names --z-shape, and its pixel range ([-1, 1], [0, 1] or [0, 255], detected, or
--output-range) is mapped to the [-1, 1] that segmenters and pictures get. Progress is
checkpointed next to --out: run the same command again after an interruption to resume.
--processes N spreads the samples over N processes (one per GPU when there are GPUs) whose
statistics are merged with torch.distributed.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from gan_dissect.dissection import (
    DissectionResult,
    Segmentation,
    checkpoint_files,
    dissect_layers,
    latents,
    load_dissection,
    model_digest,
    save_dissection,
)
from gan_dissect.hooks import trace_many
from gan_dissect.models import (
    CheckedGenerator,
    check_generator,
    parse_output_range,
    with_output_range,
)
from gan_dissect.report import safe_name, write_report
from training.devices import resolve_device
from training.errors import ConfigError
from training.runs import RunFolder, Terminated, display_command

SHIPPED = "shipped"


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


def prepare_generator(args: argparse.Namespace, device: torch.device) -> CheckedGenerator:
    """The generator of --generator, checked on a first batch against --z-shape and
    --output-range and mapped to [-1, 1] (see :func:`gan_dissect.models.check_generator`)."""
    generator = load_generator(args.generator, device)
    return check_generator(
        generator, _ints(args.z_shape), parse_output_range(getattr(args, "output_range", None))
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
        "--processes", type=int, default=1, help="processes to spread the samples over"
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
    """Load the models, dissect, and write the report into ``run_folder``."""
    device = resolve_device(args.device)
    if args.processes < 1:
        raise ConfigError(f"--processes must be at least 1, got {args.processes}")
    checked = prepare_generator(args, device)
    generator, z_shape = checked.generator, checked.z_shape
    segmenter = load_segmenter(args.segmenter, device)
    concepts = _split(args.concepts)
    segmentation = Segmentation(segmenter, concepts)
    layers = choose_layers(generator, args.layers, z_shape)
    options = _dissect_options(args, z_shape, concepts)
    checkpoint = _checkpoint_path(args, generator, segmenter)
    try:
        if args.processes == 1:
            results = dissect_layers(generator, segmenter, layers, checkpoint=checkpoint, **options)
        else:
            options["output_range"] = checked.output_range
            results = _dissect_in_processes(args, layers, options, checkpoint, device)
    except (KeyboardInterrupt, Terminated):
        saved = [] if checkpoint is None else checkpoint_files(checkpoint, args.processes)
        if saved and all(path.is_file() for path in saved):
            print(
                f"progress is saved in {checkpoint}; run the same command again to resume",
                file=sys.stderr,
            )
        elif saved:
            print(
                "no progress was saved yet (the first checkpoint comes after "
                f"--checkpoint-interval {args.checkpoint_interval:g} s)",
                file=sys.stderr,
            )
        raise
    write_report(
        run_folder.root,
        results,
        generator,
        segmentation,
        report_units=args.report_units,
        batch_size=args.batch_size,
        subtitle=(
            f"{_name(args.generator, 'generator')} dissected with "
            f"{_name(args.segmenter, 'segmenter')}: {args.num_samples} samples, "
            f"layers {', '.join(layers)}{describe_range(checked)}"
        ),
        command=display_command(run_folder.command),
        home="../index.html",
    )
    run_folder.describe(
        "GAN dissection", summarise(results), preview=_preview(run_folder.root, results)
    )
    if checkpoint is not None:  # exactly the files the dissection wrote, nothing else nearby
        for path in checkpoint_files(checkpoint, args.processes):
            path.unlink(missing_ok=True)


def _preview(folder: Path, results: dict[str, DissectionResult]) -> str | None:
    """The picture strip of the unit with the highest IoU of any layer (the index thumbnail)."""
    best = max(results.values(), key=lambda result: float(result.best_iou().max()))
    unit = int(best.best_iou().argmax())
    strip = f"units/{safe_name(best.layer)}/unit{unit:04d}.png"
    return strip if (folder / strip).is_file() else None


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


def describe_range(checked: CheckedGenerator) -> str:
    """'' for a generator drawing in [-1, 1], else how its pixels were mapped to [-1, 1]."""
    if checked.output_range == (-1.0, 1.0):
        return ""
    low, high = checked.output_range
    how = "detected" if checked.detected else "stated"
    return f"; pixels in [{low:g}, {high:g}] ({how}) mapped to [-1, 1]"


def load_generator(spec: str, device: torch.device) -> torch.nn.Module:
    """The generator named by ``spec`` ('shipped' or an import path), in eval mode."""
    model = _load(spec, "generator", device)
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"--generator {spec} gives {type(model).__name__}, not a torch.nn.Module")
    return model


def load_segmenter(spec: str, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """The segmenter named by ``spec`` ('shipped' or an import path)."""
    model = _load(spec, "segmenter", device)
    if not callable(model):
        raise ConfigError(f"--segmenter {spec} gives {type(model).__name__}, which is not callable")
    return model


def _load(spec: str, role: str, device: torch.device) -> Any:
    from training.sources import import_object

    if spec == SHIPPED:
        from training.pretrained import load_pretrained

        return load_pretrained(role, device=device)
    target = import_object(spec)
    if isinstance(target, type) or (
        callable(target) and not isinstance(target, torch.nn.Module) and _takes_no_arguments(target)
    ):
        target = target()  # a class or a factory
    if isinstance(target, torch.nn.Module):
        target = target.to(device).eval()
    return target


def _takes_no_arguments(function: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in signature.parameters.values()
    )


def choose_layers(generator: torch.nn.Module, layers: str, z_shape: Sequence[int]) -> list[str]:
    """``layers`` split at commas, or for 'auto' every top-level module of ``generator`` whose
    output is a feature map (N, units, h, w) smaller than the image."""
    if layers != "auto":
        names = _split(layers)
        if not names:
            raise ConfigError("--layers names no layer")
        return names
    children = [name for name, _ in generator.named_children()]
    if not children:
        raise ConfigError(f"{type(generator).__name__} has no layers to dissect")
    z = latents(0, [0, 1], z_shape).to(next(iter(generator.parameters()), torch.empty(0)).device)
    with torch.inference_mode(), trace_many(generator, children) as traces:
        images = generator(z)
    size = tuple(images.shape[-2:])
    chosen = [
        name
        for name in children
        if (out := traces[name].output) is not None
        and out.dim() == 4
        and tuple(out.shape[-2:]) != size
        and out.shape[-2] <= size[0]
        and out.shape[-1] <= size[1]
    ]
    if not chosen:
        raise ConfigError(
            f"could not choose layers of {type(generator).__name__} automatically; name them "
            f"with --layers (top-level modules: {', '.join(children)})"
        )
    return chosen


# --- processes and checkpoints -----------------------------------------------------------------


def _dissect_options(
    args: argparse.Namespace,
    z_shape: tuple[int, ...],
    concepts: list[str] | None,
) -> dict[str, Any]:
    return {
        "num_samples": args.num_samples,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "quantile": args.quantile,
        "iou_floor": args.iou_floor,
        "thresholds": args.thresholds,
        "selection_samples": args.selection_samples,
        "top_k": args.top_k,
        "concepts": concepts,
        "z_shape": z_shape,
        "checkpoint_interval": args.checkpoint_interval,
    }


# options that change where and how a run is written or shown, never its numbers
_OPTIONS_THAT_LEAVE_NUMBERS_ALONE = frozenset(
    ["out", "overwrite", "config", "checkpoint", "checkpoint_interval", "report_units", "device"]
)


def _checkpoint_path(
    args: argparse.Namespace, generator: torch.nn.Module, segmenter: Any
) -> Path | None:
    if args.checkpoint == "off":
        return None
    if args.checkpoint != "auto":
        return Path(args.checkpoint)
    # named after everything that shapes the numbers, so other settings never collide with it
    key = {k: v for k, v in vars(args).items() if k not in _OPTIONS_THAT_LEAVE_NUMBERS_ALONE}
    key["models"] = [model_digest(generator), model_digest(segmenter)]
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    out = Path(args.out)
    return out.parent / f".{out.name}.dissect-{digest[:12]}.ckpt"


def _dissect_in_processes(
    args: argparse.Namespace,
    layers: list[str],
    options: dict[str, Any],
    checkpoint: Path | None,
    device: torch.device,
) -> dict[str, DissectionResult]:
    """Run :func:`dissect_layers` in ``args.processes`` spawned processes; rank 0's results."""
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="seethrough-dissect-") as scratch:
        result_path = Path(scratch) / "dissection.json"
        mp.spawn(
            _process_main,
            args=(
                args.processes,
                str(Path(scratch) / "rendezvous"),
                args.generator,
                options["output_range"],
                args.segmenter,
                device.type,
                layers,
                options,
                None if checkpoint is None else str(checkpoint),
                str(result_path),
            ),
            nprocs=args.processes,
            join=True,
        )
        return load_dissection(result_path)


def _process_main(
    rank: int,
    world: int,
    rendezvous: str,
    generator_spec: str,
    output_range: tuple[float, float],
    segmenter_spec: str,
    device_type: str,
    layers: list[str],
    options: dict[str, Any],
    checkpoint: str | None,
    result_path: str,
) -> None:
    """One spawned process: join the group, dissect its share, merge, rank 0 writes results."""
    import torch.distributed as dist

    use_cuda = device_type == "cuda"
    dist.init_process_group(
        "nccl" if use_cuda else "gloo",
        init_method=f"file://{rendezvous}",
        rank=rank,
        world_size=world,
    )
    try:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        device = torch.device(f"cuda:{rank % torch.cuda.device_count()}" if use_cuda else "cpu")
        if use_cuda:
            torch.cuda.set_device(device)
        generator = with_output_range(load_generator(generator_spec, device), output_range)
        segmenter = load_segmenter(segmenter_spec, device)
        dissect_options = {k: v for k, v in options.items() if k != "output_range"}
        results = dissect_layers(
            generator, segmenter, layers, checkpoint=checkpoint, **dissect_options
        )
        if rank == 0:
            save_dissection(result_path, results)
    finally:
        dist.destroy_process_group()


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
