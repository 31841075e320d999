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
    CommandSpec(
        "fit",
        "training.commands.fit",
        "train a model from a config (LightningCLI; e.g. --config configs/gan64.yaml)",
        kind="passthrough",
    ),
    CommandSpec(
        "validate",
        "training.commands.validate",
        "validate a checkpoint on the config's validation scenes (LightningCLI)",
        kind="passthrough",
    ),
    CommandSpec(
        "test",
        "training.commands.test",
        "test a checkpoint on the held-out scenes (LightningCLI)",
        kind="passthrough",
    ),
    CommandSpec(
        "export",
        "training.commands.export",
        "ship a trained run's model into training/weights/ with its card and evaluation",
        kind="plain",
    ),
    CommandSpec(
        "scenes",
        "training.commands.scenes",
        "render street scenes with their concept masks, lamp glow and statistics",
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m training`` and ``seethrough-train``."""
    return run_cli("python -m training", DESCRIPTION, COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
