"""A fitted surrogate in words: its leaves as rules, the tree as indented text, and JSON.

Each leaf becomes one rule: the conditions on its path (several tests of one feature merged
into one interval), what it predicts, its support (real training rows that reach it) and, for
classes, its purity (the share of its training samples, oracle samples included, for which
the black box predicts the leaf's class).

A tree fitted to a table speaks of its columns (see :mod:`surrogate.tree._table`): tests of
one categorical column merge into one set (``passengerClass in {2nd, 3rd}``, or ``not in``
where that is shorter), a missing indicator reads ``age is missing``, and a threshold on a
number with missing values says where the missing rows go (``age <= 30 or age is missing``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from surrogate.tree._structure import LEAF, TreeStructure
from surrogate.tree._table import TableDesign


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
        design: TableDesign | None = None,
    ) -> None:
        self.tree = tree
        self.columns = [str(name) for name in feature_names]
        self.design = design or TableDesign(None, len(self.columns), np.zeros(len(self.columns)))
        self.features = self.design.design_names(self.columns)  # one per design column
        self.outputs = [str(name) for name in output_names]
        self.classification = classification
        # the columns whose missingness the path to each node has tested (parents come first)
        self.settled: list[frozenset[int]] = [frozenset()] * tree.node_count
        for node in range(tree.node_count):
            if tree.children_left[node] != LEAF:
                feature = int(tree.feature[node])
                settled = self.settled[node]
                if self.design.kind(feature) == "missing":
                    settled = settled | {self.design.column(feature)}
                self.settled[tree.children_left[node]] = settled
                self.settled[tree.children_right[node]] = settled

    def branch(self, node: int, left: bool) -> str:
        """The test a row passes to go down ``node``'s left (or right) branch."""
        feature = int(self.tree.feature[node])
        threshold = float(self.tree.threshold[node])
        kind, column = self.design.kind(feature), self.design.column(feature)
        name = self.columns[column]
        if kind == "category":
            names = self.design.category_names(column)
            category = self.design.category(feature)
            if not left:
                return f"{name} in {{{names[category]}}}"
            return _category_set(name, names, set(range(len(names))) - {category})
        if kind == "missing":
            return f"{name} is {'not missing' if left else 'missing'}"
        text = f"{name} {'<=' if left else '> '} {format_threshold(threshold)}"
        missing_here = self.design.has_missing(column) and column not in self.settled[node]
        if missing_here and (self.design.fill[column] <= threshold) == left:
            text += f" or {name} is missing"
        return text

    def split_label(self, node: int) -> tuple[str, bool]:
        """A split node's question in short lines, and whether "yes" is the left branch."""
        feature = int(self.tree.feature[node])
        threshold = float(self.tree.threshold[node])
        kind, column = self.design.kind(feature), self.design.column(feature)
        name = self.columns[column]
        if kind == "category":
            category = self.design.category_names(column)[self.design.category(feature)]
            return f"{name}\nin {{{category}}}", False
        if kind == "missing":
            return f"{name}\nis missing", False
        label = f"{name}\n<= {format_threshold(threshold)}"
        if self.design.has_missing(column) and column not in self.settled[node]:
            label += f"\nmissing rows: {'yes' if self.design.fill[column] <= threshold else 'no'}"
        return label, True

    def conditions(self, tests: list[tuple[int, float, bool]]) -> list[str]:
        """The conditions a path of ``(feature, threshold, went_left)`` tests imposes, one per
        table column, in the order the path first tests them."""
        by_column: dict[int, list[tuple[int, float, bool]]] = {}
        for test in tests:
            by_column.setdefault(self.design.column(test[0]), []).append(test)
        return [self._condition(column, found) for column, found in by_column.items()]

    def _condition(self, column: int, tests: list[tuple[int, float, bool]]) -> str:
        name = self.columns[column]
        if self.design.kind(tests[0][0]) == "category":
            names = self.design.category_names(column)
            allowed = set(range(len(names)))
            for feature, _, left in tests:
                category = self.design.category(feature)
                allowed = allowed - {category} if left else allowed & {category}
            return _category_set(name, names, allowed)
        low, high, missing = -np.inf, np.inf, None
        for feature, threshold, left in tests:
            if self.design.kind(feature) == "missing":
                missing = not left
            elif left:
                high = min(high, threshold)
            else:
                low = max(low, threshold)
        if missing:
            return f"{name} is missing"
        if low == -np.inf and high == np.inf:
            return f"{name} is not missing"
        interval = _interval(name, low, high)
        fill = self.design.fill[column]
        if missing is None and self.design.has_missing(column) and low < fill <= high:
            return f"({interval} or {name} is missing)"
        return interval

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
    for leaf, tests in _leaf_paths(tree):
        rules.append(
            {
                "leaf": leaf,
                "conditions": names.conditions(tests),
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
        lines.append(f"{indent}{names.branch(node, left=True)}")
        write(int(tree.children_left[node]), depth + 1)
        lines.append(f"{indent}{names.branch(node, left=False)}")
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
                "left_when": None if leaf else names.branch(node, left=True),
                "right_when": None if leaf else names.branch(node, left=False),
                "left": None if leaf else int(tree.children_left[node]),
                "right": None if leaf else int(tree.children_right[node]),
                "prediction": names.prediction(node),
                "value": tree.value[node].tolist(),
                "support": int(tree.n_real[node]),
                "oracle_samples": int(tree.n_oracle[node]),
            }
        )
    return nodes


def _leaf_paths(tree: TreeStructure) -> list[tuple[int, list[tuple[int, float, bool]]]]:
    """Each leaf with the tests on its path: ``(feature, threshold, went_left)``, root first."""
    found = []
    stack: list[tuple[int, list[tuple[int, float, bool]]]] = [(0, [])]
    while stack:
        node, tests = stack.pop()
        if tree.children_left[node] == LEAF:
            found.append((node, tests))
            continue
        feature, threshold = int(tree.feature[node]), float(tree.threshold[node])
        stack.append((int(tree.children_right[node]), [*tests, (feature, threshold, False)]))
        stack.append((int(tree.children_left[node]), [*tests, (feature, threshold, True)]))
    return found


def _category_set(name: str, names: list[str], allowed: set[int]) -> str:
    """``name in {...}`` for the allowed categories, or ``not in`` the others where shorter."""
    excluded = [names[code] for code in range(len(names)) if code not in allowed]
    if len(allowed) <= len(excluded):
        return f"{name} in {{{', '.join(names[code] for code in sorted(allowed))}}}"
    return f"{name} not in {{{', '.join(excluded)}}}"


def _interval(name: str, low: float, high: float) -> str:
    if np.isfinite(low) and np.isfinite(high):
        return f"{format_threshold(low)} < {name} <= {format_threshold(high)}"
    if np.isfinite(high):
        return f"{name} <= {format_threshold(high)}"
    return f"{name} > {format_threshold(low)}"
