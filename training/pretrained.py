"""The models seethrough ships, and any model saved the same way.

A shipped model is two files in a weights folder (``training/weights/`` by default):
``<name>.pt``, a plain state dict loaded with ``weights_only=True``, and ``<name>.json``, which
says how to build the module (``"class": "package.module:ClassName"`` and ``"kwargs"``) and how
it was made (the exact command, seed, versions, training time). Only classes inside seethrough's
own packages may be built from such a file, so a weights folder cannot make seethrough import
arbitrary code.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import torch

from training.checkpoints import load_weights, save_checkpoint
from training.errors import CheckpointError
from training.runs import atomic_write_json

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
_BUILDABLE_PACKAGES = ("training.", "gan_dissect.", "surrogate.")


def weights_path(name: str, weights_dir: str | Path | None = None) -> Path:
    """Path of the ``.pt`` file of shipped model ``name``."""
    return Path(weights_dir or WEIGHTS_DIR) / f"{name}.pt"


def read_model_card(name: str, weights_dir: str | Path | None = None) -> dict[str, Any]:
    """The ``<name>.json`` record beside a shipped model's weights."""
    card_path = weights_path(name, weights_dir).with_suffix(".json")
    if not card_path.is_file():
        available = sorted(p.stem for p in card_path.parent.glob("*.json"))
        raise CheckpointError(
            f"no shipped model {name!r} in {card_path.parent} "
            f"(available: {', '.join(available) or 'none'})"
        )
    try:
        card: dict[str, Any] = json.loads(card_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"model card {card_path} is not valid JSON: {err}") from err
    for key in ("class", "kwargs"):
        if key not in card:
            raise CheckpointError(f"model card {card_path} has no {key!r} entry")
    return card


def build_module(class_path: str, kwargs: dict[str, Any]) -> torch.nn.Module:
    """Instantiate ``package.module:ClassName(**kwargs)`` from one of seethrough's packages."""
    module_name, _, class_name = class_path.partition(":")
    if not class_name or not module_name.startswith(_BUILDABLE_PACKAGES):
        raise CheckpointError(
            f"refusing to build {class_path!r}: a model card may only name a class inside "
            "seethrough's packages, as 'training.module:ClassName'"
        )
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise CheckpointError(f"model card names {class_path!r}, which does not exist") from err
    module = cls(**kwargs)
    if not isinstance(module, torch.nn.Module):
        raise CheckpointError(f"{class_path} is not a torch.nn.Module")
    return module


def load_pretrained(
    name: str,
    *,
    weights_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> torch.nn.Module:
    """Build shipped model ``name`` from its card, load its weights, and return it in eval mode."""
    card = read_model_card(name, weights_dir)
    module = build_module(card["class"], card["kwargs"])
    load_weights(module, weights_path(name, weights_dir), map_location="cpu")
    return module.to(device).eval()


def save_pretrained(
    module: torch.nn.Module,
    name: str,
    *,
    kwargs: dict[str, Any],
    weights_dir: str | Path | None = None,
    **card: Any,
) -> Path:
    """Write ``module``'s weights and card so that :func:`load_pretrained` rebuilds it.

    ``kwargs`` are the constructor arguments; ``card`` holds anything else worth recording
    (``command``, ``seed``, ``versions``, ``train_time_s``, evaluation figures).
    """
    cls = type(module)
    class_path = f"{cls.__module__}:{cls.__qualname__}"
    build_module(class_path, kwargs)  # fail now, not at load time, if the card cannot rebuild it
    path = save_checkpoint(
        {k: v.detach().cpu() for k, v in module.state_dict().items()},
        weights_path(name, weights_dir),
    )
    atomic_write_json(path.with_suffix(".json"), {"class": class_path, "kwargs": kwargs, **card})
    return path
