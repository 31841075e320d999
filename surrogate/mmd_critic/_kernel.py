"""The RBF kernel of MMD-critic, evaluated block by block so that no n x n matrix is ever held.

MMD-critic needs two things of the kernel matrix K (K_ij = exp(-gamma ||x_i - x_j||^2)): its
column sums, and one row at a time (for each chosen prototype or criticism). The column sums
are computed tile by tile over the upper triangle (K is symmetric, so each off-diagonal tile
gives the sums of its rows and of its columns); a row is one matrix-vector product. Memory is
O(n * (d + block_size)).

For the "local" kernel of the paper (k(x_i, x_j) = 0 across classes), the points of each group
are kept in one contiguous block, and only within-group tiles and rows are computed; every
vector handed back is indexed in the caller's original point order.

Tiles are torch matrix products on the chosen device. The greedy loops do a handful of O(n)
vector operations per step; on the CPU those run on NumPy views of the same memory, whose
per-call overhead is a fraction of torch's (it dominates for small n), and on a GPU in torch.
``xp`` names the module (``numpy`` or ``torch``) of the vectors this kernel hands out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
import torch
from threadpoolctl import ThreadpoolController

from training.progress import progress

_CHUNK = 8192  # rows converted at a time, so no second float64 copy of X is made
_MIN_TILE = 256  # tiles are at least this wide (fewer, larger matrix products)

Vector = Any  # a float64 vector: np.ndarray on the CPU, torch.Tensor on another device


@dataclass
class _Group:
    """The points of one group: original indices and augmented, centred coordinates."""

    members: np.ndarray  # (n_g,) original indices, ascending
    members_device: torch.Tensor  # the same, on the kernel's device
    left: torch.Tensor  # (n_g, d + 2) rows [x, |x|^2, 1], x centred on the group mean


class BlockKernel:
    """Blockwise access to an RBF kernel matrix over ``X``, optionally block-diagonal by group.

    K_ij = 2^(left_i . right_j) with left_i = [x_i, |x_i|^2, 1] and
    right_j = c [2 x_j, -1, -|x_j|^2], c = gamma log2(e): a tile is one matrix product and one
    ``exp2`` (several times faster than ``exp`` on CPUs). Points are centred within their group
    first: distances are unchanged, and small norms keep |a|^2 + |b|^2 - 2 a.b accurate in
    float32. Rounding can leave an exponent a few ulps above 0 for near-identical points, i.e.
    a kernel value a few ulps above 1; that is harmless and saves a pass over every tile.
    """

    def __init__(
        self,
        X: np.ndarray,
        gamma: float,
        *,
        groups: np.ndarray | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        host_vectors: bool = True,
    ) -> None:
        self.n = len(X)
        self.d = X.shape[1]
        self.device = torch.device(device)
        # host_vectors=False keeps the vectors in torch on the CPU too: the GPU code path,
        # which tests run on machines without a GPU.
        self.on_host = self.device.type == "cpu" and host_vectors
        self.xp: ModuleType = np if self.on_host else torch
        self.scale = float(gamma) * float(np.log2(np.e))
        group_ids = np.zeros(self.n, np.int64) if groups is None else np.asarray(groups)
        labels = np.unique(group_ids)
        self.group_of = np.searchsorted(labels, group_ids)
        self.position = np.empty(self.n, np.int64)  # row of each point inside its group
        self.groups: list[_Group] = []
        for g in range(len(labels)):
            members = np.flatnonzero(self.group_of == g)
            self.position[members] = np.arange(len(members))
            self.groups.append(self._centred_group(X, members, dtype))

    def _centred_group(self, X: np.ndarray, members: np.ndarray, dtype: torch.dtype) -> _Group:
        every_point = len(members) == len(X)
        if every_point:
            mean = X.mean(axis=0)
        else:
            mean = sum(
                X[members[i : i + _CHUNK]].sum(axis=0) for i in range(0, len(members), _CHUNK)
            )
            mean = mean / len(members)
        left = torch.ones((len(members), self.d + 2), dtype=dtype, device=self.device)
        for i in range(0, len(members), _CHUNK):
            rows = slice(i, i + _CHUNK) if every_point else members[i : i + _CHUNK]
            chunk = torch.as_tensor(X[rows] - mean).to(dtype)
            left[i : i + len(chunk), : self.d] = chunk
            # Norms of the rounded points, so that |a|^2 + |a|^2 - 2 a.a is as near 0 as can be.
            left[i : i + len(chunk), self.d] = chunk.double().square().sum(dim=1).to(dtype)
        return _Group(members, torch.as_tensor(members, device=self.device), left)

    def zeros(self, *shape: int) -> Vector:
        """A float64 array of zeros of the kind this kernel's vectors are (NumPy or torch)."""
        if self.on_host:
            return np.zeros(shape or (self.n,))
        return torch.zeros(shape or (self.n,), dtype=torch.float64, device=self.device)

    def _right(self, left_rows: Any) -> Any:
        """c [2 x, -1, -|x|^2] for rows [x, |x|^2, 1] (NumPy or torch, 1-D or 2-D)."""
        right = left_rows * (2.0 * self.scale)
        right[..., self.d] = -self.scale
        right[..., self.d + 1] = left_rows[..., self.d] * -self.scale
        return right

    def _tile(self, group: _Group, rows: slice, cols: slice, diagonal: bool) -> torch.Tensor:
        """K[rows, cols] within one group; exact ones on the diagonal of a diagonal tile."""
        tile = (group.left[rows] @ self._right(group.left[cols]).T).exp2_()
        if diagonal:
            tile.diagonal().fill_(1.0)
        return tile

    def column_sums(self, block_size: int) -> Vector:
        """``K.sum(axis=0)`` as float64, in original point order, from upper-triangle tiles.

        Tiles are at most ``block_size`` wide; a group is cut into at least four row blocks
        (unless that makes tiles narrower than 256), because diagonal tiles are computed whole
        and half of each is thrown away.
        """
        sums = torch.zeros(self.n, dtype=torch.float64, device=self.device)
        tiles = []
        for g, group in enumerate(self.groups):
            size = len(group.members)
            side = min(block_size, max(_MIN_TILE, -(-size // 4)))
            tiles += [
                (g, slice(i, i + side), slice(j, j + side))
                for i in range(0, size, side)
                for j in range(i, size, side)
            ]
        group_sums = [sums.new_zeros(len(group.members)) for group in self.groups]
        for g, rows, cols in progress(tiles, desc="kernel column sums"):
            diagonal = rows == cols
            tile = self._tile(self.groups[g], rows, cols, diagonal)
            # Summing in the tile's dtype (cascade summation) is many times faster than with
            # dtype=float64; the float64 accumulator then adds up the tiles.
            group_sums[g][cols] += tile.sum(dim=0)
            if not diagonal:  # the mirrored tile K[cols, rows] contributes its column sums too
                group_sums[g][rows] += tile.sum(dim=1)
        for group, partial in zip(self.groups, group_sums, strict=True):
            sums[group.members_device] = partial
        return sums.cpu().numpy() if self.on_host else sums

    def row(self, index: int) -> tuple[Any, Any]:
        """Kernel values between point ``index`` and every point of its group.

        Returns ``(members, values)``: original indices of the group (None when the group is
        every point in order) and ``K[index, members]`` in the kernel's dtype, as NumPy on the
        CPU and torch elsewhere; every other entry of the row is zero.
        """
        group = self.groups[self.group_of[index]]
        position = int(self.position[index])
        if self.on_host:
            left = group.left.cpu().numpy()
            values = left @ self._right(left[position])
            np.exp2(values, out=values)
            members: Any = group.members
        else:
            values = (group.left @ self._right(group.left[position])).exp2_()
            members = group.members_device
        values[position] = 1.0
        return (None if len(self.groups) == 1 else members), values

    def add_row_to(self, index: int, target: Vector) -> None:
        """``target += K[index, :]`` for a float64 vector ``target`` of length n."""
        members, values = self.row(index)
        if members is None:
            target += values
        elif self.on_host:
            target[members] += values
        else:
            target.index_add_(0, members, values.to(torch.float64))

    def dense_row(self, index: int) -> Vector:
        """``K[index, :]`` as a float64 vector of length n."""
        row = self.zeros()
        self.add_row_to(index, row)
        return row


@cache
def _thread_pools() -> ThreadpoolController:
    return ThreadpoolController()


@contextlib.contextmanager
def serial_host_blas(kernel: BlockKernel) -> Iterator[None]:
    """Run NumPy's BLAS on one thread inside the block when ``kernel`` works on the CPU.

    A greedy step's matrix-vector product is small; handing it to BLAS threads costs more than
    it saves, and on a busy machine up to ten times more (measured: 7291 x 256, 410 steps,
    0.17 s on one thread, 3.5 s on two, with other work sharing the two cores).
    """
    if not kernel.on_host:
        yield
        return
    with _thread_pools().limit(limits=1, user_api="blas"):
        yield


def to_numpy(vector: Vector) -> np.ndarray:
    """A kernel vector as a NumPy array (copied off the device when needed)."""
    return vector if isinstance(vector, np.ndarray) else vector.cpu().numpy()
