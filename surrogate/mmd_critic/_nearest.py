"""The paper's nearest-prototype classifier, evaluated in chunks of test points."""

from __future__ import annotations

import numpy as np
import torch


def _squared_distances(
    points: torch.Tensor, prototypes: torch.Tensor, prototype_norms: torch.Tensor
) -> torch.Tensor:
    distances = torch.addmm(prototype_norms[None, :], points, prototypes.T, alpha=-2.0)
    return distances.add_(points.square().sum(dim=1, keepdim=True))


def _settled(distances: np.ndarray, rows: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """``distances`` (rows x prototypes, from the expanded form) with every row in which two
    prototypes lie within its rounding of each other recomputed from the exact differences.

    ``|p|^2 - 2 p.q + |q|^2`` rounds, so two prototypes at the same distance (common with integer
    features) could come out in either order; settled, equal distances are equal and the tie
    goes to the prototype chosen first, as in scikit-learn's nearest neighbours.
    """
    if distances.shape[1] < 2:
        return distances
    ordered = np.sort(distances, axis=1)
    scale = np.abs(distances).max(axis=1) + np.square(prototypes).sum(axis=1).max()
    close = np.flatnonzero((np.diff(ordered, axis=1) <= 1e-9 * scale[:, None]).any(axis=1))
    if close.size:
        distances = distances.copy()
        raw = np.asarray(prototypes, dtype=np.float64)
        for row in close:
            exact = np.asarray(rows[row], dtype=np.float64) - raw
            distances[row] = np.square(exact).sum(axis=1)
    return distances


def nearest_prototype(
    X: np.ndarray,
    prototypes: np.ndarray,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    chunk_size: int = 4096,
) -> np.ndarray:
    """Index (into ``prototypes``) of the nearest prototype of each row of ``X``, Euclidean.

    Ties go to the prototype chosen first.
    """
    centre = prototypes.mean(axis=0)  # centring keeps float32 distances accurate
    protos = torch.as_tensor(prototypes - centre, dtype=dtype, device=device)
    norms = protos.square().sum(dim=1)
    nearest = np.empty(len(X), np.int64)
    for start in range(0, len(X), chunk_size):
        points = torch.as_tensor(X[start : start + chunk_size] - centre, dtype=dtype, device=device)
        distances = _settled(
            _squared_distances(points, protos, norms).cpu().numpy(),
            X[start : start + chunk_size],
            prototypes,
        )
        nearest[start : start + len(points)] = distances.argmin(axis=1)  # first of equal minima
    return nearest


def staged_errors(
    X: np.ndarray,
    y: np.ndarray,
    prototypes: np.ndarray,
    prototype_labels: np.ndarray,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    chunk_size: int = 2048,
) -> np.ndarray:
    """Error rate of the nearest-prototype classifier that uses the first m prototypes.

    Returns an array of length ``len(prototypes)``, entry m - 1 for the first m prototypes,
    with the same tie rule as :func:`nearest_prototype`.
    """
    centre = prototypes.mean(axis=0)
    protos = torch.as_tensor(prototypes - centre, dtype=dtype, device=device)
    norms = protos.square().sum(dim=1)
    errors = np.zeros(len(prototypes), np.int64)
    for start in range(0, len(X), chunk_size):
        points = torch.as_tensor(X[start : start + chunk_size] - centre, dtype=dtype, device=device)
        distances = _settled(
            _squared_distances(points, protos, norms).cpu().numpy(),
            X[start : start + chunk_size],
            prototypes,
        )
        labels = y[start : start + len(points)]
        best = distances[:, 0].copy()
        # The labels' own dtype: np.full would size text to the first label and cut longer ones.
        predicted = np.full(len(points), prototype_labels[0], dtype=prototype_labels.dtype)
        for m in range(len(prototypes)):
            closer = distances[:, m] < best  # strict: an equally near earlier prototype wins
            best[closer] = distances[closer, m]
            predicted[closer] = prototype_labels[m]
            errors[m] += int(np.count_nonzero(predicted != labels))
    return errors / len(X)
