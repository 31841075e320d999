"""Shared test settings: quiet progress bars, two torch threads (CI has 2 cores)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("SEETHROUGH_PROGRESS", "0")


@pytest.fixture(autouse=True, scope="session")
def _torch_threads() -> None:
    import torch

    torch.set_num_threads(2)
