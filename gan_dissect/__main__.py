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
    CommandSpec(
        "ablate",
        "gan_dissect.commands.ablate",
        "switch a concept's units off and on; the share of it removed, with before/after pictures",
    ),
    CommandSpec(
        "actmax",
        "gan_dissect.commands.actmax",
        "the latent that maximises a unit, concept or logit, beside pixel space and under ablation",
    ),
    CommandSpec(
        "invert",
        "gan_dissect.commands.invert",
        "invert real scenes into the generator and edit them with the same unit ablation",
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m gan_dissect`` and ``seethrough-dissect``."""
    return run_cli("python -m gan_dissect", DESCRIPTION, COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
