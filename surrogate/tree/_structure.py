"""The tree a surrogate holds: flat node arrays, routing, per-node statistics and pruning.

The arrays follow scikit-learn's ``tree_`` layout (node 0 is the root, a row goes left when
``X[feature] <= threshold``, ``-1`` marks a leaf's missing children), so the greedy tree that
scikit-learn grows can be taken over as it is and then changed by refinement, which
scikit-learn's own tree object does not allow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from surrogate.tree._targets import Targets

LEAF = -1


@dataclass
class TreeStructure:
    """A binary tree of axis-aligned splits.

    Attributes
    ----------
    feature, threshold:
        The split of each internal node (``-1`` and NaN at leaves).
    children_left, children_right:
        Child node ids (``-1`` at leaves).
    value:
        (n_nodes, k): at each node, the class shares (classification) or the mean scores
        (regression) of the training samples that reach it; a leaf predicts its row.
    n_real, n_oracle:
        How many real training rows and how many oracle samples reach each node.
    """

    feature: np.ndarray
    threshold: np.ndarray
    children_left: np.ndarray
    children_right: np.ndarray
    value: np.ndarray
    n_real: np.ndarray
    n_oracle: np.ndarray

    @classmethod
    def from_sklearn(cls, fitted_tree: object, n_outputs: int) -> TreeStructure:
        """Copy the splits of a fitted scikit-learn tree (statistics are filled in later)."""
        inner = fitted_tree.tree_  # type: ignore[attr-defined]
        n_nodes = int(inner.node_count)
        leaf = inner.children_left == LEAF
        return cls(
            feature=np.where(leaf, LEAF, inner.feature).astype(np.intp),
            threshold=np.where(leaf, np.nan, inner.threshold).astype(np.float64),
            children_left=inner.children_left.astype(np.intp),
            children_right=inner.children_right.astype(np.intp),
            value=np.zeros((n_nodes, n_outputs)),
            n_real=np.zeros(n_nodes, np.intp),
            n_oracle=np.zeros(n_nodes, np.intp),
        )

    @property
    def node_count(self) -> int:
        """Number of nodes, leaves included."""
        return len(self.feature)

    def is_leaf(self) -> np.ndarray:
        """Boolean mask of the leaves."""
        return self.children_left == LEAF

    @property
    def n_leaves(self) -> int:
        """Number of leaves."""
        return int(self.is_leaf().sum())

    def depths(self) -> np.ndarray:
        """Depth of every node (the root is at depth 0)."""
        depth = np.zeros(self.node_count, np.intp)
        for node in range(self.node_count):  # parents precede children in this layout
            if self.children_left[node] != LEAF:
                depth[self.children_left[node]] = depth[node] + 1
                depth[self.children_right[node]] = depth[node] + 1
        return depth

    @property
    def max_depth(self) -> int:
        """Depth of the deepest leaf."""
        return int(self.depths().max())

    def apply(self, X: np.ndarray, start: int = 0) -> np.ndarray:
        """The leaf each row of ``X`` reaches when routed from node ``start``."""
        node = np.full(len(X), start, np.intp)
        active = np.flatnonzero(self.children_left[node] != LEAF)
        while active.size:
            at = node[active]
            left = X[active, self.feature[at]] <= self.threshold[at]
            node[active] = np.where(left, self.children_left[at], self.children_right[at])
            active = active[self.children_left[node[active]] != LEAF]
        return node

    def paths(self, X: np.ndarray) -> np.ndarray:
        """(n, max_depth + 1): the node each row is at on each level (``-1`` below its leaf)."""
        n_levels = self.max_depth + 1
        path = np.full((len(X), n_levels), LEAF, np.intp)
        node = np.zeros(len(X), np.intp)
        path[:, 0] = 0
        active = np.arange(len(X))
        for level in range(1, n_levels):
            active = active[self.children_left[node[active]] != LEAF]
            at = node[active]
            left = X[active, self.feature[at]] <= self.threshold[at]
            node[active] = np.where(left, self.children_left[at], self.children_right[at])
            path[active, level] = node[active]
        return path

    def fill_statistics(self, X: np.ndarray, targets: Targets, is_real: np.ndarray) -> None:
        """Recompute ``value``, ``n_real`` and ``n_oracle`` of every node from the samples."""
        self.n_real[:] = 0
        self.n_oracle[:] = 0
        for at_level in self.paths(X).T:  # each node's rows, one level at a time
            for node, rows in group_rows(at_level):
                self.value[node] = targets.leaf_value(rows)
                self.n_real[node] = int(is_real[rows].sum())
                self.n_oracle[node] = rows.size - self.n_real[node]

    def pruned(self, same_prediction: bool) -> TreeStructure:
        """A copy without splits that no sample tests or that cannot change a prediction.

        A split one of whose children no training sample reaches is replaced by the other
        child; with ``same_prediction`` (classification) a split whose two children are leaves
        predicting the same class becomes a leaf. Statistics must be filled in first. Nodes
        are renumbered depth-first, so parents still precede their children.
        """
        reached = (self.n_real + self.n_oracle) > 0
        label = self.value.argmax(axis=1)

        def keep(node: int) -> tuple[int, bool]:
            """The node that replaces ``node``, and whether it is a leaf."""
            if self.children_left[node] == LEAF:
                return node, True
            left, right = int(self.children_left[node]), int(self.children_right[node])
            if not reached[left]:
                return keep(right)
            if not reached[right]:
                return keep(left)
            return node, False

        new: dict[str, list[float]] = {name: [] for name in ("f", "t", "l", "r")}
        sources: list[int] = []

        def copy(node: int) -> int:
            node, leaf = keep(node)
            index = len(sources)
            sources.append(node)
            for name in new:
                new[name].append(LEAF if name != "t" else np.nan)
            if leaf:
                return index
            left = copy(int(self.children_left[node]))
            right = copy(int(self.children_right[node]))
            both_leaves = new["l"][left] == LEAF and new["l"][right] == LEAF
            if (
                same_prediction
                and both_leaves
                and label[sources[left]] == label[sources[right]]
                and right == len(sources) - 1
            ):
                del sources[left:], new["f"][left:], new["t"][left:]
                del new["l"][left:], new["r"][left:]
                return index
            new["f"][index], new["t"][index] = self.feature[node], self.threshold[node]
            new["l"][index], new["r"][index] = left, right
            return index

        copy(0)
        order = np.asarray(sources, np.intp)
        return TreeStructure(
            feature=np.asarray(new["f"], np.intp),
            threshold=np.asarray(new["t"], np.float64),
            children_left=np.asarray(new["l"], np.intp),
            children_right=np.asarray(new["r"], np.intp),
            value=self.value[order].copy(),
            n_real=self.n_real[order].copy(),
            n_oracle=self.n_oracle[order].copy(),
        )


def group_rows(node_of_row: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(node, rows)`` for every node that rows reach (``-1`` entries are skipped)."""
    order = np.argsort(node_of_row, kind="stable")
    nodes, starts = np.unique(node_of_row[order], return_index=True)
    groups = np.split(order, starts[1:])
    return [(int(node), rows) for node, rows in zip(nodes, groups, strict=True) if node != LEAF]
