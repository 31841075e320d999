"""seethrough's inside view: explain a generator by what its units draw.

Dissection of units by segmentation overlap, ablation and insertion of units with their causal
effect, generator-constrained activation maximisation, and inversion of real images.

The public surface, imported on first use (so ``python -m gan_dissect --help`` stays quick):

- :class:`Subject` (``Subject.build(generator, segmenter, layers=..., ...)``): the generator,
  its layers, the segmenter, the latent shape and sampler, the output range, device, batch size
  and seed, checked once on a first batch with errors that name the flag and the argument to
  change. Every analysis below takes a subject plus its own few options. Models are loaded by
  name with :func:`load_generator` / :func:`load_segmenter` (``"shipped"`` or
  ``package.module:factory``); :mod:`gan_dissect.streams` holds the latent sampler
  (:func:`latents`) and every analysis's random stream.
- :func:`dissect`, :func:`dissect_layers`: which concept each unit of a layer draws;
  :class:`DissectionResult` (thresholds, IoU table, ceilings, top samples; ``units_for``),
  :func:`load_dissection` / :func:`save_dissection` for ``dissection.json``, :func:`latents`
  (the latent of sample ``i`` of a stream), :class:`Segmentation` (a checked segmenter),
  :class:`Checkpoint` (where and how often a long dissection saves its progress).
- :mod:`gan_dissect.stats`: the streaming statistics (:class:`QuantileSketch`, :class:`TopK`,
  :class:`IoUTally`, :class:`CeilingTally`, :class:`Upsampler`, :func:`merge_across_processes`).
- :mod:`gan_dissect.hooks`: :func:`trace` / :func:`trace_many` to read or edit a layer inside
  a ``with`` block.
- Intervention: :func:`ablate` / :func:`insert` (context managers that switch units off or on,
  everywhere or in a region), :func:`unit_quantiles` (low "off" levels), :func:`box_region`;
  :func:`measure_effect` (what a :class:`UnitEdit` does, through the segmenter) and
  :func:`effect_curve`; :func:`learn_unit_mask` (rank units by a learned ablation mask; its
  :class:`LearnSettings` defaults ``LEARN_STEPS``, ``LEARN_BATCH``, ``LEARN_LR``,
  ``LEARN_L2``, ``LEARN_UNITS`` are the commands' too), :func:`rank_units_by_ablation` (for a
  segmenter that returns labels); :func:`choose_units` with a :class:`UnitSpec` (the units
  an edit takes and their off / on values, as the commands choose them: a :class:`UnitChoice`).
- :mod:`gan_dissect.distributed`: inside a ``torch.distributed`` group (started by
  ``torchrun``), :func:`dissect_layers` and :func:`measure_effect` spread their samples over
  the processes and return the single-process result on every rank.
- Your own generator: :func:`check_generator` (latent shape, image size and output range
  checked on a first batch, with errors naming the option to change) and
  :func:`with_output_range` (a generator drawing in e.g. [0, 1] mapped to the [-1, 1] that
  segmenters, pictures and pixel losses get, with its layer names unchanged).
- :func:`maximise_latent` / :func:`maximise_pixels` with :func:`concept_objective`,
  :func:`unit_objective`, :func:`logit_objective`: activation maximisation inside the
  generator and over free pixels.
- :func:`invert` (real images to latents and features, :class:`InvertSettings`;
  :class:`Inversion`) and :func:`paste`
  (an edit of the inversion carried onto the real image).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "dissect": "gan_dissect.dissection",
    "dissect_layers": "gan_dissect.dissection",
    "DissectionResult": "gan_dissect.dissection",
    "load_dissection": "gan_dissect.dissection",
    "save_dissection": "gan_dissect.dissection",
    "Checkpoint": "gan_dissect.dissection",
    "latents": "gan_dissect.streams",
    "Segmentation": "gan_dissect.subject",
    "Subject": "gan_dissect.subject",
    "load_generator": "gan_dissect.loading",
    "load_segmenter": "gan_dissect.loading",
    "choose_layers": "gan_dissect.loading",
    "choose_units": "gan_dissect.units",
    "UnitSpec": "gan_dissect.units",
    "UnitChoice": "gan_dissect.units",
    "UnitEdit": "gan_dissect.intervention",
    "QuantileSketch": "gan_dissect.stats",
    "TopK": "gan_dissect.stats",
    "IoUTally": "gan_dissect.stats",
    "CeilingTally": "gan_dissect.stats",
    "Upsampler": "gan_dissect.stats",
    "merge_across_processes": "gan_dissect.stats",
    "trace": "gan_dissect.hooks",
    "trace_many": "gan_dissect.hooks",
    "ablate": "gan_dissect.intervention",
    "insert": "gan_dissect.intervention",
    "intervene": "gan_dissect.intervention",
    "unit_quantiles": "gan_dissect.intervention",
    "box_region": "gan_dissect.intervention",
    "measure_effect": "gan_dissect.effects",
    "effect_curve": "gan_dissect.effects",
    "InterventionEffect": "gan_dissect.effects",
    "learn_unit_mask": "gan_dissect.ranking",
    "LearnedMask": "gan_dissect.ranking",
    "LearnSettings": "gan_dissect.ranking",
    "rank_units_by_ablation": "gan_dissect.ranking",
    "LEARN_STEPS": "gan_dissect.ranking",
    "LEARN_BATCH": "gan_dissect.ranking",
    "LEARN_LR": "gan_dissect.ranking",
    "LEARN_L2": "gan_dissect.ranking",
    "LEARN_UNITS": "gan_dissect.ranking",
    "check_generator": "gan_dissect.models",
    "with_output_range": "gan_dissect.models",
    "CheckedGenerator": "gan_dissect.models",
    "maximise_latent": "gan_dissect.actmax",
    "maximise_pixels": "gan_dissect.actmax",
    "concept_objective": "gan_dissect.actmax",
    "unit_objective": "gan_dissect.actmax",
    "logit_objective": "gan_dissect.actmax",
    "Objective": "gan_dissect.actmax",
    "ActmaxResult": "gan_dissect.actmax",
    "invert": "gan_dissect.inversion",
    "Inversion": "gan_dissect.inversion",
    "InvertSettings": "gan_dissect.inversion",
    "paste": "gan_dissect.inversion",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gan_dissect' has no attribute {name!r}")
