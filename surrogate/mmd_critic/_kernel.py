"""The RBF kernel of MMD-critic, evaluated block by block so that no n x n matrix is ever held.

MMD-critic needs three things of the kernel matrix K (K_ij = exp(-gamma ||x_i - x_j||^2)): its
column sums, one row at a time (for each chosen prototype or criticism), and nothing else. The
column sums are computed tile by tile over the upper triangle (K is symmetric, so each
off-diagonal tile gives the sums of its rows and of its columns); a row is one matrix-vector
product. Memory is O(n * (d + block_size)).

For the "local" kernel of the paper (k(x_i, x_j) = 0 across classes), the points of each group
are kept in one contiguous block, and only within-group tiles and rows are computed; every
vector handed back is indexed in the caller's original point order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from training.progress import progress

_CHUNK = 8192  # rows converted at a time, so no second float64 copy of X is made


@dataclass
class _Group:
    """The points of one group: their original indices, centred coordinates and norms."""

    members: torch.Tensor  # (n_g,) original indices, ascending
    points: torch.Tensor  # (n_g, d), centred on the group mean, in the kernel's dtype
    norms: torch.Tensor  # (n_g,) squared norms of ``points``


class BlockKernel:
    """Blockwise access to an RBF kernel matrix over ``X``, optionally block-diagonal by group.

    A tile is one matrix product of augmented rows, [x_i, |x_i|^2, 1] . c [2 x_j, -1, -|x_j|^2]
    = -c ||x_i - x_j||^2 with c = gamma log2(e), followed by ``exp2`` (several times faster
    than ``exp`` on CPUs). Points are centred within their group first: distances are
    unchanged, and small norms keep ``|a|^2 + |b|^2 - 2 a.b`` accurate in float32.
    """

    def __init__(
        self,
        X: np.ndarray,
        gamma: float,
        *,
        groups: np.ndarray | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        self.n = len(X)
        self.device = torch.device(device)
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
        points = torch.empty((len(members), X.shape[1]), dtype=dtype, device=self.device)
        norms = torch.empty(len(members), dtype=dtype, device=self.device)
        for i in range(0, len(members), _CHUNK):
            rows = slice(i, i + _CHUNK) if every_point else members[i : i + _CHUNK]
            chunk = torch.as_tensor(X[rows] - mean).to(dtype)
            # Norms of the rounded points, so that |a|^2 + |a|^2 - 2 a.a is as near 0 as can be.
            norms[i : i + len(chunk)] = chunk.double().square().sum(dim=1).to(dtype)
            points[i : i + len(chunk)] = chunk
        return _Group(torch.as_tensor(members, device=self.device), points, norms)

    def _tile(self, group: _Group, rows: slice, cols: slice, diagonal: bool) -> torch.Tensor:
        """K[rows, cols] within one group; exact ones on the diagonal of a diagonal tile."""
        left = group.points[rows]
        right = group.points[cols]
        left = torch.cat([left, group.norms[rows, None], torch.ones_like(left[:, :1])], dim=1)
        right = torch.cat(
            [
                right * (2.0 * self.scale),
                torch.full_like(right[:, :1], -self.scale),
                group.norms[cols, None] * -self.scale,
            ],
            dim=1,
        )
        tile = left @ right.T
        tile.clamp_(max=0.0).exp2_()  # the exponent is <= 0; rounding may leave it a hair above
        if diagonal:
            tile.diagonal().fill_(1.0)
        return tile

    def column_sums(self, block_size: int) -> torch.Tensor:
        """``K.sum(axis=0)`` as float64, in original point order, from upper-triangle tiles."""
        sums = torch.zeros(self.n, dtype=torch.float64, device=self.device)
        tiles = [
            (g, i, j)
            for g, group in enumerate(self.groups)
            for i in range(0, len(group.members), block_size)
            for j in range(i, len(group.members), block_size)
        ]
        group_sums = [sums.new_zeros(len(group.members)) for group in self.groups]
        for g, i, j in progress(tiles, desc="kernel column sums"):
            rows, cols = slice(i, i + block_size), slice(j, j + block_size)
            tile = self._tile(self.groups[g], rows, cols, diagonal=i == j)
            # Summing in the tile's dtype (cascade summation) is many times faster than with
            # dtype=float64; the float64 accumulator then adds up the tiles.
            group_sums[g][cols] += tile.sum(dim=0)
            if i != j:  # the mirrored tile K[cols, rows] contributes its column sums too
                group_sums[g][rows] += tile.sum(dim=1)
        for group, partial in zip(self.groups, group_sums, strict=True):
            sums[group.members] = partial
        return sums

    def row(self, index: int) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Kernel values between point ``index`` and every point of its group.

        Returns ``(members, values)``: original indices of the group (None when the group is
        every point in order) and ``K[index, members]`` in the kernel's dtype; every other
        entry of the row is zero.
        """
        group = self.groups[self.group_of[index]]
        position = int(self.position[index])
        point = group.points[position]
        exponent = (group.norms + group.norms[position]).mul_(-self.scale)
        values = torch.addmv(exponent, group.points, point, alpha=2.0 * self.scale)
        values.clamp_(max=0.0).exp2_()
        values[position] = 1.0
        return (None if len(self.groups) == 1 else group.members), values

    def add_row_to(self, index: int, target: torch.Tensor) -> None:
        """``target += K[index, :]`` for a float64 vector ``target`` of length n."""
        members, values = self.row(index)
        if members is None:
            target.add_(values)
        else:
            target.index_add_(0, members, values.to(torch.float64))

    def dense_row(self, index: int) -> torch.Tensor:
        """``K[index, :]`` as a float64 vector of length n."""
        row = torch.zeros(self.n, dtype=torch.float64, device=self.device)
        self.add_row_to(index, row)
        return row
