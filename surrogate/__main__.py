"""``python -m surrogate``: explain a black box from the outside."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from training.cli import CommandSpec, run_cli

DESCRIPTION = """Explain a black box from the outside: local LIME explanations, a global
decision-tree surrogate with measured fidelity, MMD-critic prototypes and criticisms."""

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("lime", "surrogate.commands.lime", "LIME explanations of tables, images or text"),
    CommandSpec("prototypes", "surrogate.commands.prototypes", "MMD-critic prototypes, criticisms"),
    CommandSpec("tree", "surrogate.commands.tree", "global decision-tree surrogate with fidelity"),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m surrogate`` and ``seethrough-surrogate``."""
    return run_cli("python -m surrogate", DESCRIPTION, COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
