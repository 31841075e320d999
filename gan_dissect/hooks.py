"""Read or edit any named layer of a ``torch.nn.Module``, only inside a ``with`` block.

``trace(model, "layer3")`` records what the layer outputs; ``trace(model, "layer3", edit=fn)``
replaces its output by ``fn(output)``. The forward hook is removed when the block exits, also on
an exception, so nothing changes a model for longer than the block. Layers are addressed by
their ``named_modules()`` names. With ``stop=True`` the forward pass ends as soon as every traced
layer has run (the block swallows the :class:`StopForward` that ends it), which saves the rest of
the network when only a layer's output is wanted.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from training.errors import InputError

Edit = Callable[[torch.Tensor], torch.Tensor]


class StopForward(Exception):
    """Raised by a hook to end a forward pass early; the ``trace`` block that asked for it
    catches it."""


class Trace:
    """What one traced layer produced in the last forward pass (``output``)."""

    def __init__(self, layer: str) -> None:
        self.layer = layer
        self.output: torch.Tensor | None = None


def find_layer(model: torch.nn.Module, layer: str) -> torch.nn.Module:
    """The submodule called ``layer``; an unknown name raises an error listing close names."""
    modules = dict(model.named_modules())
    if layer in modules and layer != "":
        return modules[layer]
    names = [name for name in modules if name]
    close = difflib.get_close_matches(layer, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    shown = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
    raise InputError(f"{type(model).__name__} has no layer {layer!r}{hint} (layers: {shown})")


@contextlib.contextmanager
def trace(
    model: torch.nn.Module,
    layer: str,
    *,
    edit: Edit | None = None,
    retain_output: bool = True,
    detach: bool = True,
    clone: bool = False,
    stop: bool = False,
) -> Iterator[Trace]:
    """Within the block, record (and optionally edit) ``layer``'s output on every forward pass.

    Parameters
    ----------
    edit:
        ``fn(output) -> new_output``; the model continues from ``new_output``.
    retain_output:
        Keep the (edited) output in ``Trace.output``.
    detach:
        Store a detached output; ``False`` keeps the graph (for optimising through the layer).
    clone:
        Store a copy, safe from later in-place operations (an ``inplace=True`` ReLU after the
        traced layer would otherwise change the stored output).
    stop:
        End the forward pass right after ``layer`` ran; the model call then returns nothing and
        the rest of the ``with`` block is skipped, so make the model call the block's last
        statement.
    """
    with trace_many(
        model,
        [layer],
        edits={layer: edit} if edit else None,
        retain_output=retain_output,
        detach=detach,
        clone=clone,
        stop=stop,
    ) as traces:
        yield traces[layer]


@contextlib.contextmanager
def trace_many(
    model: torch.nn.Module,
    layers: Sequence[str],
    *,
    edits: dict[str, Edit] | None = None,
    retain_output: bool = True,
    detach: bool = True,
    clone: bool = False,
    stop: bool = False,
) -> Iterator[dict[str, Trace]]:
    """:func:`trace` for several layers at once; yields ``{layer: Trace}``.

    With ``stop=True`` the forward pass ends once every layer in ``layers`` has run.
    """
    edits = dict(edits or {})
    unknown = sorted(set(edits) - set(layers))
    if unknown:
        raise InputError(f"edits name layers that are not traced: {', '.join(unknown)}")
    modules = {layer: find_layer(model, layer) for layer in layers}
    traces = {layer: Trace(layer) for layer in layers}
    pending = set(layers) if stop else None
    handles = []
    try:
        for layer, module in modules.items():
            handles.append(
                module.register_forward_hook(
                    _make_hook(
                        traces[layer], edits.get(layer), retain_output, detach, clone, pending
                    )
                )
            )
        yield traces
    except StopForward:
        if not stop:
            raise
    finally:
        for handle in handles:
            handle.remove()


def _make_hook(
    record: Trace,
    edit: Edit | None,
    retain_output: bool,
    detach: bool,
    clone: bool,
    pending: set[str] | None,
) -> Callable[[torch.nn.Module, Any, Any], Any]:
    def hook(module: torch.nn.Module, inputs: Any, output: Any) -> Any:
        if not isinstance(output, torch.Tensor):
            raise InputError(
                f"layer {record.layer!r} returns {type(output).__name__}, not a tensor; "
                "trace one of its submodules instead"
            )
        if edit is not None:
            edited = edit(output)
            if not isinstance(edited, torch.Tensor) or edited.shape != output.shape:
                raise InputError(
                    f"edit of layer {record.layer!r} must return a tensor of shape "
                    f"{tuple(output.shape)}, got {getattr(edited, 'shape', type(edited))}"
                )
            output = edited
        if retain_output:
            kept = output.detach() if detach else output
            record.output = kept.clone() if clone else kept
        if pending is not None:
            pending.discard(record.layer)
            if not pending:
                raise StopForward
        return output if edit is not None else None

    return hook
