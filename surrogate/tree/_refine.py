"""Refine a grown tree's splits to agree with the black box on more samples (TAO).

Greedy growth picks each split by an impurity proxy and never revisits it. Tree alternating
optimisation (Carreira-Perpinan and Tavallali, NeurIPS 2018) keeps the tree's shape and
revisits every node, deepest first, minimising the real objective (0-1 disagreement with the
black box, or squared error) on all training samples:

- a leaf takes the majority class (the mean score) of the samples that reach it;
- an internal node, with both subtrees fixed, sends each sample to the subtree that serves it
  better. Only samples one subtree serves better than the other ("care" samples) matter, each
  weighted by the difference, so the best split is a weighted decision stump over the care
  samples: an exact search over every feature and threshold.

Nodes on one level reach disjoint samples, and a node's samples depend only on its ancestors,
so one routing per pass serves every level. A split is replaced only when the new one is
strictly better, so the training loss never rises; passes stop when no split changes.
"""

from __future__ import annotations

import numpy as np

from surrogate.tree._structure import LEAF, TreeStructure, group_rows
from surrogate.tree._targets import Targets


def refine(tree: TreeStructure, X: np.ndarray, targets: Targets, max_passes: int) -> int:
    """Run up to ``max_passes`` TAO passes over ``tree`` in place; return the passes run."""
    n_levels = tree.max_depth + 1
    for done in range(max_passes):
        path = tree.paths(X)
        changed = False
        for level in range(n_levels - 1, -1, -1):
            for node, rows in group_rows(path[:, level]):
                if tree.children_left[node] == LEAF:
                    tree.value[node] = targets.leaf_value(rows)
                else:
                    changed |= _refit_split(tree, node, X, rows, targets)
        if not changed:
            return done + 1
    return max_passes


def _refit_split(
    tree: TreeStructure, node: int, X: np.ndarray, rows: np.ndarray, targets: Targets
) -> bool:
    """Give ``node`` the best split for the samples ``rows``; whether it changed."""
    left, right = tree.children_left[node], tree.children_right[node]
    X_node = X[rows]
    loss_left = targets.loss(tree.value[tree.apply(X_node, left)], rows)
    loss_right = targets.loss(tree.value[tree.apply(X_node, right)], rows)
    gain = loss_right - loss_left  # > 0: the left subtree serves the sample better
    care = np.abs(gain) > 1e-12 * (1.0 + np.abs(loss_left) + np.abs(loss_right))
    if not care.any():
        return False
    X_care, wants_left, weight = X_node[care], gain[care] > 0, np.abs(gain[care])
    goes_left = X_care[:, tree.feature[node]] <= tree.threshold[node]
    current_cost = weight[goes_left != wants_left].sum()
    feature, threshold, swap, cost = best_stump(X_care, wants_left, weight)
    if cost >= current_cost - 1e-9 * weight.sum():
        return False
    tree.feature[node], tree.threshold[node] = feature, threshold
    if swap:  # the rule sends the left subtree's samples right: exchange the subtrees
        tree.children_left[node], tree.children_right[node] = right, left
    return True


def best_stump(
    X: np.ndarray, wants_left: np.ndarray, weight: np.ndarray
) -> tuple[int, float, bool, float]:
    """The axis-aligned split with the least weight on the wrong side.

    Returns ``(feature, threshold, swap, cost)``: rows with ``X[:, feature] <= threshold`` go
    left, unless ``swap``, in which case they go right. Thresholds lie halfway between
    consecutive distinct values, as in scikit-learn.
    """
    order = np.argsort(X, axis=0, kind="stable")
    values = np.take_along_axis(X, order, axis=0)
    left_weight = np.where(wants_left, weight, 0.0)[order]
    right_weight = np.where(wants_left, 0.0, weight)[order]
    # cost when the first i + 1 sorted rows go left: right-wanting rows among them, plus
    # left-wanting rows after them
    cost = np.cumsum(right_weight, axis=0) + (
        left_weight.sum(axis=0) - np.cumsum(left_weight, axis=0)
    )
    swapped_cost = weight.sum() - cost
    cuttable = np.ones_like(values, dtype=bool)
    cuttable[:-1] = values[1:] > values[:-1]  # the last position sends every row one way
    best = np.where(cuttable, np.minimum(cost, swapped_cost), np.inf)
    position, feature = np.unravel_index(int(np.argmin(best)), best.shape)
    low = values[position, feature]
    threshold = low
    if position + 1 < len(values):
        threshold = low + (values[position + 1, feature] - low) / 2.0
        if threshold >= values[position + 1, feature]:  # adjacent floats: halfway rounds up
            threshold = low
    swap = bool(swapped_cost[position, feature] < cost[position, feature])
    return int(feature), float(threshold), swap, float(best[position, feature])
