"""Ablation and insertion of units, checked on generators whose lamp units are planted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_dissect.dissection import dissect
from gan_dissect.hooks import trace
from gan_dissect.intervention import (
    ablate,
    box_region,
    insert,
    intervene,
    region_weights,
    unit_quantiles,
    unit_strength,
)
from gan_dissect.streams import latents
from gan_dissect.subject import Subject
from gan_dissect.synthetic import (
    SCENE_COLORS,
    DCGANStandIn,
    DrawnLampScenes,
    LampScenes,
    PaletteSegmenter,
)
from training.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")

LAMP, ROAD = 3, 2
DRAW, DECOYS, GLOW = [9, 10, 11], [2, 3], 12


@pytest.fixture(scope="module")
def drawn() -> DrawnLampScenes:
    return DrawnLampScenes(size=32).eval()


def _labels(images: torch.Tensor) -> torch.Tensor:
    return PaletteSegmenter()(images).argmax(dim=1)


def _no_hooks(model: torch.nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_ablating_the_planted_lamp_unit_removes_exactly_the_lamps():
    generator = LampScenes(lamp_unit=5, size=32).eval()
    z = latents(0, range(64), (16,))
    with torch.no_grad():
        before = generator(z)
        with ablate(generator, "layer2", [5]):
            after = generator(z)
    was_lamp = _labels(before) == LAMP
    assert was_lamp.sum() > 200, "the samples hold lamps"
    assert (_labels(after) == LAMP).sum() == 0, "every lamp is gone"
    # nothing else moved: every other pixel is bit-identical, and the lamp shows the road
    assert torch.equal(before.permute(0, 2, 3, 1)[~was_lamp], after.permute(0, 2, 3, 1)[~was_lamp])
    road = torch.tensor(SCENE_COLORS[ROAD], dtype=torch.float32) / 127.5 - 1.0
    shown = after.permute(0, 2, 3, 1)[was_lamp]
    torch.testing.assert_close(shown, road.expand_as(shown))
    # another unit of the same layer (unit 1 coincides with buildings) is not the lamp's cause
    with torch.no_grad(), ablate(generator, "layer2", [1, 7]):
        assert torch.equal(generator(z), before)


def test_lamp_drawn_by_three_units_needs_all_three_and_ignores_its_decoys(drawn):
    z = latents(0, range(64), (16,))
    with torch.no_grad():
        before = drawn(z)
        was_lamp = _labels(before) == LAMP
        with ablate(drawn, "layer2", DRAW):
            after = drawn(z)
        with ablate(drawn, "layer2", DECOYS):
            decoys_off = drawn(z)
        with ablate(drawn, "layer2", DRAW[:1]):
            one_off = drawn(z)
    assert was_lamp.sum() > 100
    assert (_labels(after) == LAMP).sum() == 0
    changed = (after != before).any(dim=1)
    assert not (changed & ~was_lamp).any(), "only lamp pixels change"
    assert torch.equal(decoys_off, before), "units that only coincide with lamps draw nothing"
    kept = (_labels(one_off) == LAMP).sum() / was_lamp.sum()
    assert kept > 0.9, "two of the three draw units still draw the lamp"


def test_hooks_are_gone_after_the_block_also_after_an_exception():
    generator = DCGANStandIn(z_dim=16, width=8)
    z = torch.randn(4, 16)
    with torch.no_grad():
        reference = generator(z)
        with ablate(generator, "layer3", [0, 3, 5]):
            edited = generator(z)
        assert not torch.equal(edited, reference)
        assert _no_hooks(generator)
        assert torch.equal(generator(z), reference)
        with pytest.raises(RuntimeError, match="inside"):
            _generate_then_fail(generator, z)
        assert _no_hooks(generator)
        assert torch.equal(generator(z), reference)


def _generate_then_fail(generator: torch.nn.Module, z: torch.Tensor) -> None:
    with insert(generator, "layer2", [1], 5.0):
        generator(z)
        raise RuntimeError("inside")


def test_soft_strength_blends_each_unit_towards_its_value():
    generator = DCGANStandIn(z_dim=16, width=8)
    z = torch.randn(3, 16)
    strength = torch.zeros(16)  # layer3 of a width-8 stand-in: 16 units at 16 x 16
    strength[4], strength[7] = 0.25, 1.0
    values = torch.arange(16, dtype=torch.float32)
    with torch.no_grad():
        with trace(generator, "layer3") as plain:
            generator(z)
        with intervene(generator, "layer3", strength, values) as edited:
            generator(z)
    original, result = plain.output, edited.output
    torch.testing.assert_close(result[:, 4], 0.75 * original[:, 4] + 0.25 * 4.0)
    assert torch.equal(result[:, 7], torch.full_like(result[:, 7], 7.0))
    untouched = [u for u in range(16) if u not in (4, 7)]
    assert torch.equal(result[:, untouched], original[:, untouched])


def test_insertion_in_a_region_lights_lamps_only_there(drawn):
    subject = Subject.build(drawn, PaletteSegmenter(), batch_size=50)
    dissection = dissect(subject, "layer2", num_samples=200)
    on = dissection.mean_activation_in_concept[:, LAMP]
    assert np.all(on[DRAW] > 0.5)
    z = latents(3, range(96), (16,))
    z[:, 8] = -1.0  # no lamp is lit: only insertion can light one
    region = box_region(32, (0, 16, 16, 32))  # the lower left quarter, 8 x 8 layer cells
    with torch.no_grad():
        before = drawn(z)
        with insert(drawn, "layer2", DRAW, on, region=region):
            after = drawn(z)
    assert (_labels(before) == LAMP).sum() == 0
    lit = _labels(after) == LAMP
    assert lit[:, 16:, :16].sum() > 100, "lamps appear inside the region"
    changed = (after != before).any(dim=1)
    # bilinear upsampling carries a layer cell (2 px here) half a cell past the region's edge
    near = torch.zeros(32, 32, dtype=torch.bool)
    near[15:, :17] = True
    assert not (changed & ~near).any(), "nothing changes outside the region"
    assert changed[:, 16:, :16].any()


def test_region_is_averaged_onto_the_layer_grid():
    region = torch.zeros(32, 32)
    region[:, :3] = 1.0  # one and a half layer cells of 2 px
    weights = region_weights(region, (16, 16))
    assert weights.shape == (1, 1, 16, 16)
    torch.testing.assert_close(weights[0, 0, 0, :3], torch.tensor([1.0, 0.5, 0.0]))
    assert torch.equal(region_weights(region > 0, (32, 32))[0, 0], region)


def test_unit_quantiles_match_the_exact_quantiles():
    generator = LampScenes(size=32).eval()
    subject = Subject.build(generator, PaletteSegmenter(), batch_size=20)
    levels = unit_quantiles(subject, "layer2", [0.01, 0.5, 0.99], num_samples=60)
    assert levels.shape == (16, 3)
    z = latents(0, range(60), (16,), stream=5)
    with torch.no_grad(), trace(generator, "layer2") as record:
        generator(z)
    values = record.output.transpose(0, 1).reshape(16, -1).double()
    exact = torch.quantile(values, torch.tensor([0.01, 0.5, 0.99], dtype=torch.float64), dim=1).T
    torch.testing.assert_close(levels, exact, rtol=0.01, atol=1e-3)


def test_unit_strength_accepts_numbers_boolean_and_soft_masks():
    assert unit_strength([1, 3], 4).tolist() == [0.0, 1.0, 0.0, 1.0]
    assert unit_strength(np.array([True, False, False, True]), 4).tolist() == [1, 0, 0, 1]
    soft = torch.tensor([0.0, 0.5, 1.0, 0.25], requires_grad=True)
    assert unit_strength(soft, 4) is soft
    assert unit_strength([], 4).sum() == 0


@pytest.mark.parametrize(
    ("layer", "units", "values", "region", "message"),
    [
        ("layr2", [5], 0.0, None, r"no layer 'layr2'; did you mean layer2"),
        ("layer2", [16], 0.0, None, r"unit\(s\) \[16\] out of range: the layer has 16 units"),
        ("layer2", [-1], 0.0, None, r"unit numbers are >= 0"),
        ("layer2", [1.5], 0.0, None, r"whole unit numbers"),
        ("layer2", [5], float("nan"), None, r"values to set units to hold NaN"),
        ("layer2", [5], [0.0, 1.0], None, r"one number or one per unit of the layer \(16\)"),
        ("layer2", [5], 0.0, torch.ones(30, 30), r"30x30 does not fit the layer's 16x16 grid"),
        ("layer2", [5], 0.0, torch.ones(1, 1, 32, 32), r"region must be \(H, W\) or \(N, H, W\)"),
        ("layer2", [5], 0.0, torch.full((32, 32), float("nan")), r"lie in \[0, 1\] \(no NaN\)"),
        ("layer2", torch.ones(3), 0.0, None, r"soft unit mask must have shape \(16,\)"),
    ],
)
def test_bad_edits_are_one_clear_error(layer, units, values, region, message):
    generator = LampScenes(size=32).eval()
    z = latents(0, range(2), (16,))
    with (
        pytest.raises(InputError, match=message),
        torch.no_grad(),
        ablate(generator, layer, units, off=values, region=region),
    ):
        generator(z)
    assert _no_hooks(generator)


def test_a_region_for_another_batch_size_is_refused():
    generator = LampScenes(size=32).eval()
    with (
        pytest.raises(InputError, match="covers 3 samples but the batch has 2"),
        torch.no_grad(),
        ablate(generator, "layer2", [5], region=torch.ones(3, 32, 32)),
    ):
        generator(latents(0, range(2), (16,)))
