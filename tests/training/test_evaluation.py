from __future__ import annotations

import numpy as np
import pytest
import torch

from training.evaluation import (
    compare_statistics,
    confusion_matrix,
    evaluate_classifier,
    evaluate_segmenter,
    frechet_distance,
    iou_from_confusion,
    lamp_occlusion_effect,
)
from training.scenes import CONCEPTS, render_scenes

LAMP = CONCEPTS.index("lamp")


def test_iou_of_a_known_confusion():
    truth = torch.tensor([0, 0, 1, 1, 2, 2])
    guess = torch.tensor([0, 1, 1, 1, 2, 0])
    confusion = confusion_matrix(guess, truth, 3)
    assert confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    np.testing.assert_allclose(iou_from_confusion(confusion.numpy()), [1 / 3, 2 / 3, 1 / 2])


def test_frechet_distance_is_zero_for_one_gaussian_and_sees_a_mean_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shifted = a + np.array([3.0, 0.0, 4.0])
    assert frechet_distance(a, shifted) == pytest.approx(25.0, rel=1e-6)


class _Oracle(torch.nn.Module):
    """Scores that put each pixel's true label first: a perfect segmenter for known scenes."""

    def __init__(self, scenes, wrong_lamps: bool = False) -> None:
        super().__init__()
        self.lookup = {s.tobytes(): i for i, s in enumerate(scenes.images)}
        self.labels = torch.from_numpy(scenes.labels)
        self.wrong_lamps = wrong_lamps

    def forward(self, images):
        index = [self.lookup[image.numpy().tobytes()] for image in images]
        labels = self.labels[index].clone()
        if self.wrong_lamps:
            labels[labels == LAMP] = CONCEPTS.index("road")
        return torch.nn.functional.one_hot(labels, len(CONCEPTS)).permute(0, 3, 1, 2).float()


def test_segmenter_evaluation_against_exact_masks():
    scenes = render_scenes(24, seed=1)
    perfect = evaluate_segmenter(_Oracle(scenes), scenes)
    assert (perfect["miou"], perfect["pixel_accuracy"]) == (1.0, 1.0)
    blind = evaluate_segmenter(_Oracle(scenes, wrong_lamps=True), scenes)
    assert blind["lamp_iou"] == 0.0
    assert blind["iou"]["sky"] == 1.0
    assert blind["miou"] < 1 - 1 / len(CONCEPTS) + 1e-9


def test_classifier_accuracy_counts_lit_lamps():
    scenes = render_scenes(40, seed=2)

    class AlwaysLit(torch.nn.Module):
        def forward(self, images):
            return torch.stack([torch.zeros(len(images)), torch.ones(len(images))], 1)

    result = evaluate_classifier(AlwaysLit(), scenes)
    assert result["accuracy"] == pytest.approx(scenes.any_lamp_lit.mean())


def test_generated_statistics_meet_targets_only_when_they_match():
    labels = render_scenes(200, seed=3).labels
    same = compare_statistics(labels, labels.copy())
    assert same["meets_targets"]
    assert same["max_relative_error"] == 0.0
    assert same["lamp_presence_ratio"] == 1.0
    no_lamps = labels.copy()
    no_lamps[no_lamps == LAMP] = CONCEPTS.index("road")
    result = compare_statistics(labels, no_lamps)
    assert not result["meets_targets"]
    assert result["lamp_presence_ratio"] == 0.0
    assert result["worst_concept"] == "lamp"
    assert result["concepts"]["lamp"]["relative_error"] == 1.0
    assert result["fsd"] > same["fsd"] + 1.0


class _BrightSpot(torch.nn.Module):
    """Says "lamp lit" when some pixel is as white as a lit lamp head (windows are yellower)."""

    def forward(self, images):
        white = (images[:, 0] > 0.9) & (images[:, 2] > 0.45)
        score = white.flatten(1).any(1).float() * 20 - 10
        return torch.stack([-score, score], 1)


class _Sky(torch.nn.Module):
    """Answers "lit" from the top-left corner only: evidence far from every lamp."""

    def forward(self, images):
        score = 5 + images[:, :, :4, :4].mean((1, 2, 3))
        return torch.stack([-score, score], 1)


def test_occlusion_tells_a_lamp_looker_from_a_model_looking_elsewhere():
    scenes = render_scenes(120, seed=4)
    assert _BrightSpot()(torch.from_numpy(scenes.images)).argmax(1).float().mean() > 0.3
    lamp = lamp_occlusion_effect(_BrightSpot(), scenes)
    assert lamp["flipped_lamps_occluded"] > 0.9
    assert lamp["flipped_elsewhere_occluded"] < 0.2
    sky = lamp_occlusion_effect(_Sky(), scenes)
    assert sky["scenes"] > 40
    assert sky["flipped_lamps_occluded"] == 0.0
