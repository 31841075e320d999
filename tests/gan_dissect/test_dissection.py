from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan_dissect.dissection import (
    Checkpoint,
    DissectionResult,
    dissect,
    dissect_layers,
    load_dissection,
    save_dissection,
)
from gan_dissect.hooks import trace_many
from gan_dissect.streams import latents
from gan_dissect.subject import Subject
from gan_dissect.synthetic import (
    DCGANStandIn,
    HueSegmenter,
    LampScenes,
    PaletteSegmenter,
    ShuffledUnits,
)
from training.errors import ConfigError, InputError

LAMP_UNIT = 5


@pytest.fixture(scope="module")
def scenes() -> LampScenes:
    return LampScenes(lamp_unit=LAMP_UNIT, size=32).eval()


@pytest.fixture(scope="module")
def planted(scenes) -> dict[str, DissectionResult]:
    subject = Subject.build(scenes, PaletteSegmenter(), layers=["layer1", "layer2"], batch_size=50)
    return dissect_layers(subject, num_samples=300)


def _brute_force(generator, segmenter, layers, n, seed, z_shape):
    """Every upsampled activation and label of ``n`` samples held in memory at once."""
    z = latents(seed, range(n), z_shape)
    with torch.inference_mode(), trace_many(generator, layers, clone=True) as traces:
        images = generator(z)
    labels = segmenter(images).argmax(1).numpy()
    maps = {}
    for layer in layers:
        raw = traces[layer].output
        up = F.interpolate(raw, size=images.shape[-2:], mode="bilinear", align_corners=False)
        maps[layer] = (raw, up.transpose(0, 1).reshape(raw.shape[1], -1).double().numpy())
    return maps, labels.reshape(-1)


@pytest.mark.parametrize(
    ("make_generator", "layers"),
    [
        (lambda: LampScenes(size=32).eval(), ["layer1", "layer2"]),
        # a batch-norm output with negative values, overwritten in place by the ReLU after it
        (lambda: DCGANStandIn(z_dim=16, width=4), ["layer2.1", "layer3"]),
    ],
    ids=["planted-scenes", "dcgan-pre-relu"],
)
def test_streaming_dissection_equals_brute_force(make_generator, layers):
    generator, segmenter = make_generator(), PaletteSegmenter()
    n, seed = 90, 7  # batches of 20 leave a short last batch
    subject = Subject.build(generator, segmenter, layers=layers, batch_size=20, seed=seed)
    results = dissect_layers(subject, num_samples=n)
    maps, labels = _brute_force(generator, segmenter, layers, n, seed, (generator.z_dim,))
    concepts = len(segmenter.concepts)
    for layer in layers:
        result = results[layer]
        raw, flat = maps[layer]
        units = raw.shape[1]
        # thresholds: the exact 0.99 quantile (rank ceil(q n)) to within the sketch's bound
        rank = math.ceil(0.99 * flat.shape[1])
        exact = np.sort(flat, axis=1)[:, rank - 1]
        bound = np.maximum(2.0**-8 * np.abs(exact), 2.0**-30)
        assert (np.abs(result.unit_thresholds - exact) <= bound).all()
        # IoU over all pixels of all samples, at the same thresholds, to 1e-6 (counts exactly)
        above = flat > result.unit_thresholds.astype(np.float32)[:, None]
        for c in range(concepts):
            inside = labels == c
            intersection = (above & inside).sum(1)
            union = (above | inside).sum(1)
            np.testing.assert_array_equal(result.intersection[:, c], intersection)
            np.testing.assert_allclose(
                result.iou[:, c], intersection / np.maximum(union, 1), rtol=0, atol=1e-6
            )
        np.testing.assert_array_equal(result.concept_area, np.bincount(labels, minlength=concepts))
        assert result.pixels == labels.size
        # top samples: largest per-sample maximum, ties to the smaller sample number
        peaks = raw.flatten(2).amax(2).numpy()
        for u in range(units):
            order = sorted(range(n), key=lambda i, u=u: (-peaks[i, u], i))[
                : result.top_samples.shape[1]
            ]
            assert result.top_samples[u].tolist() == order


def test_planted_lamp_unit_is_found_at_the_ceiling(planted):
    layer2 = planted["layer2"]
    lamp = layer2.concept_index("lamp")
    assert layer2.label(LAMP_UNIT) == "lamp"
    assert layer2.units_for("lamp", matched_only=True) == [LAMP_UNIT]
    assert layer2.units_for("lamp")[0] == LAMP_UNIT
    fraction = layer2.ceiling_fraction()[LAMP_UNIT, lamp]
    assert 0.95 <= fraction <= 1.01, fraction
    # the unit-less noise units match nothing
    others = [u for u in range(layer2.units) if u not in (LAMP_UNIT, 1)]
    assert layer2.best_iou()[others].max() < layer2.iou_floor
    # a lamp is a small object: the 8 x 8 layer's ceiling for it is well below the 16 x 16 one's
    assert planted["layer1"].ceiling[lamp] < 0.8 * layer2.ceiling[lamp]
    summary = {row["concept"]: row for row in layer2.concept_summary()}
    assert summary["lamp"]["units"] == 1
    assert summary["lamp"]["best_unit"] == LAMP_UNIT
    # the planted unit *is* the ideal unit, measured by the units' rule: the same-rule ceiling
    assert layer2.iou[LAMP_UNIT, lamp] == pytest.approx(layer2.ceiling_at_quantile[lamp], rel=0.01)
    # held to 1 % of the pixels, no unit can cover more than 1 % of them (sky: 43 %)
    share = layer2.concept_area / layer2.pixels
    assert np.all(layer2.ceiling_at_quantile <= np.minimum(1, 0.01 / share) + 1e-9)
    assert layer2.ceiling_at_quantile[0] < 0.03 < 0.9 < layer2.ceiling[0]
    assert summary["lamp"]["ceiling_at_quantile"] == layer2.ceiling_at_quantile[lamp]


def test_untrained_generator_and_shuffled_units_have_no_unit_above_the_floor(scenes):
    # hue bins split an untrained generator's images into six concepts of ~1/6 of the pixels
    # each; a unit clears 0.04 only if ~2/3 of its top pixels fall in one of them (chance: 1/6)
    untrained = dissect_layers(
        Subject.build(
            DCGANStandIn(z_dim=32, width=8, seed=3),
            HueSegmenter(),
            layers=["layer2", "layer4"],
            batch_size=50,
        ),
        num_samples=120,
    )
    for result in untrained.values():
        assert (result.concept_area > 0.05 * result.pixels).all()
        assert result.best_iou().max() <= 0.04, result.best_iou().max()
    segmenter = PaletteSegmenter()
    shuffled = dissect(
        Subject.build(ShuffledUnits(scenes, "layer2").eval(), segmenter, batch_size=50),
        "shuffled",
        num_samples=300,
    )
    assert shuffled.best_iou().max() <= 0.04
    lamp = shuffled.concept_index("lamp")
    assert shuffled.iou[LAMP_UNIT, lamp] < 0.04


def test_maxiou_thresholds_come_from_separate_latents_and_raise_iou(scenes, planted):
    result = dissect(
        Subject.build(scenes, PaletteSegmenter(), batch_size=50),
        "layer2",
        num_samples=300,
        thresholds="maxiou",
        selection_samples=150,
    )
    assert not torch.equal(latents(0, [3], (16,), stream=1), latents(0, [3], (16,), stream=0))
    lamp = result.concept_index("lamp")
    # the pair's own threshold: at least the top-quantile IoU, measured on the main latents
    assert result.iou[LAMP_UNIT, lamp] >= planted["layer2"].iou[LAMP_UNIT, lamp] - 1e-3
    assert result.ceiling_fraction()[LAMP_UNIT, lamp] >= 0.97
    np.testing.assert_allclose(result.iou_at_quantile, planted["layer2"].iou, atol=0)
    # the planted building unit only shows up with a threshold of its own (0.99 saturates it)
    building = result.concept_index("building")
    assert result.iou[1, building] > 0.5 > planted["layer2"].iou[1, building]
    assert len(np.unique(result.thresholds[LAMP_UNIT])) > 1


class _StopAfter(torch.nn.Module):
    """Wraps a generator and raises KeyboardInterrupt at its ``calls``-th forward pass."""

    def __init__(self, generator: torch.nn.Module, calls: int) -> None:
        super().__init__()
        self.generator = generator
        self.z_dim = generator.z_dim
        self.calls = calls

    def forward(self, z):
        self.calls -= 1
        if self.calls == 0:
            raise KeyboardInterrupt
        return self.generator(z)


def _assert_same(a: DissectionResult, b: DissectionResult) -> None:
    for field in dataclasses.fields(DissectionResult):
        left, right = getattr(a, field.name), getattr(b, field.name)
        if isinstance(left, np.ndarray):
            np.testing.assert_array_equal(left, right, err_msg=field.name)
        elif field.name != "params":
            assert left == right, field.name


def test_resume_after_interruptions_equals_an_uninterrupted_run(scenes, tmp_path):
    options = {"num_samples": 60, "thresholds": "maxiou", "selection_samples": 40}
    segmenter = PaletteSegmenter()
    whole = dissect(Subject.build(scenes, segmenter, batch_size=20), "layer2", **options)
    checkpoint = tmp_path / "progress.ckpt"
    stopper = _StopAfter(scenes, 10**9).eval()
    stopped = Subject.build(stopper, segmenter, batch_size=20)
    # each attempt runs the probe and two batches, then is interrupted: 10 batches in 4 passes
    interruptions = 0
    while True:
        try:
            stopper.calls = 4
            resumed = dissect(
                stopped, "generator.layer2", checkpoint=Checkpoint(checkpoint, 0), **options
            )
            break
        except KeyboardInterrupt:
            interruptions += 1
            assert checkpoint.is_file()
    assert interruptions == 4
    resumed.layer = "layer2"
    _assert_same(resumed, whole)
    with pytest.raises(ConfigError, match="other settings"):
        dissect(
            Subject.build(_StopAfter(scenes, 10**9).eval(), segmenter, batch_size=20),
            "generator.layer2",
            checkpoint=checkpoint,
            **{**options, "num_samples": 61},
        )


def test_results_round_trip_through_json(planted, tmp_path):
    save_dissection(tmp_path / "dissection.json", planted)
    loaded = load_dissection(tmp_path)
    assert list(loaded) == ["layer1", "layer2"]
    for name, result in planted.items():
        _assert_same(loaded[name], result)
    layer2 = loaded["layer2"]
    assert layer2.unit_records()[LAMP_UNIT]["concept"] == "lamp"
    torch.testing.assert_close(
        layer2.latents(layer2.top_samples[LAMP_UNIT][:2]),
        latents(0, layer2.top_samples[LAMP_UNIT][:2].tolist(), (16,)),
    )
    with pytest.raises(InputError, match="no concept 'people'"):
        layer2.units_for("people")
    older = layer2.to_dict()
    del older["ceiling_at_quantile"]  # a result saved before it was measured
    assert np.isnan(DissectionResult.from_dict(older).ceiling_at_quantile).all()
    assert layer2.ceiling_at_quantile.tolist() == planted["layer2"].ceiling_at_quantile.tolist()


def test_clear_errors_for_models_that_do_not_fit(scenes):
    segmenter = PaletteSegmenter()
    subject = Subject.build(scenes, segmenter)
    with pytest.raises(InputError, match="dissect takes one layer name, got \\['layer1'\\]"):
        dissect(subject, ["layer1"], num_samples=4)
    with pytest.raises(InputError, match=r"no layer 'layr2'; did you mean layer2"):
        dissect(subject, "layr2", num_samples=4)

    class HalfSizeSegmenter(torch.nn.Module):  # labels a quarter of the pixels
        concepts = ("sky", "road")

        def forward(self, images):
            return torch.zeros(images.shape[0], 2, 16, 16)

    with pytest.raises(InputError, match=r"segmenter returned shape \(2, 2, 16, 16\) for images"):
        Subject.build(scenes, HalfSizeSegmenter())

    class FlatGenerator(torch.nn.Module):
        z_dim = 4

        def __init__(self):
            super().__init__()
            self.layer = torch.nn.ConvTranspose2d(4, 3, 4)

        def forward(self, z):
            return self.layer(z[:, :, None, None]).flatten(1)

    with pytest.raises(InputError, match=r"FlatGenerator returned \(16, 48\) for latents of shape"):
        Subject.build(FlatGenerator().eval(), segmenter)

    class LinearGenerator(torch.nn.Module):
        z_dim = 4

        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 3 * 8 * 8)

        def forward(self, z):
            return torch.tanh(self.fc(z)).view(-1, 3, 8, 8)

    with pytest.raises(InputError, match=r"layer 'fc' outputs shape \(2, 192\); dissection needs"):
        dissect(Subject.build(LinearGenerator().eval(), segmenter), "fc", num_samples=4)
    with pytest.raises(InputError, match="no list of concept names"):
        Subject.build(scenes, lambda images: images[:, 0].long())
    no_z = torch.nn.Sequential(torch.nn.ConvTranspose2d(4, 3, 4))
    with pytest.raises(InputError, match="cannot tell the latent shape"):
        Subject.build(no_z, segmenter)
    with pytest.raises(ConfigError, match="quantile must lie in"):
        dissect(subject, "layer2", quantile=1.5)
