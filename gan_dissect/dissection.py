"""Dissect a generator: which concept do each unit's high activations coincide with?

For a generator layer with units u (Bau et al., ICLR 2019, "GAN Dissection"):

1. *Quantile pass* over N latents: every unit's activation map, bilinearly upsampled to the
   segmentation resolution, feeds a :class:`~gan_dissect.stats.QuantileSketch`; the unit's
   threshold ``t_u`` is its ``quantile`` (default 0.99) level. The same pass keeps each unit's
   top-activating samples (by the maximum of its map).
2. *IoU pass* over the same N latents: the segmenter labels each generated image and
   :class:`~gan_dissect.stats.IoUTally` counts, over all pixels of all samples,
   ``|{a_u > t_u} & {seg = c}|`` and ``|{a_u > t_u} | {seg = c}|``; a
   :class:`~gan_dissect.stats.CeilingTally` measures the IoU an ideal unit at the layer's
   resolution could reach for each concept, so small concepts at coarse layers are judged fairly.

With ``thresholds="maxiou"``, each (unit, concept) pair instead gets the threshold that maximises
their IoU on a *separate* set of latents (``selection_samples`` of them, from another random
stream), chosen among the unit's quantiles at 32 levels from 0.5 to 0.999; IoU is then measured
at those thresholds on the main latents, beside the top-quantile IoU.

Sample ``i`` always uses the latent drawn from ``(seed, stream, i)``, whatever the batch size, so
the statistics are sums over a fixed set of samples: an interrupted run resumes from its last
checkpoint to the same numbers, and processes of a ``torch.distributed`` group each take every
``world_size``-th batch and merge their statistics into the single-process result.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from gan_dissect.distributed import group, own_batches
from gan_dissect.hooks import trace_many
from gan_dissect.stats import (
    CeilingTally,
    ConceptMeanTally,
    IoUTally,
    QuantileSketch,
    TopK,
    Upsampler,
)
from gan_dissect.streams import DISSECT_STREAM, SELECT_STREAM, latents
from gan_dissect.subject import Subject
from training.checkpoints import load_checkpoint, save_checkpoint
from training.errors import CheckpointError, ConfigError, InputError
from training.progress import progress
from training.runs import atomic_write_json

FORMAT = "seethrough.dissection"
FORMAT_VERSION = 1
MAXIOU_LEVELS = tuple(1.0 - np.logspace(math.log10(0.5), -3, 32))
# values at a time that one upsampled chunk may hold: about 4 MB of float32, small enough for
# the several passes over it to stay in the CPU's caches
_CHUNK_VALUES = 1 << 20

ThresholdMode = Literal["quantile", "maxiou"]


@dataclass(frozen=True)
class DissectSettings:
    """Everything that determines a dissection's numbers (and so its checkpoint's validity)."""

    layers: tuple[str, ...]
    num_samples: int = 1000
    batch_size: int = 32
    seed: int = 0
    quantile: float = 0.99
    iou_floor: float = 0.04
    thresholds: ThresholdMode = "quantile"
    selection_samples: int = 500
    top_k: int = 8
    mantissa_bits: int = 7
    z_shape: tuple[int, ...] = ()
    concepts: tuple[str, ...] = ()

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first setting out of range."""
        if not self.layers:
            raise ConfigError("name at least one layer to dissect")
        if len(set(self.layers)) != len(self.layers):
            raise ConfigError(f"layers are named twice: {list(self.layers)}")
        if self.num_samples < 1 or self.batch_size < 1 or self.top_k < 1:
            raise ConfigError("num_samples, batch_size and top_k must be positive")
        if not 0.0 < self.quantile < 1.0:
            raise ConfigError(f"quantile must lie in (0, 1), got {self.quantile}")
        if not 0.0 <= self.iou_floor < 1.0:
            raise ConfigError(f"iou_floor must lie in [0, 1), got {self.iou_floor}")
        if self.thresholds not in ("quantile", "maxiou"):
            raise ConfigError(f"thresholds must be 'quantile' or 'maxiou', got {self.thresholds!r}")
        if self.thresholds == "maxiou" and self.selection_samples < 1:
            raise ConfigError("thresholds='maxiou' needs selection_samples >= 1")


@dataclass
class DissectionResult:
    """What dissection found at one layer; arrays are NumPy, indexed [unit, concept].

    ``thresholds[u, c]`` is the threshold at which ``iou[u, c]`` was measured: the unit's
    top-quantile level for every c (``threshold_mode == "quantile"``), or the per-pair IoU
    maximiser chosen on separate latents (``"maxiou"``); ``unit_thresholds[u]`` is always the
    top-quantile level and ``iou_at_quantile`` the IoU there. ``ceiling[c]`` is the IoU an ideal
    unit at this layer's resolution reaches for c at its best level; ``ceiling_at_quantile[c]``
    what the same ideal unit reaches when held, like the units, to its top ``1 - quantile`` of
    the pixels (lower for a concept larger than that share). ``top_samples[u]`` are the sample
    numbers of u's most activating samples, best first (regenerate them with :meth:`latents`).
    """

    layer: str
    concepts: list[str]
    num_samples: int
    seed: int
    z_shape: tuple[int, ...]
    layer_shape: tuple[int, int, int]  # units, height, width
    segmentation_size: tuple[int, int]
    quantile: float
    iou_floor: float
    threshold_mode: str
    quantile_error: dict[str, float]
    unit_thresholds: np.ndarray
    thresholds: np.ndarray
    iou: np.ndarray
    iou_at_quantile: np.ndarray
    intersection: np.ndarray
    unit_area: np.ndarray
    concept_area: np.ndarray
    pixels: int
    ceiling: np.ndarray
    ceiling_level: np.ndarray
    ceiling_at_quantile: np.ndarray
    mean_activation_in_concept: np.ndarray
    top_samples: np.ndarray
    top_values: np.ndarray
    selection_samples: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def units(self) -> int:
        return int(self.layer_shape[0])

    def concept_index(self, concept: str) -> int:
        """Index of ``concept`` in :attr:`concepts`; an unknown name raises :class:`InputError`."""
        if concept not in self.concepts:
            raise InputError(f"no concept {concept!r}; concepts: {', '.join(self.concepts)}")
        return self.concepts.index(concept)

    def best_concepts(self) -> np.ndarray:
        """Each unit's best concept index (units,): highest IoU, ties to the lower index."""
        return np.asarray(np.argmax(self.iou, axis=1))

    def best_iou(self) -> np.ndarray:
        """Each unit's IoU with its best concept (units,)."""
        return np.asarray(self.iou.max(axis=1))

    def ceiling_fraction(self) -> np.ndarray:
        """IoU as a fraction of the concept's ceiling at this layer at the ideal unit's best level
        (units, concepts), shown beside the headline :meth:`rule_ceiling_fraction`; NaN where the
        ceiling is 0 (the concept never appeared)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.ceiling > 0, self.iou / self.ceiling, np.nan)

    def rule_ceiling(self) -> np.ndarray:
        """Per concept (concepts,), the IoU a perfect unit reaches under the rule the units were
        measured with: held to the top ``1 - quantile`` of the pixels (``ceiling_at_quantile``)
        for ``"quantile"`` thresholds, at its best level (``ceiling``) for ``"maxiou"``."""
        return self.ceiling if self.threshold_mode == "maxiou" else self.ceiling_at_quantile

    def rule_ceiling_fraction(self) -> np.ndarray:
        """IoU as a fraction of :meth:`rule_ceiling` (units, concepts): ~1.0 for a perfect unit,
        the headline figure; NaN where that ceiling is 0 or unknown."""
        ceiling = self.rule_ceiling()
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ceiling > 0, self.iou / ceiling, np.nan)

    def chance_iou(self) -> np.ndarray:
        """IoU (units, concepts) that a unit's mask would reach by chance: that of two
        independent masks covering the same shares of pixels (a b / (a + b - a b)).

        Negligible at the 0.99 quantile; under "maxiou" a low threshold can make a unit cover
        half the image, and two independent halves overlap with IoU 1/3, so compare with this.
        """
        a = self.unit_area / max(self.pixels, 1)
        b = (self.concept_area / max(self.pixels, 1))[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.nan_to_num(a * b / (a + b - a * b))

    def matched(self) -> np.ndarray:
        """Whether each unit's best IoU clears the floor and exceeds the chance IoU of its masks'
        sizes (units,) bool: a low "maxiou" threshold can cover half the image, whose IoU with a
        large concept is high by chance alone."""
        best = self.best_concepts()
        chance = self.chance_iou()[np.arange(self.units), best]
        return np.asarray((self.best_iou() > self.iou_floor) & (self.best_iou() > chance))

    def label(self, unit: int) -> str | None:
        """The concept unit ``unit`` draws, or None when its best IoU does not clear the floor."""
        if not self.matched()[unit]:
            return None
        return self.concepts[int(self.best_concepts()[unit])]

    def units_for(self, concept: str, *, matched_only: bool = False) -> list[int]:
        """Units ranked by IoU with ``concept``, best first (ties to the lower unit number).

        With ``matched_only`` only units whose best concept is ``concept`` and clears the floor.
        """
        c = self.concept_index(concept)
        order = [int(u) for u in np.lexsort((np.arange(self.units), -self.iou[:, c]))]
        if matched_only:
            best, ok = self.best_concepts(), self.matched()
            order = [u for u in order if best[u] == c and ok[u]]
        return order

    def threshold_for(self, unit: int, concept: str | None = None) -> float:
        """The threshold of ``unit`` (for ``concept`` under "maxiou"; its best concept if None)."""
        c = int(self.best_concepts()[unit]) if concept is None else self.concept_index(concept)
        return float(self.thresholds[unit, c])

    def concept_summary(self) -> list[dict[str, Any]]:
        """Per concept: matched units, best unit and IoU, ceilings, share of pixels; most units
        first. ``best_ceiling_fraction`` is the best IoU over :meth:`rule_ceiling`, the
        ``..._best_level`` one over the ceiling at the ideal unit's best level."""
        best, ok = self.best_concepts(), self.matched()
        fraction, at_best_level = self.rule_ceiling_fraction(), self.ceiling_fraction()
        rows = []
        for c, name in enumerate(self.concepts):
            top = int(np.argmax(self.iou[:, c])) if self.units else 0
            rows.append(
                {
                    "concept": name,
                    "units": int(np.sum(ok & (best == c))),
                    "best_unit": top,
                    "best_iou": float(self.iou[top, c]),
                    "best_ceiling_fraction": _finite_or_none(fraction[top, c]),
                    "best_ceiling_fraction_best_level": _finite_or_none(at_best_level[top, c]),
                    "ceiling": float(self.ceiling[c]),
                    "ceiling_at_quantile": _finite_or_none(self.ceiling_at_quantile[c]),
                    "pixel_share": float(self.concept_area[c] / max(self.pixels, 1)),
                }
            )
        return sorted(rows, key=lambda row: (-row["units"], -row["best_iou"]))

    def latents(self, indices: Sequence[int]) -> torch.Tensor:
        """The latents of dissected samples ``indices`` (e.g. ``top_samples[u]``)."""
        return latents(self.seed, indices, self.z_shape, stream=DISSECT_STREAM)

    def unit_records(self) -> list[dict[str, Any]]:
        """One readable record per unit, as in the JSON file."""
        best, ok, best_iou = self.best_concepts(), self.matched(), self.best_iou()
        fraction, chance = self.rule_ceiling_fraction(), self.chance_iou()
        at_best_level = self.ceiling_fraction()
        return [
            {
                "unit": u,
                "concept": self.concepts[int(best[u])],
                "matched": bool(ok[u]),
                "iou": float(best_iou[u]),
                "ceiling_fraction": _finite_or_none(fraction[u, best[u]]),
                "ceiling_fraction_best_level": _finite_or_none(at_best_level[u, best[u]]),
                "threshold": float(self.thresholds[u, best[u]]),
                "chance_iou": float(chance[u, best[u]]),
                "top_samples": [int(i) for i in self.top_samples[u]],
            }
            for u in range(self.units)
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: every array as nested lists, plus per-unit records."""
        record: dict[str, Any] = {}
        for key, value in asdict(self).items():
            record[key] = value.tolist() if isinstance(value, np.ndarray) else value
        record["units"] = self.unit_records()
        record["concept_summary"] = self.concept_summary()
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> DissectionResult:
        """Rebuild a result from :meth:`to_dict`'s values (the per-unit records are derived)."""
        names = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in record.items() if k in names}
        arrays = {
            "unit_thresholds": np.float64,
            "thresholds": np.float64,
            "iou": np.float64,
            "iou_at_quantile": np.float64,
            "intersection": np.int64,
            "unit_area": np.int64,
            "concept_area": np.int64,
            "ceiling": np.float64,
            "ceiling_level": np.float64,
            "ceiling_at_quantile": np.float64,
            "mean_activation_in_concept": np.float64,
            "top_samples": np.int64,
            "top_values": np.float64,
        }
        # a result saved before the same-rule ceiling was measured: NaN for every concept
        values.setdefault("ceiling_at_quantile", [None] * len(values["concepts"]))
        for key, dtype in arrays.items():
            values[key] = np.asarray(_nan_from_none(values[key]), dtype=dtype)
        for key in ("z_shape", "layer_shape", "segmentation_size"):
            values[key] = tuple(values[key])
        return cls(**values)


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _nan_from_none(value: Any) -> Any:
    if value is None:
        return np.nan
    if isinstance(value, list):
        return [_nan_from_none(v) for v in value]
    return value


def save_dissection(path: str | Path, results: dict[str, DissectionResult]) -> Path:
    """Write ``results`` (layer name -> result) as one strict JSON file."""
    record = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "layers": {name: result.to_dict() for name, result in results.items()},
    }
    return atomic_write_json(path, record)


def load_dissection(path: str | Path) -> dict[str, DissectionResult]:
    """Read ``dissection.json`` (or a run folder holding it) back into results by layer."""
    path = Path(path)
    if path.is_dir():
        path = path / "dissection.json"
    if not path.is_file():
        raise InputError(f"{path} does not exist; expected a dissection.json or its run folder")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not valid JSON ({err}); expected a dissection.json") from err
    found = record.get("format") if isinstance(record, dict) else None
    if found != FORMAT:
        raise InputError(f"{path} is not a seethrough dissection (format {found!r})")
    try:
        return {name: DissectionResult.from_dict(layer) for name, layer in record["layers"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(f"{path} is an incomplete or damaged dissection: {err!r}") from err


def checkpoint_files(checkpoint: str | Path, world: int = 1) -> list[Path]:
    """The files in which a dissection over ``world`` processes keeps its progress, given the
    ``checkpoint`` path it was passed: that path itself, or one file per rank beside it."""
    path = Path(checkpoint)
    if world == 1:
        return [path]
    return [path.with_name(f"{path.name}.rank{rank}-of-{world}") for rank in range(world)]


@dataclass
class _Layer:
    name: str
    units: int
    size: tuple[int, int]
    upsample: Upsampler


@dataclass(frozen=True)
class Checkpoint:
    """Where a dissection keeps its progress, and how often (seconds; 0: after every batch)."""

    path: str | Path
    interval: float = 60.0


def dissect(subject: Subject, layer: str, **options: Any) -> DissectionResult:
    """Dissect one ``layer`` of ``subject``'s generator; see :func:`dissect_layers` for
    ``options``."""
    if not isinstance(layer, str):
        raise InputError(
            f"dissect takes one layer name, got {layer!r}; dissect_layers takes several"
        )
    return dissect_layers(subject.replace(layers=(layer,)), **options)[layer]


def dissect_layers(
    subject: Subject,
    num_samples: int = 1000,
    *,
    quantile: float = 0.99,
    iou_floor: float = 0.04,
    thresholds: ThresholdMode = "quantile",
    selection_samples: int = 500,
    top_k: int = 8,
    checkpoint: Checkpoint | str | Path | None = None,
) -> dict[str, DissectionResult]:
    """Dissect ``subject.layers`` (sharing the generator's forward passes); results by layer.

    Samples ``0 .. num_samples - 1`` (latents from ``subject.seed``) go through the generator
    ``subject.batch_size`` at a time. Layers must output feature maps (N, units, h, w); run the
    generator in eval mode (batch statistics would make each sample depend on its batch).
    Inside a ``torch.distributed`` group each process takes every world-th batch and the
    statistics are merged, so every process returns the single-process result.

    Parameters
    ----------
    quantile:
        Each unit's threshold is this quantile of its upsampled activations (0.99: top 1 %).
    iou_floor:
        A unit "is" its best concept when their IoU exceeds this (0.04, as in dissect).
    thresholds:
        ``"quantile"``, or ``"maxiou"`` for per (unit, concept) thresholds that maximise IoU on
        ``selection_samples`` separate latents.
    top_k:
        How many top-activating samples to keep per unit.
    checkpoint:
        A :class:`Checkpoint` (or just its path, saved every 60 s): progress is saved there
        and resumed from when it exists; it is left holding the finished statistics. Under
        ``torch.distributed`` each process keeps its own file (``.rank<r>-of-<w>`` appended).
    """
    if not subject.layers:
        raise ConfigError("name at least one layer to dissect: --layers (layers= in Python)")
    settings = DissectSettings(
        layers=tuple(subject.layers),
        num_samples=int(num_samples),
        batch_size=int(subject.batch_size),
        seed=int(subject.seed),
        quantile=float(quantile),
        iou_floor=float(iou_floor),
        thresholds=thresholds,
        selection_samples=int(selection_samples),
        top_k=int(top_k),
        z_shape=tuple(subject.z_shape),
        concepts=tuple(subject.concepts),
    )
    settings.check()
    subject.check_layers(settings.layers, "--layers", "layers=")
    if subject.generator.training:
        warnings.warn(
            "dissecting a generator in training mode: batch-norm statistics then depend on the "
            "batch; call generator.eval() first",
            stacklevel=2,
        )
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint(checkpoint)
    with torch.inference_mode():
        return _DissectionRun(subject, settings, checkpoint).execute()


def _describe(obj: Any) -> str:
    return type(obj).__name__ if isinstance(obj, torch.nn.Module) else repr(obj)


def model_digest(model: Any) -> str:
    """A short hash of a module's weights (or a callable's qualified name)."""
    digest = hashlib.sha256()
    if isinstance(model, torch.nn.Module):
        digest.update(type(model).__qualname__.encode())
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(str(tensor.dtype).encode() + str(tuple(tensor.shape)).encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    else:
        digest.update(f"{getattr(model, '__module__', '')}:{_describe(model)}".encode())
    return digest.hexdigest()[:16]


class _DissectionRun:
    """One dissection: its passes, statistics, checkpoints and share of a process group."""

    def __init__(
        self, subject: Subject, settings: DissectSettings, checkpoint: Checkpoint | None
    ) -> None:
        self.subject = subject
        self.generator = subject.generator
        self.segmentation = subject.segmentation
        self.settings = settings
        self.device = subject.device
        self.rank, self.world = group()
        self.checkpoint = (
            None if checkpoint is None else checkpoint_files(checkpoint.path, self.world)[self.rank]
        )
        self.checkpoint_interval = math.inf if checkpoint is None else checkpoint.interval
        self.fingerprint = json.dumps(
            {
                **asdict(settings),
                "world": self.world,
                "generator": model_digest(self.generator),
                "segmenter": model_digest(self.segmentation.segmenter),
            },
            sort_keys=True,
        )
        self.image_size, self.layers = self._probe()
        self.phases = ["quantiles"]
        if settings.thresholds == "maxiou":
            self.phases += ["select-quantiles", "select-iou"]
        self.phases.append("iou")
        self.stats: dict[str, dict[str, Any]] = {layer.name: {} for layer in self.layers}

    def _probe(self) -> tuple[tuple[int, int], list[_Layer]]:
        """Run two samples through everything once, to check shapes and learn the sizes."""
        z = latents(self.settings.seed, [0, 1], self.settings.z_shape).to(self.device)
        with trace_many(self.generator, self.settings.layers) as traces:
            images = self.generator(z)
        if (
            not isinstance(images, torch.Tensor)
            or images.dim() != 4
            or images.shape[0] != 2
            or images.shape[1] != 3
        ):
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise InputError(
                f"generator returned {got} for latents of shape {tuple(z.shape)}; a generator "
                "must map latents (N, ...) to images (N, 3, H, W)"
            )
        if not bool(torch.isfinite(images).all()):
            raise InputError("generator returned NaN or infinite pixels")
        if float(images.min()) >= 0:
            warnings.warn(
                f"{type(self.generator).__name__}'s first images have no negative pixel, so they "
                "are not in the [-1, 1] that segmenters and pictures get here: build the subject "
                "with Subject.build (which detects the range) or map them with "
                "gan_dissect.with_output_range(generator, (0, 1))",
                stacklevel=4,
            )
        size = (int(images.shape[2]), int(images.shape[3]))
        self.segmentation(images)  # raises when the segmenter's output does not fit
        layers = []
        for name in self.settings.layers:
            output = traces[name].output
            if output is None or output.dim() != 4 or output.shape[0] != 2:
                shown = "nothing" if output is None else str(tuple(output.shape))
                raise InputError(
                    f"layer {name!r} outputs shape {shown}; dissection needs feature maps "
                    "(N, units, h, w)"
                )
            layer_size = (int(output.shape[2]), int(output.shape[3]))
            layers.append(
                _Layer(name, int(output.shape[1]), layer_size, Upsampler(layer_size, size))
            )
        return size, layers

    # --- the passes ---------------------------------------------------------------------------

    def execute(self) -> dict[str, DissectionResult]:
        phase, next_batch = self._restore()
        for index in range(phase, len(self.phases)):
            name = self.phases[index]
            self._setup(name)
            self._pass(index, name, next_batch if index == phase else 0)
            self._merge(name)
            self._save(index + 1, 0)
        return {layer.name: self._result(layer) for layer in self.layers}

    def _setup(self, phase: str) -> None:
        settings, concepts = self.settings, len(self.settings.concepts)
        for layer in self.layers:
            stats = self.stats[layer.name]
            if phase == "quantiles":
                stats.setdefault("sketch", QuantileSketch(settings.mantissa_bits))
                stats.setdefault("topk", TopK(settings.top_k))
            elif phase == "select-quantiles":
                stats.setdefault("select_sketch", QuantileSketch(settings.mantissa_bits))
            elif phase == "select-iou":
                candidates = stats["select_sketch"].quantiles(MAXIOU_LEVELS)
                stats.setdefault("select_iou", IoUTally(candidates, concepts))
            elif phase == "iou":
                columns = [self._unit_thresholds(layer)[:, None]]
                if settings.thresholds == "maxiou":
                    columns.append(self._maxiou_thresholds(layer))
                stats.setdefault("iou", IoUTally(torch.cat(columns, dim=1), concepts))
                stats.setdefault("ceiling", CeilingTally(concepts, layer.size, layer.upsample))
                stats.setdefault(
                    "concept_mean",
                    ConceptMeanTally(concepts, layer.upsample, by_batch=self.world > 1),
                )

    def _unit_thresholds(self, layer: _Layer) -> torch.Tensor:
        return self.stats[layer.name]["sketch"].quantiles([self.settings.quantile])[:, 0]

    def _maxiou_thresholds(self, layer: _Layer) -> torch.Tensor:
        """(units, concepts): per pair, the candidate threshold of best IoU on the selection set."""
        tally: IoUTally = self.stats[layer.name]["select_iou"]
        best = tally.iou().argmax(dim=1)  # (units, concepts); ties go to the lower threshold
        return tally.thresholds.gather(1, best)

    def _pass(self, index: int, phase: str, start: int) -> None:
        settings = self.settings
        stream, total = (
            (SELECT_STREAM, settings.selection_samples)
            if phase.startswith("select")
            else (DISSECT_STREAM, settings.num_samples)
        )
        todo = [b for b in own_batches(-(-total // settings.batch_size)) if b >= start]
        saved = time.monotonic()
        for batch in progress(todo, desc=f"dissect: {phase}", total=len(todo)):
            first = batch * settings.batch_size
            indices = torch.arange(first, min(first + settings.batch_size, total))
            self._batch(phase, stream, indices)
            if time.monotonic() - saved >= self.checkpoint_interval:
                self._save(index, batch + 1)
                saved = time.monotonic()

    def _batch(self, phase: str, stream: int, indices: torch.Tensor) -> None:
        settings = self.settings
        z = latents(settings.seed, indices, settings.z_shape, stream=stream).to(self.device)
        names = [layer.name for layer in self.layers]
        needs_images = phase in ("select-iou", "iou")
        with trace_many(self.generator, names, clone=True, stop=not needs_images) as traces:
            images = self.generator(z)
        labels = None
        if needs_images:
            if not isinstance(images, torch.Tensor) or images.shape[1:] != (3, *self.image_size):
                raise InputError(
                    f"generator returned shape {getattr(images, 'shape', None)} for a batch "
                    f"after returning (N, 3, {self.image_size[0]}, {self.image_size[1]}) before"
                )
            labels = self.segmentation(images)
        for layer in self.layers:
            output = traces[layer.name].output
            if output is None or output.shape[1:] != (layer.units, *layer.size):
                raise InputError(f"layer {layer.name!r} changed its output shape between batches")
            self._add(phase, layer, output, labels, indices)

    def _add(
        self,
        phase: str,
        layer: _Layer,
        activations: torch.Tensor,
        labels: torch.Tensor | None,
        indices: torch.Tensor,
    ) -> None:
        stats = self.stats[layer.name]
        if phase == "quantiles":
            stats["topk"].add(activations.flatten(2).amax(dim=2), indices)
        if phase == "iou":
            stats["ceiling"].add(labels)
            batch = int(indices[0]) // self.settings.batch_size
            stats["concept_mean"].add(activations, labels, batch)
        target = {
            "quantiles": "sketch",
            "select-quantiles": "select_sketch",
            "select-iou": "select_iou",
            "iou": "iou",
        }[phase]
        per_sample = layer.units * self.image_size[0] * self.image_size[1]
        step = max(1, _CHUNK_VALUES // per_sample)
        for start in range(0, activations.shape[0], step):
            # unit-major (units, n, H, W): one row per unit is what the statistics reduce over
            chunk = layer.upsample(activations[start : start + step].transpose(0, 1))
            if target in ("sketch", "select_sketch"):
                stats[target].add(chunk)
            else:
                assert labels is not None
                stats[target].add(chunk, labels[start : start + step])

    # --- processes and checkpoints ------------------------------------------------------------

    def _merge(self, phase: str) -> None:
        if self.world == 1:
            return
        from gan_dissect.stats import merge_across_processes

        kinds = {
            "quantiles": ("sketch", "topk"),
            "select-quantiles": ("select_sketch",),
            "select-iou": ("select_iou",),
            "iou": ("iou", "ceiling", "concept_mean"),
        }[phase]
        for layer in self.layers:
            for kind in kinds:
                self.stats[layer.name][kind] = merge_across_processes(self.stats[layer.name][kind])

    def _save(self, phase: int, next_batch: int) -> None:
        if self.checkpoint is None:
            return
        state = {
            "fingerprint": self.fingerprint,
            "phase": phase,
            "next_batch": next_batch,
            "stats": {
                name: {kind: stat.state_dict() for kind, stat in stats.items()}
                for name, stats in self.stats.items()
            },
        }
        save_checkpoint(state, self.checkpoint)

    def _restore(self) -> tuple[int, int]:
        if self.checkpoint is None or not self.checkpoint.is_file():
            return 0, 0
        state = load_checkpoint(self.checkpoint)
        if state.get("fingerprint") != self.fingerprint:
            raise ConfigError(
                f"checkpoint {self.checkpoint} belongs to a dissection with other settings, "
                "models or process count; delete it or choose another checkpoint path"
            )
        by_name = {layer.name: layer for layer in self.layers}
        for name, stats in state["stats"].items():
            for kind, stat_state in stats.items():
                stat = _empty_statistic(kind, by_name[name], len(self.settings.concepts))
                stat.load_state_dict(stat_state)
                self.stats[name][kind] = stat
        return int(state["phase"]), int(state["next_batch"])

    # --- results ------------------------------------------------------------------------------

    def _result(self, layer: _Layer) -> DissectionResult:
        settings = self.settings
        stats = self.stats[layer.name]
        sketch: QuantileSketch = stats["sketch"]
        tally: IoUTally = stats["iou"]
        ceiling, ceiling_level = stats["ceiling"].ceiling()
        concepts = len(settings.concepts)
        # column 0 of the tally holds the top-quantile threshold; under maxiou column 1 + c
        # holds concept c's own threshold, so IoU(u, c) is read at column columns[c]
        columns = (
            torch.arange(1, concepts + 1)
            if settings.thresholds == "maxiou"
            else torch.zeros(concepts, dtype=torch.int64)
        )
        diagonal = torch.arange(concepts)
        iou_all = tally.iou()
        return DissectionResult(
            layer=layer.name,
            concepts=list(settings.concepts),
            num_samples=settings.num_samples,
            seed=settings.seed,
            z_shape=settings.z_shape,
            layer_shape=(layer.units, *layer.size),
            segmentation_size=self.image_size,
            quantile=settings.quantile,
            iou_floor=settings.iou_floor,
            threshold_mode=settings.thresholds,
            quantile_error={
                "relative": sketch.relative_error,
                "absolute_below": sketch.absolute_floor,
            },
            unit_thresholds=tally.thresholds[:, 0].to(torch.float64).numpy(),
            thresholds=tally.thresholds[:, columns].to(torch.float64).numpy(),
            iou=iou_all[:, columns, diagonal].numpy(),
            iou_at_quantile=iou_all[:, 0, :].numpy(),
            intersection=tally.intersection[:, columns, diagonal].numpy(),
            unit_area=tally.unit_area[:, columns].numpy(),
            concept_area=tally.concept_area.numpy(),
            pixels=tally.pixels,
            ceiling=ceiling.numpy(),
            ceiling_level=ceiling_level.numpy(),
            ceiling_at_quantile=stats["ceiling"].at_share(1.0 - settings.quantile).numpy(),
            mean_activation_in_concept=stats["concept_mean"].means().numpy(),
            top_samples=stats["topk"].indices.numpy(),
            top_values=stats["topk"].values.to(torch.float64).numpy(),
            selection_samples=settings.selection_samples if settings.thresholds == "maxiou" else 0,
            params={
                "layers": list(settings.layers),
                "batch_size": settings.batch_size,
                "mantissa_bits": settings.mantissa_bits,
            },
        )


def _empty_statistic(kind: str, layer: _Layer, concepts: int) -> Any:
    """A statistic of ``kind`` ready for ``load_state_dict``."""
    if kind in ("sketch", "select_sketch"):
        return QuantileSketch()
    if kind == "topk":
        return TopK()
    if kind in ("iou", "select_iou"):
        return IoUTally(torch.zeros(layer.units), concepts)
    if kind == "ceiling":
        return CeilingTally(concepts, layer.size, layer.upsample)
    if kind == "concept_mean":
        return ConceptMeanTally(concepts, layer.upsample)
    raise CheckpointError(f"checkpoint holds an unknown statistic {kind!r}")
