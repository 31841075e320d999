"""``python -m gan_dissect``: explain a generator from the inside."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from training.cli import CommandSpec, run_cli

DESCRIPTION = """Explain a generator from the inside: which units draw which concept
(dissection), what switching them off or on does (ablation, insertion), what the generator
can still draw under ablation (constrained activation maximisation), and edits of real images
(inversion)."""

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "dissect",
        "gan_dissect.commands.dissect",
        "which concept each unit of a layer draws (IoU with a segmentation), with a report",
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m gan_dissect`` and ``seethrough-dissect``."""
    return run_cli("python -m gan_dissect", DESCRIPTION, COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
