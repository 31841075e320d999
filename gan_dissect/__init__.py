"""seethrough's inside view: explain a generator by what its units draw.

Dissection of units by segmentation overlap, ablation and insertion of units with their causal
effect, generator-constrained activation maximisation, and inversion of real images.

The public surface, imported on first use (so ``python -m gan_dissect --help`` stays quick):

- :func:`dissect`, :func:`dissect_layers`: which concept each unit of a layer draws;
  :class:`DissectionResult` (thresholds, IoU table, ceilings, top samples; ``units_for``),
  :func:`load_dissection` / :func:`save_dissection` for ``dissection.json``, :func:`latents`
  (the latent of dissected sample ``i``), :class:`Segmentation` (a checked segmenter).
- :mod:`gan_dissect.stats`: the streaming statistics (:class:`QuantileSketch`, :class:`TopK`,
  :class:`IoUTally`, :class:`CeilingTally`, :class:`Upsampler`, :func:`merge_across_processes`).
- :mod:`gan_dissect.hooks`: :func:`trace` / :func:`trace_many` to read or edit a layer inside
  a ``with`` block.
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
    "latents": "gan_dissect.dissection",
    "Segmentation": "gan_dissect.dissection",
    "QuantileSketch": "gan_dissect.stats",
    "TopK": "gan_dissect.stats",
    "IoUTally": "gan_dissect.stats",
    "CeilingTally": "gan_dissect.stats",
    "Upsampler": "gan_dissect.stats",
    "merge_across_processes": "gan_dissect.stats",
    "trace": "gan_dissect.hooks",
    "trace_many": "gan_dissect.hooks",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gan_dissect' has no attribute {name!r}")
