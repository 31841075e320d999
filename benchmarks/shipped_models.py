"""What every benchmark of the shipped GAN starts with: its options and its models.

parser = argparse.ArgumentParser(...)
add_shipped_options(parser)
args = parser.parse_args(argv)
generator, segmenter = load_shipped(args)
"""

from __future__ import annotations

import argparse
import os

import torch

from training.pretrained import load_pretrained


def add_shipped_options(parser: argparse.ArgumentParser, *, threads: int = 1) -> None:
    """``--threads`` (torch threads) and ``--weights-dir`` (the shipped models' folder)."""
    parser.add_argument("--threads", type=int, default=threads)
    parser.add_argument("--weights-dir", default=None, help="folder of the shipped models")


BUDGET = 0.08  # the budget: at most 8 % of a layer's units


def unit_budget(units_in_layer: int, requested: int | None = None) -> int:
    """``requested`` units, or by default 8 % of the layer's units (at least one)."""
    return requested if requested else max(1, int(BUDGET * units_in_layer))


def load_shipped(args: argparse.Namespace) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Silence progress bars, set the thread count, and load the shipped generator and segmenter."""
    os.environ.setdefault("SEETHROUGH_PROGRESS", "0")
    torch.set_num_threads(args.threads)
    generator = load_pretrained("generator", weights_dir=args.weights_dir)
    segmenter = load_pretrained("segmenter", weights_dir=args.weights_dir)
    return generator, segmenter
