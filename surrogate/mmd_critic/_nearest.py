"""The paper's nearest-prototype classifier, evaluated in chunks of test points."""

from __future__ import annotations

import numpy as np
import torch


def _squared_distances(
    points: torch.Tensor, prototypes: torch.Tensor, prototype_norms: torch.Tensor
) -> torch.Tensor:
    distances = torch.addmm(prototype_norms[None, :], points, prototypes.T, alpha=-2.0)
    return distances.add_(points.square().sum(dim=1, keepdim=True))


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
        distances = _squared_distances(points, protos, norms)
        nearest[start : start + len(points)] = distances.argmin(dim=1).cpu().numpy()
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
        distances = _squared_distances(points, protos, norms).cpu().numpy()
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
