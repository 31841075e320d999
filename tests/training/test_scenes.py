from __future__ import annotations

import numpy as np
import pytest
import torch

from training.errors import ConfigError, InputError
from training.scenes import (
    CHUNK,
    CONCEPTS,
    HELD_OUT_SEED,
    MAX_LAMPS,
    colorize_labels,
    concept_shares,
    held_out_sample,
    held_out_scenes,
    render_scenes,
)

LAMP = CONCEPTS.index("lamp")


@pytest.fixture(scope="module")
def scenes():
    return render_scenes(256, seed=5)


@pytest.fixture(scope="module")
def dark_scenes():
    return render_scenes(256, seed=5, glow=False)


def test_concepts_are_the_contract():
    assert CONCEPTS[:8] == ("sky", "building", "window", "door", "road", "grass", "tree", "lamp")
    assert colorize_labels(np.arange(len(CONCEPTS))).shape == (len(CONCEPTS), 3)


def test_scenes_are_bit_identical_per_seed_and_differ_across_seeds(scenes):
    again = render_scenes(256, seed=5)
    for name in ("images", "labels", "glow", "lamp_index", "lamp_lit", "lamp_boxes"):
        np.testing.assert_array_equal(getattr(scenes, name), getattr(again, name))
    other = render_scenes(256, seed=6)
    assert (other.labels != scenes.labels).mean() > 0.2


def test_a_scene_depends_only_on_seed_and_index(scenes):
    # scenes are rendered in chunks of 256; a block across the boundary must match both sides
    block = render_scenes(12, seed=5, start=250)
    np.testing.assert_array_equal(block.images[:6], scenes.images[250:])
    np.testing.assert_array_equal(block.labels[:6], scenes.labels[250:])
    np.testing.assert_array_equal(block.images[6:], render_scenes(262, seed=5).images[256:])
    first = render_scenes(3, seed=5)
    np.testing.assert_array_equal(first.images, scenes.images[:3])


def test_output_types_ranges_and_unpacking(scenes):
    images, labels = scenes
    assert (images.dtype, images.shape) == (np.float32, (256, 3, 64, 64))
    assert (labels.dtype, labels.shape) == (np.int64, (256, 64, 64))
    assert images.min() >= -1.0
    assert images.max() <= 1.0
    assert set(np.unique(labels)) == set(range(len(CONCEPTS)))


def test_each_colour_belongs_to_one_concept(dark_scenes):
    # Without glow every painted object has one flat colour (the sky one per row): if a label
    # disagreed with what was drawn, some colour would appear under two concepts.
    for i in range(0, 256, 7):
        pixels = dark_scenes.images[i].reshape(3, -1).T
        labels = dark_scenes.labels[i].reshape(-1)
        _, colour_id = np.unique(pixels, axis=0, return_inverse=True)
        pairs = np.unique(np.stack([colour_id.ravel(), labels]), axis=1)
        assert len(np.unique(pairs[0])) == pairs.shape[1], f"scene {i}: a colour has two labels"


def test_lamp_mask_is_exactly_the_pole_and_head_pixels(dark_scenes):
    checked = 0
    for i in range(0, 256, 4):
        image = dark_scenes.images[i].reshape(3, -1).T
        index = dark_scenes.lamp_index[i].reshape(-1)
        for k in np.flatnonzero(dark_scenes.lamp_present[i]):
            mask = index == k
            colours = np.unique(image[mask], axis=0)
            assert len(colours) == 2, "a lamp is a pole colour and a head colour"
            drawn = (image[:, None, :] == colours[None]).all(-1).any(-1)
            np.testing.assert_array_equal(drawn, mask)
            checked += 1
    assert checked > 80


def test_glow_changes_pixels_but_never_labels(scenes, dark_scenes):
    np.testing.assert_array_equal(scenes.labels, dark_scenes.labels)
    np.testing.assert_array_equal(scenes.lamp_index, dark_scenes.lamp_index)
    changed = np.abs(scenes.images - dark_scenes.images).max(axis=1) > 1e-6
    assert not (changed & (scenes.glow == 0)).any(), "pixels changed where no light falls"
    lit_light = scenes.glow > 0.2
    outside = lit_light & (scenes.labels != LAMP)
    assert outside.sum() > 5 * (lit_light & (scenes.labels == LAMP)).sum()
    # what lies under the light keeps its own label: road, buildings, grass, sky
    assert {CONCEPTS.index(c) for c in ("road", "building", "sky")} <= set(
        np.unique(scenes.labels[outside])
    )


def test_light_comes_from_lit_lamps_only(scenes):
    no_lit = ~scenes.any_lamp_lit
    assert no_lit.sum() > 50
    assert scenes.glow[no_lit].max() == 0.0
    n, k = np.nonzero(scenes.lamp_lit)
    x0, y0, x1, _ = scenes.lamp_boxes[n, k].T
    head = scenes.glow[n, y0 + 1, (x0 + x1) // 2]
    assert head.min() > 0.3, "every lit lamp glows at its head"


def test_lamp_bookkeeping_matches_the_masks(scenes):
    for i in range(256):
        present = set(np.unique(scenes.lamp_index[i])) - {-1}
        assert present == set(np.flatnonzero(scenes.lamp_present[i]))
        for k in range(MAX_LAMPS):
            ys, xs = np.nonzero(scenes.lamp_index[i] == k)
            if len(xs):
                box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
                np.testing.assert_array_equal(scenes.lamp_boxes[i, k], box)
            else:
                np.testing.assert_array_equal(scenes.lamp_boxes[i, k], [-1, -1, -1, -1])
    assert not (scenes.lamp_lit & ~scenes.lamp_present).any()
    np.testing.assert_array_equal(scenes.lamp_count, scenes.lamp_present.sum(1))


def test_lamps_are_a_prominent_concept_with_variety(scenes):
    assert (scenes.lamp_count > 0).mean() > 0.8
    assert (scenes.lamp_count >= 2).mean() > 0.6
    assert 0.4 < scenes.any_lamp_lit.mean() < 0.7  # the classifier's two classes are balanced
    widths = scenes.lamp_boxes[..., 2] - scenes.lamp_boxes[..., 0]
    heights = scenes.lamp_boxes[..., 3] - scenes.lamp_boxes[..., 1]
    assert widths[scenes.lamp_present].min() >= 4  # a head a few pixels wide
    assert heights[scenes.lamp_present].min() >= 15
    assert concept_shares(scenes.labels)[:, LAMP].mean() > 0.02
    assert scenes.time_of_day.std() > 0.25


def test_sizes_show_the_same_scene():
    shares = {
        size: concept_shares(render_scenes(64, size=size, seed=2).labels) for size in (32, 64, 128)
    }
    assert np.abs(shares[32] - shares[64]).max() < 0.06
    assert np.abs(shares[128] - shares[64]).max() < 0.03


def test_held_out_scenes_are_fixed_and_not_training_scenes():
    held = held_out_scenes(16)
    np.testing.assert_array_equal(held.images, render_scenes(16, seed=HELD_OUT_SEED).images)
    assert not np.array_equal(held.images, render_scenes(16, seed=0).images)
    from training.data import SceneDataModule

    with pytest.raises(ConfigError, match="held-out"):
        SceneDataModule(seed=HELD_OUT_SEED)
    with pytest.raises(ConfigError, match="held-out"):
        SceneDataModule(seed=HELD_OUT_SEED - 1)  # its validation seed would be the held-out one


def test_held_out_sample_spreads_over_chunks_and_is_exactly_those_scenes():
    sample = held_out_sample(300, size=32, pool=8 * CHUNK)
    pool = render_scenes(8 * CHUNK, size=32, seed=HELD_OUT_SEED)
    flat_pool = pool.images.reshape(len(pool.images), -1)
    # every sampled scene is one of the pool's, none twice, from (nearly) every chunk
    found = [
        int(np.flatnonzero((flat_pool == row).all(axis=1))[0])
        for row in sample.images.reshape(300, -1)
    ]
    assert len(set(found)) == 300
    np.testing.assert_array_equal(sample.labels, pool.labels[found])
    assert len({i // CHUNK for i in found}) == 8
    # the same sample for the same arguments; n larger than the pool widens the pool
    np.testing.assert_array_equal(
        held_out_sample(300, size=32, pool=8 * CHUNK).images, sample.images
    )
    assert len(held_out_sample(CHUNK + 10, size=32, pool=CHUNK).images) == CHUNK + 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be"),
        ({"n": 4, "size": 48}, "size must be"),
        ({"n": 4, "seed": -1}, "seed"),
    ],
)
def test_bad_arguments_are_one_clear_error(kwargs, message):
    with pytest.raises(InputError, match=message):
        render_scenes(**kwargs)


def test_data_module_serves_what_was_rendered():
    from training.data import SceneDataset

    dataset = SceneDataset(40, seed=3, target="labels")
    scenes = render_scenes(40, seed=3)
    image, labels = dataset[7]
    assert image.dtype == torch.float32
    assert labels.dtype == torch.int64
    np.testing.assert_allclose(image.numpy(), scenes.images[7], atol=1 / 127.5)
    np.testing.assert_array_equal(labels.numpy(), scenes.labels[7])
    lit = SceneDataset(40, seed=3, target="lamp_lit")
    assert [int(lit[i][1]) for i in range(40)] == scenes.any_lamp_lit.astype(int).tolist()
