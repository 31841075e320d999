"""The flags of the ablate, actmax and invert commands that choose the units to edit, turned
into a :class:`gan_dissect.units.UnitSpec` (see :mod:`gan_dissect.units` for what they mean).
"""

from __future__ import annotations

import argparse

import torch

from gan_dissect.ranking import (
    LEARN_BATCH,
    LEARN_L2,
    LEARN_LR,
    LEARN_STEPS,
    LEARN_UNITS,
    OTHERS_REDUCTIONS,
    LearnSettings,
)
from gan_dissect.units import UnitSpec, parse_budget
from training.errors import ConfigError, InputError


def add_unit_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose the layer and units to edit (see the module docstring)."""
    units = parser.add_argument_group("which units")
    units.add_argument(
        "--concept",
        default="auto",
        help="the concept whose units are edited; 'auto': lamp when the segmenter has it, else "
        "the concept of the dissected unit of highest IoU / ceiling",
    )
    units.add_argument(
        "--layer",
        default="auto",
        help="layer whose units are edited; 'auto': the dissected layer whose best unit for "
        "--concept has the highest IoU / ceiling",
    )
    units.add_argument(
        "--units",
        default="auto",
        help="'auto' (the first --num-units of --ranking), unit numbers '3,17,40', or the "
        "folder of an ablate run whose layer, units and off/on levels are used",
    )
    units.add_argument(
        "--num-units",
        default=LEARN_UNITS,
        help="units chosen by 'auto': a number, or a share of the layer's units such as '8%%' "
        "(rounded down, at least 1)",
    )
    units.add_argument(
        "--ranking",
        choices=("learned", "iou"),
        default="learned",
        help="'learned': a soft ablation mask optimised to remove the concept (with a segmenter "
        "that returns labels, which give no gradient: each unit ablated alone); 'iou': by IoU",
    )
    units.add_argument(
        "--dissection",
        default="auto",
        help="a dissect run folder or dissection.json holding --layer, or 'auto' (dissect "
        "--layer, or every layer dissect would choose, here on --dissect-samples samples); "
        "gives IoU ranks and 'on' values",
    )
    units.add_argument(
        "--dissect-samples", type=int, default=500, help="samples of an 'auto' dissection"
    )
    learn = parser.add_argument_group("learned ranking")
    learn.add_argument("--learn-steps", type=int, default=LEARN_STEPS, help="Adam steps")
    learn.add_argument("--learn-batch", type=int, default=LEARN_BATCH, help="latents per step")
    learn.add_argument("--learn-lr", type=float, default=LEARN_LR, help="Adam learning rate")
    learn.add_argument("--learn-l2", type=float, default=LEARN_L2, help="L2 penalty on the mask")
    learn.add_argument(
        "--learn-budget",
        default="none",
        help="'num-units': the mask's sum is kept at most --num-units (units compete for that "
        "many places); 'none': only the penalty; or a number",
    )
    learn.add_argument(
        "--keep-others",
        type=float,
        default=0.0,
        help="weight of the other concepts' relative change in the loss",
    )
    learn.add_argument(
        "--others-reduce",
        choices=OTHERS_REDUCTIONS,
        default="mean",
        help="the other concepts' change that --keep-others weighs: their mean, or the largest "
        "(so that no single concept may absorb the change)",
    )
    values = parser.add_argument_group("what 'off' and 'on' mean")
    values.add_argument(
        "--off-level",
        default="zero",
        help="ablated units' value: 'zero', 'quantile:Q' (each unit's Q quantile) or a number",
    )
    values.add_argument(
        "--on-level",
        default="mean",
        help="inserted units' value: 'mean' (each unit's mean where the concept is), "
        "'quantile:Q' or a number",
    )


def unit_spec(args: argparse.Namespace) -> UnitSpec:
    """The :class:`~gan_dissect.units.UnitSpec` that the options of
    :func:`add_unit_arguments` describe."""
    return UnitSpec(
        concept=args.concept,
        layer=args.layer,
        units=str(args.units),
        num_units=args.num_units,
        ranking=args.ranking,
        dissection=args.dissection,
        dissect_samples=args.dissect_samples,
        learn=LearnSettings(
            steps=args.learn_steps,
            batch_size=args.learn_batch,
            lr=args.learn_lr,
            l2=args.learn_l2,
            keep_others=args.keep_others,
            others_reduce=args.others_reduce,
        ),
        budget=parse_budget(args.learn_budget),
        off_level=args.off_level,
        on_level=args.on_level,
    )


def split(text: str | None) -> list[str] | None:
    """Comma-separated parts, stripped; None stays None."""
    if text is None:
        return None
    return [part.strip() for part in str(text).split(",") if part.strip()]


def parse_box(
    text: str | None, size: tuple[int, int], flag: str = "--insert-region"
) -> torch.Tensor | None:
    """A box 'x0,y0,x1,y1' as an (H, W) mask: shares of the image's width and height when every
    value lies in [0, 1] (so '0,0.5,0.5,1' is the lower left quarter at any size), else pixels;
    None / 'none' / 'everywhere' is None. A bad box is a :class:`ConfigError` naming ``flag``."""
    if text is None or str(text).strip().lower() in ("none", "everywhere", ""):
        return None
    from gan_dissect.intervention import box_region

    height, width = size
    try:
        box = [float(part) for part in split(str(text)) or []]
    except ValueError as err:
        raise ConfigError(
            f"{flag} {text!r}: a region is 'x0,y0,x1,y1', as shares of the image (0..1) or in "
            "pixels"
        ) from err
    if len(box) == 4 and all(0.0 <= v <= 1.0 for v in box):
        box = [box[0] * width, box[1] * height, box[2] * width, box[3] * height]
    try:
        return box_region((height, width), box)
    except InputError as err:
        raise ConfigError(
            f"{flag} {text!r}: {err}; give shares of the image such as 0,0.5,0.5,1 (the lower "
            "left quarter) or pixels inside it"
        ) from err
