"""Rank a layer's units by what ablating them does, not by what they coincide with.

Dissection ranks units by IoU with a concept; a unit can coincide with lamps without drawing
them, and a lamp can be drawn by several units together. :func:`learn_unit_mask` instead
optimises a soft mask ``a`` in [0, 1] over the units so that ablating them,
``r' = (1 - a) r + a * off``, removes as much of the concept as possible, with an L2 penalty on
``a`` so that units that do not help are left alone; units are then ranked by ``a`` (after the
unit-mask optimisation of the reference code, CSAILVision/gandissect: Adam, ``a`` clamped to
[0, 1] after each step, optionally started from the IoU ranking). The concept is measured
softly, through the segmenter's probability of the concept at the pixels where it was, so that
the loss has a gradient. A segmenter that returns only labels gives no gradient:
:func:`rank_units_by_ablation` then ranks units by what switching each one off alone removes.

The learned ranking's defaults (:data:`LEARN_STEPS`, :data:`LEARN_BATCH`, :data:`LEARN_LR`,
:data:`LEARN_L2`, :data:`LEARN_UNITS`) are defined here once; the commands and
:func:`learn_unit_mask` use them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gan_dissect._optimise import step_on
from gan_dissect.hooks import trace
from gan_dissect.intervention import Values, ablate, intervene
from gan_dissect.streams import LEARN_STREAM
from gan_dissect.subject import Subject
from training.errors import InputError
from training.progress import progress

LEARN_STEPS = 200
"""Adam steps of the learned unit mask."""
LEARN_BATCH = 8
"""Fresh latents per step of the learned unit mask."""
LEARN_LR = 0.05
"""Adam learning rate of the learned unit mask."""
LEARN_L2 = 0.005
"""L2 penalty on the learned unit mask."""
LEARN_UNITS = "8%"
"""Units an edit takes from a ranking by default: a share of the layer (at least one unit)."""
ABLATION_RANKING_SAMPLES = 32
"""Samples on which :func:`rank_units_by_ablation` switches each unit off."""

OTHERS_REDUCTIONS = ("mean", "max")
"""How ``keep_others`` sums up the other concepts' changes: their mean, or the largest."""


@dataclass(frozen=True)
class LearnSettings:
    """How :func:`learn_unit_mask` learns its mask; the defaults are the commands' and configs'.

    ``steps`` Adam steps at learning rate ``lr``, each on ``batch_size`` fresh latents;
    ``l2`` the penalty on the mask; ``keep_others`` the weight of the other concepts' change
    (their mean, or with ``others_reduce="max"`` the largest); ``budget`` the most the mask may
    sum to (None: only the penalty); the loss is recorded every ``record_every`` steps.
    """

    steps: int = LEARN_STEPS
    batch_size: int = LEARN_BATCH
    lr: float = LEARN_LR
    l2: float = LEARN_L2
    keep_others: float = 0.0
    others_reduce: str = "mean"
    budget: float | None = None
    record_every: int = 10


def concept_probability(
    segmenter: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, concept: int
) -> torch.Tensor:
    """The segmenter's probability (N, H, W) of ``concept`` at every pixel (softmax of scores).

    Needs a segmenter that returns class scores (N, C, H, W); one that returns only labels has
    no gradient to follow.
    """
    return _probabilities(segmenter, images)[:, concept]


def _probabilities(
    segmenter: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor
) -> torch.Tensor:
    scores = segmenter(images)
    if not isinstance(scores, torch.Tensor) or scores.dim() != 4:
        got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise InputError(
            f"optimising through the segmenter needs class scores (N, C, H, W); it returned {got} "
            "(labels have no gradient): rank units by IoU instead (--ranking iou, or "
            "DissectionResult.units_for) or by single-unit ablation (rank_units_by_ablation)"
        )
    return torch.softmax(scores.float(), dim=1)


@dataclass
class LearnedMask:
    """A learned per-unit ablation strength and its history.

    ``strength[u]`` in [0, 1]: how much ablating unit u helped remove the concept, net of the
    penalty. ``history`` holds, every ``record_every`` steps, the share of the concept's
    probability that survives where it was (1: nothing removed), the mean relative change of
    the other concepts' soft shares and the penalty.
    """

    layer: str
    concept: str
    strength: np.ndarray
    history: list[dict[str, float]]
    params: dict[str, Any] = field(default_factory=dict)

    def order(self) -> list[int]:
        """Units by learned strength, strongest first (ties to the lower unit number)."""
        return [int(u) for u in np.lexsort((np.arange(len(self.strength)), -self.strength))]

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "concept": self.concept,
            "strength": self.strength.tolist(),
            "order": self.order(),
            "history": self.history,
            "params": self.params,
        }


def learn_unit_mask(
    subject: Subject,
    layer: str,
    concept: str,
    *,
    off: Values = 0.0,
    init: Sequence[float] | np.ndarray | None = None,
    settings: LearnSettings | None = None,
) -> LearnedMask:
    """Learn which units of ``layer`` to ablate to remove ``concept``; see the module docstring.

    Each step draws ``settings.batch_size`` fresh latents (stream :data:`LEARN_STREAM` of
    ``subject.seed``; ``settings`` default to :class:`LearnSettings`) and minimises

        remaining + keep_others * others + l2 * sum(a^2)

    where ``remaining`` is the share of the concept's probability that survives where the
    concept was: ``sum(p0 * p) / sum(p0 * p0)`` over all pixels, ``p0`` and ``p`` the
    segmenter's probability of the concept unedited and with the units ablated by ``a`` (so
    the faint probability the segmenter gives every other pixel does not dilute it), and
    ``others`` the relative change of every other concept's soft share, their mean or, with
    ``others_reduce="max"``, the largest, so that no single concept can absorb the change.
    ``keep_others`` is 0 by default, as in the reference code; a positive weight prefers units
    that remove the concept and leave the rest of the scene as it was. ``init`` starts ``a``
    elsewhere than 0 (e.g. IoU scores divided by their maximum, as the reference code does).

    ``budget`` (a number of units) keeps ``sum(a) <= budget`` by projecting ``a`` onto
    ``{0 <= a <= 1, sum(a) <= budget}`` after every step, so the units compete for a fixed
    number of places: the mask then tends to the set of that many units that removes the most,
    which is what ablating the top ``budget`` units afterwards uses; without a budget the
    penalty alone spreads the removal over every unit that helps a little.
    """
    settings = settings or LearnSettings()
    steps, batch_size, lr, l2 = settings.steps, settings.batch_size, settings.lr, settings.l2
    keep_others, others_reduce, budget = (
        settings.keep_others,
        settings.others_reduce,
        settings.budget,
    )
    if steps < 1 or batch_size < 1 or lr <= 0 or l2 < 0:
        raise InputError("steps and batch_size must be positive, lr > 0 and l2 >= 0")
    if others_reduce not in OTHERS_REDUCTIONS:
        raise InputError(f"others_reduce must be 'mean' or 'max', got {others_reduce!r}")
    if budget is not None and not budget > 0:
        raise InputError(f"budget must be a positive number of units, got {budget}")
    generator, segmenter, device = subject.generator, subject.segmenter, subject.device
    c = subject.concept_index(concept)
    keep = [i for i in range(len(subject.concepts)) if i != c]
    with torch.no_grad(), trace(generator, layer, stop=True) as record:
        generator(subject.latents([0], LEARN_STREAM))
    assert record.output is not None
    num_units = int(record.output.shape[1])
    start = np.zeros(num_units) if init is None else np.asarray(init, np.float64)
    if start.shape != (num_units,):
        raise InputError(f"init must hold one value per unit ({num_units}), got {start.shape}")
    strength = torch.tensor(np.clip(start, 0, 1), dtype=torch.float32, device=device)
    strength.requires_grad_(True)
    optimizer = torch.optim.Adam([strength], lr=lr)
    history: list[dict[str, float]] = []
    for step in progress(range(steps), desc="learn unit mask", total=steps):
        z = subject.latents(range(step * batch_size, (step + 1) * batch_size), LEARN_STREAM)
        with torch.no_grad():
            reference = _probabilities(segmenter, generator(z))
        with intervene(generator, layer, strength, off):
            edited = _probabilities(segmenter, generator(z))
        where = reference[:, c]  # the concept as it was, softly: what ablation should remove
        remaining = (where * edited[:, c]).sum() / (where * reference[:, c]).sum().clamp(min=1e-8)
        relative = edited.mean(dim=(0, 2, 3)) / reference.mean(dim=(0, 2, 3)).clamp(min=1e-8)
        changes = (relative[keep] - 1).abs() if keep else relative.new_zeros(1)
        others = changes.max() if others_reduce == "max" else changes.mean()
        penalty = l2 * strength.pow(2).sum()
        loss = remaining + keep_others * others + penalty
        step_on(optimizer, loss, strength)
        with torch.no_grad():
            strength.copy_(capped_simplex(strength, budget))
        if step % settings.record_every == 0 or step == steps - 1:
            history.append(
                {
                    "step": step,
                    "remaining": float(remaining.detach()),
                    "others_changed": float(others.detach()),
                    "penalty": float(penalty.detach()),
                }
            )
    return LearnedMask(
        layer=layer,
        concept=concept,
        strength=strength.detach().cpu().numpy().astype(np.float64),
        history=history,
        params={
            "steps": steps,
            "batch_size": batch_size,
            "lr": lr,
            "l2": l2,
            "keep_others": keep_others,
            "others_reduce": others_reduce,
            "budget": budget,
            "seed": subject.seed,
            "stream": LEARN_STREAM,
            "init": "zeros" if init is None else "given",
        },
    )


def gives_scores(segmenter: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor) -> bool:
    """Whether ``segmenter`` returns class scores (N, C, H, W) for ``images``, not labels."""
    with torch.no_grad():
        output = segmenter(images)
    return isinstance(output, torch.Tensor) and output.dim() == 4


def rank_units_by_ablation(
    subject: Subject,
    layer: str,
    concept: str,
    *,
    off: Values = 0.0,
    num_samples: int = ABLATION_RANKING_SAMPLES,
    batch_size: int = LEARN_BATCH,
) -> LearnedMask:
    """Rank ``layer``'s units by the share of ``concept``'s pixels that switching each one off
    alone (to ``off``) removes, on ``num_samples`` latents of the learned ranking's stream.

    Works with a segmenter that returns labels, which :func:`learn_unit_mask` cannot follow;
    costs one generator pass per unit and sample. ``strength[u]`` is that share, clipped to
    [0, 1]; ``history`` is empty.
    """
    if num_samples < 1 or batch_size < 1:
        raise InputError("num_samples and batch_size must be positive")
    generator, segmentation = subject.generator, subject.segmentation
    c = subject.concept_index(concept)
    with torch.no_grad(), trace(generator, layer, stop=True) as record:
        generator(subject.latents([0], LEARN_STREAM))
    assert record.output is not None
    num_units = int(record.output.shape[1])
    before = 0
    after = np.zeros(num_units, np.int64)
    batches = subject.batches(num_samples, LEARN_STREAM, size=batch_size)
    total = subject.count_batches(num_samples, size=batch_size)
    with torch.no_grad():
        for _, z in progress(batches, desc="rank units by ablation", total=total):
            before += int((segmentation(generator(z)) == c).sum())
            for unit in range(num_units):
                with ablate(generator, layer, [unit], off=off):
                    after[unit] += int((segmentation(generator(z)) == c).sum())
    removed = 1.0 - after / before if before else np.zeros(num_units)
    return LearnedMask(
        layer=layer,
        concept=concept,
        strength=np.clip(removed, 0.0, 1.0).astype(np.float64),
        history=[],
        params={
            "method": "single-unit ablation",
            "num_samples": num_samples,
            "batch_size": batch_size,
            "seed": subject.seed,
            "stream": LEARN_STREAM,
        },
    )


def capped_simplex(values: torch.Tensor, budget: float | None) -> torch.Tensor:
    """The closest point (Euclidean) to ``values`` with entries in [0, 1] summing to at most
    ``budget``: ``clip(values - t, 0, 1)`` for the smallest ``t >= 0`` that meets the budget
    (found by bisection); only the clipping when ``budget`` is None."""
    clipped = values.clamp(0.0, 1.0)
    if budget is None or float(clipped.sum()) <= budget:
        return clipped
    low, high = 0.0, float(values.max())
    for _ in range(50):
        middle = (low + high) / 2
        if float((values - middle).clamp(0.0, 1.0).sum()) > budget:
            low = middle
        else:
            high = middle
    return (values - high).clamp(0.0, 1.0)
