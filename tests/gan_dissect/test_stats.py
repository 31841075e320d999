from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan_dissect.stats import (
    CeilingTally,
    ConceptMeanTally,
    IoUTally,
    QuantileSketch,
    TopK,
    Upsampler,
    merge_across_processes,
)
from training.errors import InputError

LEVELS = [0.0, 0.001, 0.01, 0.25, 0.5, 0.9, 0.99, 0.995, 0.999, 1.0]


def _exact_quantiles(values: np.ndarray, levels: list[float]) -> np.ndarray:
    """The documented definition: the value of rank ceil(q * n) (NumPy's inverted_cdf)."""
    ordered = np.sort(values)
    ranks = [max(1, math.ceil(q * len(values))) for q in levels]
    exact = ordered[np.asarray(ranks) - 1]
    np.testing.assert_array_equal(exact, np.quantile(values, levels, method="inverted_cdf"))
    return exact


def _roundtrip(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _units_of_many_shapes(n: int = 40_000) -> torch.Tensor:
    rng = np.random.default_rng(0)
    units = [
        rng.standard_normal(n),  # negatives and positives
        np.maximum(rng.standard_normal(n), 0.0),  # half exact zeros, like a ReLU
        rng.standard_cauchy(n) * 1e3,  # heavy tails over many binades
        rng.uniform(0, 1, n) * 1e-12,  # everything below the zero floor
        np.exp(rng.uniform(-20, 20, n)),  # log-uniform over 17 decades
        np.full(n, 2.5),  # constant
        rng.integers(0, 4, n).astype(float),  # many ties on a few values
    ]
    return torch.tensor(np.stack(units), dtype=torch.float32)


def test_sketch_quantiles_are_within_the_stated_bound():
    values = _units_of_many_shapes()
    sketch = QuantileSketch()
    for chunk in values.split(3_001, dim=1):
        sketch.add(chunk)
    estimates = sketch.quantiles(LEVELS).numpy()
    worst = 0.0
    for unit, row in enumerate(values.double().numpy()):
        exact = _exact_quantiles(row, LEVELS)
        bound = np.maximum(sketch.relative_error * np.abs(exact), sketch.absolute_floor)
        error = np.abs(estimates[unit] - exact)
        assert (error <= bound).all(), (unit, error, bound)
        big = np.abs(exact) > 1e-6
        worst = max(worst, float((error[big] / np.abs(exact[big])).max(initial=0.0)))
    # the bound is not loose: some estimate uses a good part of it
    assert sketch.relative_error / 4 < worst <= sketch.relative_error
    assert sketch.relative_error == pytest.approx(2.0**-8)


def test_a_finer_sketch_has_a_tighter_bound():
    values = torch.randn(1, 20_000)
    coarse, fine = QuantileSketch(mantissa_bits=3), QuantileSketch(mantissa_bits=10)
    coarse.add(values)
    fine.add(values)
    exact = torch.tensor(_exact_quantiles(values[0].double().numpy(), [0.99]))
    assert abs(float(fine.quantiles(0.99)[0, 0] - exact)) <= 2.0**-11 * abs(float(exact))
    assert abs(float(coarse.quantiles(0.99)[0, 0] - exact)) <= 2.0**-4 * abs(float(exact))
    assert fine.counts.shape[1] > 64 * coarse.counts.shape[1]


def test_sketch_merge_of_parts_equals_the_whole_bit_for_bit():
    values = _units_of_many_shapes(20_000)
    whole = QuantileSketch()
    whole.add(values)
    parts = [QuantileSketch() for _ in range(3)]
    for i, chunk in enumerate(values[:, torch.randperm(values.shape[1])].split(777, dim=1)):
        parts[i % 3].add(chunk)  # any split, any order
    merged = QuantileSketch()
    for part in reversed(parts):
        merged.merge(part)
    restored = QuantileSketch()
    restored.load_state_dict(_roundtrip(merged.state_dict()))
    assert restored.count == whole.count
    start = whole.low - restored.low
    assert torch.equal(restored.counts[:, start : start + whole.counts.shape[1]], whole.counts)
    assert torch.equal(restored.quantiles(LEVELS), whole.quantiles(LEVELS))


def test_sketch_memory_does_not_grow_with_the_number_of_values():
    sketch = QuantileSketch()
    generator = torch.Generator().manual_seed(0)
    sketch.add(torch.rand(8, 1_000, generator=generator) / 2 + 1.0)
    size = sketch.counts.numel()
    for _ in range(50):
        sketch.add(torch.rand(8, 20_000, generator=generator) / 2 + 1.0)
    assert sketch.count == 1_001_000
    assert sketch.counts.numel() == size == 8 * 128  # one binade [1, 2) of 128 buckets


def test_sketch_rejects_nan_and_mismatched_units():
    sketch = QuantileSketch()
    with pytest.raises(InputError, match="NaN or infinite"):
        sketch.add(torch.tensor([[1.0, float("nan")]]))
    sketch.add(torch.ones(2, 3))
    with pytest.raises(InputError, match="expects 2 units"):
        sketch.add(torch.ones(3, 3))
    with pytest.raises(InputError, match="levels must lie in"):
        sketch.quantiles([1.5])


def test_topk_equals_a_full_sort_with_ties_to_the_smaller_index():
    generator = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 6, (300, 5), generator=generator).float()  # many ties
    indices = torch.arange(1000, 1300)
    topk = TopK(k=7)
    order = torch.randperm(300, generator=generator)
    for part in order.split(41):
        topk.add(scores[part], indices[part])
    for unit in range(5):
        expected = sorted(range(300), key=lambda i: (-scores[i, unit].item(), i))[:7]
        assert topk.indices[unit].tolist() == [1000 + i for i in expected]
        assert topk.values[unit].tolist() == [scores[i, unit].item() for i in expected]
    halves = TopK(k=7), TopK(k=7)
    halves[0].add(scores[:150], indices[:150])
    halves[1].add(scores[150:], indices[150:])
    halves[1].merge(halves[0])
    assert torch.equal(halves[1].indices, topk.indices)


def _brute_iou(acts: np.ndarray, labels: np.ndarray, thresholds: np.ndarray, concepts: int):
    units = acts.shape[0]
    flat = acts.reshape(units, -1)
    flat_labels = labels.reshape(-1)
    iou = np.zeros((units, thresholds.shape[1], concepts))
    for u in range(units):
        for k in range(thresholds.shape[1]):
            above = flat[u] > thresholds[u, k]
            for c in range(concepts):
                inside = flat_labels == c
                union = np.sum(above | inside)
                iou[u, k, c] = np.sum(above & inside) / union if union else 0.0
    return iou


def test_iou_tally_equals_brute_force_and_merges_exactly():
    generator = torch.Generator().manual_seed(2)
    acts = torch.rand(6, 10, 12, 12, generator=generator)  # unit-major (units, n, H, W)
    labels = torch.randint(-1, 4, (10, 12, 12), generator=generator)  # -1: no concept
    thresholds = torch.rand(6, 3, generator=generator)
    tally = IoUTally(thresholds, 4)
    tally.add(acts, labels)
    expected = _brute_iou(acts.numpy(), labels.numpy(), thresholds.numpy(), 4)
    np.testing.assert_allclose(tally.iou().numpy(), expected, rtol=0, atol=1e-12)
    assert tally.pixels == 10 * 12 * 12
    assert tally.concept_area.tolist() == [int((labels == c).sum()) for c in range(4)]
    parts = IoUTally(thresholds, 4), IoUTally(thresholds, 4)
    parts[0].add(acts[:, :4], labels[:4])
    parts[1].add(acts[:, 4:], labels[4:])
    parts[0].merge(parts[1])
    assert torch.equal(parts[0].intersection, tally.intersection)
    assert torch.equal(parts[0].unit_area, tally.unit_area)
    with pytest.raises(InputError, match="labels must lie in"):
        tally.add(acts, labels + 2)


def test_upsampler_matches_bilinear_interpolation():
    maps = torch.randn(3, 5, 4, 6)
    upsample = Upsampler((4, 6), (32, 48))
    expected = F.interpolate(maps, size=(32, 48), mode="bilinear", align_corners=False)
    torch.testing.assert_close(upsample(maps), expected, rtol=0, atol=2e-6)
    assert upsample(maps.transpose(0, 1)).shape == (5, 3, 32, 48)


def test_ceiling_is_high_for_what_the_layer_can_draw_and_low_for_what_it_cannot():
    labels = torch.zeros(4, 32, 32, dtype=torch.int64)
    labels[:, 8:24, 8:16] = 1  # a block of whole 8 x 8 cells of a 4 x 4 layer
    labels[:, 27, 3] = 2  # a single pixel
    coarse = CeilingTally(3, (4, 4), Upsampler((4, 4), (32, 32)))
    fine = CeilingTally(3, (16, 16), Upsampler((16, 16), (32, 32)))
    coarse.add(labels)
    fine.add(labels)
    coarse_best, level = coarse.ceiling()
    assert coarse_best[1] > 0.75
    assert 0 < level[1] < 1
    assert coarse_best[2] < 0.1 < fine.ceiling()[0][2]

    # brute force: the ideal unit (mask averaged to the grid, upsampled back) at every level
    masks = (labels[:, None] == torch.arange(3)[None, :, None, None]).float()
    ideal = F.interpolate(
        F.adaptive_avg_pool2d(masks, 4), size=(32, 32), mode="bilinear", align_corners=False
    )
    for c in range(3):
        ious = []
        for threshold in coarse.levels.tolist():
            above = ideal[:, c] > threshold
            inside = masks[:, c].bool()
            ious.append(int((above & inside).sum()) / max(int((above | inside).sum()), 1))
        assert coarse_best[c].item() == pytest.approx(max(ious), abs=1e-12)
    halves = CeilingTally(3, (4, 4), Upsampler((4, 4), (32, 32)))
    halves.add(labels[:2])
    other = CeilingTally(3, (4, 4), Upsampler((4, 4), (32, 32)))
    other.add(labels[2:])
    halves.merge(other)
    assert torch.equal(halves.iou(), coarse.iou())


def test_ceiling_at_the_units_share_cannot_cover_more_of_a_concept_than_that_share():
    """At the layer's own resolution the ideal unit is the mask itself (values 0 and 1): held
    to 1 % of the pixels it covers a third of a 3 % concept (IoU 1/3) and all of a 0.5 % one
    (IoU 1: covering less than the share is allowed; taking the full 1 % would give 1/2)."""
    labels = torch.zeros(1, 100, 100, dtype=torch.int64)
    labels[0, :30, :10] = 1  # 3 % of the pixels
    labels[0, 50:55, 50:60] = 2  # 0.5 %
    tally = CeilingTally(3, (100, 100), Upsampler((100, 100), (100, 100)))
    tally.add(labels)
    at_one_percent = tally.at_share(0.01)
    assert at_one_percent.tolist() == pytest.approx([0.01 / 0.965, 1 / 3, 1.0], abs=1e-12)
    assert tally.ceiling()[0][1:].tolist() == pytest.approx([1.0, 1.0])  # the best level
    assert tally.at_share(1.0).tolist() == pytest.approx([1.0, 1.0, 1.0])  # no limit
    assert tally.at_share(0.02)[1].item() == pytest.approx(2 / 3, abs=1e-12)
    with pytest.raises(InputError, match="share must lie in"):
        tally.at_share(0.0)


def test_concept_means_equal_means_of_the_upsampled_maps():
    generator = torch.Generator().manual_seed(3)
    raw = torch.randn(5, 7, 4, 6, generator=generator)  # (N, units, h, w)
    labels = torch.randint(-1, 3, (5, 32, 48), generator=generator)
    upsample = Upsampler((4, 6), (32, 48))
    tally = ConceptMeanTally(4, upsample)  # concept 3 never appears
    tally.add(raw[:2], labels[:2])
    rest = ConceptMeanTally(4, upsample)
    rest.add(raw[2:], labels[2:])
    tally.merge(rest)
    up = upsample(raw.transpose(0, 1)).reshape(7, -1).double()
    for c in range(3):
        inside = labels.reshape(-1) == c
        torch.testing.assert_close(tally.means()[:, c], up[:, inside].mean(1), rtol=1e-5, atol=1e-6)
    assert torch.isnan(tally.means()[:, 3]).all()


def test_merge_across_processes_without_a_group_is_the_identity():
    sketch = QuantileSketch()
    sketch.add(torch.ones(2, 2))
    assert merge_across_processes(sketch) is sketch
