"""Pictures of a surrogate: the tree itself, and fidelity against depth."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from surrogate.tree._report import TreeNames
from surrogate.tree._structure import LEAF

_INCH_PER_LEAF = 1.45
_INCH_PER_LEVEL = 1.25


def plot_tree(names: TreeNames, *, max_depth: int = 4) -> Any:
    """A matplotlib figure of the tree's top ``max_depth`` levels.

    Split nodes ask a question (``feature <= threshold``, ``sex in {female}``, ``age is
    missing``) whose answers label the branches; leaves show the prediction, the support in
    real rows and (for classes) the purity, coloured by class and shaded by purity. Subtrees
    cut at ``max_depth`` are drawn as one grey box that says how many leaves they hold.
    """
    import matplotlib.pyplot as plt

    tree = names.tree
    depth = tree.depths()
    shown = [node for node in range(tree.node_count) if depth[node] <= max_depth]
    cut = {node for node in shown if depth[node] == max_depth and tree.children_left[node] != LEAF}
    x = _leaf_order_positions(tree, cut)
    n_columns = 1 + max(x[node] for node in shown)
    n_levels = 1 + max(depth[node] for node in shown)
    figure, ax = plt.subplots(
        figsize=(
            min(max(6.0, _INCH_PER_LEAF * n_columns), 40.0),
            max(2.5, _INCH_PER_LEVEL * n_levels),
        )
    )
    colours = plt.get_cmap("tab10")
    for node in shown:
        if depth[node] < max_depth and tree.children_left[node] != LEAF:
            left_is_yes = names.split_label(node)[1]
            for child, answer in (
                (tree.children_left[node], "yes" if left_is_yes else "no"),
                (tree.children_right[node], "no" if left_is_yes else "yes"),
            ):
                ax.plot(
                    [x[node], x[child]],
                    [-depth[node], -depth[child]],
                    color="#9aa3b2",
                    lw=1,
                    zorder=1,
                )
                ax.text(
                    (x[node] + x[child]) / 2,
                    -(depth[node] + depth[child]) / 2,
                    answer,
                    fontsize=7,
                    color="#5b6475",
                    ha="center",
                    va="center",
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none"},
                    zorder=2,
                )
    for node in shown:
        text, face = _node_label(names, node, node in cut, colours)
        ax.text(
            x[node],
            -depth[node],
            text,
            fontsize=8,
            ha="center",
            va="center",
            bbox={"boxstyle": "round,pad=0.35", "fc": face, "ec": "#5b6475", "lw": 0.8},
            zorder=3,
        )
    ax.set_xlim(-0.7, n_columns - 0.3)
    ax.set_ylim(-(n_levels - 1) - 0.6, 0.6)
    ax.axis("off")
    return figure


def plot_fidelity_curve(
    curves: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    black_box_accuracy: float | None,
    regression: bool,
    x_key: str = "depth",
) -> Any:
    """Held-out fidelity (solid) and accuracy on true labels (dashed) against tree depth.

    ``curves`` maps a label (e.g. "oracle samples", "plain tree") to rows with ``x_key``,
    ``fidelity`` and ``accuracy``; the black box's own accuracy is a grey line.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, ax = plt.subplots(figsize=(7.0, 4.2))
    colours = plt.get_cmap("tab10")
    for index, (label, rows) in enumerate(curves.items()):
        steps = [row[x_key] for row in rows]
        ax.plot(
            steps,
            [row["fidelity"] for row in rows],
            "o-",
            color=colours(index),
            label=f"{label}: fidelity",
        )
        accuracy = [row["accuracy"] for row in rows]
        if all(value is not None for value in accuracy):
            ax.plot(
                steps, accuracy, "s--", color=colours(index), alpha=0.7, label=f"{label}: accuracy"
            )
    if black_box_accuracy is not None:
        ax.axhline(black_box_accuracy, color="#5b6475", lw=1, ls=":", label="black box: accuracy")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    metric = "R²" if regression else "share of held-out rows"
    ax.set_xlabel("tree depth" if x_key == "depth" else x_key.replace("_", " "))
    ax.set_ylabel(f"fidelity / accuracy ({metric})")
    ax.set_title("Fidelity to the black box and accuracy on true labels, held-out rows")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return figure


def _leaf_order_positions(tree: Any, cut: set[int]) -> dict[int, float]:
    """x of every node: leaves (and cut subtrees) left to right, parents over their children."""
    x: dict[int, float] = {}
    next_column = 0

    def place(node: int) -> float:
        nonlocal next_column
        if tree.children_left[node] == LEAF or node in cut:
            x[node] = float(next_column)
            next_column += 1
        else:
            x[node] = (place(tree.children_left[node]) + place(tree.children_right[node])) / 2
        return x[node]

    place(0)
    return x


def _node_label(names: TreeNames, node: int, is_cut: bool, colours: Any) -> tuple[str, Any]:
    tree = names.tree
    support = f"{int(tree.n_real[node])} row{'' if tree.n_real[node] == 1 else 's'}"
    if is_cut:
        hidden = _count_leaves(tree, node)
        return f"… {hidden} leaves\n{support}", "#eef0f4"
    if tree.children_left[node] != LEAF:
        question = "\n".join(_short(line) for line in names.split_label(node)[0].split("\n"))
        return f"{question}\n{support}", "white"
    prediction = _short(names.prediction(node))
    purity = names.purity(node)
    if purity is None:
        return f"{prediction}\n{support}", "#e6eefb"
    colour = np.array(colours(int(tree.value[node].argmax()) % 10))
    colour[3] = 0.15 + 0.55 * purity
    return f"{prediction}\n{support}\npurity {100 * purity:.0f}%", colour


def _count_leaves(tree: Any, node: int) -> int:
    if tree.children_left[node] == LEAF:
        return 1
    return _count_leaves(tree, tree.children_left[node]) + _count_leaves(
        tree, tree.children_right[node]
    )


def _short(text: str, width: int = 22) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
