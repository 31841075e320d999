"""Is streaming dissection exact, and does it find what is there and nothing else?

Run from the repository root::

    python -m benchmarks.dissect_checks

Exact (64 px, 500 samples, batches of 50):
- thresholds against the exact 0.99 quantile of all upsampled activations held in memory
  (worst relative error, and the sketch's stated bound);
- IoU and pixel counts against a brute-force computation at the same thresholds;
- two processes (gloo, started by torchrun), each dissecting every other batch and merging,
  against one process;
- a run interrupted four times and resumed from its checkpoint, against an uninterrupted one.

Found:
- a generator with a planted lamp unit (the lamp mask area-averaged to its 16 x 16 layer),
  segmented exactly: the unit's label, IoU, the layer's lamp ceiling and the fraction reached,
  with top-quantile and with maxiou thresholds (also its planted building unit, whose saturated
  activation only a threshold of its own can separate, and its 14 noise units);
- an untrained DCGAN of the shipped shape, segmented exactly by hue: the best IoU per layer;
- the planted generator's layer with every unit shown another sample's map: the best IoU.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gan_dissect.dissection import (
    Checkpoint,
    DissectionResult,
    dissect,
    dissect_layers,
    load_dissection,
)
from gan_dissect.hooks import trace
from gan_dissect.streams import latents
from gan_dissect.subject import Subject
from gan_dissect.synthetic import (
    DCGANStandIn,
    HueSegmenter,
    LampScenes,
    PaletteSegmenter,
    ShuffledUnits,
)

SAMPLES, BATCH = 500, 50


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _brute_force(generator, segmenter, layer, result: DissectionResult) -> dict[str, float]:
    z = latents(0, range(SAMPLES), result.z_shape)
    with torch.inference_mode(), trace(generator, layer, clone=True) as record:
        images = generator(z)
    labels = segmenter(images).argmax(1).reshape(-1).numpy()
    up = F.interpolate(record.output, size=images.shape[-2:], mode="bilinear", align_corners=False)
    flat = up.transpose(0, 1).reshape(result.units, -1).double().numpy()
    exact = np.sort(flat, axis=1)[:, math.ceil(0.99 * flat.shape[1]) - 1]
    relative = np.abs(result.unit_thresholds - exact) / np.maximum(np.abs(exact), 1e-30)
    above = flat > result.unit_thresholds.astype(np.float32)[:, None]
    worst_iou, counts_equal = 0.0, True
    for c in range(len(result.concepts)):
        inside = labels == c
        intersection = (above & inside).sum(1)
        iou = intersection / np.maximum((above | inside).sum(1), 1)
        worst_iou = max(worst_iou, float(np.abs(iou - result.iou[:, c]).max()))
        counts_equal &= bool((intersection == result.intersection[:, c]).all())
    return {
        "threshold_relative_error": float(relative[np.abs(exact) > 2.0**-30].max(initial=0.0)),
        "bound": result.quantile_error["relative"],
        "iou_error": worst_iou,
        "counts_equal": counts_equal,
    }


def _same(a: DissectionResult, b: DissectionResult) -> bool:
    for field in dataclasses.fields(DissectionResult):
        left, right = getattr(a, field.name), getattr(b, field.name)
        if field.name in ("params", "layer"):
            continue
        if field.name == "mean_activation_in_concept":
            if not np.allclose(left, right, rtol=1e-6, equal_nan=True):
                return False
        elif isinstance(left, np.ndarray):
            if not np.array_equal(left, right):
                return False
        elif left != right:
            return False
    return True


class _StopAfter(torch.nn.Module):
    def __init__(self, generator: torch.nn.Module, calls: int) -> None:
        super().__init__()
        self.generator, self.z_dim, self.calls = generator, generator.z_dim, calls

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.calls -= 1
        if self.calls == 0:
            raise KeyboardInterrupt
        return self.generator(z)


def exact() -> None:
    print(
        f"== exact: {SAMPLES} samples at 64 px, batches of {BATCH}  (load {os.getloadavg()[0]:.2f})"
    )
    cases = [
        ("planted scenes, layer2", LampScenes().eval(), PaletteSegmenter(), "layer2"),
        ("untrained DCGAN, pre-ReLU layer2.1", DCGANStandIn(), PaletteSegmenter(), "layer2.1"),
    ]
    for name, generator, segmenter, layer in cases:
        subject = Subject.build(generator, segmenter, batch_size=BATCH)
        result = dissect(subject, layer, num_samples=SAMPLES)
        check = _brute_force(generator, segmenter, layer, result)
        print(
            f"{name:36} threshold error {check['threshold_relative_error']:.2e} "
            f"(bound {check['bound']:.2e}); IoU error {check['iou_error']:.1e}; "
            f"pixel counts equal: {check['counts_equal']}"
        )
    common = [
        "dissect",
        "--generator",
        "gan_dissect.synthetic:LampScenes",
        "--segmenter",
        "gan_dissect.synthetic:PaletteSegmenter",
        "--layers",
        "layer1,layer2",
        "--num-samples",
        str(SAMPLES),
        "--batch-size",
        str(BATCH),
        "--report-units",
        "0",
        "--device",
        "cpu",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        # one thread per process in both runs (torchrun's default), so float rounding agrees
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        python = [sys.executable, "-m", "gan_dissect"]
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
        torchrun += ["--master-port", str(_free_port()), "-m", "gan_dissect"]
        subprocess.run([*python, *common, "--out", f"{scratch}/one"], env=env, check=True)
        subprocess.run([*torchrun, *common, "--out", f"{scratch}/two"], env=env, check=True)
        one, two = load_dissection(f"{scratch}/one"), load_dissection(f"{scratch}/two")
        merged = all(_same(one[name], two[name]) for name in one)
        print(f"2 processes merged == 1 process (layer1, layer2): {merged}")

        generator, segmenter = LampScenes().eval(), PaletteSegmenter()
        options: dict[str, Any] = {"num_samples": SAMPLES, "thresholds": "maxiou"}
        whole = dissect(Subject.build(generator, segmenter, batch_size=BATCH), "layer2", **options)
        checkpoint = Checkpoint(Path(scratch) / "progress.ckpt", 0)
        stopper = _StopAfter(generator, 10**9).eval()
        stopped = Subject.build(stopper, segmenter, batch_size=BATCH)
        interruptions = 0
        while True:
            try:
                stopper.calls = 9
                resumed = dissect(stopped, "generator.layer2", checkpoint=checkpoint, **options)
                break
            except KeyboardInterrupt:
                interruptions += 1
        print(
            f"resumed after {interruptions} interruptions == uninterrupted: {_same(resumed, whole)}"
        )


def found() -> None:
    print(f"== found: 1000 samples at 64 px  (load {os.getloadavg()[0]:.2f})")
    scenes = LampScenes().eval()
    for mode in ("quantile", "maxiou"):
        result = dissect(
            Subject.build(scenes, PaletteSegmenter(), batch_size=BATCH),
            "layer2",
            num_samples=1000,
            thresholds=mode,
        )
        lamp, building = result.concept_index("lamp"), result.concept_index("building")
        unit = result.units_for("lamp")[0]
        noise = np.delete(np.arange(result.units), [unit, 1])  # unit 1: the planted building
        best = result.best_concepts()[noise]
        noise_iou = result.iou[noise, best]
        worst = int(np.argmax(noise_iou))
        print(
            f"planted lamp unit ({mode:8}): unit {unit} labelled {result.label(unit)!r}, "
            f"IoU {result.iou[unit, lamp]:.3f}, ceiling {result.ceiling[lamp]:.3f}, "
            f"fraction {result.ceiling_fraction()[unit, lamp]:.3f}; planted building unit 1: "
            f"IoU {result.iou[1, building]:.3f}; the 14 noise units' best IoU "
            f"{noise_iou[worst]:.3f} ({result.concepts[best[worst]]}; chance IoU at its "
            f"threshold {result.chance_iou()[noise[worst], best[worst]]:.3f})"
        )
    untrained = dissect_layers(
        Subject.build(
            DCGANStandIn(seed=3),
            HueSegmenter(),
            layers=["layer1", "layer2", "layer3", "layer4"],
            batch_size=BATCH,
        ),
        num_samples=1000,
    )
    best = ", ".join(f"{name} {r.best_iou().max():.3f}" for name, r in untrained.items())
    print(f"untrained DCGAN + hue segmenter, best IoU per layer: {best} (floor 0.04)")
    shuffled = dissect(
        Subject.build(ShuffledUnits(scenes, "layer2").eval(), PaletteSegmenter(), batch_size=BATCH),
        "shuffled",
        num_samples=1000,
    )
    print(
        f"planted layer2 with units shuffled across samples: best IoU "
        f"{shuffled.best_iou().max():.3f} (floor 0.04)"
    )


if __name__ == "__main__":
    os.environ.setdefault("SEETHROUGH_PROGRESS", "0")
    torch.set_num_threads(2)
    exact()
    found()
    sys.exit(0)
