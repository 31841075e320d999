"""The models shipped in training/weights/: they load, keep their contracts and still work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.evaluation import evaluate_segmenter, generate, lamp_occlusion_effect, segment
from training.pretrained import WEIGHTS_DIR, load_pretrained, read_model_card
from training.scenes import CONCEPTS, held_out_scenes

SHIPPED = ("generator", "discriminator", "segmenter", "lamp_classifier")


@pytest.fixture(scope="module")
def held_out():
    return held_out_scenes(64)


@pytest.mark.parametrize("name", SHIPPED)
def test_each_card_says_how_its_model_was_made(name):
    card = read_model_card(name)
    assert card["command"].startswith("python -m training fit --config configs/")
    assert card["seed"] == 0
    # a run stopped by hand (the shipped generator: after epoch 15 of its time budget) says so,
    # and how far it got: complete epochs and steps of the checkpoint that was exported
    assert card["finished"] is True or (card["epochs"] >= 1 and card["global_step"] > 0)
    assert card["train_time_s"] > 60
    assert card["versions"]["torch"].startswith("2.")
    assert card["export_command"].startswith("python -m training export runs/train/")


def test_shipped_weights_stay_small():
    total = sum(path.stat().st_size for path in WEIGHTS_DIR.glob("*.pt"))
    assert total < 30e6  # well under the 50 MB allowed for every shipped model together


def test_generator_keeps_its_contract():
    generator = load_pretrained("generator")
    assert not generator.training
    assert generator.z_dim == 128
    names = [name for name, _ in generator.named_children()]
    assert names == ["layer1", "layer2", "layer3", "layer4", "output"]
    images = generate(generator, 8, seed=3)
    torch.testing.assert_close(images, generate(generator, 8, seed=3))
    assert images.shape == (8, 3, 64, 64)
    assert images.abs().max() <= 1.0


def test_segmenter_still_labels_held_out_scenes(held_out):
    segmenter = load_pretrained("segmenter")
    assert segmenter.concepts == list(CONCEPTS)
    result = evaluate_segmenter(segmenter, held_out)
    assert result["miou"] >= 0.9
    assert result["lamp_iou"] >= 0.8


def test_generated_streets_have_lamps(held_out):
    labels = segment(load_pretrained("segmenter"), generate(load_pretrained("generator"), 64))
    lamp_share = (labels == CONCEPTS.index("lamp")).mean(axis=(1, 2))
    assert (lamp_share >= 0.005).mean() > 0.6
    real_shares = np.bincount(held_out.labels.ravel(), minlength=len(CONCEPTS))
    fake_shares = np.bincount(labels.ravel(), minlength=len(CONCEPTS))
    assert (fake_shares > 0).all(), "every concept appears in generated streets"
    assert (real_shares > 0).all()


def test_lamp_classifier_answers_from_the_lamps(held_out):
    classifier = load_pretrained("lamp_classifier")
    assert classifier.class_names == ("no lamp lit", "lamp lit")
    occlusion = lamp_occlusion_effect(classifier, held_out)
    assert occlusion["scenes"] >= 25
    assert occlusion["flipped_lamps_occluded"] > 0.9
    assert occlusion["flipped_elsewhere_occluded"] < 0.2
