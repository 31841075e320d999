"""``python -m training``: train the models seethrough explains, and shared utilities."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from training.cli import CommandSpec, run_cli

DESCRIPTION = """Train the models that seethrough explains (the GAN, its segmenter, the
black-box classifiers) and work with run folders."""

COMMANDS = (
    CommandSpec(
        "index",
        "training.commands.index",
        "write index.html linking the runs in a folder",
        kind="plain",
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m training`` and ``seethrough-train``."""
    return run_cli("python -m training", DESCRIPTION, COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
