"""The latent sampler every analysis shares, and the random streams it draws from.

Sample ``i`` of stream ``s`` under seed ``seed`` is always the same latent, drawn from
``numpy.random.default_rng([seed, s, i])``: it depends only on its number, never on batching
or on which process draws it. Each analysis reads its own stream, so that, say, the latents a
mask is learned on are never those its effect is then measured on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from training.errors import InputError

DISSECT_STREAM = 0
"""Latents of the samples being dissected (and their top samples' pictures)."""
SELECT_STREAM = 1
"""Separate latents on which ``thresholds="maxiou"`` chooses per-pair thresholds."""
EFFECT_STREAM = 2
"""Latents on which an intervention's effect is measured."""
LEARN_STREAM = 3
"""Latents on which a unit mask is learned (or units are ranked by single-unit ablation)."""
ACTMAX_STREAM = 4
"""Starting latents of activation maximisation."""
LEVELS_STREAM = 5
"""Latents on which units' "off" quantile levels are measured."""
INVERT_STREAM = 6
"""Candidate starting latents of an inversion."""
TYPICAL_STREAM = 14
"""Random samples against which activation maximisation's results are compared (what typical
images reach)."""


def latents(
    seed: int, indices: Sequence[int] | torch.Tensor, shape: Sequence[int], *, stream: int = 0
) -> torch.Tensor:
    """Latents (len(indices), *shape) float32: sample ``i`` is drawn from its own seeded stream.

    Each sample is standard normal from ``numpy.random.default_rng([seed, stream, i])``, so a
    sample's latent depends only on its number, never on batching or on which process draws it.
    """
    rows = [
        np.random.default_rng([seed, stream, int(i)]).standard_normal(int(np.prod(shape)))
        for i in (indices.tolist() if isinstance(indices, torch.Tensor) else indices)
    ]
    stacked = np.stack(rows).astype(np.float32) if rows else np.zeros((0, *shape), np.float32)
    return torch.from_numpy(stacked.reshape(len(rows), *shape))


def latent_shape(generator: torch.nn.Module, z_shape: Sequence[int] | None) -> tuple[int, ...]:
    """``z_shape`` if given, else the generator's ``z_shape`` or ``(z_dim,)`` attribute."""
    if z_shape is None:
        z_shape = getattr(generator, "z_shape", None)
    if z_shape is None and getattr(generator, "z_dim", None) is not None:
        z_shape = (int(generator.z_dim),)  # type: ignore[arg-type]
    if z_shape is None:
        raise InputError(
            f"cannot tell the latent shape of {type(generator).__name__}: give it a 'z_dim' "
            "attribute, or pass --z-shape (z_shape= in Python)"
        )
    shape = tuple(int(d) for d in (z_shape if isinstance(z_shape, Sequence) else [z_shape]))
    if not shape or any(d < 1 for d in shape):
        raise InputError(f"latent shape must be positive sizes (--z-shape / z_shape=), got {shape}")
    return shape
