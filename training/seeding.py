"""One call that makes a run repeatable."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, *, deterministic: bool = True) -> np.random.Generator:
    """Seed Python, NumPy and torch (all devices) and return a NumPy generator for ``seed``.

    With ``deterministic`` torch is asked for deterministic kernels where it has them (warning,
    not failing, where it does not), so that two runs with the same seed give identical numbers.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - libraries that draw from the global state
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    return np.random.default_rng(seed)


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator seeded with ``seed``, independent of the global torch state."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator
