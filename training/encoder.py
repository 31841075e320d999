"""An encoder that inverts the shipped generator: images to latents, learned from its samples.

Inverting a real image into a GAN by optimisation alone starts far away and is slow; an encoder
E trained so that ``E(G(z)) ~ z`` gives a start close to the answer (Bau et al., "Seeing what a
GAN cannot generate", ICCV 2019, train such an encoder before refining by optimisation). Here E
learns from the generator's own samples: a latent z, its image G(z), and the loss

    latent_weight * ||E(G(z)) - z||^2  +  pixel_weight * |G(E(G(z))) - G(z)|,

the second term through the frozen generator, so E is judged by the picture its latent gives.

Train and ship (after the generator is shipped)::

    python -m training fit --config configs/encoder.yaml
    python -m training export runs/train/encoder --name encoder

The shipped encoder records which generator it was trained for (:func:`generator_digest`);
``python -m gan_dissect invert`` refuses to start from an encoder of another generator.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from training.errors import ConfigError, InputError
from training.modules import Part


def generator_digest(generator: nn.Module) -> str:
    """A short hash of a generator's weights: names, shapes and values of its state dict."""
    digest = hashlib.sha256()
    for name, tensor in sorted(generator.state_dict().items()):
        digest.update(name.encode() + str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()[:16]


class Encoder(nn.Module):
    """Images (N, 3, size, size) in [-1, 1] to latents (N, z_dim): a DCGAN discriminator body
    (stride-2 convolutions down to 4 x 4, batch norm, leaky ReLU) and a linear head.

    ``generator_digest`` names the generator it was trained to invert (see
    :func:`generator_digest`); it is kept as a plain attribute for the model card.
    """

    def __init__(
        self, z_dim: int = 128, size: int = 64, width: int = 32, generator_digest: str = ""
    ) -> None:
        super().__init__()
        depth = math.log2(size) if size > 0 else 0.0
        if size < 16 or depth != int(depth):
            raise ConfigError(f"image size must be a power of two >= 16, got {size}")
        self.z_dim = z_dim
        self.size = size
        self.width = width
        self.generator_digest = generator_digest
        blocks = int(depth) - 2
        layers: list[nn.Module] = [nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        channels = width
        for _ in range(1, blocks):
            layers += [
                nn.Conv2d(channels, 2 * channels, 4, 2, 1, bias=False),
                nn.BatchNorm2d(2 * channels),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels *= 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels * 16, z_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, self.size, self.size):
            raise InputError(
                f"encoder expects images (N, 3, {self.size}, {self.size}), got "
                f"{tuple(images.shape)}"
            )
        latents: torch.Tensor = self.head(self.features(images).flatten(1))
        return latents


class EncoderModule(pl.LightningModule):
    """Trains :class:`Encoder` on a frozen generator's samples (see the module docstring).

    Parameters
    ----------
    generator:
        Name of the shipped generator to invert (loaded with ``load_pretrained``).
    weights_dir:
        Where the shipped generator lives (None: ``training/weights``).
    width:
        Channels of the encoder's first layer (doubling at each halving of the resolution).
    lr, weight_decay:
        AdamW settings (cosine-annealed to 0 over the run).
    latent_weight, pixel_weight:
        Weights of the latent MSE and of the pixel L1 through the generator.
    """

    def __init__(
        self,
        generator: str = "generator",
        weights_dir: str | None = None,
        width: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        latent_weight: float = 1.0,
        pixel_weight: float = 1.0,
    ) -> None:
        super().__init__()
        from training.pretrained import load_pretrained

        self.save_hyperparameters()
        self.generator = load_pretrained(generator, weights_dir=weights_dir)
        self.generator.requires_grad_(False)
        z_dim = int(getattr(self.generator, "z_dim", 0))
        size = int(getattr(self.generator, "size", 0))
        if not z_dim or not size:
            raise ConfigError(f"generator {generator!r} has no z_dim and size attributes")
        self.encoder = Encoder(z_dim=z_dim, size=size, width=width)

    primary_part = "encoder"

    def parts(self) -> dict[str, Part]:
        """The exportable encoder, its constructor arguments naming the generator it inverts."""
        self.encoder.generator_digest = generator_digest(self.generator)
        kwargs = {
            "z_dim": self.encoder.z_dim,
            "size": self.encoder.size,
            "width": self.encoder.width,
            "generator_digest": self.encoder.generator_digest,
        }
        return {"encoder": (self.encoder, kwargs)}

    def train(self, mode: bool = True) -> EncoderModule:
        """Train mode for the encoder only: the generator keeps its batch-norm statistics."""
        super().train(mode)
        self.generator.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)

    def _losses(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            images = self.generator(z)
        guess = self.encoder(images)
        latent = F.mse_loss(guess, z)
        pixel = F.l1_loss(self.generator(guess), images)
        h = self.hparams
        total = h["latent_weight"] * latent + h["pixel_weight"] * pixel
        return {"loss": total, "latent_mse": latent.detach(), "pixel_l1": pixel.detach()}

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = self._losses(batch[0])
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=True)
        return losses["loss"]

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        losses = self._losses(batch[0])
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, prog_bar=True, sync_dist=True)

    def configure_optimizers(self) -> Any:
        h = self.hparams
        optimizer = torch.optim.AdamW(
            self.encoder.parameters(), lr=h["lr"], weight_decay=h["weight_decay"]
        )
        steps = max(int(self.trainer.estimated_stepping_batches), 1)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class LatentData(pl.LightningDataModule):
    """Standard-normal latents (N, z_dim) as data: ``train_latents`` from ``seed`` and
    ``val_latents`` from ``seed + 1``, each latent the same on every run."""

    def __init__(
        self,
        z_dim: int = 128,
        train_latents: int = 51_200,
        val_latents: int = 512,
        batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.z_dim = z_dim
        self.train_latents = train_latents
        self.val_latents = val_latents
        self.batch_size = batch_size
        self.seed = seed

    def _draw(self, n: int, seed: int) -> TensorDataset:
        generator = torch.Generator().manual_seed(seed)
        return TensorDataset(torch.randn(n, self.z_dim, generator=generator))

    def train_dataloader(self) -> DataLoader:
        data = self._draw(self.train_latents, self.seed)
        return DataLoader(data, batch_size=self.batch_size, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader | list:
        if not self.val_latents:
            return []
        return DataLoader(self._draw(self.val_latents, self.seed + 1), batch_size=self.batch_size)


def evaluate_encoder(
    encoder: Encoder,
    generator: nn.Module,
    real_images: Any | None = None,
    *,
    n: int = 256,
    seed: int = 0,
    batch_size: int = 64,
) -> dict[str, Any]:
    """How good a start for inversion the encoder gives (the figures of its model card).

    On ``n`` of the generator's own samples: the latent MSE of E(G(z)) against z and the mean
    absolute pixel difference of G(E(G(z))) from G(z); on ``real_images`` (N, 3, H, W) in
    [-1, 1], when given, the pixel difference of G(E(x)) from x. Images are in [-1, 1].
    """
    encoder.eval()
    generator.eval()
    z = torch.randn(n, encoder.z_dim, generator=torch.Generator().manual_seed(seed))
    latent, pixel, real_pixel = 0.0, 0.0, 0.0
    with torch.no_grad():
        for start in range(0, n, batch_size):
            batch = z[start : start + batch_size]
            images = generator(batch)
            guess = encoder(images)
            latent += float(F.mse_loss(guess, batch, reduction="sum")) / encoder.z_dim
            pixel += float((generator(guess) - images).abs().flatten(1).mean(1).sum())
        result: dict[str, Any] = {
            "samples": n,
            "latent_mse": latent / n,
            "sample_pixel_l1": pixel / n,
            "generator_digest": generator_digest(generator),
            "trained_for_this_generator": encoder.generator_digest == generator_digest(generator),
        }
        if real_images is not None:
            real = torch.as_tensor(real_images, dtype=torch.float32)
            for start in range(0, len(real), batch_size):
                batch = real[start : start + batch_size]
                error = (generator(encoder(batch)) - batch).abs().flatten(1).mean(1)
                real_pixel += float(error.sum())
            result["real_scenes"] = len(real)
            result["real_pixel_l1"] = real_pixel / len(real)
    return result
