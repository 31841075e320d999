"""Scenes as Lightning data: rendered once into memory as 8-bit pixels, served as [-1, 1] floats.

The training set (seed ``seed``), the validation set (seed ``seed + 1``) and the held-out test
set (:data:`training.scenes.HELD_OUT_SEED`) never share a scene stream.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from training.errors import ConfigError
from training.scenes import HELD_OUT_SEED, SIZES, render_scenes

Target = Literal["none", "labels", "lamp_lit"]
_BLOCK = 2048  # scenes rendered at once while filling memory: bounds the float32 peak


class SceneDataset(Dataset):
    """Rendered scenes kept as uint8 (N, 3, H, W) pixels plus one optional target per scene.

    ``target``: ``"none"`` (items are images), ``"labels"`` (items are ``(image, label map)``)
    or ``"lamp_lit"`` (items are ``(image, 1 if any lamp is lit else 0)``).
    """

    def __init__(self, n: int, *, size: int = 64, seed: int = 0, target: Target = "none") -> None:
        self.target = target
        self.images = torch.empty((n, 3, size, size), dtype=torch.uint8)
        self.targets: torch.Tensor | None = None
        if target == "labels":
            self.targets = torch.empty((n, size, size), dtype=torch.uint8)
        elif target == "lamp_lit":
            self.targets = torch.empty(n, dtype=torch.uint8)
        elif target != "none":
            raise ConfigError(f"target must be none, labels or lamp_lit, got {target!r}")
        for start in range(0, n, _BLOCK):
            scenes = render_scenes(min(_BLOCK, n - start), size=size, seed=seed, start=start)
            stop = start + len(scenes.images)
            pixels = np.rint((scenes.images + 1.0) * 127.5).astype(np.uint8)
            self.images[start:stop] = torch.from_numpy(pixels)
            if self.targets is not None:
                value = scenes.labels if target == "labels" else scenes.any_lamp_lit
                self.targets[start:stop] = torch.from_numpy(value.astype(np.uint8))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index].float() / 127.5 - 1.0
        if self.targets is None:
            return image
        return image, self.targets[index].long()


class SceneDataModule(pl.LightningDataModule):
    """Street scenes for every model seethrough trains.

    Parameters
    ----------
    target:
        What each batch carries besides the images (see :class:`SceneDataset`).
    size:
        Image side in pixels (32, 64 or 128).
    train_scenes, val_scenes, test_scenes:
        How many scenes each split renders (``val_scenes=0``: no validation).
    batch_size:
        Scenes per batch (per process under DDP).
    seed:
        Seed of the training scenes; validation uses ``seed + 1``, testing the held-out seed.
    num_workers:
        DataLoader worker processes (0 keeps everything in the main process).
    """

    def __init__(
        self,
        target: Target = "none",
        size: int = 64,
        train_scenes: int = 40_000,
        val_scenes: int = 1024,
        test_scenes: int = 1024,
        batch_size: int = 64,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if size not in SIZES:
            raise ConfigError(f"size must be one of {SIZES}, got {size}")
        if HELD_OUT_SEED in (seed, seed + 1):
            raise ConfigError(f"seed {seed} would reuse the held-out scenes; choose another")
        self.save_hyperparameters()
        self.target: Target = target
        self.size = size
        self.train_scenes = train_scenes
        self.val_scenes = val_scenes
        self.test_scenes = test_scenes
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.train_set: SceneDataset | None = None
        self.val_set: SceneDataset | None = None
        self.test_set: SceneDataset | None = None

    def _render(self, n: int, seed: int) -> SceneDataset:
        return SceneDataset(n, size=self.size, seed=seed, target=self.target)

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.train_set is None:
            self.train_set = self._render(self.train_scenes, self.seed)
        if stage in ("fit", "validate") and self.val_set is None and self.val_scenes:
            self.val_set = self._render(self.val_scenes, self.seed + 1)
        if stage == "test" and self.test_set is None:
            self.test_set = self._render(self.test_scenes, HELD_OUT_SEED)

    def _loader(self, dataset: SceneDataset | None, *, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise ConfigError("the data module was not set up for this stage")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.val_set, shuffle=False) if self.val_scenes else []

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)
