"""CPU thread settings, chosen once where work starts and recorded with every run.

On a shared machine, OpenMP threads that spin while they wait for work take the cores other
threads need (a dissection took 75 s instead of 30 s on 2 busy cores; an MMD-critic fit 3.5 s
instead of 0.11 s). Importing :mod:`training`, which every seethrough command and analysis does
before torch starts, sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already chose a
policy; OpenMP reads it once, when torch is first imported.
"""

from __future__ import annotations

import os
import sys
from typing import Any

WAIT_POLICY = "PASSIVE"


def set_wait_policy() -> None:
    """Let OpenMP threads sleep while they wait (unless the environment says otherwise)."""
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)


def thread_settings() -> dict[str, Any]:
    """What decides how this process uses the CPU: cores, torch's threads, the wait policy.

    ``torch_threads`` is None when torch was never imported (the run used no torch work).
    """
    torch = sys.modules.get("torch")
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
