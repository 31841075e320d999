"""The models seethrough ships, and any model saved the same way.

A shipped model is two files in a weights folder (``training/weights/`` by default):
``<name>.pt``, a plain state dict loaded with ``weights_only=True``, and ``<name>.json``, which
says how to build the module (``"class": "package.module:ClassName"`` and ``"kwargs"``) and how
it was made (the exact command, seed, versions, training time).

Loading is an allow-list. A card (and the ``_class_path`` in a Lightning checkpoint's
hyper-parameters, see ``training export`` and ``--ckpt_path``) may name only a
``torch.nn.Module`` subclass registered here: the project's model classes
(:data:`PROJECT_MODEL_CLASSES`), plus any class a program registers with
:func:`register_model_class`. Nothing else named in a file is imported or called, so a weights
folder or a checkpoint cannot make seethrough run a function of its choosing. A shipped model's
name is a plain file name inside the weights folder: no folder, no ``..``.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any, TypeVar

import torch

from training.checkpoints import load_weights, save_checkpoint
from training.errors import CheckpointError
from training.runs import atomic_write_json

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
PROJECT_MODEL_CLASSES = frozenset(
    {
        "training.models:Generator",
        "training.models:Discriminator",
        "training.models:Segmenter",
        "training.models:LampClassifier",
        "training.encoder:Encoder",
        "training.modules:GANModule",
        "training.modules:SegmenterModule",
        "training.modules:LampClassifierModule",
        "training.encoder:EncoderModule",
    }
)
"""The classes a model card or a checkpoint's hyper-parameters may name, as ``module:Class``."""

_registered: dict[str, type[torch.nn.Module]] = {}
_MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
ModuleClass = TypeVar("ModuleClass", bound=type[torch.nn.Module])


def register_model_class(cls: ModuleClass) -> ModuleClass:
    """Allow cards and checkpoints to name ``cls`` (a ``torch.nn.Module`` subclass); returns it.

    For a program's own models (usable as a class decorator); the command line never registers
    anything a file names.
    """
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise CheckpointError(f"{cls!r} is not a torch.nn.Module subclass; it cannot be registered")
    _registered[class_path_of(cls)] = cls
    return cls


def class_path_of(cls: type) -> str:
    """``cls`` as ``package.module:ClassName``, the form cards record."""
    return f"{cls.__module__}:{cls.__qualname__}"


def model_class(class_path: str, *, allowed: tuple[str, ...] = ()) -> type[torch.nn.Module]:
    """The registered ``torch.nn.Module`` subclass that ``class_path`` names.

    ``class_path`` is ``package.module:ClassName`` or Lightning's ``package.module.ClassName``;
    ``allowed`` adds class paths the user named on the command line. Anything else, and above
    all any function, is one :class:`CheckpointError` before anything is imported.
    """
    text = str(class_path)
    module_name, colon, class_name = text.partition(":")
    if not colon:
        module_name, _, class_name = text.rpartition(".")
    key = f"{module_name}:{class_name}"
    if key in _registered:
        return _registered[key]
    extra = {f"{m}:{c}" for m, _, c in (p.replace(":", ".").rpartition(".") for p in allowed)}
    if not module_name or (key not in PROJECT_MODEL_CLASSES and key not in extra):
        raise CheckpointError(
            f"refusing to build {text!r}: a model card or checkpoint may only name one of "
            f"seethrough's model classes ({', '.join(sorted(PROJECT_MODEL_CLASSES))}) or a "
            "class registered with training.pretrained.register_model_class"
        )
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise CheckpointError(f"{text!r} names a class that does not exist") from err
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise CheckpointError(f"refusing to build {text!r}: it is not a torch.nn.Module class")
    return cls


def weights_path(name: str, weights_dir: str | Path | None = None) -> Path:
    """Path of the ``.pt`` file of shipped model ``name`` (a plain name, no folder)."""
    if not _MODEL_NAME.match(str(name)) or ".." in str(name):
        raise CheckpointError(
            f"shipped model name {name!r} is not a plain name (letters, digits, '_', '-', '.'; "
            "no folder): pretrained models are read from the weights folder only"
        )
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


def build_module(
    class_path: str, kwargs: dict[str, Any], *, allowed: tuple[str, ...] = ()
) -> torch.nn.Module:
    """Instantiate the registered model class ``class_path`` (see :func:`model_class`) with
    ``kwargs``, which must be a mapping of keyword arguments."""
    cls = model_class(class_path, allowed=allowed)
    if not isinstance(kwargs, dict):
        raise CheckpointError(f"the arguments of {class_path} are not a mapping: {kwargs!r}")
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise CheckpointError(f"cannot build {class_path} from {kwargs!r}: {err}") from err


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
    class_path = class_path_of(type(module))
    build_module(class_path, kwargs)  # fail now, not at load time, if the card cannot rebuild it
    path = save_checkpoint(
        {k: v.detach().cpu() for k, v in module.state_dict().items()},
        weights_path(name, weights_dir),
    )
    atomic_write_json(path.with_suffix(".json"), {"class": class_path, "kwargs": kwargs, **card})
    return path
