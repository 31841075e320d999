"""Activation maximisation: known optima on toy generators, and lamps that ablation takes away."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gan_dissect.actmax import (
    Objective,
    concept_objective,
    logit_objective,
    maximise_latent,
    maximise_pixels,
    unit_objective,
)
from gan_dissect.hooks import trace
from gan_dissect.intervention import ablate
from gan_dissect.subject import Subject
from gan_dissect.synthetic import DrawnLampScenes, PaletteSegmenter
from training.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")


class LinearScenes(nn.Module):
    """z (N, 6) -> ``layer1`` = W z + b as 4 units of 1 x 1 -> a 3 x 4 x 4 picture."""

    def __init__(self) -> None:
        super().__init__()
        self.z_dim = 6
        with torch.random.fork_rng():
            torch.manual_seed(3)
            self.layer1 = nn.Sequential(nn.Linear(6, 4), nn.Unflatten(1, (4, 1, 1)))
            self.output = nn.Sequential(
                nn.Flatten(), nn.Linear(4, 48), nn.Tanh(), nn.Unflatten(1, (3, 4, 4))
            )
        self.eval()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.output(self.layer1(z.reshape(len(z), -1)))


def _toy() -> LinearScenes:
    return LinearScenes()


def _alone(generator: nn.Module) -> Subject:
    """A subject of the generator alone: unit objectives need no segmenter."""
    return Subject.build(generator, None)


def test_unit_maximum_on_the_sphere_is_the_weight_direction():
    toy = _toy()
    weight, bias = toy.layer1[0].weight[2].detach(), float(toy.layer1[0].bias[2].detach())
    result = maximise_latent(
        _alone(toy), unit_objective("layer1", 2), restarts=4, steps=150, lr=0.1
    )
    best = result.inputs[result.best]
    radius = math.sqrt(6)
    optimum = radius * weight / weight.norm()
    assert float(best.norm()) == pytest.approx(radius, rel=1e-5), "z stays on the sphere"
    assert torch.nn.functional.cosine_similarity(best, optimum, dim=0) > 0.9999
    assert result.scores.max() == pytest.approx(radius * float(weight.norm()) + bias, rel=1e-4)
    assert all(score == pytest.approx(result.scores.max(), rel=1e-3) for score in result.scores)
    assert result.history[-1]["best"] >= result.history[0]["best"]


def test_l2_penalty_gives_the_penalised_optimum():
    toy = _toy()
    weight = toy.layer1[0].weight[1].detach()
    result = maximise_latent(
        _alone(toy),
        unit_objective("layer1", 1),
        constraint="l2",
        l2_weight=0.5,
        restarts=2,
        steps=300,
    )
    # argmax of w.z - 0.5 |z|^2 is z = w
    torch.testing.assert_close(result.inputs[result.best], weight, atol=2e-3, rtol=0)


def test_pixel_space_maximum_of_a_linear_score_saturates_every_pixel():
    direction = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(1))
    score = Objective("linear", lambda images, _: (images * direction).flatten(1).sum(1))
    result = maximise_pixels(score, (3, 4, 4), restarts=2, steps=200, lr=0.1)
    best = result.images[result.best]
    assert best.abs().max() <= 1.0
    assert torch.equal(torch.sign(best), torch.sign(direction))
    assert result.scores.max() > 0.95 * float(direction.abs().sum())


def test_constrained_actmax_strengthens_lamps_and_finds_none_under_ablation_of_their_units():
    drawn = DrawnLampScenes(size=32).eval()
    segmenter = PaletteSegmenter()
    lamp = concept_objective(segmenter, "lamp")
    z = torch.zeros(3, 16)
    z[:, 8] = 1.0  # lamps lit,
    z[:, 9:12] = -2.0  # but drawn faintly: the draw units' strengths are low
    subject = _alone(drawn)
    before = maximise_latent(subject, lamp, start=z, steps=25, lr=0.1)
    assert before.history[-1]["best"] > before.history[0]["best"]
    start = z * (16**0.5 / z.norm(dim=1, keepdim=True))  # the start, on the sphere
    assert torch.all(before.inputs[:, 9:12] > start[:, 9:12]), "it turned the draw units up"
    labels = segmenter(before.images).argmax(1)
    assert (labels == 3).flatten(1).sum(1).min() > 0
    with ablate(drawn, "layer2", [9, 10, 11]):
        after = maximise_latent(subject, lamp, start=before.inputs, steps=25, lr=0.1)
        assert (segmenter(after.images).argmax(1) == 3).sum() == 0
    assert after.scores.max() < 0.05 * before.scores.max()  # what is left: faint probability
    assert all(not m._forward_hooks for m in drawn.modules())


def test_objectives_check_what_they_are_given():
    toy = _toy()
    with pytest.raises(InputError, match="layer1 has 4 units; no unit 7"):
        maximise_latent(_alone(toy), unit_objective("layer1", 7), steps=1, restarts=1)
    with pytest.raises(InputError, match="no concept 'lamps'"):
        concept_objective(PaletteSegmenter(), "lamps")
    bad = Objective("sum", lambda images, _: images.sum())
    with pytest.raises(InputError, match="one score per image"):
        maximise_pixels(bad, (3, 4, 4), steps=1, restarts=2)
    with pytest.raises(InputError, match="reads generator layers"):
        maximise_pixels(unit_objective("layer1", 0), (3, 4, 4), steps=1)
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(48, 2))
    with pytest.raises(InputError, match="no class 5"):
        maximise_pixels(logit_objective(classifier, 5), (3, 4, 4), steps=1)
    with pytest.raises(InputError, match="constraint must be 'sphere' or 'l2'"):
        maximise_latent(_alone(toy), unit_objective("layer1", 0), constraint="box")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="start latents hold NaN"):
        maximise_latent(_alone(toy), unit_objective("layer1", 0), start=torch.full((1, 6), np.nan))


def test_actmax_leaves_no_hook_and_no_gradient_behind():
    toy = _toy()
    with trace(toy, "layer1"):
        pass
    maximise_latent(_alone(toy), unit_objective("layer1", 0), steps=3, restarts=2)
    assert all(not m._forward_hooks for m in toy.modules())
    assert all(p.grad is None for p in toy.parameters())
