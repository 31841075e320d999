"""Write index.html in a folder of runs, linking every finished run's page."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.pages import write_index


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m training index``."""
    parser.add_argument("folder", type=Path, help="folder whose sub-folders are run folders")
    parser.add_argument("--title", default="seethrough runs", help="page title")


def run(args: argparse.Namespace) -> None:
    """Write the index and print its path."""
    print(write_index(args.folder, title=args.title))
