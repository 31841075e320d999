"""Side effects of training, each a Lightning callback that acts on rank 0 only.

- :class:`TrainingRecord` writes ``record.json`` (exact command, seed, versions, wall time) so
  that an exported model's card can say how it was made.
- :class:`CpuTimeLimit` stops fitting after a budget of CPU time, a fair budget for comparing
  recipes on a machine shared with other work (where a wall-clock budget buys more or less).
- :class:`MirrorCheckpoint` copies each new ``last.ckpt`` to a second folder, so that a long
  run can be resumed from there when its run folder is lost.
- :class:`SampleGrid` writes a grid of generated images from fixed latents after every epoch.
- :class:`GANQuality` labels generated images with the shipped segmenter after every epoch and
  compares their concept statistics with real scenes, and measures how far they lie from real
  scenes in the segmenter's feature space (Fréchet distance, KID, precision, recall, beside the
  real-vs-real floor): JSON, figures, logged metrics.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from training.evaluation import ImageQuality, compare_statistics, generate, segment
from training.images import save_figure, save_grid
from training.runs import atomic_write_bytes, atomic_write_json, package_versions
from training.scenes import CONCEPTS, held_out_sample

RECORD_FILE = "record.json"
FEATURE_FIGURES = ("fd", "kid", "precision", "recall")


def run_dir(trainer: pl.Trainer) -> Path:
    """The folder a run writes into (the logger's folder, else the trainer's root folder).

    Under DDP ``trainer.log_dir`` is a collective call: every rank must ask, not rank 0 alone.
    """
    return Path(trainer.log_dir or trainer.default_root_dir)


class _WritesToRun(pl.Callback):
    """A callback that learns its run folder in ``setup``, where every rank takes part."""

    folder = Path(".")

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.folder = run_dir(trainer)


class TrainingRecord(_WritesToRun):
    """Write ``record.json`` into the run folder when fitting ends (and after every epoch).

    ``command`` is the command line that started the run, as a person would type it.
    """

    def __init__(self, command: str) -> None:
        self.command = command
        self._started = 0.0
        self._created = ""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.perf_counter()
        self._created = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    def _write(self, trainer: pl.Trainer, *, finished: bool, epochs: int) -> None:
        if not trainer.is_global_zero:
            return
        seed = os.environ.get("PL_GLOBAL_SEED")
        record = {
            "command": self.command,
            "seed": int(seed) if seed is not None else None,
            "finished": finished,
            "started": self._created,
            "train_time_s": round(time.perf_counter() - self._started, 1),
            "epochs": epochs,  # complete epochs
            "global_step": trainer.global_step,
            "world_size": trainer.world_size,
            "accelerator": type(trainer.accelerator).__name__,
            "torch_threads": torch.get_num_threads(),
            "versions": package_versions(),
        }
        atomic_write_json(self.folder / RECORD_FILE, record)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # current_epoch is still the (0-based) number of the epoch that just ended
        self._write(trainer, finished=False, epochs=trainer.current_epoch + 1)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # after the loop, current_epoch counts the complete epochs (a stop by max_time mid-epoch
        # leaves it at the unfinished one's number)
        self._write(trainer, finished=True, epochs=trainer.current_epoch)


class CpuTimeLimit(pl.Callback):
    """Stop fitting once this process has spent ``seconds`` of CPU time training (all threads).

    Counted from the start of training (data set-up excluded) by :func:`time.process_time`, and
    checked after every batch; Lightning then ends the epoch as usual (checkpoints are written).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._started = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.process_time()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if time.process_time() - self._started >= self.seconds:
            trainer.should_stop = True


class MirrorCheckpoint(pl.Callback):
    """Copy the run's newest ``last.ckpt`` to ``folder`` (atomically), on rank 0.

    Lightning saves checkpoints after every other callback has run, so the copy is made at the
    first hook after a save: the next batch's start, and when fitting ends. ``folder`` keeps one
    file, ``last.ckpt``, that ``fit --ckpt_path <folder>/last.ckpt`` resumes from.
    """

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder).expanduser()
        self._copied: tuple[str, float] | None = None

    def _mirror(self, trainer: pl.Trainer) -> None:
        if not trainer.is_global_zero:
            return
        for callback in trainer.checkpoint_callbacks:
            path = getattr(callback, "last_model_path", "")
            if not path or not Path(path).is_file():
                continue
            stamp = (str(path), Path(path).stat().st_mtime)
            if stamp != self._copied:
                atomic_write_bytes(self.folder / "last.ckpt", Path(path).read_bytes())
                self._copied = stamp
            return

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self._mirror(trainer)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._mirror(trainer)


def _generator_of(pl_module: pl.LightningModule) -> torch.nn.Module:
    """The generator to sample from: ``sampling_generator()`` if the module has one."""
    sampler = getattr(pl_module, "sampling_generator", None)
    generator = sampler() if callable(sampler) else getattr(pl_module, "generator", None)
    if not isinstance(generator, torch.nn.Module):
        raise TypeError(f"{type(pl_module).__name__} has no generator to sample from")
    return generator


class SampleGrid(_WritesToRun):
    """After every ``every_n_epochs`` epochs write ``samples/epoch_NNN.png`` from fixed latents.

    The same ``num_samples`` latents (drawn with ``seed``) are used every time, so the grids of
    successive epochs show the same scenes taking shape.
    """

    def __init__(
        self, num_samples: int = 64, nrow: int = 8, every_n_epochs: int = 1, seed: int = 0
    ) -> None:
        self.num_samples = num_samples
        self.nrow = nrow
        self.every_n_epochs = every_n_epochs
        self.seed = seed

    def write(self, pl_module: pl.LightningModule, name: str) -> Path:
        """Write the grid of ``pl_module``'s generator to ``samples/<name>.png``."""
        generator = _generator_of(pl_module)
        images = generate(generator, self.num_samples, seed=self.seed)
        scale = max(1, 128 // images.shape[-1])
        path = self.folder / "samples" / f"{name}.png"
        return save_grid(images, path, nrow=self.nrow, scale=scale)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if trainer.is_global_zero and epoch % self.every_n_epochs == 0:
            self.write(pl_module, f"epoch_{epoch:03d}")


class GANQuality(_WritesToRun):
    """After every ``every_n_epochs`` epochs, measure generated scenes through a segmenter.

    ``num_samples`` generated images and as many held-out real scenes are labelled by the
    shipped model ``segmenter`` (from ``weights_dir``); :func:`training.evaluation.
    compare_statistics` gives each concept's pixel share and presence in both and the Fréchet
    segmentation distance. :class:`training.evaluation.ImageQuality` adds, under ``"features"``,
    the Fréchet distance, KID (with its standard error), precision and recall in the
    segmenter's feature space, with the floor of a second set of real scenes beside them.
    Writes ``quality/epoch_NNN.json`` and ``.png``, ``quality/history.png`` and logs
    ``quality/fsd``, ``quality/max_relative_error``, ``quality/lamp_presence_ratio``,
    ``quality/fd``, ``quality/kid``, ``quality/precision`` and ``quality/recall``.
    """

    def __init__(
        self,
        segmenter: str = "segmenter",
        weights_dir: str | None = None,
        num_samples: int = 512,
        every_n_epochs: int = 1,
        seed: int = 1,
    ) -> None:
        self.segmenter_name = segmenter
        self.weights_dir = weights_dir
        self.num_samples = num_samples
        self.every_n_epochs = every_n_epochs
        self.seed = seed
        self.history: list[dict[str, Any]] = []
        self._segmenter: torch.nn.Module | None = None
        self._real_labels: np.ndarray | None = None
        self._quality: ImageQuality | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if not trainer.is_global_zero or self._segmenter is not None:
            return
        from training.pretrained import load_pretrained

        # fail before training starts, not after the first epoch, when no segmenter is shipped
        self._segmenter = load_pretrained(self.segmenter_name, weights_dir=self.weights_dir)
        size = int(_generator_of(pl_module).size)  # type: ignore[arg-type]
        # the first half is the reference, the second the floor's other real set
        real = held_out_sample(2 * self.num_samples, size=size)
        self._real_labels = segment(self._segmenter, real.images[: self.num_samples])
        # KID subsets of at least 50 images each (down to 2 subsets for tiny test runs)
        subsets = min(10, max(2, self.num_samples // 50))
        self._quality = ImageQuality(
            self._segmenter, n=self.num_samples, real=real.images, subsets=subsets, seed=self.seed
        )

    def measure(self, pl_module: pl.LightningModule) -> dict[str, Any]:
        """Concept statistics and feature-space quality of generated images, as in the JSON."""
        if self._segmenter is None or self._real_labels is None or self._quality is None:
            raise RuntimeError("GANQuality.measure needs setup() first")
        images = generate(_generator_of(pl_module), self.num_samples, seed=self.seed)
        result = compare_statistics(self._real_labels, segment(self._segmenter, images))
        result["features"] = self._quality.measure(images)
        return result

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if not trainer.is_global_zero or epoch % self.every_n_epochs:
            return
        result = {"epoch": epoch, "global_step": trainer.global_step, **self.measure(pl_module)}
        self.history.append(result)
        folder = self.folder / "quality"
        atomic_write_json(folder / f"epoch_{epoch:03d}.json", result)
        save_figure(quality_figure(result), folder / f"epoch_{epoch:03d}.png")
        save_figure(history_figure(self.history), folder / "history.png")
        metrics = {
            "quality/fsd": result["fsd"],
            "quality/max_relative_error": result["max_relative_error"],
            "quality/lamp_presence_ratio": result["lamp_presence_ratio"],
            **{f"quality/{key}": result["features"][key] for key in FEATURE_FIGURES},
        }
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)


def quality_figure(result: dict[str, Any]) -> Any:
    """Bars of real against generated concept shares and presence rates, for one measurement."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    concepts = result["concepts"]
    x = np.arange(len(CONCEPTS))
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for axis, key, title in (
        (axes[0], "share", "mean pixel share"),
        (axes[1], "presence", "share of images where present"),
    ):
        real = [concepts[c][f"real_{key}"] for c in CONCEPTS]
        fake = [concepts[c][f"generated_{key}"] for c in CONCEPTS]
        axis.bar(x - 0.2, real, 0.4, label="real (segmented)", color="#5b7fbf")
        axis.bar(x + 0.2, fake, 0.4, label="generated (segmented)", color="#e0883a")
        axis.set_xticks(x, CONCEPTS, rotation=35, ha="right")
        axis.set_title(title)
    axes[0].legend(fontsize=8)
    figure.suptitle(
        f"epoch {result.get('epoch', '-')}: FSD {result['fsd']:.2f}, worst share error "
        f"{result['max_relative_error']:.0%} ({result['worst_concept']}), lamp presence "
        f"{result['lamp_presence_ratio']:.0%} of real",
        fontsize=10,
    )
    figure.tight_layout()
    return figure


def history_figure(history: list[dict[str, Any]]) -> Any:
    """FSD, worst relative share error and lamp presence ratio over the epochs measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    figure, axes = plt.subplots(1, 4, figsize=(14, 3))
    axes[0].plot(epochs, [h["fsd"] for h in history], marker="o")
    axes[0].set_title("Fréchet segmentation distance")
    axes[1].plot(epochs, [h["max_relative_error"] for h in history], marker="o")
    axes[1].axhline(0.3, color="grey", linestyle="--")
    axes[1].set_title("worst concept share error (target <= 0.3)")
    axes[2].plot(epochs, [h["lamp_presence_ratio"] for h in history], marker="o")
    axes[2].axhline(0.7, color="grey", linestyle="--")
    axes[2].set_title("lamp presence / real (target >= 0.7)")
    axes[3].plot(epochs, [h["features"]["fd"] for h in history], marker="o")
    axes[3].axhline(history[-1]["features"]["floor"]["fd"], color="grey", linestyle="--")
    axes[3].set_yscale("log")
    axes[3].set_title("feature Fréchet distance (dashed: real vs real)")
    for axis in axes:
        axis.set_xlabel("epoch")
    figure.tight_layout()
    return figure
