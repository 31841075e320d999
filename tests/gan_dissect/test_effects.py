"""Effects of interventions through the segmenter, and unit rankings, on planted generators."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_dissect.dissection import dissect
from gan_dissect.effects import GlowTally, effect_curve, measure_effect, random_orders
from gan_dissect.intervention import UnitEdit, box_region
from gan_dissect.ranking import LearnSettings, learn_unit_mask
from gan_dissect.subject import Subject
from gan_dissect.synthetic import DrawnLampScenes, PaletteSegmenter
from training.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")

LAMP = 3
DRAW, DECOYS, GLOW = [9, 10, 11], [2, 3], 12


@pytest.fixture(scope="module")
def drawn() -> DrawnLampScenes:
    return DrawnLampScenes(size=32).eval()


@pytest.fixture(scope="module")
def subject(drawn) -> Subject:
    return Subject.build(drawn, PaletteSegmenter(), batch_size=50)


@pytest.fixture(scope="module")
def dissection(subject):
    return dissect(subject, "layer2", num_samples=200)


def test_ablating_the_draw_units_removes_every_lamp_and_leaves_the_glow(subject, dissection):
    on = dissection.mean_activation_in_concept[:, LAMP]
    effect, examples = measure_effect(
        subject, UnitEdit("layer2", DRAW, on=on), "lamp", num_samples=120, keep=4
    )
    assert effect.removed_share() == 1.0
    assert effect.removed_pixel_share() == 1.0
    changes = effect.relative_changes()
    assert changes["sky"] == 0.0  # lamps become road, and nothing else changes
    assert changes["building"] == 0.0
    assert 0 < changes["road"] < 0.02
    assert effect.largest_other_change()[0] == "road"
    # inserting lights the half of the lamps that were not lit: twice the lamp pixels
    ace = effect.ace(in_region=False)
    assert ace["ablated_share"] == 0.0
    assert ace["inserted_share"] == pytest.approx(2 * ace["before_share"], rel=0.25)
    assert ace["ace"] == pytest.approx(ace["inserted_share"])
    # the glow unit was left alone: the light around the lamps is all still there
    glow = effect.summary()["glow"]
    assert glow["brightening_before"] > 0.03
    assert glow["brightening_remaining"] == pytest.approx(1.0)
    assert examples.before.shape == (4, 3, 32, 32)
    assert examples.inserted is not None
    # with the glow unit switched off too, the light goes with the lamp
    darker, _ = measure_effect(subject, UnitEdit("layer2", [*DRAW, GLOW]), "lamp", num_samples=120)
    assert darker.glow["brightening_remaining"] < 0.2


def test_ace_in_a_region_counts_only_the_region(subject, dissection):
    on = dissection.mean_activation_in_concept[:, LAMP]
    region = box_region(32, (0, 16, 16, 32))
    edit = UnitEdit("layer2", DRAW, on=on, region=region)
    effect, _ = measure_effect(subject, edit, "lamp", num_samples=120)
    inside = effect.ace(in_region=True)
    whole = effect.ace(in_region=False)
    assert effect.region_pixels == 256
    assert inside["ace"] > 0
    # the same lamp pixels, as a share of a quarter of the image instead of all of it
    assert inside["ace"] == pytest.approx(4 * whole["ace"], rel=0.1)
    # lamps outside the region were not touched, so ablation there removed only some
    assert 0.1 < effect.removed_share() < 0.9


def test_glow_tally_measures_the_light_left_around_removed_pixels():
    before = torch.full((1, 3, 20, 20), -0.5)
    before[:, :, 9:11, 9:11] = 1.0  # a lamp
    before[:, :, 7:13, 7:13] += 0.2  # and its light around it
    before[:, :, 9:11, 9:11] = 1.0
    lamp = torch.zeros(1, 20, 20, dtype=torch.bool)
    lamp[:, 9:11, 9:11] = True
    after = before.clone()
    after[:, :, 9:11, 9:11] = -0.5 + 0.2  # lamp painted over; the light stays
    tally = GlowTally(radius=2)
    tally.add(before, after, lamp, lamp)
    summary = tally.summary()
    assert summary["brightening_before"] == pytest.approx(0.1 * 16 / 16, abs=1e-6)
    assert summary["brightening_remaining"] == pytest.approx(1.0)
    dark = before.clone()
    dark[:] = -0.5
    tally = GlowTally(radius=2)
    tally.add(before, dark, lamp, lamp)
    assert tally.summary()["brightening_remaining"] == pytest.approx(0.0, abs=1e-6)


def test_learned_ranking_finds_the_units_that_draw_where_iou_finds_decoys(subject, dissection):
    by_iou = dissection.units_for("lamp")
    assert set(by_iou[:2]) == set(DECOYS), "the decoys coincide best with lamps"
    settings = LearnSettings(steps=40, batch_size=8, lr=0.05)
    learned = learn_unit_mask(subject, "layer2", "lamp", settings=settings)
    assert set(learned.order()[:3]) == set(DRAW)
    assert np.all(learned.strength[DRAW] > 0.9)
    assert learned.strength[DECOYS].max() < 0.05
    assert learned.strength[GLOW] < 0.2
    assert learned.history[-1]["remaining"] < 0.05
    orders = {"iou": by_iou, "learned": learned.order(), **random_orders(16, 2, seed=0)}
    curve = effect_curve(subject, "layer2", "lamp", orders, [2, 3], num_samples=60)
    assert curve.removed["learned"] == [pytest.approx(curve.removed["learned"][0]), 1.0]
    assert curve.removed["iou"][0] == 0.0  # two decoys: nothing removed
    assert curve.removed["learned"][0] < 0.6  # two of three draw units: most lamps hold
    assert max(curve.removed["random-0"] + curve.removed["random-1"]) < 1.0


def test_bad_effect_requests_are_one_clear_error(subject):
    with pytest.raises(InputError, match="no concept 'lamps'"):
        measure_effect(subject, UnitEdit("layer2", DRAW), "lamps", num_samples=2)
    with pytest.raises(InputError, match=r"whole unit numbers"):
        measure_effect(subject, UnitEdit("layer2", [np.nan]), "lamp", num_samples=2)
    small = UnitEdit("layer2", DRAW, region=torch.ones(16, 16))
    with pytest.raises(InputError, match="region is \\(16, 16\\) but images are 32x32"):
        measure_effect(subject, small, "lamp", num_samples=2)
    with pytest.raises(InputError, match="order 'short' has 1 units, fewer than 2"):
        effect_curve(subject, "layer2", "lamp", {"short": [1]}, [2], num_samples=2)


def test_keep_others_can_weigh_the_largest_change_of_another_concept(subject):
    """The lamp's pixels become road when it is removed, and sky and building change far less:
    'max' weighs the largest change (road's), the mean spreads it over the three concepts."""
    runs = {
        reduce: learn_unit_mask(
            subject,
            "layer2",
            "lamp",
            settings=LearnSettings(steps=20, lr=0.05, others_reduce=reduce),
        )
        for reduce in ("mean", "max")
    }
    assert np.array_equal(runs["mean"].strength, runs["max"].strength)  # weight 0: same path
    mean = np.array([h["others_changed"] for h in runs["mean"].history])
    largest = np.array([h["others_changed"] for h in runs["max"].history])
    assert largest[-1] > 0.005
    assert largest[-1] > 1.5 * mean[-1]  # one concept holds most of the change
    assert np.all(largest <= 3 * mean + 1e-7)  # the largest of three is at most their sum
    assert runs["max"].params["others_reduce"] == "max"
    with pytest.raises(InputError, match="others_reduce must be 'mean' or 'max'"):
        learn_unit_mask(subject, "layer2", "lamp", settings=LearnSettings(others_reduce="sum"))
