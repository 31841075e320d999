"""The two greedy selections of MMD-critic, with O(n) incremental updates per chosen point.

Prototypes: with S the t points chosen so far, adding c gives (up to terms that do not depend
on c, times t + 1)

    J-gain(c) = 2/n colsum(c) - (2 sum_{j in S} K(j, c) + K(c, c)) / (t + 1),

so the only state is ``colsum`` (computed once, blockwise) and the running sums
``sum_{j in S} K(j, .)``, updated with one kernel row per step.

Criticisms: the gain of adding c to C is |w(c)| + log(K(c,c) - k_C(c)^T K_CC^-1 k_C(c)), the
second term being log det K_{C+c} - log det K_C. The residuals are kept by a pivoted Cholesky
factor, one kernel row and one n x t product per step.

Ties go to the lowest index, as ``argmax`` over the candidates does in the reference code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from surrogate.mmd_critic._kernel import BlockKernel, Vector, serial_host_blas, to_numpy
from training.progress import progress


@dataclass
class PrototypeSelection:
    """Chosen prototypes in order, the kernel sums they leave, and MMD^2 after each."""

    indices: np.ndarray  # (m,) int64, in the order chosen
    prototype_sums: Vector  # (n,) float64: sum over prototypes j of K(j, i)
    mmd2_curve: np.ndarray  # (m,) float64: MMD^2(X, first t prototypes), t = 1..m


def select_prototypes(
    kernel: BlockKernel, column_sums: Vector, n_prototypes: int
) -> PrototypeSelection:
    """Greedily add the point that maximises J(S + {c}) until ``n_prototypes`` are chosen."""
    scaled_sums = column_sums * (2.0 / kernel.n)
    prototype_sums = kernel.zeros()
    cross = np.empty(n_prototypes)  # sum_{j in S} K(j, s) when s was added
    indices = np.empty(n_prototypes, np.int64)
    for t in progress(range(n_prototypes), desc="prototypes"):
        # J-gain less the constant K(c, c) / (t + 1) = 1 / (t + 1), which leaves the argmax
        # as it is; chosen points have scaled_sums = -inf.
        gain = scaled_sums - (2.0 / (t + 1)) * prototype_sums
        best = int(gain.argmax())
        cross[t] = float(prototype_sums[best])
        kernel.add_row_to(best, prototype_sums)
        scaled_sums[best] = -np.inf
        indices[t] = best
    return PrototypeSelection(
        indices=indices,
        prototype_sums=prototype_sums,
        mmd2_curve=_mmd2_curve(to_numpy(column_sums), indices, cross),
    )


def _mmd2_curve(column_sums: np.ndarray, indices: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """MMD^2(X, S_t) = mean K_XX - 2/(n t) sum_{S_t} colsum + 1/t^2 sum_{S_t x S_t} K."""
    n = len(column_sums)
    t = np.arange(1, len(indices) + 1, dtype=np.float64)
    data_term = column_sums.sum() / n**2
    cross_term = np.cumsum(column_sums[indices]) / (n * t)
    # Adding s to S adds 2 sum_{j in S} K(j, s) + K(s, s) to the sum over S x S.
    prototype_term = np.cumsum(2.0 * cross + 1.0) / t**2
    curve: np.ndarray = data_term - 2.0 * cross_term + prototype_term
    return curve


def select_criticisms(
    kernel: BlockKernel,
    witness: Vector,
    excluded: Any,
    n_criticisms: int,
    regularizer: str,
) -> np.ndarray:
    """Greedily add the point with the largest |witness| (+ log-det gain with ``"logdet"``).

    ``excluded`` (bool, n, like ``witness`` NumPy or torch) marks points that may not be
    chosen (the prototypes).
    """
    xp = kernel.xp
    magnitude = abs(witness)
    magnitude[excluded] = -np.inf
    use_logdet = regularizer == "logdet"
    # residual(c) = K(c,c) - k_C(c)^T K_CC^-1 k_C(c), the factor by which c multiplies det K_CC.
    residual = kernel.zeros() + 1.0
    factor = kernel.zeros(kernel.n, n_criticisms if use_logdet else 0)
    indices = np.empty(n_criticisms, np.int64)
    with np.errstate(divide="ignore"):  # log(0) = -inf: c would make K_CC singular
        for t in progress(range(n_criticisms), desc="criticisms"):
            gain = magnitude + xp.log(residual) if use_logdet else magnitude
            best = int(gain.argmax())
            magnitude[best] = -np.inf
            indices[t] = best
            pivot = float(residual[best])
            if use_logdet and pivot > 0.0:  # pivot 0: best adds no new direction
                column = kernel.dense_row(best)
                column -= factor[:, :t] @ factor[best, :t]
                column /= pivot**0.5
                factor[:, t] = column
                residual -= column * column
                residual[residual < 0.0] = 0.0
    return indices


@dataclass
class Selection:
    """Everything one MMD-critic run produces, indices in the caller's point order."""

    prototype_indices: np.ndarray
    criticism_indices: np.ndarray
    witness: np.ndarray  # (n,) float64
    mmd2_curve: np.ndarray  # (m,) float64


def mmd_critic(
    X: np.ndarray,
    gamma: float,
    n_prototypes: int,
    n_criticisms: int,
    *,
    groups: np.ndarray | None = None,
    regularizer: str = "logdet",
    block_size: int = 1024,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    host_vectors: bool = True,
) -> Selection:
    """Prototypes and criticisms of ``X`` (validated, float64) under the RBF kernel ``gamma``.

    ``groups`` (one label per point) makes the kernel zero across groups: the paper's "local"
    selection, where one greedy run over all points divides the prototypes among the groups.
    ``host_vectors=False`` runs the GPU code path (torch vectors) on the CPU.
    """
    kernel = BlockKernel(
        X, gamma, groups=groups, dtype=dtype, device=device, host_vectors=host_vectors
    )
    column_sums = kernel.column_sums(block_size)
    with serial_host_blas(kernel):
        prototypes = select_prototypes(kernel, column_sums, n_prototypes)
        # w(x) = 1/n sum_i K(x, x_i) - 1/m sum_{j in S} K(x, x_j)
        witness = column_sums / kernel.n - prototypes.prototype_sums / n_prototypes
        criticisms = np.empty(0, np.int64)
        if n_criticisms:
            excluded: Any = np.zeros(kernel.n, bool)
            excluded[prototypes.indices] = True
            if not kernel.on_host:
                excluded = torch.as_tensor(excluded, device=kernel.device)
            criticisms = select_criticisms(kernel, witness, excluded, n_criticisms, regularizer)
    return Selection(
        prototype_indices=prototypes.indices,
        criticism_indices=criticisms,
        witness=to_numpy(witness),
        mmd2_curve=prototypes.mmd2_curve,
    )
