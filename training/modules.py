"""LightningModules: the step logic that trains each shipped network.

Each module holds its network(s) as attributes and says, through :meth:`parts`, which of them
can be exported as shipped models (the network and the constructor arguments that rebuild it).
Every constructor argument is a plain value, so a Lightning checkpoint's hyper-parameters load
with ``weights_only=True``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F

from training.checkpoints import load_checkpoint, load_weights
from training.errors import ConfigError
from training.evaluation import confusion_matrix, iou_from_confusion
from training.models import Discriminator, Generator, LampClassifier, Segmenter
from training.scenes import CONCEPTS

Part = tuple[nn.Module, dict[str, Any]]


def _flip_half(images: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Mirror a random half of the batch left-right (a street is a street either way round)."""
    flip = torch.rand(images.shape[0], device=images.device) < 0.5
    out = [torch.where(flip[:, None, None, None], images.flip(-1), images)]
    for other in others:
        shape = (-1,) + (1,) * (other.dim() - 1)
        out.append(
            torch.where(flip.view(shape), other.flip(-1), other) if other.dim() > 1 else other
        )
    return out


class GANModule(pl.LightningModule):
    """A DCGAN trained with the non-saturating loss and two Adam optimizers (manual optimisation).

    One batch is one discriminator step and one generator step, so ``global_step`` advances by
    two per batch: budget runs in epochs or ``max_steps = 2 x batches``.

    Parameters
    ----------
    z_dim, size, generator_width, discriminator_width:
        Shapes of :class:`~training.models.Generator` and :class:`~training.models.Discriminator`.
    lr_generator, lr_discriminator, beta1, beta2:
        Adam settings (the DCGAN paper's 2e-4 and (0.5, 0.999) by default).
    real_label:
        Target of real images for the discriminator; below 1 is one-sided label smoothing
        (``loss="bce"`` only).
    discriminator_norm:
        ``"batch"`` (DCGAN) or ``"spectral"`` (spectral normalisation, no batch norm).
    loss:
        ``"bce"``: the non-saturating cross-entropy of DCGAN; ``"hinge"``: the hinge loss
        usually paired with spectral normalisation.
    generator_upsample:
        ``"transposed"`` (DCGAN) or ``"nearest"`` (nearest upsampling + 3 x 3 convolution, no
        checkerboard); see :class:`~training.models.Generator`.
    r1_gamma, r1_every:
        When ``r1_gamma`` > 0, the discriminator's loss adds the R1 penalty
        ``r1_gamma / 2 * E ||grad_x D(x)||^2`` on real images (Mescheder et al. 2018), which keeps
        D flat on the data and training near its equilibrium. "Lazy": it is computed on every
        ``r1_every``-th batch only, scaled by ``r1_every`` to keep its average weight (StyleGAN2).
    ema_decay:
        When above 0, ``generator_ema`` follows an exponential moving average of the
        generator's weights (``ema = decay * ema + (1 - decay) * weights`` after every generator
        step). It smooths out the epoch-to-epoch swings of GAN training; samples, quality
        figures and the exported ``generator`` then come from it.
    """

    def __init__(
        self,
        z_dim: int = 128,
        size: int = 64,
        generator_width: int = 32,
        discriminator_width: int = 32,
        lr_generator: float = 2e-4,
        lr_discriminator: float = 2e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
        real_label: float = 1.0,
        discriminator_norm: str = "batch",
        loss: str = "bce",
        ema_decay: float = 0.0,
        generator_upsample: str = "transposed",
        r1_gamma: float = 0.0,
        r1_every: int = 1,
    ) -> None:
        super().__init__()
        if loss not in ("bce", "hinge"):
            raise ConfigError(f"loss must be 'bce' or 'hinge', got {loss!r}")
        if r1_gamma < 0 or r1_every < 1:
            raise ConfigError(f"need r1_gamma >= 0 and r1_every >= 1, got {r1_gamma}, {r1_every}")
        if not 0.0 <= ema_decay < 1.0:
            raise ConfigError(f"ema_decay must lie in [0, 1), got {ema_decay}")
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = Generator(
            z_dim=z_dim, size=size, width=generator_width, upsample=generator_upsample
        )
        self.discriminator = Discriminator(
            size=size, width=discriminator_width, norm=discriminator_norm
        )
        self.real_label = real_label
        self.loss = loss
        self.ema_decay = ema_decay
        self.generator_ema: Generator | None = None
        if ema_decay > 0:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        self._calibrated_at = -1

    primary_part = "generator"

    def sampling_generator(self) -> Generator:
        """The generator to draw samples from: the averaged one when ``ema_decay`` > 0.

        The averaged weights never ran through batch norm during training, so its running
        statistics are first measured afresh on generated batches (once per training step).
        """
        if self.generator_ema is None:
            return self.generator
        if self._calibrated_at != self.global_step:
            recalibrate_batch_norm(self.generator_ema)
            self._calibrated_at = self.global_step
        return self.generator_ema

    def parts(self) -> dict[str, Part]:
        """The exportable networks with their constructor arguments.

        ``generator`` is the averaged generator when ``ema_decay`` > 0 (the trained one is then
        ``generator_live``).
        """
        h = self.hparams
        kwargs = {
            "z_dim": h["z_dim"],
            "size": h["size"],
            "width": h["generator_width"],
            "upsample": h["generator_upsample"],
        }
        parts: dict[str, Part] = {}
        if self.generator_ema is not None:
            parts["generator_live"] = (self.generator, kwargs)
        return {
            **parts,
            "generator": (self.sampling_generator(), kwargs),
            "discriminator": (
                self.discriminator,
                {
                    "size": h["size"],
                    "width": h["discriminator_width"],
                    "norm": h["discriminator_norm"],
                },
            ),
        }

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        real = batch
        opt_g, opt_d = self.optimizers()  # type: ignore[attr-defined]
        z = torch.randn(real.shape[0], self.generator.z_dim, device=real.device)
        fake = self.generator(z)

        self.toggle_optimizer(opt_d)
        h = self.hparams
        # global_step counts both optimizers' steps: one batch is two
        r1_now = h["r1_gamma"] > 0 and (self.global_step // 2) % h["r1_every"] == 0
        if r1_now:
            real = real.detach().requires_grad_(True)
        logits_real = self.discriminator(real)
        logits_fake = self.discriminator(fake.detach())
        if self.loss == "hinge":
            loss_d = F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean()
        else:
            loss_d = F.binary_cross_entropy_with_logits(
                logits_real, torch.full_like(logits_real, self.real_label)
            ) + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))
        if r1_now:
            (gradient,) = torch.autograd.grad(logits_real.float().sum(), real, create_graph=True)
            penalty = gradient.float().pow(2).flatten(1).sum(1).mean()
            loss_d = loss_d + 0.5 * h["r1_gamma"] * h["r1_every"] * penalty
            self.log("loss/r1", penalty.detach(), on_step=True, on_epoch=True)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        self.toggle_optimizer(opt_g)
        logits_gen = self.discriminator(fake)
        if self.loss == "hinge":
            loss_g = -logits_gen.mean()
        else:
            loss_g = F.binary_cross_entropy_with_logits(logits_gen, torch.ones_like(logits_gen))
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        if self.generator_ema is not None:
            with torch.no_grad():
                for averaged, current in zip(
                    self.generator_ema.parameters(), self.generator.parameters(), strict=True
                ):
                    averaged.lerp_(current, 1.0 - self.ema_decay)

        self.log_dict(
            {
                "loss/discriminator": loss_d.detach(),
                "loss/generator": loss_g.detach(),
                "d_score/real": torch.sigmoid(logits_real).mean().detach(),
                "d_score/fake": torch.sigmoid(logits_fake).mean().detach(),
            },
            prog_bar=True,
            on_step=True,
            on_epoch=True,
        )

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        h = self.hparams
        betas = (h["beta1"], h["beta2"])
        return [
            torch.optim.Adam(self.generator.parameters(), lr=h["lr_generator"], betas=betas),
            torch.optim.Adam(
                self.discriminator.parameters(), lr=h["lr_discriminator"], betas=betas
            ),
        ]


@torch.no_grad()
def recalibrate_batch_norm(
    generator: Generator, *, batches: int = 16, batch_size: int = 256, seed: int = 0
) -> None:
    """Re-estimate a generator's batch-norm running statistics on its own samples.

    The running means and variances become exact averages over ``batches`` batches of latents
    drawn with ``seed`` (a private random stream, so training's random state is untouched).
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    was_training = generator.training
    saved = [(m, m.momentum) for m in norms]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None  # cumulative average over the batches below
    device = next(generator.parameters()).device
    stream = torch.Generator().manual_seed(seed)
    generator.train()
    try:
        for _ in range(batches):
            generator(torch.randn(batch_size, generator.z_dim, generator=stream).to(device))
    finally:
        for module, momentum in saved:
            module.momentum = momentum
        generator.train(was_training)


class _ScheduledModule(pl.LightningModule):
    """AdamW with a one-cycle learning rate over the whole run (shared by the supervised models)."""

    def configure_optimizers(self) -> Any:
        h = self.hparams
        optimizer = torch.optim.AdamW(self.parameters(), lr=h["lr"], weight_decay=h["weight_decay"])
        # a cycle over fewer than 10 steps would start and end at ~0 (lr / 25 / 1e4)
        steps = max(int(self.trainer.estimated_stepping_batches), 10)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=h["lr"], total_steps=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def _noisy(self, images: torch.Tensor) -> torch.Tensor:
        # pixel noise makes the model robust to a generator's grain, not only to clean renders
        noise_std: float = self.hparams["noise_std"]
        return images + noise_std * torch.randn_like(images) if noise_std > 0 else images


class SegmenterModule(_ScheduledModule):
    """Trains :class:`~training.models.Segmenter` on scene label maps with cross-entropy.

    Validation and test report the mean IoU over concepts (``val/miou``) and each concept's IoU
    (``val/iou_lamp`` ...), accumulated as one confusion matrix over all pixels (and all ranks).
    """

    def __init__(
        self,
        width: int = 16,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        noise_std: float = 0.04,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.segmenter = Segmenter(width=width, concepts=CONCEPTS)
        self._confusion: torch.Tensor | None = None

    primary_part = "segmenter"

    def parts(self) -> dict[str, Part]:
        """The exportable network with its constructor arguments."""
        return {
            "segmenter": (
                self.segmenter,
                {"width": self.hparams["width"], "concepts": list(CONCEPTS)},
            )
        }

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.segmenter(images)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        images, labels = _flip_half(*batch)
        loss = F.cross_entropy(self.segmenter(self._noisy(images)), labels)
        self.log("loss/train", loss, prog_bar=True, on_step=True, on_epoch=True)
        return loss

    def _accumulate(self, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        images, labels = batch
        predicted = self.segmenter(images).argmax(1)
        confusion = confusion_matrix(predicted, labels, len(CONCEPTS))
        self._confusion = confusion if self._confusion is None else self._confusion + confusion

    def _report(self, stage: str) -> None:
        if self._confusion is None:
            return
        confusion = self.trainer.strategy.reduce(self._confusion.float(), reduce_op="sum")
        self._confusion = None
        iou = iou_from_confusion(confusion.cpu().numpy())
        # already summed over ranks, so every rank logs the same numbers
        self.log_dict({f"{stage}/iou_{name}": float(iou[i]) for i, name in enumerate(CONCEPTS)})
        self.log(f"{stage}/miou", float(iou.mean()), prog_bar=True)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._accumulate(batch)

    def on_validation_epoch_end(self) -> None:
        self._report("val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._accumulate(batch)

    def on_test_epoch_end(self) -> None:
        self._report("test")


class LampClassifierModule(_ScheduledModule):
    """Trains :class:`~training.models.LampClassifier` ("is any lamp lit?") with cross-entropy."""

    def __init__(
        self,
        width: int = 16,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        noise_std: float = 0.04,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.classifier = LampClassifier(width=width)

    primary_part = "lamp_classifier"

    def parts(self) -> dict[str, Part]:
        """The exportable network with its constructor arguments."""
        return {"lamp_classifier": (self.classifier, {"width": self.hparams["width"]})}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(images)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        images, lit = _flip_half(*batch)
        logits = self.classifier(self._noisy(images))
        loss = F.cross_entropy(logits, lit)
        accuracy = (logits.argmax(1) == lit).float().mean()
        self.log_dict({"loss/train": loss, "accuracy/train": accuracy}, prog_bar=True)
        return loss

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        images, lit = batch
        logits = self.classifier(images)
        self.log_dict(
            {
                f"{stage}/loss": F.cross_entropy(logits, lit),
                f"{stage}/accuracy": (logits.argmax(1) == lit).float().mean(),
            },
            prog_bar=True,
            sync_dist=True,
        )

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")


def generator_from_checkpoint(path: str | Path, *, averaged: bool = True) -> Generator:
    """The generator a :class:`GANModule` checkpoint samples from, in eval mode on the CPU.

    That is the averaged generator when the run kept one (``ema_decay`` > 0), with its batch-norm
    statistics measured afresh, as :meth:`GANModule.sampling_generator` and export give it;
    ``averaged=False`` gives the trained weights themselves.
    """
    checkpoint = load_checkpoint(path)
    hparams = {
        key: value
        for key, value in (checkpoint.get("hyper_parameters") or {}).items()
        if not key.startswith("_")
    }
    module = GANModule(**hparams)
    load_weights(module, checkpoint)
    return (module.sampling_generator() if averaged else module.generator).eval()
