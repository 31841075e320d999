"""Loading checkpoints safely: tensors and plain containers only, with errors that say why.

``torch.load`` unpickles; a checkpoint from an untrusted source can run code while it loads.
Everything here loads with ``weights_only=True``, which accepts tensors, numbers, strings and
plain containers and refuses any other pickled object. Checkpoints are read from local files
only: a URL (``http://``, ``s3://`` ...) is refused before anything is fetched, since the
libraries that fetch them load remote files with ``weights_only=False``.
"""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from training.errors import CheckpointError
from training.runs import atomic_write_bytes

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL = 0x80  # the first byte of a pickle of protocol 2 or later (torch's legacy format)


def check_local_checkpoint_path(path: str | Path, *, flag: str = "checkpoint") -> Path:
    """``path`` as a local path, or a :class:`CheckpointError` when it is a URL.

    ``flag`` names the option in the message (``--ckpt_path``, ``--checkpoint`` ...).
    """
    if _URL.match(str(path)):
        raise CheckpointError(
            f"{flag} {path} is a URL; seethrough loads checkpoints from local files only "
            "(a remote checkpoint would be unpickled unchecked): download it and pass the file"
        )
    return Path(path)


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint file with ``weights_only=True``.

    Raises :class:`CheckpointError` naming the file when it is a URL, missing, not a torch
    checkpoint at all, truncated or corrupt, or when it holds pickled objects other than
    tensors and plain containers.
    """
    path = check_local_checkpoint_path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    with path.open("rb") as handle:
        head = handle.read(4)
    if not head.startswith(_ZIP_MAGIC) and not (
        len(head) >= 2 and head[0] == _PICKLE_PROTOCOL and 2 <= head[1] <= 5
    ):
        raise CheckpointError(
            f"{path} is not a checkpoint (neither a torch zip archive nor a pickle)"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" not in str(err).lower():
            raise _corrupt(path, err) from err
        raise CheckpointError(
            f"checkpoint {path} holds pickled Python objects that are not tensors or plain "
            f"containers; refusing to load it (weights_only=True){_unsafe_global(err)}"
        ) from err
    except Exception as err:  # torch reports a damaged file in many ways
        raise _corrupt(path, err) from err


def _unsafe_global(err: BaseException) -> str:
    found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
    return f": it names {found.group(1)}" if found else ""


def _corrupt(path: Path, err: BaseException) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is corrupt or not a torch checkpoint: {_first_line(err)}"
    )


def save_checkpoint(obj: Any, path: str | Path) -> Path:
    """Save ``obj`` with ``torch.save`` atomically (a reader never sees a half-written file)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def state_dict_from(checkpoint: Any, *, prefix: str = "") -> dict[str, torch.Tensor]:
    """The state dict inside ``checkpoint`` (a Lightning checkpoint or a bare state dict).

    With ``prefix`` (e.g. ``"generator."``) only keys under that prefix are kept, prefix removed.
    """
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise CheckpointError("checkpoint holds no state dict of tensors")
    if prefix:
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if not state:
            raise CheckpointError(f"checkpoint has no weights under the prefix {prefix!r}")
    return dict(state)


def load_weights(
    module: torch.nn.Module,
    source: str | Path | Mapping[str, Any],
    *,
    prefix: str = "",
    map_location: str | torch.device = "cpu",
) -> torch.nn.Module:
    """Load weights from a checkpoint path (or an already loaded checkpoint) into ``module``.

    The match is strict. When the checkpoint does not fit (it was trained with another
    configuration), one :class:`CheckpointError` lists the missing and unexpected keys and the
    first shape mismatches, instead of torch's multi-page message.
    """
    name = str(source) if isinstance(source, (str, Path)) else "checkpoint"
    checkpoint = (
        load_checkpoint(source, map_location=map_location)
        if isinstance(source, (str, Path))
        else source
    )
    state = state_dict_from(checkpoint, prefix=prefix)
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{key}: checkpoint {tuple(state[key].shape)} vs model {tuple(own[key].shape)}"
        for key in own
        if key in state and state[key].shape != own[key].shape
    ]
    if missing or unexpected or mismatched:
        problems = []
        if mismatched:
            problems.append(f"shape mismatch for {_few(mismatched)}")
        if missing:
            problems.append(f"missing keys {_few(missing)}")
        if unexpected:
            problems.append(f"unexpected keys {_few(unexpected)}")
        raise CheckpointError(
            f"{name} does not fit {type(module).__name__} (was it trained with another "
            f"configuration?): " + "; ".join(problems)
        )
    module.load_state_dict(state, strict=True)
    return module


def _few(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
