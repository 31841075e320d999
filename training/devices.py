"""Choosing where tensors live, spelled the same way by every command."""

from __future__ import annotations

import torch

from training.errors import ConfigError


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) gives the first CUDA GPU when there is one, else the CPU.

    Any other value is a torch device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``)
    that must be available on this machine.
    """
    if isinstance(name, torch.device):
        return name
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but this machine has no CUDA GPU")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            f"device {name!r} asked for, but only {torch.cuda.device_count()} GPU(s) exist"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} asked for, but MPS is not available here")
    return device


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for a module with neither)."""
    for parameter in module.parameters():
        return parameter.device
    for buffer in module.buffers():
        return buffer.device
    return torch.device("cpu")
