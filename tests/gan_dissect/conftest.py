"""Fixtures of the gan_dissect tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread for a module of many small optimisation steps: on a busy 2-core
    machine a second thread only waits for the other (7x slower measured), and tiny tensors
    gain nothing from it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
