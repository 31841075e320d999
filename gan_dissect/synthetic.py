"""Small generators and segmenters whose answers are known, for tests, benchmarks and trials.

- :class:`LampScenes`: a generator of flat-coloured street scenes (sky, building, road and one
  lamp) with *planted* units: unit ``lamp_unit`` of ``layer2`` is exactly the lamp mask
  area-averaged to the layer's 16 x 16 grid, the ideal lamp unit, and the image draws the lamp
  only where that unit is on, so switching it off removes the lamp.
- :class:`DrawnLampScenes`: the same scenes with a lamp drawn jointly by several units, decoy
  units that coincide with the lamp but draw nothing, and a unit that casts its glow: the
  ground truth for ablation, insertion, unit ranking and actmax tests.
- :class:`PaletteSegmenter`: labels every pixel by its nearest palette colour, an exact function
  of the image, so :class:`LampScenes` is segmented without error.
- :class:`HueSegmenter`: labels pixels by hue bin, an exact segmenter for any generator's images.
- :class:`ShuffledUnits`: a control that hands each unit another sample's activations.
- :class:`DCGANStandIn` and :class:`UNetStandIn`: untrained networks of the shape and cost of
  the shipped 64 px DCGAN generator and U-Net segmenter, for speed and memory measurements
  and for "an untrained generator has no concept units" controls.

Run the dissect command on them with ``--generator gan_dissect.synthetic:LampScenes
--segmenter gan_dissect.synthetic:PaletteSegmenter``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from training.errors import InputError
from training.models import Generator, Segmenter

SCENE_CONCEPTS = ("sky", "building", "road", "lamp")
SCENE_COLORS = ((90, 140, 220), (140, 90, 60), (100, 100, 100), (250, 220, 60))
STANDIN_CONCEPTS = ("sky", "building", "window", "door", "road", "grass", "tree", "lamp")


class SceneLayout(nn.Module):
    """Latents (N, 8) to exact concept masks (N, 4, size, size) of :data:`SCENE_CONCEPTS`.

    The horizon splits sky from road; one building stands on the horizon; one lamp (4-7 px wide,
    5-9 px tall, about 1 % of the image) stands somewhere in the lower half, in front.
    """

    def __init__(self, size: int = 64) -> None:
        super().__init__()
        self.size = size
        self.centres: torch.Tensor
        centres = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 64.0
        self.register_buffer("centres", centres, persistent=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u = torch.special.ndtr(z[:, :8])  # uniform in (0, 1) per latent coordinate
        horizon = 26 + 12 * u[:, 0]
        left = 4 + 34 * u[:, 1]
        right = left + 12 + 14 * u[:, 2]
        roof = horizon - 8 - 14 * u[:, 3]
        lamp_w, lamp_h = 4 + 3 * u[:, 6], 5 + 4 * u[:, 7]
        lamp_x = 2 + (60 - lamp_w) * u[:, 4]
        lamp_y = 34 + (28 - lamp_h) * u[:, 5]
        ys = self.centres[None, :, None]
        xs = self.centres[None, None, :]

        def box(x0: torch.Tensor, x1: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor):
            inside_x = (xs >= x0[:, None, None]) & (xs < x1[:, None, None])
            return inside_x & (ys >= y0[:, None, None]) & (ys < y1[:, None, None])

        sky = ys < horizon[:, None, None]
        building = box(left, right, roof, horizon)
        lamp = box(lamp_x, lamp_x + lamp_w, lamp_y, lamp_y + lamp_h)
        sky = sky & ~building & ~lamp
        building = building & ~lamp
        road = ~(sky | building | lamp)
        return torch.stack([sky, building, road, lamp], dim=1).to(torch.float32)


class PlantedFeatures(nn.Module):
    """A feature layer of ``units`` maps at ``size`` x ``size``: concept masks area-averaged
    into planted units, the rest fixed random functions of the latent (ReLU of projections)."""

    def __init__(
        self, z_dim: int, units: int, size: int, planted: dict[int, int], seed: int
    ) -> None:
        super().__init__()
        self.size = size
        self.planted = dict(planted)  # unit -> concept index
        generator = torch.Generator().manual_seed(seed)
        self.projection = nn.Linear(z_dim, units * size * size)
        with torch.no_grad():
            self.projection.weight.copy_(
                torch.randn(units * size * size, z_dim, generator=generator) / z_dim**0.5
            )
            self.projection.bias.zero_()

    def forward(self, masks: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        n = z.shape[0]
        # a copy: planting in place would overwrite what the ReLU keeps for its gradient
        features = F.relu(self.projection(z)).view(n, -1, self.size, self.size).clone()
        pooled = F.adaptive_avg_pool2d(masks, self.size)
        for unit, concept in self.planted.items():
            features[:, unit] = pooled[:, concept]
        return features


class SceneRenderer(nn.Module):
    """Concept masks and ``layer2`` features to images (N, 3, size, size) in [-1, 1]; the lamp
    is drawn only where the planted lamp unit, upsampled bilinearly, is positive."""

    def __init__(self, lamp_unit: int, size: int) -> None:
        super().__init__()
        self.lamp_unit = lamp_unit
        self.size = size
        self.colors: torch.Tensor
        colors = torch.tensor(SCENE_COLORS, dtype=torch.float32) / 127.5 - 1.0
        self.register_buffer("colors", colors, persistent=False)

    def forward(self, masks: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        lamp_on = F.interpolate(
            features[:, self.lamp_unit : self.lamp_unit + 1],
            size=(self.size, self.size),
            mode="bilinear",
            align_corners=False,
        )[:, 0]
        lamp = masks[:, 3] * (lamp_on > 0)
        road = masks[:, 2] + masks[:, 3] - lamp  # a switched-off lamp shows the road behind
        shown = torch.stack([masks[:, 0], masks[:, 1], road, lamp], dim=1)
        return torch.einsum("nchw,ck->nkhw", shown, self.colors)


class LampScenes(nn.Module):
    """A generator of street scenes with known units (see the module docstring).

    Layers: ``layout`` (exact masks), ``layer1`` (8 x 8, 12 units; unit 0 is the sky),
    ``layer2`` (16 x 16, 16 units; unit ``lamp_unit`` is the lamp, unit 1 the building) and
    ``output`` (the image). ``z_dim`` is 8 (the scene) plus ``noise_dim`` latent coordinates that
    only move the unplanted units.
    """

    def __init__(self, noise_dim: int = 8, lamp_unit: int = 5, size: int = 64) -> None:
        super().__init__()
        self.z_dim = 8 + noise_dim
        self.lamp_unit = lamp_unit
        self.layout = SceneLayout(size)
        self.layer1 = PlantedFeatures(self.z_dim, 12, 8, {0: 0}, seed=1)
        self.layer2 = PlantedFeatures(self.z_dim, 16, 16, {lamp_unit: 3, 1: 1}, seed=2)
        self.output = SceneRenderer(lamp_unit, size)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z.reshape(z.shape[0], -1)
        masks = self.layout(z)
        self.layer1(masks, z)  # drawn by nothing below; a layer to dissect at another scale
        features = self.layer2(masks, z)
        return self.output(masks, features)


class DrawnLampScenes(nn.Module):
    """Street scenes whose lamp is drawn *jointly* by several units, for intervention tests.

    Like :class:`LampScenes` (same layout, ``layer1``, ``layer2`` at 16 x 16), with a lamp that
    is lit in about half of the scenes (latent coordinate 8 > 0) and three kinds of planted
    ``layer2`` units, all zero where no lamp is lit:

    - ``draw_units``: the lit lamp's neighbourhood (its mask grown by one layer cell, averaged
      onto the grid), each scaled by its own factor in [0.4, 1] (latent coordinates 9, 10, ...).
      The lamp is painted over its layout mask with opacity ``tanh(gain * mean of the draw
      units)``: every draw unit adds to it, removing one of three leaves the lamp, and removing
      all of them (to 0) removes it exactly. Inserting them lights a lamp the layout placed.
    - ``decoy_units``: the lit lamp's exact mask averaged onto the grid: a higher IoU with the
      lamp than the draw units (theirs is blurred and of varying strength), yet they draw
      nothing: coincidence without cause, which ranking by IoU cannot tell apart.
    - ``glow_unit``: a wider neighbourhood of the lit lamp (grown by two cells) that brightens
      the scene around it by up to ``glow`` (in [-1, 1] units), the light a lamp casts; it stays
      when the draw units are switched off.
    """

    def __init__(
        self,
        noise_dim: int = 8,
        draw_units: Sequence[int] = (9, 10, 11),
        decoy_units: Sequence[int] = (2, 3),
        glow_unit: int = 12,
        gain: float = 3.0,
        glow: float = 0.25,
        size: int = 64,
    ) -> None:
        super().__init__()
        draw = [int(u) for u in draw_units]
        decoys = [int(u) for u in decoy_units]
        if not draw or noise_dim < 1 + len(draw):
            raise InputError(
                f"DrawnLampScenes needs at least one draw unit and noise_dim >= 1 + {len(draw)} "
                "(one latent coordinate lights lamps, one scales each draw unit)"
            )
        planted = {u: 4 + i for i, u in enumerate(draw)}
        planted.update({u: 3 for u in decoys})
        planted[int(glow_unit)] = 4 + len(draw)
        if len(planted) != len(draw) + len(decoys) + 1 or not all(0 <= u < 16 for u in planted):
            raise InputError("draw, decoy and glow units must be distinct numbers in 0..15")
        self.z_dim = 8 + noise_dim
        self.size = size
        self.draw_units = draw
        self.decoy_units = decoys
        self.glow_unit = int(glow_unit)
        self.gain = gain
        self.glow = glow
        self.layout = SceneLayout(size)
        self.layer1 = PlantedFeatures(self.z_dim, 12, 8, {0: 0}, seed=1)
        self.layer2 = PlantedFeatures(self.z_dim, 16, 16, planted, seed=2)
        self.colors: torch.Tensor
        colors = torch.tensor(SCENE_COLORS, dtype=torch.float32) / 127.5 - 1.0
        self.register_buffer("colors", colors, persistent=False)

    def _grow(self, mask: torch.Tensor, cells: float) -> torch.Tensor:
        radius = max(1, round(cells * self.size / 16))
        return F.max_pool2d(mask, 2 * radius + 1, 1, radius)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z.reshape(z.shape[0], -1)
        masks = self.layout(z)
        lit = (z[:, 8] > 0).to(masks.dtype)[:, None, None, None]
        lamp = masks[:, 3:4] * lit
        count = len(self.draw_units)
        strength = 0.4 + 0.6 * torch.special.ndtr(z[:, 9 : 9 + count])[:, :, None, None]
        planted = torch.cat([masks, self._grow(lamp, 1.0) * strength, self._grow(lamp, 2.0)], 1)
        self.layer1(masks, z)
        features = self.layer2(planted, z)
        return self._render(masks, features)

    def _render(self, masks: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """The image from the layout and ``layer2``'s (possibly edited) features."""
        up = F.interpolate(
            features, size=(self.size, self.size), mode="bilinear", align_corners=False
        )
        opacity = torch.tanh(self.gain * up[:, self.draw_units].mean(dim=1).clamp(min=0))
        opacity = opacity * masks[:, 3]
        background = torch.stack(
            [masks[:, 0], masks[:, 1], masks[:, 2] + masks[:, 3], torch.zeros_like(masks[:, 0])],
            dim=1,
        )
        scene = torch.einsum("nchw,ck->nkhw", background, self.colors)
        light = self.glow * up[:, self.glow_unit] * (1 - masks[:, 3])  # around the lamp only
        scene = (scene + light[:, None]).clamp(-1, 1)
        lamp = self.colors[3][None, :, None, None]
        return torch.lerp(scene, lamp.expand_as(scene), opacity[:, None])


class PaletteSegmenter(nn.Module):
    """Scores (N, C, H, W): minus ``sharpness`` times the squared distance of each pixel to each
    concept's colour. Labels (the best score) are exact for palette images whatever the
    sharpness; it sets how confident the softmax probabilities are, which is what optimising
    through the segmenter follows (at 4 a lamp-coloured pixel is lamp with probability 0.999,
    a road-coloured one lamp with 5e-5)."""

    def __init__(
        self,
        concepts: Sequence[str] = SCENE_CONCEPTS,
        colors: Sequence[Sequence[int]] = SCENE_COLORS,
        sharpness: float = 4.0,
    ) -> None:
        super().__init__()
        if len(concepts) != len(colors):
            raise InputError("PaletteSegmenter needs one colour per concept")
        if not sharpness > 0:
            raise InputError(f"sharpness must be positive, got {sharpness}")
        self.concepts = list(concepts)
        self.sharpness = float(sharpness)
        self.palette: torch.Tensor
        palette = torch.tensor(colors, dtype=torch.float32) / 127.5 - 1.0
        self.register_buffer("palette", palette, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        difference = images[:, None] - self.palette[None, :, :, None, None]
        return -self.sharpness * (difference**2).sum(dim=2)


class HueSegmenter(nn.Module):
    """Labels (N, H, W): each pixel's hue, relative to its image's mean colour, in six bins.

    An exact function of any image that, unlike a fixed palette, still splits the nearly grey
    output of an untrained generator into several concepts (each about a sixth of the pixels).
    """

    concepts = ("red", "yellow", "green", "cyan", "blue", "magenta")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        centred = images - images.mean(dim=(2, 3), keepdim=True)
        red, green, blue = centred[:, 0], centred[:, 1], centred[:, 2]
        hue = torch.atan2(3**0.5 * (green - blue), 2 * red - green - blue)  # in (-pi, pi]
        return ((hue + torch.pi) * (3 / torch.pi)).long().clamp(0, 5)


class ShuffledUnits(nn.Module):
    """Control: ``generator`` unchanged, plus a layer ``shuffled`` that shows each unit of
    ``layer`` another sample's map (unit u's maps rolled by its own shift of 1..N-1 over the
    batch), so no unit's activations belong to the image they are compared with."""

    def __init__(self, generator: nn.Module, layer: str, seed: int = 0) -> None:
        super().__init__()
        from gan_dissect.hooks import find_layer

        find_layer(generator, layer)
        self.generator = generator
        self.layer = layer
        self.seed = seed
        self.shuffled = nn.Identity()
        self.z_dim = getattr(generator, "z_dim", None)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        from gan_dissect.hooks import trace

        with trace(self.generator, self.layer) as record:
            images = self.generator(z)
        activations = record.output
        assert activations is not None
        n, units = activations.shape[:2]
        if n < 2:
            raise InputError("ShuffledUnits needs batches of at least 2 samples")
        shifts = torch.randint(1, n, (units,), generator=torch.Generator().manual_seed(self.seed))
        rows = (torch.arange(n)[:, None] + shifts[None, :]) % n  # (n, units): a derangement
        shuffled = activations[rows, torch.arange(units)[None, :]]
        self.shuffled(shuffled)
        return images


class DCGANStandIn(Generator):
    """An untrained generator of the shipped one's architecture (:class:`training.models.
    Generator`, 64 px): z (N, 128) to (N, 3, 64, 64), layers ``layer1`` .. ``layer4`` of 256 @ 4,
    128 @ 8, 64 @ 16 and 32 @ 32 px at the default ``width`` 32 (the shipped generator has
    width 64, twice the units per layer), then ``output``; DCGAN initialisation from ``seed``.
    """

    def __init__(self, z_dim: int = 128, width: int = 32, seed: int = 0) -> None:
        with torch.random.fork_rng():  # seeded weights without touching the caller's RNG
            torch.manual_seed(seed)
            super().__init__(z_dim=z_dim, size=64, width=width)
        self.eval()


class UNetStandIn(Segmenter):
    """An untrained U-Net of the shipped segmenter's architecture and cost
    (:class:`training.models.Segmenter`): images to scores (N, 8, H, W), weights from ``seed``."""

    def __init__(self, width: int = 16, seed: int = 0) -> None:
        with torch.random.fork_rng():  # seeded weights without touching the caller's RNG
            torch.manual_seed(seed)
            super().__init__(width=width, concepts=STANDIN_CONCEPTS)
        self.eval()
