"""Edit real scenes: invert them into the generator, then ablate the same units as on samples.

Takes --num-images held-out real scenes (those with lamps by default), finds for each a latent
z (from the shipped encoder's guess, or the best of --candidates random latents, then Adam) and
then refines the features of --refine-layer so the generator redraws the scene closely. The
units chosen as in the ablate command are switched off on the inverted scene, and the change is
carried onto the real picture (real + edited - reconstruction, so untouched pixels stay real).
Because real scenes come with exact masks, the reconstruction and the edit are measured on real
pixels: pixel error and PSNR, the segmenter's agreement with the exact labels, and the lamp
pixels before and after the edit. Writes invert.json, the pictures and index.html.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch

from gan_dissect.commands._units import add_unit_arguments, unit_spec
from gan_dissect.commands.dissect import add_model_arguments, subject_from_flags
from gan_dissect.hooks import find_layer
from gan_dissect.intervention import ablate
from gan_dissect.inversion import FeatureLoss, Inversion, InvertSettings, invert, paste, psnr
from gan_dissect.subject import Segmentation
from gan_dissect.units import UnitChoice, choose_units
from training import pages as report
from training.devices import module_device, resolve_device
from training.errors import CheckpointError, ConfigError
from training.runs import RunFolder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m gan_dissect invert``."""
    add_model_arguments(parser)
    images = parser.add_argument_group("real images")
    images.add_argument("--num-images", type=int, default=8, help="held-out scenes to invert")
    images.add_argument(
        "--scenes",
        choices=("lamps", "all"),
        default="lamps",
        help="'lamps': the first held-out scenes with a lit lamp; 'all': the first scenes",
    )
    method = parser.add_argument_group("inversion")
    method.add_argument(
        "--encoder",
        default="auto",
        help="'shipped' (the encoder trained for the shipped generator), 'none' (best of "
        "--candidates random latents), or package.module:factory; 'auto': shipped for the "
        "shipped generator, else none",
    )
    method.add_argument(
        "--refine-layer",
        default="auto",
        help="layer whose features are refined after z ('none': z only); edits must be at or "
        "after it; 'auto': the top-level layer just before the edited one (layer2 for the "
        "shipped generator's layer3), or none when that is no feature map",
    )
    method.add_argument("--z-steps", type=int, default=200, help="Adam steps on z")
    method.add_argument("--feature-steps", type=int, default=150, help="steps on the features")
    method.add_argument("--lr", type=float, default=0.05, help="learning rate of z")
    method.add_argument("--feature-lr", type=float, default=0.01, help="learning rate of features")
    method.add_argument("--candidates", type=int, default=64, help="random starts without encoder")
    method.add_argument("--latent-weight", type=float, default=1e-3, help="weight of mean(z^2)")
    method.add_argument(
        "--anchor-weight", type=float, default=0.1, help="pull of the features to G's own"
    )
    method.add_argument(
        "--feature-loss",
        default="none",
        help="'none', or comma-separated layers of the segmenter compared as a perceptual loss",
    )
    method.add_argument("--feature-weight", type=float, default=1.0, help="its weight")
    method.add_argument("--batch-size", type=int, default=16, help="images inverted at once")
    method.add_argument(
        "--paste",
        choices=("difference", "mask", "none"),
        default="mask",
        help="'mask': the generator's edited pixels where the edit changed the image, real "
        "elsewhere; 'difference': the real image plus the edit's change; 'none': the "
        "generator's edited image",
    )
    add_unit_arguments(parser)


def run(args: argparse.Namespace, run_folder: RunFolder) -> None:
    """Invert, edit, measure and write invert.json, the pictures and index.html."""
    if args.num_images < 1 or args.batch_size < 1:
        raise ConfigError("--num-images and --batch-size must be at least 1")
    device = resolve_device(args.device)
    subject = subject_from_flags(args, device=device)
    generator, z_shape = subject.generator, subject.z_shape
    segmenter: Any = subject.segmenter
    segmentation = subject.segmentation
    index, real, exact = _real_scenes(args, generator, z_shape)
    shipped = args.generator == "shipped"
    encoder_spec = ("shipped" if shipped else "none") if args.encoder == "auto" else args.encoder
    encoder = _encoder(encoder_spec, generator, device)
    feature_loss = None
    if str(args.feature_loss).lower() != "none":
        feature_loss = FeatureLoss(
            segmenter, [s.strip() for s in str(args.feature_loss).split(",")]
        )
    choice = choose_units(subject, unit_spec(args))
    refine_spec = str(args.refine_layer)
    if refine_spec == "auto":
        refine_spec = _layer_before(generator, choice.layer, z_shape)
    refine = None if refine_spec.lower() == "none" else refine_spec
    args.encoder, args.refine_layer = encoder_spec, refine_spec  # shown as resolved
    _check_order(generator, refine, choice.layer)
    settings = InvertSettings(
        z_steps=args.z_steps,
        feature_steps=args.feature_steps,
        lr=args.lr,
        feature_lr=args.feature_lr,
        feature_weight=args.feature_weight,
        latent_weight=args.latent_weight,
        anchor_weight=args.anchor_weight,
        candidates=args.candidates,
    )
    inversion = invert(
        subject, real, encoder=encoder, layer=refine, feature_loss=feature_loss, settings=settings
    )
    edited = _edit(generator, inversion, choice, args.batch_size)
    pasted = paste(real, inversion.reconstructions, edited, args.paste)
    measures = _measure(real, exact, inversion, edited, pasted, segmentation, choice.concept)
    record = {
        "images": {
            "num_images": args.num_images,
            "scenes": args.scenes,
            "held_out_indices": index.tolist(),
        },
        "inversion": {
            "errors": inversion.errors,
            "params": inversion.params,
            "history": inversion.history,
        },
        "edit": {
            "layer": choice.layer,
            "units": choice.units,
            "how": choice.how,
            "values": choice.values_for_record(),
            "paste": args.paste,
        },
        "measures": measures,
    }
    run_folder.write_json("invert.json", record)
    _write_page(run_folder, args, real, inversion, edited, pasted, choice, measures)


def _held_out(args: argparse.Namespace, size: int, pool: int) -> Any:
    from training.scenes import held_out_scenes

    try:
        return held_out_scenes(pool, size=size)
    except Exception as err:
        raise ConfigError(f"no held-out real scenes of {size} px: {err}") from err


def _choose(args: argparse.Namespace, size: int) -> tuple[np.ndarray, Any]:
    pool = max(256, 8 * args.num_images)
    scenes = _held_out(args, size, pool)
    if args.scenes == "lamps":
        lamp = np.asarray(scenes.labels == 7).reshape(pool, -1).sum(axis=1)
        index = np.flatnonzero(scenes.any_lamp_lit & (lamp > 0))[: args.num_images]
    else:
        index = np.arange(args.num_images)
    if len(index) < args.num_images:
        raise ConfigError(f"only {len(index)} of the first {pool} held-out scenes have lit lamps")
    return index, scenes


def _image_size(generator: torch.nn.Module, z_shape: tuple[int, ...]) -> int:
    from gan_dissect.streams import latents

    with torch.no_grad():
        image = generator(latents(0, [0], z_shape).to(module_device(generator)))
    return int(image.shape[-1])


def _real_scenes(
    args: argparse.Namespace, generator: torch.nn.Module, z_shape: tuple[int, ...]
) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """The chosen held-out scenes' numbers, images (N, 3, H, W) and exact labels (N, H, W)."""
    index, scenes = _choose(args, _image_size(generator, z_shape))
    images = torch.from_numpy(scenes.images[index]).to(module_device(generator))
    return index, images, torch.from_numpy(scenes.labels[index])


def _encoder(spec: str, generator: torch.nn.Module, device: torch.device) -> Any:
    if str(spec).lower() == "none":
        return None
    if spec == "shipped":
        from training.encoder import generator_digest
        from training.pretrained import load_pretrained, read_model_card

        try:
            card = read_model_card("encoder")
        except CheckpointError as err:
            raise ConfigError(f"{err}; train it (README) or pass --encoder none") from err
        trained_for = card["kwargs"].get("generator_digest", "")
        if trained_for != generator_digest(generator):
            raise ConfigError(
                "the shipped encoder was trained for another generator (weights digest "
                f"{trained_for or 'unknown'}); pass --encoder none or retrain it"
            )
        return load_pretrained("encoder", device=device)
    from gan_dissect.loading import load_segmenter

    return load_segmenter(spec, device)  # any callable model, loaded the same way


def _layer_before(generator: torch.nn.Module, edit: str, z_shape: tuple[int, ...]) -> str:
    """The top-level module just before ``edit`` when it outputs feature maps, else 'none'."""
    from gan_dissect.hooks import trace
    from gan_dissect.streams import latents

    children = [name for name, _ in generator.named_children()]
    if edit not in children or children.index(edit) == 0:
        return "none"
    before = children[children.index(edit) - 1]
    z = latents(0, [0], z_shape).to(module_device(generator))
    with torch.no_grad(), trace(generator, before, stop=True) as record:
        generator(z)
    return before if record.output is not None and record.output.dim() == 4 else "none"


def _check_order(generator: torch.nn.Module, refine: str | None, edit: str) -> None:
    """Edits must act at or after the refined layer: what comes before it is replaced."""
    if refine is None:
        return
    find_layer(generator, refine)
    names = [name for name, _ in generator.named_modules()]
    if names.index(edit) < names.index(refine):
        raise ConfigError(
            f"the edit layer {edit} comes before --refine-layer {refine}, whose refined "
            f"features would overwrite the edit; refine {edit} or an earlier layer"
        )


def _edit(
    generator: torch.nn.Module, inversion: Inversion, choice: UnitChoice, batch_size: int
) -> torch.Tensor:
    device = module_device(generator)
    parts = []
    with torch.inference_mode():
        for start in range(0, len(inversion.z), batch_size):
            part = inversion.subset(range(start, min(start + batch_size, len(inversion.z))))
            if part.features is not None:
                part.features = part.features.to(device)
            with (
                part.applied(generator),
                ablate(generator, choice.layer, choice.units, off=choice.off),
            ):
                parts.append(generator(part.z.to(device)).cpu())
    return torch.cat(parts)


def _measure(
    real: torch.Tensor,
    exact: torch.Tensor,
    inversion: Inversion,
    edited: torch.Tensor,
    pasted: torch.Tensor,
    segmentation: Segmentation,
    concept: str,
) -> dict[str, Any]:
    """Reconstruction error in pixels and through the segmenter; the concept's pixels."""
    real = real.cpu()
    c = segmentation.concepts.index(concept)
    with torch.no_grad():
        labels = {
            name: segmentation(images).cpu()
            for name, images in (
                ("real", real),
                ("reconstruction", inversion.reconstructions),
                ("edited", edited),
                ("edited_real", pasted),
            )
        }
    same_concepts = list(segmentation.concepts) == _scene_concepts()
    agreement = {
        name: float((labels[name] == exact).float().mean()) if same_concepts else None
        for name in ("real", "reconstruction")
    }
    counts: dict[str, int | None] = {name: int((v == c).sum()) for name, v in labels.items()}
    exact_count = int((exact == c).sum()) if same_concepts else 0
    counts["exact"] = exact_count if same_concepts else None
    kept = None
    if exact_count:
        kept = float(((labels["edited_real"] == c) & (exact == c)).sum() / exact_count)
    real_count, edited_count = int(counts["real"] or 0), int(counts["edited_real"] or 0)
    fall = 1.0 - edited_count / real_count if real_count else None
    return {
        "pixel_l1": float((inversion.reconstructions - real).abs().mean()),
        "psnr_db": float(np.mean(psnr(inversion.reconstructions, real))),
        "psnr_per_image": psnr(inversion.reconstructions, real).tolist(),
        "label_agreement_with_exact": agreement,
        "label_agreement_reconstruction_vs_real": float(
            (labels["reconstruction"] == labels["real"]).float().mean()
        ),
        "concept": concept,
        "concept_pixels": {**counts, "fall": fall, "exact_still_labelled": kept},
        "stage_errors": inversion.errors,
    }


def _scene_concepts() -> list[str]:
    from training.scenes import CONCEPTS

    return list(CONCEPTS)


def _write_page(
    run_folder: RunFolder,
    args: argparse.Namespace,
    real: torch.Tensor,
    inversion: Inversion,
    edited: torch.Tensor,
    pasted: torch.Tensor,
    choice: UnitChoice,
    measures: dict[str, Any],
) -> None:
    folder = run_folder.root
    page = report.Page(folder)
    lamp = measures["concept_pixels"]
    agreement = measures["label_agreement_with_exact"]
    page.add_headline(
        "reconstruction error",
        f"{measures['pixel_l1']:.3f}",
        f"mean absolute pixel difference (images in [-1, 1]); PSNR {measures['psnr_db']:.1f} dB; "
        f"stages: {', '.join(f'{k} {v:.3f}' for k, v in inversion.errors.items())}",
    )
    if agreement["real"] is not None:
        page.add_headline(
            "segmenter agrees with the exact labels",
            report.percent(agreement["reconstruction"]),
            f"on the reconstructions; {report.percent(agreement['real'])} on the real images",
        )
    page.add_headline(
        f"{choice.concept} pixels on the real images, before / after the edit",
        f"{lamp['real']} / {lamp['edited_real']}",
        f"{report.percent(lamp['fall'])} fewer (segmenter); exact {choice.concept} pixels still "
        f"labelled {choice.concept}: {report.percent(lamp['exact_still_labelled'])}",
    )
    blocks = page.section(f"Real scenes with the {choice.concept} units off", "edit")
    blocks.append(
        report.text(
            f"Each column is one held-out scene. Rows: the real scene; the generator's "
            f"reconstruction; the reconstruction with {choice.describe()} switched off; that "
            f"change carried onto the real scene ({args.paste}); and what changed in the real "
            "scene (|edited - real|, amplified twice)."
        )
    )
    n = len(real)
    for name, label, pictures in (
        ("real.png", "real scene", real.cpu()),
        ("reconstruction.png", "reconstruction", inversion.reconstructions),
        ("edited.png", "reconstruction, units off", edited),
        ("edited_real.png", "real scene, edited", pasted),
        ("difference.png", "difference", report.difference_pictures(real.cpu(), pasted)),
    ):
        src, width = report.save_row(folder, name, pictures, nrow=n)
        blocks.append(report.figure(src, label=label, width=width))
    history = inversion.history
    if history:
        chart = "loss.png"
        stages = sorted({h["stage"] for h in history}, key=[h["stage"] for h in history].index)
        offset = 0.0
        xs: list[float] = []
        ys: list[float] = []
        for stage in stages:
            points = [h for h in history if h["stage"] == stage]
            xs += [offset + h["step"] for h in points]
            ys += [h["loss"] for h in points]
            offset = xs[-1] + 1
        report.line_chart(
            folder / chart,
            xs,
            {"loss (first batch)": ys},
            xlabel="step",
            ylabel="reconstruction loss",
            title=" then ".join(stages),
        )
        blocks = page.section("Optimisation", "loss")
        blocks.append(report.figure(chart, width=620))
    page.write(
        run_folder,
        "intervention.html",
        packages=("gan_dissect",),
        title=f"Inversion and {choice.concept} removal on real scenes",
        summary=(
            f"{args.num_images} held-out scenes: reconstruction L1 {measures['pixel_l1']:.3f}, "
            f"PSNR {measures['psnr_db']:.1f} dB; {choice.concept} pixels on the real images "
            f"{lamp['real']} -> {lamp['edited_real']} ({report.percent(lamp['fall'])} fewer)"
        ),
        preview="edited_real.png",
        subtitle=f"{n} held-out scenes; encoder {args.encoder}; refined layer {args.refine_layer}",
        intro=(
            'Real scenes are inverted into the generator (Bau et al. 2019, "Seeing what a GAN '
            'cannot generate") so that the same unit ablation that removes a concept from '
            "generated scenes edits them too; their exact masks measure the edit on real pixels."
        ),
    )
