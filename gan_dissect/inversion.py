"""Invert real images into a generator, so that unit edits apply to them too.

"Seeing what a GAN cannot generate" (Bau et al., ICCV 2019): find a latent ``z`` with ``G(z)``
close to a real image ``x`` (here: starting from an encoder's guess, or from the best of a few
random latents, then Adam on ``z``), then, because a small generator cannot reproduce every
detail from ``z`` alone, optimise one intermediate layer's features ``f`` as well (starting from
that layer's output at ``z``), with the rest of the generator fixed. The loss is pixel L1 + L2
plus, optionally, a feature loss: squared differences of a network's inner layers (by default
none; the command uses the segmenter's encoder layers), and a pull of ``f`` towards the
features ``G`` itself produced, so the features stay ones the later layers know.

Editing::

    result = invert(generator, images, layer="layer2")
    with result.applied(generator), ablate(generator, "layer3", lamp_units):
        edited = generator(result.z)
    pasted = paste(images, result.reconstructions, edited)  # edited pixels where it changed

Edits must be at ``layer`` or after it: the inverted features replace everything before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from gan_dissect import streams
from gan_dissect._optimise import step_on
from gan_dissect.hooks import find_layer, trace, trace_many
from gan_dissect.streams import INVERT_STREAM
from gan_dissect.subject import Subject
from training.errors import InputError
from training.progress import progress

PasteMode = Literal["difference", "mask", "none"]
CHANGE_SCALE = 0.1
"""A change of this much (mean over colours, images in [-1, 1]) makes ``paste(mode="mask")`` take
the generator's pixel outright; smaller changes blend in proportion."""


@dataclass
class Inversion:
    """Latents (N, ...) and, when a layer was refined, its features (N, U, h, w) that
    reproduce the inverted images; ``reconstructions`` is what the generator makes of them.

    ``history`` holds the loss terms every few steps of each stage; ``errors`` the mean absolute
    pixel error (images in [-1, 1]) after each stage (``start``, ``latent``, ``features``).
    """

    z: torch.Tensor
    layer: str | None
    features: torch.Tensor | None
    reconstructions: torch.Tensor
    history: list[dict[str, Any]]
    errors: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)

    def applied(self, generator: torch.nn.Module) -> contextlib.AbstractContextManager[None]:
        """Within the block, ``layer`` outputs the inverted features (generate exactly the
        inverted batch), so ``generator(self.z)`` reconstructs the images; edits entered inside
        this block act on the inverted features."""
        return _replaced(generator, self.layer, self.features)

    def subset(self, index: Sequence[int]) -> Inversion:
        """The inversions of images ``index`` only."""
        rows = torch.as_tensor(list(index), dtype=torch.int64)
        return Inversion(
            z=self.z[rows],
            layer=self.layer,
            features=None if self.features is None else self.features[rows],
            reconstructions=self.reconstructions[rows],
            history=self.history,
            errors=self.errors,
            params=self.params,
        )


class FeatureLoss:
    """Mean squared difference of ``network``'s ``layers`` between two image batches (a
    perceptual loss; the target's features are computed once per call without a graph)."""

    def __init__(self, network: torch.nn.Module, layers: Sequence[str]) -> None:
        for layer in layers:
            find_layer(network, layer)
        self.network = network
        self.layers = list(layers)

    def features(self, images: torch.Tensor, *, graph: bool) -> dict[str, torch.Tensor]:
        with trace_many(self.network, self.layers, detach=not graph, stop=True) as traces:
            self.network(images)
        found = {name: traces[name].output for name in self.layers}
        missing = [name for name, value in found.items() if value is None]
        if missing:
            raise InputError(f"layers {missing} did not run in the feature network")
        return {name: value for name, value in found.items() if value is not None}

    def __call__(self, images: torch.Tensor, target: dict[str, torch.Tensor]) -> torch.Tensor:
        mine = self.features(images, graph=True)
        per_layer = [(mine[name] - target[name]).pow(2).flatten(1).mean(1) for name in self.layers]
        return torch.stack(per_layer).mean(0)


@dataclass(frozen=True)
class InvertSettings:
    """How :func:`invert` optimises: ``z_steps`` Adam steps on the latent at ``lr``, then
    ``feature_steps`` on a layer's features at ``feature_lr``; ``feature_weight`` weighs the
    feature loss, ``latent_weight`` ``mean(z^2)`` (which keeps ``z`` where standard-normal
    latents live), ``anchor_weight`` the mean squared distance of refined features from G's
    own at the found latent (relative to their mean square); without an encoder each image
    starts from the best of ``candidates`` random latents; the loss is recorded every
    ``record_every`` steps."""

    z_steps: int = 200
    feature_steps: int = 200
    lr: float = 0.05
    feature_lr: float = 0.01
    feature_weight: float = 1.0
    latent_weight: float = 1e-3
    anchor_weight: float = 0.1
    candidates: int = 32
    record_every: int = 20


def invert(
    subject: Subject,
    images: torch.Tensor,
    *,
    encoder: torch.nn.Module | None = None,
    layer: str | None = None,
    feature_loss: FeatureLoss | None = None,
    settings: InvertSettings | None = None,
) -> Inversion:
    """Invert ``images`` (N, 3, H, W) in [-1, 1] into ``subject``'s generator, in batches of
    ``subject.batch_size``; see the module docstring.

    Parameters
    ----------
    encoder:
        Images to latents; its output is the starting latent. Without one, each image starts
        from the best (lowest pixel error) of ``settings.candidates`` random latents (stream
        :data:`~gan_dissect.streams.INVERT_STREAM` of ``subject.seed``).
    layer:
        Refine this layer's features after the latent (``settings.feature_steps`` steps); None
        keeps the latent alone.
    feature_loss:
        An added perceptual loss, weighed by ``settings.feature_weight``.
    settings:
        Steps, learning rates and weights (:class:`InvertSettings`, whose defaults apply when
        None).
    """
    settings = settings or InvertSettings()
    z_steps, feature_steps, lr = settings.z_steps, settings.feature_steps, settings.lr
    feature_weight, latent_weight = settings.feature_weight, settings.latent_weight
    candidates, record_every = settings.candidates, settings.record_every
    generator, batch_size, seed = subject.generator, subject.batch_size, subject.seed
    if images.dim() != 4 or images.shape[1] != 3:
        raise InputError(f"images must be (N, 3, H, W), got {tuple(images.shape)}")
    if not bool(torch.isfinite(images).all()) or float(images.abs().max()) > 1.0 + 1e-4:
        raise InputError("images must be finite and lie in [-1, 1]")
    if z_steps < 0 or feature_steps < 0 or batch_size < 1:
        raise InputError("steps must be >= 0 and batch_size >= 1")
    if layer is not None:
        find_layer(generator, layer)
    shape, device = subject.z_shape, subject.device
    parts: dict[str, list[torch.Tensor]] = {"z": [], "features": [], "recon": []}
    history: list[dict[str, Any]] = []
    error_sums = {"start": 0.0, "latent": 0.0, "features": 0.0}
    batches = range(0, len(images), batch_size)
    for number, first in enumerate(progress(batches, desc="invert", total=len(batches))):
        target = images[first : first + batch_size].to(device, torch.float32)
        loss_of = _Reconstruction(target, feature_loss, feature_weight)
        z = _start(generator, encoder, target, shape, candidates, seed, first)
        with torch.no_grad():
            error_sums["start"] += float((generator(z) - target).abs().mean()) * len(target)
        z = z.requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=lr)
        for step in range(z_steps):
            losses = loss_of(generator(z))
            prior = latent_weight * z.pow(2).flatten(1).mean(1)
            step_on(optimizer, (losses + prior).sum(), z)
            if step % record_every == 0 and number == 0:
                history.append(
                    {"stage": "latent", "step": step, "loss": float(losses.detach().mean())}
                )
        z = z.detach()
        with torch.no_grad():
            error_sums["latent"] += float((generator(z) - target).abs().mean()) * len(target)
        features = None
        if layer is not None:
            features = _refine(
                generator,
                layer,
                z,
                loss_of,
                settings,
                history if number == 0 else None,
            )
        with torch.no_grad(), _replaced(generator, layer, features):
            reconstruction = generator(z)
        error_sums["features"] += float((reconstruction - target).abs().mean()) * len(target)
        parts["z"].append(z.cpu())
        parts["recon"].append(reconstruction.detach().cpu())
        if features is not None:
            parts["features"].append(features.cpu())
    n = len(images)
    errors = {"start": error_sums["start"] / n, "latent": error_sums["latent"] / n}
    if layer is not None:
        errors["features"] = error_sums["features"] / n
    return Inversion(
        z=torch.cat(parts["z"]),
        layer=layer,
        features=torch.cat(parts["features"]) if parts["features"] else None,
        reconstructions=torch.cat(parts["recon"]),
        history=history,
        errors=errors,
        params={
            "encoder": encoder is not None,
            "layer": layer,
            "z_steps": z_steps,
            "feature_steps": feature_steps,
            "lr": lr,
            "feature_lr": settings.feature_lr,
            "feature_loss": None if feature_loss is None else feature_loss.layers,
            "feature_weight": feature_weight if feature_loss is not None else None,
            "latent_weight": latent_weight,
            "anchor_weight": settings.anchor_weight,
            "candidates": None if encoder is not None else candidates,
            "seed": seed,
        },
    )


class _Reconstruction:
    """Per-image loss (N,) of generated images against one batch of targets: pixel L1 + L2,
    plus the weighted feature loss."""

    def __init__(
        self, target: torch.Tensor, feature_loss: FeatureLoss | None, feature_weight: float
    ) -> None:
        self.target = target
        self.feature_loss = feature_loss
        self.feature_weight = feature_weight
        self.target_features = (
            feature_loss.features(target, graph=False) if feature_loss is not None else {}
        )

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        difference = (images - self.target).flatten(1)
        loss = difference.abs().mean(1) + difference.pow(2).mean(1)
        if self.feature_loss is None:
            return loss
        return loss + self.feature_weight * self.feature_loss(images, self.target_features)


def _start(
    generator: torch.nn.Module,
    encoder: torch.nn.Module | None,
    target: torch.Tensor,
    shape: tuple[int, ...],
    candidates: int,
    seed: int,
    first: int,
) -> torch.Tensor:
    """The starting latents of a batch: the encoder's, or the best random candidates."""
    device = target.device
    with torch.no_grad():
        if encoder is not None:
            z = encoder(target).reshape(len(target), *shape).to(device, torch.float32)
            if not bool(torch.isfinite(z).all()):
                raise InputError("the encoder returned NaN or infinite latents")
            return z.clone()
        pool = streams.latents(seed, range(candidates), shape, stream=INVERT_STREAM).to(device)
        pictures = generator(pool)
        distance = torch.cdist(target.flatten(1), pictures.flatten(1))  # (batch, candidates)
        return pool[distance.argmin(dim=1)].clone()


def _refine(
    generator: torch.nn.Module,
    layer: str,
    z: torch.Tensor,
    loss_of: _Reconstruction,
    settings: InvertSettings,
    history: list[dict[str, Any]] | None,
) -> torch.Tensor:
    """Optimise ``layer``'s features (the rest of the generator fixed) from G's own at ``z``."""
    with torch.no_grad(), trace(generator, layer, clone=True) as record:
        generator(z)
    assert record.output is not None
    anchor = record.output
    floor = float(anchor.min())  # a ReLU layer's features stay >= 0
    scale = anchor.pow(2).mean().clamp(min=1e-8)
    features = anchor.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([features], lr=settings.feature_lr)
    anchor_weight, record_every = settings.anchor_weight, settings.record_every
    for step in range(settings.feature_steps):
        with _replaced(generator, layer, features):
            losses = loss_of(generator(z))
        drift = anchor_weight * (features - anchor).pow(2).flatten(1).mean(1) / scale
        step_on(optimizer, (losses + drift).sum(), features)
        with torch.no_grad():
            features.clamp_(min=floor)
        if history is not None and step % record_every == 0:
            history.append(
                {"stage": "features", "step": step, "loss": float(losses.detach().mean())}
            )
    return features.detach()


@contextlib.contextmanager
def _replaced(
    generator: torch.nn.Module, layer: str | None, features: torch.Tensor | None
) -> Iterator[None]:
    """Within the block, ``layer`` outputs ``features`` (nothing changes when either is None)."""
    if layer is None or features is None:
        yield
        return

    def replace(output: torch.Tensor) -> torch.Tensor:
        if output.shape != features.shape:
            raise InputError(
                f"inverted features are {tuple(features.shape)}, the layer gave "
                f"{tuple(output.shape)}: generate exactly the inverted batch"
            )
        return features.to(output.device, output.dtype)

    with trace(generator, layer, edit=replace):
        yield


def paste(
    real: torch.Tensor,
    reconstruction: torch.Tensor,
    edited: torch.Tensor,
    mode: PasteMode = "mask",
) -> torch.Tensor:
    """The edit carried onto the real image, in one of three ways.

    ``"difference"``: ``real + (edited - reconstruction)``, clamped to [-1, 1]: every pixel the
    edit leaves alone stays exactly real, and a changed pixel moves by what the generator's
    pixel moved (a faint change of a blurry reconstruction stays faint on the sharp photo).
    ``"mask"``: the generator's edited pixel where the edit changed the reconstruction, the real
    one elsewhere: weights ``clamp(|edited - reconstruction| / CHANGE_SCALE, 0, 1)`` (colour
    mean), grown by one pixel, so a removed object is replaced by what the generator draws
    instead, as in GANPaint's compositing. ``"none"``: the generator's edited image itself.
    """
    if mode == "none":
        return edited
    if mode == "difference":
        return (real + (edited - reconstruction)).clamp(-1.0, 1.0)
    if mode == "mask":
        change = (edited - reconstruction).abs().mean(dim=1, keepdim=True)
        weight = (change / CHANGE_SCALE).clamp(0.0, 1.0)
        weight = torch.nn.functional.max_pool2d(weight, 3, 1, 1)
        return torch.lerp(real, edited, weight).clamp(-1.0, 1.0)
    raise InputError(f"paste mode must be 'difference', 'mask' or 'none', got {mode!r}")


def psnr(images: torch.Tensor, reference: torch.Tensor) -> np.ndarray:
    """Peak signal-to-noise ratio (N,) in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = (images - reference).pow(2).flatten(1).mean(1).clamp(min=1e-12)
    return (10 * torch.log10(4.0 / mse)).cpu().numpy().astype(np.float64)
