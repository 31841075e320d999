"""Activation maximisation inside the generator's image manifold (DGN-AM, Nguyen et al. 2016).

:func:`maximise_latent` searches the generator's latent space for the image that maximises an
objective, ``z* = argmax_z f(G(z))``, with several restarts at once (one batch), Adam, and ``z``
kept on the sphere of radius sqrt(d) where a standard-normal latent lives (or an L2 penalty
``- weight * ||z||^2`` instead). Because every candidate is an image the generator can draw, the
result shows what the generator *can* produce for the objective; :func:`maximise_pixels`
maximises the same objective over free pixels, which finds patterns no scene has.

Objectives (:class:`Objective`): a unit's mean activation (:func:`unit_objective`), a
concept's soft area under a segmenter (:func:`concept_objective`), a classifier's logit
(:func:`logit_objective`), or any function of images and traced layers.

Run inside an edit to ask what the generator can still draw with units switched off::

    with ablate(generator, "layer3", lamp_units):
        after = maximise_latent(generator, concept_objective(segmenter, "lamp"))

If even the best latent draws little of the concept, the capability is gone, not merely rare.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from gan_dissect._optimise import step_on
from gan_dissect.hooks import trace_many
from gan_dissect.ranking import concept_probability
from gan_dissect.streams import ACTMAX_STREAM
from gan_dissect.subject import Subject
from training.errors import InputError
from training.progress import progress

RECORD_EVERY = 10
"""Steps between two entries of an optimisation's history."""
Constraint = Literal["sphere", "l2"]
Score = Callable[[torch.Tensor, dict[str, torch.Tensor]], torch.Tensor]


@dataclass(frozen=True)
class Objective:
    """A score to maximise: ``score(images, activations) -> (N,)``.

    ``activations`` holds the outputs of ``layers`` (traced during the generator's forward
    pass); an objective with layers can only be maximised through a generator.
    """

    name: str
    score: Score
    layers: tuple[str, ...] = ()

    def __call__(self, images: torch.Tensor, activations: dict[str, torch.Tensor]) -> torch.Tensor:
        scores = self.score(images, activations)
        if not isinstance(scores, torch.Tensor) or scores.shape != (images.shape[0],):
            got = getattr(scores, "shape", type(scores).__name__)
            raise InputError(
                f"objective {self.name!r} must give one score per image ({images.shape[0]}), "
                f"got {got}"
            )
        return scores


def unit_objective(layer: str, unit: int) -> Objective:
    """The mean activation of ``unit`` of ``layer`` over its map."""

    def score(images: torch.Tensor, activations: dict[str, torch.Tensor]) -> torch.Tensor:
        output = activations[layer]
        if not 0 <= unit < output.shape[1]:
            raise InputError(f"{layer} has {output.shape[1]} units; no unit {unit}")
        return output[:, unit].flatten(1).mean(dim=1)

    return Objective(f"{layer} unit {unit}", score, (layer,))


def concept_objective(
    segmenter: Callable[[torch.Tensor], torch.Tensor],
    concept: str,
    concepts: Sequence[str] | None = None,
) -> Objective:
    """The soft area of ``concept``: the segmenter's mean probability of it over the pixels."""
    names = list(concepts if concepts is not None else getattr(segmenter, "concepts", []))
    if concept not in names:
        raise InputError(f"no concept {concept!r}; concepts: {', '.join(names) or 'unknown'}")
    index = names.index(concept)

    def score(images: torch.Tensor, activations: dict[str, torch.Tensor]) -> torch.Tensor:
        return concept_probability(segmenter, images, index).flatten(1).mean(dim=1)

    return Objective(f"{concept} area", score)


def logit_objective(
    classifier: Callable[[torch.Tensor], torch.Tensor], index: int, name: str | None = None
) -> Objective:
    """A classifier's logit of class ``index``."""

    def score(images: torch.Tensor, activations: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = classifier(images)
        if logits.dim() != 2 or not 0 <= index < logits.shape[1]:
            raise InputError(f"classifier gave logits {tuple(logits.shape)}; no class {index}")
        return logits[:, index]

    return Objective(name or f"logit {index}", score)


@dataclass
class ActmaxResult:
    """The outcome of one maximisation, one row per restart.

    ``inputs``: the best latents (or pixel parameters) found per restart; ``images`` what they
    give; ``scores`` the objective there (the best reached during the run; with an L2 penalty,
    the objective at the best penalised value); ``history`` the mean and best score every
    :data:`RECORD_EVERY` steps.
    """

    objective: str
    space: str
    inputs: torch.Tensor
    images: torch.Tensor
    scores: np.ndarray
    history: list[dict[str, float]]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> int:
        """The restart with the highest score."""
        return int(np.argmax(self.scores))

    def order(self) -> list[int]:
        """Restarts from the best score down."""
        return [int(i) for i in np.argsort(-self.scores, kind="stable")]

    def summary(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "space": self.space,
            "best_score": float(self.scores.max()),
            "mean_score": float(self.scores.mean()),
            "scores": self.scores.tolist(),
            "params": self.params,
        }


def _project(z: torch.Tensor, radius: float) -> torch.Tensor:
    """Each latent (row) scaled onto the sphere of ``radius``."""
    norms = z.flatten(1).norm(dim=1).clamp(min=1e-12)
    return z * (radius / norms).view(-1, *([1] * (z.dim() - 1)))


def maximise_latent(
    subject: Subject,
    objective: Objective,
    *,
    restarts: int = 8,
    steps: int = 200,
    lr: float = 0.05,
    constraint: Constraint = "sphere",
    l2_weight: float = 0.01,
    start: torch.Tensor | None = None,
) -> ActmaxResult:
    """Maximise ``objective`` over ``subject``'s latent; see the module docstring.

    Parameters
    ----------
    restarts:
        Latents optimised at once, each from its own standard-normal start (latent stream
        :data:`~gan_dissect.streams.ACTMAX_STREAM` of ``subject.seed``), unless ``start``
        gives them.
    constraint:
        ``"sphere"``: after every step each latent is scaled back to norm sqrt(d);
        ``"l2"``: maximise ``f(G(z)) - l2_weight * ||z||^2`` instead.
    steps, lr:
        Adam steps and learning rate.
    """
    if restarts < 1 or steps < 1 or lr <= 0:
        raise InputError("restarts and steps must be positive and lr > 0")
    if constraint not in ("sphere", "l2"):
        raise InputError(f"constraint must be 'sphere' or 'l2', got {constraint!r}")
    generator, shape, device = subject.generator, subject.z_shape, subject.device
    if start is None:
        z = subject.latents(range(restarts), ACTMAX_STREAM)
    else:
        z = start.detach().to(device, torch.float32).clone()
        if z.dim() < 2 or tuple(z.shape[1:]) != tuple(shape):
            raise InputError(
                f"start latents must be (N, {', '.join(map(str, shape))}), got {tuple(z.shape)}"
            )
        if not bool(torch.isfinite(z).all()):
            raise InputError("start latents hold NaN or infinite values")
        restarts = int(z.shape[0])
    radius = math.sqrt(float(np.prod(shape)))
    sphere = constraint == "sphere"
    # On the sphere, z is the direction of a free parameter scaled to sqrt(d): the constraint
    # is part of the function Adam sees, so its stationary points are the constrained optima
    # (projecting z back after plain Adam steps would settle where Adam's per-coordinate step,
    # not the gradient, points outwards: at sign(w) instead of w for a linear score w.z).
    parameter = (_project(z, radius) if sphere else z).requires_grad_(True)
    optimizer = torch.optim.Adam([parameter], lr=lr)
    best_values = torch.full((restarts,), -torch.inf, device=device)
    best_scores = torch.full((restarts,), -torch.inf, device=device)
    best_z = parameter.detach().clone()
    history: list[dict[str, float]] = []
    for step in progress(range(steps + 1), desc=f"actmax {objective.name}", total=steps + 1):
        z = _project(parameter, radius) if sphere else parameter
        with trace_many(generator, objective.layers, detach=False) as traces:
            images = generator(z)
        activations = {name: _output(traces[name]) for name in objective.layers}
        scores = objective(images, activations)
        values = scores if sphere else scores - l2_weight * z.pow(2).flatten(1).sum(1)
        with torch.no_grad():
            better = values.detach() > best_values
            best_values = torch.where(better, values.detach(), best_values)
            best_scores = torch.where(better, scores.detach(), best_scores)
            best_z[better] = z.detach()[better]
        if step % RECORD_EVERY == 0 or step == steps:
            history.append(_record(step, scores, best_scores))
        if step == steps:
            break  # the last pass only scores the last step's latents
        step_on(optimizer, -values.sum(), parameter)
        if sphere:
            with torch.no_grad():  # z depends only on the direction; keep the scale steady
                parameter.copy_(_project(parameter, radius))
    with torch.no_grad():
        images = generator(best_z)
    return ActmaxResult(
        objective=objective.name,
        space="latent",
        inputs=best_z.cpu(),
        images=images.detach().cpu(),
        scores=best_scores.cpu().numpy().astype(np.float64),
        history=history,
        params={
            "restarts": restarts,
            "steps": steps,
            "lr": lr,
            "constraint": constraint,
            "l2_weight": l2_weight if constraint == "l2" else None,
            "seed": subject.seed,
        },
    )


def maximise_pixels(
    objective: Objective,
    image_shape: Sequence[int],
    *,
    restarts: int = 8,
    steps: int = 200,
    lr: float = 0.05,
    seed: int = 0,
    start: torch.Tensor | None = None,
    device: str | torch.device = "cpu",
) -> ActmaxResult:
    """Maximise ``objective`` over free pixels (3, H, W) in [-1, 1]: unconstrained actmax.

    Pixels are ``tanh(p)``, so every step stays a valid image; ``p`` starts as small noise
    (a grey image with a little colour noise), or at ``atanh`` of the images in ``start``.
    """
    if objective.layers:
        raise InputError(f"objective {objective.name!r} reads generator layers; it has no pixels")
    if restarts < 1 or steps < 1 or lr <= 0:
        raise InputError("restarts and steps must be positive and lr > 0")
    if start is None:
        rng = torch.Generator().manual_seed(int(seed))
        params = 0.1 * torch.randn(restarts, *image_shape, generator=rng)
    else:
        if tuple(start.shape[1:]) != tuple(image_shape) or not bool(torch.isfinite(start).all()):
            raise InputError(
                f"start images must be finite and shaped (N, {', '.join(map(str, image_shape))})"
            )
        params = torch.atanh(start.detach().float().clamp(-0.999, 0.999))
        restarts = int(params.shape[0])
    params = params.to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([params], lr=lr)
    best_scores = torch.full((restarts,), -torch.inf, device=params.device)
    best = params.detach().clone()
    history: list[dict[str, float]] = []
    for step in progress(range(steps + 1), desc=f"pixel actmax {objective.name}", total=steps + 1):
        scores = objective(torch.tanh(params), {})
        with torch.no_grad():
            better = scores.detach() > best_scores
            best_scores = torch.where(better, scores.detach(), best_scores)
            best[better] = params.detach()[better]
        if step % RECORD_EVERY == 0 or step == steps:
            history.append(_record(step, scores, best_scores))
        if step == steps:
            break
        step_on(optimizer, -scores.sum(), params)
    images = torch.tanh(best)
    return ActmaxResult(
        objective=objective.name,
        space="pixels",
        inputs=images.cpu(),
        images=images.cpu(),
        scores=best_scores.cpu().numpy().astype(np.float64),
        history=history,
        params={"restarts": restarts, "steps": steps, "lr": lr, "seed": seed},
    )


def _output(record: Any) -> torch.Tensor:
    if record.output is None:
        raise InputError(f"layer {record.layer!r} did not run in the generator's forward pass")
    output: torch.Tensor = record.output
    return output


def _record(step: int, scores: torch.Tensor, best: torch.Tensor) -> dict[str, float]:
    return {"step": step, "mean": float(scores.detach().mean()), "best": float(best.max())}
