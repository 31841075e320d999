"""What the generator can draw at most: activation maximisation inside its latent space.

Optimises the latent z (--restarts at once, Adam, z kept on the sphere of radius sqrt(d) or
L2-penalised) to maximise --objective: a concept's soft area under the segmenter
('concept:lamp'), a unit's mean activation ('unit:layer3:12') or a classifier's logit
('logit:lamp_classifier:1', or 'logit:package.module:factory:1'). Beside it, the same
objective maximised over free pixels (--pixel-steps), which finds images no scene looks like.
Then the units chosen as in the ablate command are switched off and z is optimised again (from
the same starts and from the best latents found before): if even the best z cannot draw the
concept any more, the ablation took the capability away rather than hiding it. Writes
actmax.json, the pictures side by side and index.html.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gan_dissect.actmax import (
    ActmaxResult,
    Objective,
    concept_objective,
    logit_objective,
    maximise_latent,
    maximise_pixels,
    unit_objective,
)
from gan_dissect.commands._units import add_unit_arguments, unit_spec
from gan_dissect.commands.dissect import add_model_arguments, subject_from_flags
from gan_dissect.intervention import ablate
from gan_dissect.streams import ACTMAX_STREAM, TYPICAL_STREAM
from gan_dissect.subject import Segmentation, Subject
from gan_dissect.units import UnitChoice, choose_units
from training import pages as report
from training.devices import resolve_device
from training.errors import ConfigError
from training.runs import RunFolder

REAL_SCENES = 512
"""Held-out real scenes against which the realism of every result is measured."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m gan_dissect actmax``."""
    add_model_arguments(parser)
    method = parser.add_argument_group("maximisation")
    method.add_argument(
        "--objective",
        default="auto",
        help="concept:NAME, unit:LAYER:UNIT, or logit:CLASSIFIER:INDEX (CLASSIFIER: a shipped "
        "model name such as lamp_classifier, or package.module:factory); 'auto': "
        "concept:CONCEPT of the chosen units when the segmenter returns scores, else the first "
        "chosen unit (a segmenter's labels give no gradient)",
    )
    method.add_argument("--restarts", type=int, default=8, help="latents optimised at once")
    method.add_argument("--steps", type=int, default=200, help="Adam steps")
    method.add_argument("--lr", type=float, default=0.05, help="Adam learning rate")
    method.add_argument(
        "--constraint",
        choices=("sphere", "l2"),
        default="sphere",
        help="z on the sphere of radius sqrt(d), or an L2 penalty on z",
    )
    method.add_argument("--l2-weight", type=float, default=0.01, help="penalty weight of 'l2'")
    method.add_argument(
        "--pixel-steps", type=int, default=200, help="steps of pixel-space maximisation (0: none)"
    )
    method.add_argument("--pixel-lr", type=float, default=0.05, help="its learning rate")
    method.add_argument("--batch-size", type=int, default=50, help="samples per batch")
    method.add_argument(
        "--typical-samples",
        type=int,
        default=200,
        help="random samples whose mean objective is shown as what typical images reach",
    )
    add_unit_arguments(parser)
    parser.add_argument_group("under ablation").add_argument(
        "--under-ablation",
        choices=("yes", "no"),
        default="yes",
        help="also maximise with the chosen units switched off",
    )


def run(args: argparse.Namespace, run_folder: RunFolder) -> None:
    """Maximise, compare with pixel space and under ablation, and write the report."""
    for name in ("restarts", "steps", "batch_size", "typical_samples"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
    if args.pixel_steps < 0:
        raise ConfigError("--pixel-steps must be >= 0")
    device = resolve_device(args.device)
    subject = subject_from_flags(args, device=device)
    generator, segmentation = subject.generator, subject.segmentation
    choice = None
    if args.objective == "auto":
        choice = choose_units(subject, unit_spec(args))
        objective = auto_objective(choice, subject)
    else:
        objective = parse_objective(args.objective, subject.segmenter, segmentation, device)
    options = {
        "steps": args.steps,
        "lr": args.lr,
        "constraint": args.constraint,
        "l2_weight": args.l2_weight,
    }
    constrained = maximise_latent(subject, objective, restarts=args.restarts, **options)
    image_shape = tuple(constrained.images.shape[1:])
    pixels = None
    if args.pixel_steps and not objective.layers:
        pixels = maximise_pixels(
            objective,
            image_shape,
            restarts=args.restarts,
            steps=args.pixel_steps,
            lr=args.pixel_lr,
            seed=args.seed,
            device=device,
        )
    under = None
    typical_after = None
    if args.under_ablation == "yes":
        if choice is None:
            choice = choose_units(subject, unit_spec(args))
        starts = subject.latents(range(args.restarts), ACTMAX_STREAM).cpu()
        with ablate(generator, choice.layer, choice.units, off=choice.off):
            # the starts are given, so no seed enters: recorded as 0, as actmax.json always had
            under = maximise_latent(
                subject.replace(seed=0),
                objective,
                start=torch.cat([starts, constrained.inputs]),
                **options,
            )
            typical_after = _typical(subject, objective, args)
    typical = _typical(subject, objective, args)
    realism = _realism(
        {
            "typical samples": _samples(subject, args),
            "constrained": constrained.images,
            **({"pixel space": pixels.images} if pixels is not None else {}),
            **({"under ablation": under.images} if under is not None else {}),
        },
        segmentation,
        image_shape,
    )
    record = {
        "objective": objective.name,
        "constrained": constrained.summary(),
        "pixels": None if pixels is None else pixels.summary(),
        "under_ablation": None if under is None else under.summary(),
        "ablation": None
        if choice is None
        else {
            "layer": choice.layer,
            "units": choice.units,
            "how": choice.how,
            "values": choice.values_for_record(),
        },
        "typical": {"before": typical, "under_ablation": typical_after},
        "best_fall": None if under is None else _fall(constrained, under),
        "realism": realism,
        "histories": {
            "constrained": constrained.history,
            "pixels": None if pixels is None else pixels.history,
            "under_ablation": None if under is None else under.history,
        },
    }
    run_folder.write_json("actmax.json", record)
    found = _Found(objective, constrained, pixels, under, choice, typical, typical_after, realism)
    _write_page(run_folder, args, found)


@dataclass
class _Found:
    """What the command computed, handed whole to the page."""

    objective: Objective
    constrained: ActmaxResult
    pixels: ActmaxResult | None
    under: ActmaxResult | None
    choice: UnitChoice | None
    typical: dict[str, float]
    typical_after: dict[str, float] | None
    realism: dict[str, Any]

    def summary(self) -> str:
        """One line for the runs index."""
        summary = f"best {self.objective.name} {self.constrained.scores.max():.4g} in the generator"
        if self.under is not None:
            summary += (
                f", {self.under.scores.max():.4g} with "
                f"{len(self.choice.units) if self.choice else 0} units off "
                f"({report.percent(_fall(self.constrained, self.under))} lower)"
            )
        if self.pixels is not None:
            summary += f"; {self.pixels.scores.max():.4g} in pixel space"
        return summary


def auto_objective(choice: UnitChoice, subject: Subject) -> Objective:
    """The chosen concept's soft area when the segmenter returns scores, else the mean
    activation of the first chosen unit (labels give no gradient to follow)."""
    from gan_dissect.ranking import gives_scores

    with torch.no_grad():
        probe = subject.generator(subject.replace(seed=0).latents([0, 1]))
    if gives_scores(subject.segmenter, probe):
        return concept_objective(subject.segmenter, choice.concept, subject.concepts)
    return unit_objective(choice.layer, choice.units[0])


def parse_objective(
    spec: str, segmenter: Any, segmentation: Segmentation, device: torch.device
) -> Objective:
    """An :class:`Objective` from 'concept:NAME', 'unit:LAYER:UNIT' or 'logit:MODEL:INDEX'."""
    kind, _, rest = str(spec).partition(":")
    if kind == "concept" and rest:
        if rest not in segmentation.concepts:
            raise ConfigError(
                f"--objective {spec}: no concept {rest!r}; concepts: "
                f"{', '.join(segmentation.concepts)}"
            )
        return concept_objective(segmenter, rest, segmentation.concepts)
    if kind == "unit":
        layer, _, unit = rest.rpartition(":")
        if layer and unit.isdigit():
            return unit_objective(layer, int(unit))
    if kind == "logit":
        model, _, index = rest.rpartition(":")
        if model and index.isdigit():
            return logit_objective(_classifier(model, device), int(index), f"{model} logit {index}")
    raise ConfigError(
        f"--objective {spec!r} is not concept:NAME, unit:LAYER:UNIT or logit:CLASSIFIER:INDEX"
    )


def _classifier(spec: str, device: torch.device) -> Any:
    if ":" not in spec:
        from training.pretrained import load_pretrained

        return load_pretrained(spec, device=device)
    from gan_dissect.loading import load_segmenter

    return load_segmenter(spec, device)  # any callable model, loaded the same way


def _samples(subject: Subject, args: argparse.Namespace) -> torch.Tensor:
    z = subject.latents(range(args.restarts), TYPICAL_STREAM)
    with torch.inference_mode():
        return subject.generator(z).cpu()


def _typical(subject: Subject, objective: Objective, args: argparse.Namespace) -> dict[str, float]:
    """The objective's mean and 99th percentile over random samples: what typical images reach."""
    from gan_dissect.hooks import trace_many

    generator = subject.generator
    values = []
    with torch.no_grad():
        for _, z in subject.batches(args.typical_samples, TYPICAL_STREAM):
            with trace_many(generator, objective.layers) as traces:
                images = generator(z)
            activations = {name: traces[name].output for name in objective.layers}
            values.append(objective(images, activations).float().cpu())  # type: ignore[arg-type]
    scores = torch.cat(values).numpy()
    return {
        "mean": float(scores.mean()),
        "p99": float(np.quantile(scores, 0.99)),
        "max": float(scores.max()),
        "samples": len(scores),
    }


def _fall(before: ActmaxResult, after: ActmaxResult) -> float:
    """How much lower the best score is under ablation, relative to the best before."""
    best = float(before.scores.max())
    return float(1.0 - after.scores.max() / best) if best > 0 else float("nan")


def _realism(
    results: dict[str, torch.Tensor], segmentation: Segmentation, image_shape: tuple[int, ...]
) -> dict[str, Any]:
    """How scene-like each set of images is: the mean absolute pixel difference to its nearest
    held-out real scene, and the segmenter's labels (share of each concept)."""
    from training.scenes import held_out_scenes

    size = int(image_shape[-1])
    record: dict[str, Any] = {"real_scenes": REAL_SCENES}
    try:
        real = torch.from_numpy(held_out_scenes(REAL_SCENES, size=size).images)
    except Exception:
        real = None
    for name, images in results.items():
        entry: dict[str, Any] = {}
        if real is not None and tuple(images.shape[1:]) == tuple(real.shape[1:]):
            distance = torch.cdist(images.flatten(1).float(), real.flatten(1), p=1)
            entry["nearest_real_l1"] = float(distance.min(dim=1).values.mean() / images[0].numel())
        with torch.no_grad():
            labels = segmentation(images)
        shares = torch.bincount(labels.flatten().clamp(min=0), minlength=len(segmentation.concepts))
        entry["concept_shares"] = {
            c: float(v) for c, v in zip(segmentation.concepts, shares / labels.numel(), strict=True)
        }
        record[name] = entry
    return record


def _write_page(run_folder: RunFolder, args: argparse.Namespace, found: _Found) -> None:
    objective, constrained, pixels, under = (
        found.objective,
        found.constrained,
        found.pixels,
        found.under,
    )
    choice, typical, typical_after, realism = (
        found.choice,
        found.typical,
        found.typical_after,
        found.realism,
    )
    folder = run_folder.root
    page = report.Page(folder)
    page.add_headline(
        f"best {objective.name} in the generator",
        f"{constrained.scores.max():.4g}",
        f"over {args.restarts} restarts x {args.steps} steps; typical samples: mean "
        f"{typical['mean']:.4g}, 99th percentile {typical['p99']:.4g}",
    )
    if under is not None and choice is not None:
        page.add_headline(
            f"best with {len(choice.units)} units of {choice.layer} off",
            f"{under.scores.max():.4g}",
            f"{report.percent(_fall(constrained, under))} lower than the best before; typical "
            f"samples under ablation: mean {typical_after['mean']:.4g}"
            if typical_after
            else "",
        )
    if pixels is not None:
        page.add_headline(
            f"best {objective.name} over free pixels",
            f"{pixels.scores.max():.4g}",
            "no generator: anything that raises the score",
        )
    for name in ("constrained", "pixel space", "typical samples"):
        if "nearest_real_l1" in realism.get(name, {}):
            page.add_headline(
                f"distance to the nearest real scene: {name}",
                f"{realism[name]['nearest_real_l1']:.3f}",
                f"mean absolute pixel difference (images in [-1, 1]) to the closest of "
                f"{realism['real_scenes']} held-out scenes",
            )
    blocks = page.section("Inside the generator and in pixel space, side by side", "side-by-side")
    blocks.append(
        report.text(
            "Each column is one restart, best score first. Top: the latent optimised, so every "
            "result is an image the generator can draw. Below: the same objective maximised over "
            "free pixels from a grey start, which satisfies the score with patterns no scene has."
        )
    )
    order = constrained.order()
    src, width = report.save_row(
        folder, "constrained.png", constrained.images[order], nrow=len(order)
    )
    blocks.append(report.figure(src, label="generator-constrained (optimised z)", width=width))
    if pixels is not None:
        src, width = report.save_row(
            folder, "pixels.png", pixels.images[pixels.order()], nrow=len(order)
        )
        blocks.append(report.figure(src, label="pixel space (unconstrained)", width=width))
    if under is not None and choice is not None:
        blocks = page.section("Under ablation: can the generator still draw it?", "ablation")
        blocks.append(
            report.text(
                f"{choice.describe()} switched off, and z optimised again from the same starts and "
                f"from the best latents above ({len(under.scores)} restarts). If even the best z "
                "cannot draw the concept, the capability is gone, not merely rare in typical "
                "samples."
            )
        )
        best = under.order()[: len(order)]
        src, width = report.save_row(
            folder, "under_ablation.png", under.images[best], nrow=len(order)
        )
        blocks.append(report.figure(src, label="best latents with the units off", width=width))
    chart = "history.png"
    series = {"constrained": [h["best"] for h in constrained.history]}
    steps = [h["step"] for h in constrained.history]
    if under is not None and [h["step"] for h in under.history] == steps:
        series["under ablation"] = [h["best"] for h in under.history]
    report.line_chart(
        folder / chart,
        steps,
        series,
        xlabel="step",
        ylabel=objective.name,
        title="Best score so far",
        reference=typical["p99"],
        reference_label="typical samples, 99th percentile",
    )
    blocks = page.section("Progress", "progress")
    blocks.append(report.figure(chart, width=620))
    rows = [
        [
            name,
            entry.get("nearest_real_l1"),
            *(entry["concept_shares"].get(c) for c in list(entry["concept_shares"])[:8]),
        ]
        for name, entry in realism.items()
        if isinstance(entry, dict)
    ]
    concepts = list(next(e for e in realism.values() if isinstance(e, dict))["concept_shares"])
    blocks = page.section("How scene-like the results are", "realism")
    blocks.append(
        report.table(
            ["images", "nearest real scene (L1)", *concepts[:8]],
            rows,
            numeric=list(range(1, 2 + len(concepts[:8]))),
        )
    )
    page.write(
        run_folder,
        "intervention.html",
        packages=("gan_dissect",),
        title=f"Activation maximisation: {objective.name}",
        summary=found.summary(),
        preview="constrained.png",
        subtitle=f"{args.restarts} restarts, {args.steps} steps, z on the {args.constraint}"
        if args.constraint == "sphere"
        else f"{args.restarts} restarts, L2 weight {args.l2_weight}",
        intro=(
            "Generator-constrained activation maximisation (DGN-AM): the image that maximises "
            f"{objective.name} among the images the generator can draw, compared with free "
            "pixels and with the concept's units switched off."
        ),
    )
