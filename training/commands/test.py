"""LightningCLI ``test`` on a config: ``python -m training test --config configs/NAME.yaml``."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    """Hand ``argv`` to LightningCLI's ``test`` subcommand."""
    from training.lightning_cli import run_lightning

    return run_lightning("test", argv)
