"""Check a user's generator once, early: its latent shape and the range of its pixels.

Every analysis in gan_dissect hands the segmenter, the pictures and the pixel losses images in
[-1, 1]. A generator that draws in another range (e.g. [0, 1] or [0, 255]) is wrapped by
:func:`with_output_range`, which maps its output linearly to [-1, 1] and keeps every layer name
of the generator, so hooks and unit numbers are unchanged. :func:`check_generator` runs a
first batch and turns what would fail late (a latent shape the generator does not take, pixels
outside the stated range, a range that looks like [0, 1] where [-1, 1] was stated) into one
error naming the option to change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gan_dissect.streams import latent_shape, latents
from training.devices import module_device
from training.errors import InputError

DETECTED_RANGES: tuple[tuple[float, float], ...] = ((-1.0, 1.0), (0.0, 1.0), (0.0, 255.0))
"""The ranges ``output_range="auto"`` tells apart, in this order: [-1, 1] when any pixel of the
first batch is negative, [0, 1] when none is negative and none exceeds 1, else [0, 255]."""

PROBE_SAMPLES = 16
"""Latents in the first batch that checks the generator (sample numbers 0..15, stream 0)."""

# pixels may overshoot the stated range by this share of its width (interpolation, rounding)
_SLACK = 0.05


class RangeMapped(torch.nn.Module):
    """``generator`` with its output mapped linearly from ``output_range`` to [-1, 1].

    The generator's children are registered as this module's own, so ``named_modules()`` and
    ``parameters()`` name and hold exactly what the generator's do.
    """

    generator: torch.nn.Module

    def __init__(self, generator: torch.nn.Module, output_range: tuple[float, float]) -> None:
        super().__init__()
        low, high = float(output_range[0]), float(output_range[1])
        if not high > low:
            raise InputError(f"an output range needs low < high, got {output_range}")
        for name, child in generator.named_children():
            self.add_module(name, child)
        for name, parameter in generator.named_parameters(recurse=False):
            self.register_parameter(name, parameter)
        for name, buffer in generator.named_buffers(recurse=False):
            self.register_buffer(name, buffer)
        object.__setattr__(self, "generator", generator)  # not a child: its names stay as they are
        self.output_range = (low, high)
        for name in ("z_shape", "z_dim"):
            if getattr(generator, name, None) is not None:
                setattr(self, name, getattr(generator, name))
        self.train(generator.training)

    def train(self, mode: bool = True) -> RangeMapped:
        super().train(mode)
        self.generator.train(mode)
        return self

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        low, high = self.output_range
        return (self.generator(z) - low) * (2.0 / (high - low)) - 1.0


def with_output_range(
    generator: torch.nn.Module, output_range: tuple[float, float]
) -> torch.nn.Module:
    """``generator`` itself when ``output_range`` is (-1, 1), else a :class:`RangeMapped`."""
    if tuple(float(v) for v in output_range) == (-1.0, 1.0):
        return generator
    return RangeMapped(generator, output_range)


@dataclass(frozen=True)
class CheckedGenerator:
    """What :func:`check_generator` found: the generator mapped to [-1, 1], its latent shape,
    its output range (stated or detected) and its image size (height, width)."""

    generator: torch.nn.Module
    z_shape: tuple[int, ...]
    output_range: tuple[float, float]
    image_size: tuple[int, int]
    detected: bool


def check_generator(
    generator: torch.nn.Module,
    z_shape: Sequence[int] | None = None,
    output_range: tuple[float, float] | str = "auto",
) -> CheckedGenerator:
    """Run a first batch of :data:`PROBE_SAMPLES` latents through ``generator`` and check it.

    ``z_shape`` is the latent shape (default: the generator's ``z_shape`` or ``z_dim``);
    ``output_range`` the range of its pixels as (low, high), or ``"auto"`` to tell apart the
    :data:`DETECTED_RANGES` on that batch. Raises :class:`InputError` naming ``--z-shape`` /
    ``z_shape`` or ``--output-range`` / ``output_range`` when the generator rejects the latents,
    does not return images (N, 3, H, W), or draws outside the stated range.
    """
    shape = latent_shape(generator, z_shape)
    z = latents(0, range(PROBE_SAMPLES), shape).to(module_device(generator))
    try:
        with torch.inference_mode():
            images = generator(z)
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(
            f"{type(generator).__name__} failed on latents of shape {tuple(z.shape)} ({first}); "
            "give the latent shape it takes with --z-shape (z_shape= in Python), e.g. "
            "--z-shape 128,1,1"
        ) from err
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise InputError(
            f"{type(generator).__name__} returned {got} for latents of shape {tuple(z.shape)}; "
            "a generator must map latents (N, ...) to images (N, 3, H, W) (check --z-shape)"
        )
    if not bool(torch.isfinite(images).all()):
        raise InputError(f"{type(generator).__name__} returned NaN or infinite pixels")
    low, high = float(images.min()), float(images.max())
    if output_range == "auto":
        stated = _detect(low, high)
        detected = True
    else:
        stated = (float(output_range[0]), float(output_range[1]))
        detected = False
        _check_range(stated, low, high)
    size = (int(images.shape[2]), int(images.shape[3]))
    return CheckedGenerator(with_output_range(generator, stated), shape, stated, size, detected)


def parse_output_range(text: str | None) -> tuple[float, float] | str:
    """``--output-range``: 'auto' or 'low,high' such as '0,1'."""
    if text is None or str(text).strip().lower() == "auto":
        return "auto"
    try:
        low, high = (float(part) for part in str(text).split(","))
    except ValueError as err:
        raise InputError(
            f"--output-range must be 'auto' or 'low,high' such as '0,1', got {text!r}"
        ) from err
    if not high > low:
        raise InputError(f"--output-range needs low < high, got {text!r}")
    return (low, high)


def _detect(low: float, high: float) -> tuple[float, float]:
    if low < 0:
        stated = DETECTED_RANGES[0]
    elif high <= 1.0:
        stated = DETECTED_RANGES[1]
    else:
        stated = DETECTED_RANGES[2]
    try:
        _check_range(stated, low, high)
    except InputError as err:
        raise InputError(
            f"the generator's first {PROBE_SAMPLES} images span [{low:.3g}, {high:.3g}], not "
            "[-1, 1], [0, 1] or [0, 255]; state its range with --output-range low,high "
            "(output_range= in Python)"
        ) from err
    return stated


def _check_range(stated: tuple[float, float], low: float, high: float) -> None:
    slack = _SLACK * (stated[1] - stated[0])
    shown = f"[{stated[0]:g}, {stated[1]:g}]"
    if low < stated[0] - slack or high > stated[1] + slack:
        raise InputError(
            f"the generator's first {PROBE_SAMPLES} images span [{low:.3g}, {high:.3g}], outside "
            f"the output range {shown}; state its range with --output-range low,high "
            "(output_range= in Python), or 'auto' to detect it"
        )
    if stated[0] < 0 <= low and stated[1] - stated[0] > 1.5 * max(high, 1e-12):
        raise InputError(
            f"the generator's first {PROBE_SAMPLES} images span [{low:.3g}, {high:.3g}]: no "
            f"pixel is negative, so its range is not {shown}; pass --output-range 0,1 "
            "(output_range= in Python), or 'auto' to detect it"
        )
