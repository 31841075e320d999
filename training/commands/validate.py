"""LightningCLI ``validate``: ``python -m training validate --config configs/NAME.yaml``."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    """Hand ``argv`` to LightningCLI's ``validate`` subcommand."""
    from training.lightning_cli import run_lightning

    return run_lightning("validate", argv)
