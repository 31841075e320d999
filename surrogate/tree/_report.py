"""A fitted surrogate in words: its leaves as rules, the tree as indented text, and JSON.

Each leaf becomes one rule: the conditions on its path (several tests of one feature merged
into one interval), what it predicts, its support (real training rows that reach it) and, for
classes, its purity (the share of its training samples, oracle samples included, for which
the black box predicts the leaf's class).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from surrogate.tree._structure import LEAF, TreeStructure


def format_threshold(value: float) -> str:
    """A split threshold for people: four significant digits."""
    return f"{value:.4g}"


class TreeNames:
    """The words a report uses for a fitted surrogate's features and outputs."""

    def __init__(
        self,
        tree: TreeStructure,
        *,
        feature_names: Sequence[str],
        output_names: Sequence[str],
        classification: bool,
    ) -> None:
        self.tree = tree
        self.features = [str(name) for name in feature_names]
        self.outputs = [str(name) for name in output_names]
        self.classification = classification

    def prediction(self, node: int) -> str:
        """What ``node`` predicts, in words."""
        value = self.tree.value[node]
        if self.classification:
            return self.outputs[int(value.argmax())]
        if len(value) == 1:
            return format_threshold(float(value[0]))
        return ", ".join(
            f"{name}={format_threshold(float(v))}"
            for name, v in zip(self.outputs, value, strict=True)
        )

    def purity(self, node: int) -> float | None:
        """Share of the node's samples in its predicted class (None for scores)."""
        return float(self.tree.value[node].max()) if self.classification else None


def leaf_rules(names: TreeNames) -> list[dict[str, Any]]:
    """One rule per leaf, the best-supported first."""
    tree = names.tree
    total_real = max(int(tree.n_real[0]), 1)
    rules = []
    for leaf, bounds in _leaf_bounds(tree):
        rules.append(
            {
                "leaf": leaf,
                "conditions": [
                    _interval(names.features[feature], low, high)
                    for feature, (low, high) in bounds.items()  # in the order the path tests them
                ],
                "prediction": names.prediction(leaf),
                "value": tree.value[leaf].tolist(),
                "support": int(tree.n_real[leaf]),
                "support_share": int(tree.n_real[leaf]) / total_real,
                "oracle_samples": int(tree.n_oracle[leaf]),
                "purity": names.purity(leaf),
            }
        )
    rules.sort(key=lambda rule: (-rule["support"], -rule["oracle_samples"], rule["leaf"]))
    return rules


def rules_text(rules: list[dict[str, Any]], classification: bool) -> str:
    """The rules as plain text, one ``if ... then ...`` line per leaf."""
    lines = []
    for rule in rules:
        condition = " and ".join(rule["conditions"]) or "always"
        rows = "row" if rule["support"] == 1 else "rows"
        detail = f"support {rule['support']} {rows} ({100 * rule['support_share']:.1f}%)"
        if classification:
            detail += f", purity {100 * rule['purity']:.1f}%"
        lines.append(f"if {condition} then {rule['prediction']}   [{detail}]")
    return "\n".join(lines) + "\n"


def export_text(names: TreeNames) -> str:
    """The tree as indented text, in the style of ``sklearn.tree.export_text``."""
    tree = names.tree
    lines: list[str] = []

    def write(node: int, depth: int) -> None:
        indent = "|   " * depth + "|--- "
        if tree.children_left[node] == LEAF:
            detail = f"support {int(tree.n_real[node])}"
            purity = names.purity(node)
            if purity is not None:
                detail += f", purity {100 * purity:.0f}%"
            lines.append(f"{indent}{names.prediction(node)}  ({detail})")
            return
        feature = names.features[int(tree.feature[node])]
        threshold = format_threshold(float(tree.threshold[node]))
        lines.append(f"{indent}{feature} <= {threshold}")
        write(int(tree.children_left[node]), depth + 1)
        lines.append(f"{indent}{feature} >  {threshold}")
        write(int(tree.children_right[node]), depth + 1)

    write(0, 0)
    return "\n".join(lines) + "\n"


def tree_nodes(names: TreeNames) -> list[dict[str, Any]]:
    """Every node as a JSON-ready record (ids index this list; children ``None`` at leaves)."""
    tree = names.tree
    nodes = []
    for node in range(tree.node_count):
        leaf = tree.children_left[node] == LEAF
        nodes.append(
            {
                "id": node,
                "feature": None if leaf else names.features[int(tree.feature[node])],
                "feature_index": None if leaf else int(tree.feature[node]),
                "threshold": None if leaf else float(tree.threshold[node]),
                "left": None if leaf else int(tree.children_left[node]),
                "right": None if leaf else int(tree.children_right[node]),
                "prediction": names.prediction(node),
                "value": tree.value[node].tolist(),
                "support": int(tree.n_real[node]),
                "oracle_samples": int(tree.n_oracle[node]),
            }
        )
    return nodes


def _leaf_bounds(tree: TreeStructure) -> list[tuple[int, dict[int, tuple[float, float]]]]:
    """Each leaf with the interval ``(low, high]`` its path allows on each tested feature."""
    found = []
    stack: list[tuple[int, dict[int, tuple[float, float]]]] = [(0, {})]
    while stack:
        node, bounds = stack.pop()
        if tree.children_left[node] == LEAF:
            found.append((node, bounds))
            continue
        feature, threshold = int(tree.feature[node]), float(tree.threshold[node])
        low, high = bounds.get(feature, (-np.inf, np.inf))
        stack.append(
            (int(tree.children_right[node]), {**bounds, feature: (max(low, threshold), high)})
        )
        stack.append(
            (int(tree.children_left[node]), {**bounds, feature: (low, min(high, threshold))})
        )
    return found


def _interval(name: str, low: float, high: float) -> str:
    if np.isfinite(low) and np.isfinite(high):
        return f"{format_threshold(low)} < {name} <= {format_threshold(high)}"
    if np.isfinite(high):
        return f"{name} <= {format_threshold(high)}"
    return f"{name} > {format_threshold(low)}"
