"""Choosing the RBF kernel's gamma from the data.

- ``median_heuristic_gamma``: sigma = the median distance between points, gamma = 1/(2 sigma^2).
- ``select_gamma``: try ``factor * median gamma`` for each factor of a grid; choose prototypes
  on one part of the data with each, and score them on the held-out rest, either by the
  nearest-prototype error ("accuracy"; needs labels) or by MMD^2 between the held-out points and
  the prototypes ("mmd"). MMD^2 values under different kernels are not comparable, so every
  candidate's MMD^2 is measured with the same yardstick, the median-heuristic kernel.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from surrogate.mmd_critic._greedy import mmd_critic
from surrogate.mmd_critic._kernel import BlockKernel, to_numpy
from surrogate.mmd_critic._nearest import staged_errors

MEDIAN_SAMPLE = 1000  # points whose pairwise distances give the median (1000 -> ~500k pairs)


def median_heuristic_gamma(X: np.ndarray, *, random_state: int | None = 0) -> float:
    """1 / (2 median^2) of the pairwise distances between (up to 1000 sampled) rows of ``X``.

    Identical points are left out of the median; if all points are identical, gamma is 1.
    """
    if len(X) > MEDIAN_SAMPLE:
        rng = np.random.default_rng(random_state)
        X = X[np.sort(rng.choice(len(X), MEDIAN_SAMPLE, replace=False))]
    centred = X - X.mean(axis=0)
    norms = np.einsum("ij,ij->i", centred, centred)
    squared = norms[:, None] + norms[None, :] - 2.0 * centred @ centred.T
    upper = squared[np.triu_indices(len(X), k=1)]
    positive = upper[upper > 1e-12 * max(float(norms.max()), 1.0)]
    if positive.size == 0:
        return 1.0
    return float(1.0 / (2.0 * np.median(positive)))


def heldout_mmd2(
    X_heldout: np.ndarray,
    groups_heldout: np.ndarray | None,
    prototypes: np.ndarray,
    groups_prototypes: np.ndarray | None,
    gamma: float,
    *,
    block_size: int,
    dtype: torch.dtype,
    device: torch.device | str,
) -> float:
    """MMD^2 between held-out points and prototypes under the (group-local) RBF kernel."""
    both = np.vstack([X_heldout, prototypes])
    groups = None
    if groups_heldout is not None and groups_prototypes is not None:
        groups = np.concatenate([groups_heldout, groups_prototypes])
    kernel = BlockKernel(both, gamma, groups=groups, dtype=dtype, device=device)
    sums = to_numpy(kernel.column_sums(block_size))
    n, m = len(X_heldout), len(prototypes)
    # The column sums of [V; S] split into K_VV, K_VS and K_SS totals.
    prototype_rows = kernel.zeros()
    for i in range(n, n + m):
        kernel.add_row_to(i, prototype_rows)
    heldout_part = to_numpy(prototype_rows)
    k_vs = heldout_part[:n].sum()
    k_ss = heldout_part[n:].sum()
    k_vv = sums[:n].sum() - k_vs
    return float(k_vv / n**2 - 2.0 * k_vs / (n * m) + k_ss / m**2)


def select_gamma(
    X: np.ndarray,
    y: np.ndarray | None,
    *,
    criterion: str,
    factors: tuple[float, ...],
    n_prototypes: int,
    local: bool,
    validation_fraction: float,
    random_state: int | None,
    block_size: int,
    dtype: torch.dtype,
    device: torch.device | str,
) -> tuple[float, dict[float, float]]:
    """The best ``factor * median gamma`` by held-out ``criterion`` ("accuracy" or "mmd").

    Returns the chosen gamma and the held-out score (error or MMD^2, lower is better) of every
    candidate gamma. Ties go to the smaller gamma.
    """
    stratify = y if y is not None and _can_stratify(y, validation_fraction) else None
    fit_rows, heldout_rows = train_test_split(
        np.arange(len(X)),
        test_size=validation_fraction,
        random_state=random_state,
        stratify=stratify,
    )
    fit_rows, heldout_rows = np.sort(fit_rows), np.sort(heldout_rows)
    m = min(n_prototypes, len(fit_rows))
    base = median_heuristic_gamma(X[fit_rows], random_state=random_state)
    groups = y if local else None
    fit_groups = None if groups is None else groups[fit_rows]
    heldout_groups = None if groups is None else groups[heldout_rows]
    scores: dict[float, float] = {}
    for factor in sorted(factors):
        gamma = base * factor
        chosen = mmd_critic(
            X[fit_rows],
            gamma,
            m,
            0,
            groups=fit_groups,
            block_size=block_size,
            dtype=dtype,
            device=device,
        ).prototype_indices
        prototypes = X[fit_rows][chosen]
        if criterion == "accuracy":
            assert y is not None  # checked by the caller
            errors = staged_errors(
                X[heldout_rows], y[heldout_rows], prototypes, y[fit_rows][chosen], device=device
            )
            scores[gamma] = float(errors[-1])
        else:
            scores[gamma] = heldout_mmd2(
                X[heldout_rows],
                heldout_groups,
                prototypes,
                None if fit_groups is None else fit_groups[chosen],
                base,
                block_size=block_size,
                dtype=dtype,
                device=device,
            )
    best = min(scores, key=lambda g: (scores[g], g))
    return best, scores


def _can_stratify(y: np.ndarray, validation_fraction: float) -> bool:
    """Whether every class has enough members to appear on both sides of the split."""
    _, counts = np.unique(y, return_counts=True)
    smallest_side = min(validation_fraction, 1.0 - validation_fraction)
    return bool(counts.min() >= 2 and smallest_side * len(y) >= len(counts))
