"""The generator quality measure: segmenter features, Fréchet distance, KID, precision/recall."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from training.evaluation import (
    ImageQuality,
    image_features,
    kernel_distance,
    precision_recall,
    quality_table,
)
from training.pretrained import load_pretrained
from training.scenes import held_out_scenes


@pytest.fixture(scope="module")
def quality():
    torch.manual_seed(0)
    return ImageQuality(load_pretrained("segmenter"), n=200)


def test_features_are_pooled_channel_means_and_deviations():
    segmenter = load_pretrained("segmenter")
    images = torch.from_numpy(held_out_scenes(4).images)
    features = image_features(segmenter, images)
    captured = []
    bottleneck = dict(segmenter.named_modules())["bottleneck"]
    handle = bottleneck.register_forward_hook(lambda m, i, o: captured.append(o))
    with torch.no_grad():
        segmenter(images)
    handle.remove()
    maps = captured[0].flatten(2)
    assert features.shape == (4, 2 * maps.shape[1])
    np.testing.assert_allclose(features[:, : maps.shape[1]], maps.mean(2).numpy(), rtol=1e-5)
    np.testing.assert_allclose(features[:, maps.shape[1] :], maps.std(2).numpy(), rtol=1e-5)


def test_blurred_or_noised_scenes_rank_worse_than_real_and_the_floor_lowest(quality):
    # copies of the floor's own real scenes: only the degradation separates them
    other = torch.from_numpy(held_out_scenes(400).images[200:])
    # a 3 x 3 box filter applied twice: about a Gaussian blur of 1.2 pixels
    blurred = F.avg_pool2d(F.avg_pool2d(other, 3, 1, 1, count_include_pad=False), 3, 1, 1)
    noise = torch.randn(other.shape, generator=torch.Generator().manual_seed(0))
    noised = (other + 0.1 * noise).clamp(-1, 1)
    floor = quality.floor_
    blur, noisy = quality.measure(blurred), quality.measure(noised)
    print(quality_table([("floor", floor), ("blurred", blur), ("noised", noisy)]))
    for degraded in (blur, noisy):
        assert degraded["fd"] > 3 * floor["fd"]
        # KID: the degraded copies lie many standard errors above the floor
        assert degraded["kid"] - floor["kid"] > 3 * np.hypot(degraded["kid_se"], floor["kid_se"])
        assert degraded["precision"] < floor["precision"] - 0.1
        assert degraded["recall"] < floor["recall"] - 0.1
    assert abs(floor["kid"]) < 3 * floor["kid_se"]
    assert floor["precision"] > 0.6
    assert floor["recall"] > 0.6


def test_kid_is_unbiased_and_its_standard_error_is_honest():
    rng = np.random.default_rng(0)
    # a skewed, non-Gaussian cloud (ReLU of a shifted normal), as network features are
    means, errors = [], []
    for split in range(40):
        pair = np.maximum(rng.normal(0.3, 1.0, size=(2, 200, 8)), 0.0)
        kid, se = kernel_distance(pair[0], pair[1], subsets=5, seed=split)
        means.append(kid)
        errors.append(se)
    means_array = np.asarray(means)
    spread = means_array.std(ddof=1)
    # the plug-in (biased) estimate would sit ~2 (k(x,x) - k(x,y)) / m above 0: many s.e. away
    assert abs(means_array.mean()) < 2 * spread / np.sqrt(len(means))
    # the standard error each call reports matches the real spread of its estimate
    assert 0.7 < np.mean(errors) / spread < 1.4
    shifted = np.maximum(rng.normal(1.3, 1.0, size=(200, 8)), 0.0)
    kid, se = kernel_distance(pair[0], shifted, subsets=5)
    assert kid > 4 * se


def test_precision_and_recall_of_a_set_against_itself_and_a_far_cloud():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(300, 16))
    assert precision_recall(points, points) == (1.0, 1.0)
    assert precision_recall(points, points + 50.0) == (0.0, 0.0)
    # half of the generated points are real ones, half far away: precision 1/2, and only the
    # real points the generated half lands on (with their neighbourhoods) are recalled
    half = np.concatenate([points[:150], points[:150] + 50.0])
    precision, recall = precision_recall(points, half)
    assert precision == 0.5
    assert 0.5 <= recall < 0.9


@pytest.mark.slow
def test_kid_of_real_scenes_against_real_scenes_is_zero_within_two_standard_errors():
    segmenter = load_pretrained("segmenter")
    features = image_features(segmenter, held_out_scenes(4000).images)
    # scenes in a random order: the renderer shares some colour jitter within chunks of 256
    order = np.random.default_rng(0).permutation(len(features))
    pairs = order.reshape(10, 2, 200)
    means = np.array(
        [kernel_distance(features[a], features[b], seed=i)[0] for i, (a, b) in enumerate(pairs)]
    )
    assert abs(means.mean()) < 2 * means.std(ddof=1) / np.sqrt(len(means))
