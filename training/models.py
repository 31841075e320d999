"""The networks seethrough trains and ships: a DCGAN pair, a U-Net segmenter, a lamp classifier.

Every constructor takes only plain values (ints, strings, lists), so that a model card can
rebuild the network (see :mod:`training.pretrained`). All networks take images (N, 3, H, W) in
[-1, 1], the range the generator produces and :func:`training.scenes.render_scenes` renders.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from training.errors import ConfigError
from training.scenes import CONCEPTS


def _check_size(size: int, smallest: int = 16) -> int:
    depth = math.log2(size) if size > 0 else 0.0
    if size < smallest or depth != int(depth):
        raise ConfigError(f"image size must be a power of two >= {smallest}, got {size}")
    return int(depth)


class Generator(nn.Module):
    """DCGAN generator: a latent z (N, Z) or (N, Z, 1, 1) to images (N, 3, size, size) in [-1, 1].

    Its layers are the children ``layer1`` .. ``layerK`` and ``output``; each is a small
    ``nn.Sequential`` whose output is a feature map, so a forward hook on a layer name sees what
    that layer draws. ``layer1`` is 4 x 4 and every following layer doubles the resolution and
    halves the channels, down to ``width`` channels in the last ``layerK`` (for size 64 and
    width 32: 256@4, 128@8, 64@16, 32@32, then ``output`` 3@64).

    ``upsample`` says how each layer after ``layer1`` doubles the resolution: ``"transposed"``
    (DCGAN's 4 x 4 stride-2 transposed convolution, whose uneven kernel overlap draws a
    checkerboard) or ``"nearest"`` (nearest-neighbour upsampling, then a 3 x 3 convolution, which
    spreads every input pixel evenly; Odena et al. 2016). ``layer1`` maps z to 4 x 4 the same way
    in both.
    """

    def __init__(
        self, z_dim: int = 128, size: int = 64, width: int = 32, upsample: str = "transposed"
    ) -> None:
        super().__init__()
        if upsample not in ("transposed", "nearest"):
            raise ConfigError(f"upsample must be 'transposed' or 'nearest', got {upsample!r}")
        depth = _check_size(size)
        self.z_dim = z_dim
        self.size = size
        self.width = width
        self.upsample = upsample

        def doubling(i: int, o: int, bias: bool) -> list[nn.Module]:
            if upsample == "nearest":
                return [
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(i, o, 3, 1, 1, bias=bias),
                ]
            return [nn.ConvTranspose2d(i, o, 4, 2, 1, bias=bias)]

        blocks = depth - 2  # 4 x 4, then one doubling per block; the output layer does the last
        channels = [width * 2 ** (blocks - 1 - i) for i in range(blocks)]
        self.layer1 = nn.Sequential(
            nn.ConvTranspose2d(z_dim, channels[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(inplace=True),
        )
        for i in range(1, blocks):
            self.add_module(
                f"layer{i + 1}",
                nn.Sequential(
                    *doubling(channels[i - 1], channels[i], False),
                    nn.BatchNorm2d(channels[i]),
                    nn.ReLU(inplace=True),
                ),
            )
        self.output = nn.Sequential(*doubling(channels[-1], 3, True), nn.Tanh())
        self.layer_names = [f"layer{i + 1}" for i in range(blocks)] + ["output"]
        self.layer_shapes = {
            name: (channels[i], 4 * 2**i) for i, name in enumerate(self.layer_names[:-1])
        }
        self.layer_shapes["output"] = (3, size)
        self.apply(_dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        if z.dim() != 4 or z.shape[1] != self.z_dim or z.shape[2:] != (1, 1):
            raise ConfigError(
                f"generator expects z of shape (N, {self.z_dim}) or (N, {self.z_dim}, 1, 1), "
                f"got {tuple(z.shape)}"
            )
        x = z
        for name in self.layer_names:
            x = getattr(self, name)(x)
        return x

    def sample_z(self, n: int, *, seed: int | None = None, device: str | torch.device = "cpu"):
        """``n`` standard-normal latents (N, z_dim); the same ones for the same ``seed``."""
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        return torch.randn(n, self.z_dim, generator=generator).to(device)


class Discriminator(nn.Module):
    """DCGAN discriminator: images (N, 3, size, size) to one real/fake logit each, shape (N,).

    Layers ``layer1`` .. ``layerK`` halve the resolution and double the channels (``width`` in
    ``layer1``), then ``output`` maps the 4 x 4 map to a logit. ``norm="batch"`` is the DCGAN
    paper's batch normalisation; ``norm="spectral"`` bounds every layer's Lipschitz constant
    instead (Miyato et al. 2018), which keeps a strong discriminator from starving the
    generator of gradient.
    """

    def __init__(self, size: int = 64, width: int = 32, norm: str = "batch") -> None:
        super().__init__()
        if norm not in ("batch", "spectral"):
            raise ConfigError(f"norm must be 'batch' or 'spectral', got {norm!r}")
        depth = _check_size(size)
        self.size = size
        self.width = width
        self.norm = norm
        blocks = depth - 2
        channels = [width * 2**i for i in range(blocks)]
        spectral = norm == "spectral"

        def conv(i: int, o: int, stride: int, padding: int, bias: bool = True) -> nn.Module:
            layer = nn.Conv2d(i, o, 4, stride, padding, bias=bias)
            _dcgan_init(layer)
            return nn.utils.parametrizations.spectral_norm(layer) if spectral else layer

        self.layer1 = nn.Sequential(conv(3, channels[0], 2, 1), nn.LeakyReLU(0.2, True))
        for i in range(1, blocks):
            self.add_module(
                f"layer{i + 1}",
                nn.Sequential(
                    conv(channels[i - 1], channels[i], 2, 1, bias=spectral),
                    nn.Identity() if spectral else nn.BatchNorm2d(channels[i]),
                    nn.LeakyReLU(0.2, inplace=True),
                ),
            )
        self.output = conv(channels[-1], 1, 1, 0)
        self.layer_names = [f"layer{i + 1}" for i in range(blocks)] + ["output"]
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                _dcgan_init(module)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        for name in self.layer_names:
            x = getattr(self, name)(x)
        return x.flatten()


def _dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class Segmenter(nn.Module):
    """A small U-Net: images (N, 3, H, W) in [-1, 1] to class scores (N, C, H, W).

    Three poolings (H and W must be multiples of 8); full-resolution skip connections keep
    two-pixel lamp poles sharp. ``concepts`` names the C output channels, in order.
    """

    def __init__(self, width: int = 16, concepts: Sequence[str] = CONCEPTS) -> None:
        super().__init__()
        self.width = width
        self.concepts = list(concepts)
        w = width
        self.enc1 = _conv_block(3, w)
        self.enc2 = _conv_block(w, 2 * w)
        self.enc3 = _conv_block(2 * w, 4 * w)
        self.bottleneck = _conv_block(4 * w, 4 * w)
        self.dec3 = _conv_block(8 * w, 2 * w)
        self.dec2 = _conv_block(4 * w, w)
        self.dec1 = _conv_block(2 * w, w)
        self.head = nn.Conv2d(w, len(self.concepts), 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] % 8 or images.shape[-2] % 8:
            raise ConfigError(f"segmenter needs H and W divisible by 8, got {tuple(images.shape)}")
        e1 = self.enc1(images)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        e3 = self.enc3(F.max_pool2d(e2, 2))
        b = self.bottleneck(F.max_pool2d(e3, 2))
        d3 = self.dec3(torch.cat([_up(b), e3], 1))
        d2 = self.dec2(torch.cat([_up(d3), e2], 1))
        d1 = self.dec1(torch.cat([_up(d2), e1], 1))
        scores: torch.Tensor = self.head(d1)
        return scores

    @torch.no_grad()
    def predict_labels(self, images: torch.Tensor) -> torch.Tensor:
        """Label maps (N, H, W): the best-scoring concept of each pixel."""
        return self(images).argmax(1)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class LampClassifier(nn.Module):
    """Is any street lamp lit? Images (N, 3, H, W) in [-1, 1] to 2 logits, in ``class_names``.

    Four convolution stages, then a global max over positions: the answer comes from the most
    lamp-like place in the picture, so the evidence is local (what LIME should find).
    """

    class_names: tuple[str, ...] = ("no lamp lit", "lamp lit")

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.width = width
        w = width

        def stage(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o))

        self.features = nn.Sequential(
            stage(3, w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            stage(w, 2 * w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            stage(2 * w, 4 * w),
            nn.ReLU(inplace=True),
            stage(4 * w, 4 * w),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(4 * w, len(self.class_names))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pooled = self.features(images).amax(dim=(2, 3))
        logits: torch.Tensor = self.classifier(pooled)
        return logits
