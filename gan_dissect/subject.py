"""What every analysis of a generator needs, held and checked once: a :class:`Subject`.

A subject is the generator (mapped to the [-1, 1] that segmenters, pictures and pixel losses
get), the layers to look at, the segmenter with its concept names, the latent shape and sampler,
the generator's output range and image size, the device, the batch size and the seed.
:meth:`Subject.build` makes one from Python objects or from the names the commands take
(``"shipped"``, ``package.module:factory``) and checks, on a first batch, what would otherwise
fail late: a latent shape the generator does not take, images that are not (N, 3, H, W), pixels
outside the output range, layer names the generator does not have, a segmenter whose output
does not fit the images. Each error names the option to change, as a command flag and as the
Python argument.

Every analysis (:func:`~gan_dissect.dissection.dissect_layers`,
:func:`~gan_dissect.effects.measure_effect`, :func:`~gan_dissect.ranking.learn_unit_mask`,
:func:`~gan_dissect.actmax.maximise_latent`, :func:`~gan_dissect.inversion.invert`, ...)
takes a subject plus its own few options, and draws its latents with :meth:`Subject.batches`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from gan_dissect.distributed import own_batches
from gan_dissect.hooks import find_layer, trace
from gan_dissect.streams import latent_shape, latents
from training.devices import module_device
from training.errors import ConfigError, InputError

Segmenter = Callable[[torch.Tensor], torch.Tensor]


class Segmentation:
    """A segmenter checked at the edge: images (N, 3, H, W) to labels (N, H, W) int64.

    ``segmenter`` maps images to labels (N, H, W) or to class scores (N, C, H, W) (labels are
    then the best-scoring concept). ``concepts`` names its C concepts; by default the
    segmenter's ``concepts`` attribute. Labels must cover every pixel of the image; -1 marks a
    pixel of no concept.
    """

    def __init__(self, segmenter: Segmenter, concepts: Sequence[str] | None = None) -> None:
        names = concepts if concepts is not None else getattr(segmenter, "concepts", None)
        if names is None or isinstance(names, str) or len(list(names)) == 0:
            raise InputError(
                f"{_describe(segmenter)} has no list of concept names: give it a 'concepts' "
                "attribute, or pass --concepts (concepts= in Python)"
            )
        self.concepts = [str(name) for name in names]
        if len(set(self.concepts)) != len(self.concepts):
            raise InputError(f"concept names must be unique, got {self.concepts}")
        self.segmenter = segmenter
        self.device = module_device(segmenter) if isinstance(segmenter, torch.nn.Module) else None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        inputs = images if self.device is None else images.to(self.device)
        output = self.segmenter(inputs)
        n, _, height, width = images.shape
        expected = f"labels ({n}, {height}, {width}) or scores ({n}, {len(self.concepts)}, "
        expected += f"{height}, {width})"
        if not isinstance(output, torch.Tensor):
            raise InputError(
                f"segmenter returned {type(output).__name__}; it must return {expected}"
            )
        if output.dim() == 4 and tuple(output.shape) == (n, len(self.concepts), height, width):
            labels = output.argmax(dim=1)
        elif output.dim() == 3 and tuple(output.shape) == (n, height, width):
            if output.dtype.is_floating_point or output.dtype == torch.bool:
                raise InputError(f"segmenter returned {output.dtype} labels; labels are integers")
            labels = output.to(torch.int64)
        else:
            raise InputError(
                f"segmenter returned shape {tuple(output.shape)} for images of shape "
                f"{tuple(images.shape)}; it must return {expected} (one label per image pixel, "
                f"{len(self.concepts)} concepts: {', '.join(self.concepts)})"
            )
        return labels.to(images.device)

    def concept_index(self, concept: str) -> int:
        """Index of ``concept``; an unknown name raises :class:`InputError` listing them."""
        if concept not in self.concepts:
            raise InputError(f"no concept {concept!r}; concepts: {', '.join(self.concepts)}")
        return self.concepts.index(concept)


@dataclass(frozen=True)
class Subject:
    """A generator and segmenter checked together; build one with :meth:`build`.

    ``generator`` maps latents (N, *z_shape) to images (N, 3, H, W) in [-1, 1] (a generator
    drawing in another ``output_range`` is wrapped by
    :func:`~gan_dissect.models.with_output_range`, layer names unchanged); ``layers`` are the
    layers to dissect (``named_modules()`` names); ``image_size`` is (H, W); ``batch_size``
    samples go through the generator at a time; ``seed`` fixes every latent (see
    :mod:`gan_dissect.streams`).
    """

    generator: torch.nn.Module
    segmentation: Segmentation
    z_shape: tuple[int, ...]
    layers: tuple[str, ...] = ()
    output_range: tuple[float, float] = (-1.0, 1.0)
    image_size: tuple[int, int] = (0, 0)
    batch_size: int = 32
    seed: int = 0

    @classmethod
    def build(
        cls,
        generator: torch.nn.Module | str,
        segmenter: Segmenter | Segmentation | str | None,
        *,
        layers: Sequence[str] | str = (),
        z_shape: Sequence[int] | None = None,
        output_range: tuple[float, float] | str = "auto",
        batch_size: int = 32,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> Subject:
        """Load (for a name), check and hold a generator and segmenter.

        ``generator`` / ``segmenter`` are models, or names as the commands take them
        (``"shipped"`` or ``package.module:factory``), loaded onto ``device`` (default: the
        CPU); models given as modules move to ``device`` only when it is given. ``segmenter``
        may be a :class:`Segmentation` to give concept names the segmenter lacks, or None for
        analyses of the generator alone (activation maximisation of units, inversion):
        anything that segments then raises. ``layers`` are the layers to dissect, or ``"auto"``
        for every top-level module that outputs a feature map smaller than the image.
        ``z_shape`` defaults to the generator's ``z_shape`` / ``z_dim``; ``output_range`` is
        (low, high) or ``"auto"`` (see :func:`~gan_dissect.models.check_generator`).

        Raises :class:`InputError` or :class:`ConfigError` naming the flag and the argument to
        change when the generator, the segmenter or a layer name does not fit.
        """
        from gan_dissect.loading import choose_layers, load_generator, load_segmenter
        from gan_dissect.models import check_generator

        where = torch.device(device) if device is not None else torch.device("cpu")
        if isinstance(generator, str):
            generator = load_generator(generator, where)
        elif device is not None:
            generator = generator.to(where)
        if isinstance(segmenter, str):
            segmenter = load_segmenter(segmenter, where)
        elif device is not None and isinstance(segmenter, torch.nn.Module):
            segmenter = segmenter.to(where)
        if segmenter is None:
            segmentation = Segmentation(_no_segmenter, [NO_CONCEPT])
        elif isinstance(segmenter, Segmentation):
            segmentation = segmenter
        else:
            segmentation = Segmentation(segmenter)
        if int(batch_size) < 1:
            raise ConfigError(
                f"--batch-size (batch_size= in Python) must be at least 1, got {batch_size}"
            )
        checked = check_generator(generator, z_shape, output_range)
        chosen = tuple(choose_layers(checked.generator, layers, checked.z_shape)) if layers else ()
        subject = cls(
            generator=checked.generator,
            segmentation=segmentation,
            z_shape=checked.z_shape,
            layers=chosen,
            output_range=checked.output_range,
            image_size=checked.image_size,
            batch_size=int(batch_size),
            seed=int(seed),
        )
        subject.check_layers(chosen, "--layers", "layers=")
        if segmenter is not None:
            with torch.inference_mode():  # raises when the segmenter's output does not fit
                subject.segmentation(subject.generator(subject.latents([0, 1])))
        return subject

    def replace(self, **changes: Any) -> Subject:
        """A copy with some fields changed (e.g. ``layers=("layer3",)`` or ``seed=1``)."""
        return dataclasses.replace(self, **changes)

    @property
    def device(self) -> torch.device:
        """The device the generator's parameters live on."""
        return module_device(self.generator)

    @property
    def concepts(self) -> list[str]:
        """The segmenter's concept names."""
        return self.segmentation.concepts

    @property
    def segmenter(self) -> Segmenter:
        """The segmenter as given (scores or labels), unchecked."""
        return self.segmentation.segmenter

    def concept_index(self, concept: str) -> int:
        """Index of ``concept`` among :attr:`concepts` (an unknown name names them all)."""
        return self.segmentation.concept_index(concept)

    def check_layers(
        self, layers: Sequence[str], flag: str = "--layer", argument: str = "layer="
    ) -> None:
        """Raise :class:`InputError` naming ``flag`` / ``argument`` for an unknown layer."""
        for name in layers:
            try:
                find_layer(self.generator, name)
            except InputError as err:
                raise InputError(f"{flag} ({argument} in Python): {err}") from err

    def latents(self, indices: Sequence[int] | torch.Tensor, stream: int = 0) -> torch.Tensor:
        """The latents of samples ``indices`` of ``stream``, on the generator's device."""
        return latents(self.seed, indices, self.z_shape, stream=stream).to(self.device)

    def batches(
        self, num_samples: int, stream: int, *, shard: bool = False, size: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(sample numbers, latents) of samples ``0 .. num_samples - 1`` of ``stream``, in
        batches of :attr:`batch_size` (or ``size``), each drawn when it is reached. With
        ``shard``, only the batches of this process in a ``torch.distributed`` group (batch b on
        rank b % world); :meth:`count_batches` says how many come."""
        step = int(size or self.batch_size)
        for batch in self._batch_numbers(num_samples, shard, step):
            indices = torch.arange(batch * step, min((batch + 1) * step, int(num_samples)))
            yield indices, self.latents(indices, stream)

    def count_batches(
        self, num_samples: int, *, shard: bool = False, size: int | None = None
    ) -> int:
        """How many batches :meth:`batches` yields with the same arguments."""
        return len(self._batch_numbers(num_samples, shard, int(size or self.batch_size)))

    @staticmethod
    def _batch_numbers(num_samples: int, shard: bool, step: int) -> Sequence[int]:
        count = -(-int(num_samples) // step)
        return own_batches(count) if shard else range(count)

    def layer_units(self, layer: str) -> int:
        """How many units (channels) ``layer`` outputs; :class:`ConfigError` naming --layer
        when it outputs no feature maps (N, units, h, w)."""
        self.check_layers([layer])
        with torch.no_grad(), trace(self.generator, layer, stop=True) as record:
            self.generator(self.latents([0, 1]))
        if record.output is None or record.output.dim() != 4:
            raise ConfigError(
                f"--layer {layer!r} (layer= in Python) does not output feature maps "
                "(N, units, h, w)"
            )
        return int(record.output.shape[1])


NO_CONCEPT = "(no segmenter)"
"""The one concept name of a subject built without a segmenter."""


def _no_segmenter(images: torch.Tensor) -> torch.Tensor:
    raise InputError(
        "this analysis needs a segmenter: pass --segmenter (segmenter= to Subject.build)"
    )


def _describe(obj: Any) -> str:
    return type(obj).__name__ if isinstance(obj, torch.nn.Module) else repr(obj)


__all__ = ["Segmentation", "Segmenter", "Subject", "latent_shape", "latents"]
