"""Load the models an analysis runs on, from the names the commands take.

``"shipped"`` is the project's trained GAN or segmenter; any other name is
``package.module:attribute`` of a torch.nn.Module, a class, or a function that returns one
(called without arguments). Modules are moved to the device and put in eval mode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from gan_dissect.hooks import trace_many
from gan_dissect.streams import latents
from training.errors import ConfigError

SHIPPED = "shipped"


def load_generator(spec: str, device: torch.device | str = "cpu") -> torch.nn.Module:
    """The generator named by ``spec`` ('shipped' or an import path), in eval mode."""
    model = _load(spec, "generator", torch.device(device))
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"--generator {spec} gives {type(model).__name__}, not a torch.nn.Module")
    return model


def load_segmenter(
    spec: str, device: torch.device | str = "cpu"
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The segmenter named by ``spec`` ('shipped' or an import path)."""
    model = _load(spec, "segmenter", torch.device(device))
    if not callable(model):
        raise ConfigError(f"--segmenter {spec} gives {type(model).__name__}, which is not callable")
    return model


def _load(spec: str, role: str, device: torch.device) -> Any:
    from training.sources import import_object, is_factory

    if spec == SHIPPED:
        from training.pretrained import load_pretrained

        return load_pretrained(role, device=device)
    target = import_object(spec)
    if isinstance(target, type) or (
        callable(target) and not isinstance(target, torch.nn.Module) and is_factory(target)
    ):
        target = target()  # a class or a factory
    if isinstance(target, torch.nn.Module):
        target = target.to(device).eval()
    return target


def choose_layers(
    generator: torch.nn.Module, layers: str | Sequence[str], z_shape: Sequence[int]
) -> list[str]:
    """``layers`` (a list, or names split at commas), or for 'auto' every top-level module of
    ``generator`` whose output is a feature map (N, units, h, w) smaller than the image."""
    if isinstance(layers, str) and layers != "auto":
        layers = [part.strip() for part in layers.split(",") if part.strip()]
    if not isinstance(layers, str):
        names = [str(name) for name in layers]
        if not names:
            raise ConfigError("--layers (layers= in Python) names no layer")
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
            f"with --layers (layers= in Python) (top-level modules: {', '.join(children)})"
        )
    return chosen
