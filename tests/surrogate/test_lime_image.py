"""LIME on images: the pictures lime would build, the region a model looks at, errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from lime.lime_image import ImageExplanation as ReferenceImageExplanation
from scipy import stats
from skimage.segmentation import find_boundaries

from surrogate.lime import ImageExplanation, LimeImageExplainer, deletion_curve
from surrogate.lime.image import _Composer, hidden_image, segment
from training.errors import InputError


def _region(size):
    """Rows and columns a model looks at: an off-centre box an eighth to three eighths down."""
    return slice(size // 8, 3 * size // 8), slice(9 * size // 16, 15 * size // 16)


def _scene(seed=0, size=64):
    """A textured picture with enough structure for superpixels everywhere."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.stack([0.5 + 0.4 * np.sin(9 * xx), 0.5 + 0.4 * np.cos(7 * yy), xx * yy], axis=-1)
    return np.clip(image + 0.08 * rng.random(image.shape), 0, 1)


def _region_model(images):
    """Scores depend on the red channel inside ``_region`` only."""
    rows, columns = _region(np.shape(images)[1])
    mean = np.asarray(images)[:, rows, columns, 0].mean(axis=(1, 2))
    p = 1 / (1 + np.exp(-12 * (mean - 0.25)))
    return np.column_stack([1 - p, p])


def test_top_superpixels_lie_in_the_region_the_model_reads():
    image = _scene()
    explainer = LimeImageExplainer(random_state=0)
    explanation = explainer.explain_instance(
        image,
        _region_model,
        top_labels=None,
        labels=(1,),
        hide_color=0,
        segmentation_fn="slic",
        num_samples=600,
    )
    inside = np.zeros(image.shape[:2], dtype=bool)
    inside[_region(image.shape[0])] = True
    weights = dict(explanation.as_map()[1])
    # What each superpixel gives the model: its red inside the region (hidden ones give 0).
    red_inside = {
        f: float(image[..., 0][inside & (explanation.segments == f)].sum()) for f in weights
    }
    top = explanation.feature_order(1)[:4]
    assert set(top) == set(sorted(red_inside, key=red_inside.get, reverse=True)[:4])
    reading = [f for f in weights if red_inside[f] > 0]
    outside = [f for f in weights if red_inside[f] == 0]
    assert stats.spearmanr([weights[f] for f in reading], [red_inside[f] for f in reading])[0] > 0.9
    assert max(abs(weights[f]) for f in outside) < 0.05 * weights[top[0]]


def test_deletion_auc_of_explanation_is_below_random_order():
    image = _scene(1)
    explainer = LimeImageExplainer(random_state=0)
    explanation = explainer.explain_instance(
        image,
        _region_model,
        top_labels=1,
        hide_color=0,
        segmentation_fn="slic",
        num_samples=500,
    )
    curve = deletion_curve(explainer, image, explanation, _region_model, random_state=0)
    assert curve.label == 1
    assert curve.auc < 0.5 * curve.random_auc


def test_pictures_equal_lime_per_sample_loop():
    """Our batched pictures equal the ones lime's loop builds, pixel for pixel."""
    image = (_scene(2, 40) * 255).astype(np.uint8)
    segments, _ = segment(image, "slic")
    hidden = hidden_image(image, segments, None)
    # lime's fill: each superpixel's channel means, assigned into a copy of the image.
    expected_hidden = image.copy()
    for x in np.unique(segments):
        expected_hidden[segments == x] = [np.mean(image[segments == x][:, c]) for c in range(3)]
    assert np.array_equal(hidden, expected_hidden)
    switches = np.random.default_rng(0).integers(0, 2, (12, segments.max() + 1))
    ours = _Composer(image, segments, hidden)(switches.astype(bool))
    for row, picture in zip(switches, ours, strict=True):
        reference = copy.deepcopy(image)  # lime_image.LimeImageExplainer.data_labels
        mask = np.zeros(segments.shape).astype(bool)
        for z in np.where(row == 0)[0]:
            mask[segments == z] = True
        reference[mask] = expected_hidden[mask]
        assert np.array_equal(picture, reference)


def test_distances_and_switches_are_lime_cosine_kernel():
    image = _scene(3, 32)
    explainer = LimeImageExplainer(random_state=0)
    neighbourhood = explainer._neighbourhood(
        image,
        300,
        np.random.default_rng(0),
        {
            "hide_color": None,
            "segmentation_fn": "slic",
            "distance_metric": "cosine",
            "random_seed": None,
        },
    )
    from sklearn.metrics import pairwise_distances

    data = neighbourhood.data
    expected = pairwise_distances(data, data[:1], metric="cosine").ravel()
    np.testing.assert_allclose(neighbourhood.distances, expected, atol=1e-12)
    assert np.all(data[0] == 1)
    assert set(np.unique(data)) <= {0.0, 1.0}
    assert abs(data[1:].mean() - 0.5) < 0.02  # each superpixel on with probability 1/2


def test_image_and_mask_equal_lime():
    image = _scene(4, 32)
    explainer = LimeImageExplainer(random_state=0)
    explanation = explainer.explain_instance(
        image, _region_model, segmentation_fn="slic", num_samples=200, top_labels=2
    )
    reference = ReferenceImageExplanation(image, explanation.segments)
    reference.local_exp = explanation.as_map()
    for options in (
        {"positive_only": True},
        {"positive_only": False, "negative_only": True},
        {"positive_only": False, "hide_rest": True, "num_features": 3},
    ):
        got = explanation.get_image_and_mask(1, **options)
        expected = reference.get_image_and_mask(1, **options)
        assert np.array_equal(got[0], expected[0])
        assert np.array_equal(got[1], expected[1])


def test_same_random_state_gives_bit_identical_json_and_the_image_round_trips():
    image = _scene(5, 32)
    run = lambda seed: LimeImageExplainer(random_state=seed).explain_instance(  # noqa: E731
        image, _region_model, segmentation_fn="slic", num_samples=150
    )
    first = run(1)
    assert first.to_json() == run(1).to_json()
    assert first.to_json() != run(2).to_json()
    again = ImageExplanation.from_json(first.to_json())
    assert isinstance(again, ImageExplanation)
    assert again == first
    assert np.array_equal(again.segments, first.segments)
    with pytest.raises(InputError, match="holds no image"):
        again.overlay(1)
    again.image = image
    assert np.array_equal(again.overlay(1), first.overlay(1))


def test_overlay_tints_supporting_superpixels_green_and_leaves_the_rest():
    image = _scene(6)
    explanation = LimeImageExplainer(random_state=0).explain_instance(
        image,
        _region_model,
        labels=(1,),
        top_labels=None,
        hide_color=0,
        segmentation_fn="slic",
        num_samples=300,
    )
    overlay = explanation.overlay(1, num_features=1, min_size=64).astype(float)
    original = np.round(image * 255)
    segments = explanation.segments
    borders = find_boundaries(segments, mode="inner")
    best = explanation.feature_order(1)[0]
    tinted = (segments == best) & ~borders
    towards_green = np.array([40.0, 170.0, 70.0]) - original[tinted]
    assert np.all(((overlay[tinted] - original[tinted]) * towards_green).sum(axis=1) > 0)
    worst = explanation.feature_order(1)[-1]  # tinted red when it opposes the label
    untouched = ~borders & (segments != best) & (segments != worst)
    assert np.array_equal(overlay[untouched], original[untouched])


def test_grey_images_and_bad_images():
    explainer = LimeImageExplainer(random_state=0)
    grey = _scene(7, 32)[..., 0]
    explanation = explainer.explain_instance(
        grey, _region_model, segmentation_fn="slic", num_samples=50
    )
    assert explanation.instance["shape"] == [32, 32, 3]
    broken = _scene(7, 32)
    broken[3, 4, 1] = np.nan
    with pytest.raises(InputError, match="NaN or infinite values in 1 image"):
        explainer.explain_instance(broken, _region_model)
    with pytest.raises(InputError, match=r"must be \(n, H, W, 3\)"):
        explainer.explain_many(np.zeros((2, 8, 8, 2)), _region_model)
    with pytest.raises(InputError, match="segmentation 'watershed'"):
        explainer.explain_instance(grey, _region_model, segmentation_fn="watershed")


def test_a_segmentation_with_one_superpixel_is_warned_about():
    image = np.random.default_rng(0).random((8, 8, 3))
    explainer = LimeImageExplainer(random_state=0)

    def one_piece(picture):
        return np.zeros(picture.shape[:2], dtype=int)

    with pytest.warns(UserWarning, match="'one_piece' found one superpixel in a 8x8 image"):
        explainer.explain_instance(
            image,
            lambda batch: np.tile([0.4, 0.6], (len(batch), 1)),
            num_samples=10,
            segmentation_fn=one_piece,
        )
