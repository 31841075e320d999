from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch

from gan_dissect.__main__ import main
from gan_dissect.dissection import DissectionResult, load_dissection

pytestmark = pytest.mark.distributed


def test_two_processes_merge_to_the_single_process_dissection(tmp_path):
    """Two gloo processes each dissect every other batch; their merged statistics must give
    the numbers one process gets (maxiou exercises all four passes and their merges)."""
    common = [
        "dissect",
        "--generator",
        "gan_dissect.synthetic:LampScenes",
        "--segmenter",
        "gan_dissect.synthetic:PaletteSegmenter",
        "--layers",
        "layer1,layer2",
        "--num-samples",
        "50",
        "--batch-size",
        "10",
        "--thresholds",
        "maxiou",
        "--selection-samples",
        "30",
        "--report-units",
        "1",
        "--device",
        "cpu",
    ]
    # the reference uses the threads each spawned process gets, since a generator's float
    # rounding (not the statistics) can depend on the thread count
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // 2))
    try:
        assert main([*common, "--out", str(tmp_path / "one")]) == 0
    finally:
        torch.set_num_threads(threads)
    assert main([*common, "--processes", "2", "--out", str(tmp_path / "two")]) == 0
    one, two = load_dissection(tmp_path / "one"), load_dissection(tmp_path / "two")
    assert list(one) == list(two) == ["layer1", "layer2"]
    for name in one:
        assert two[name].params["processes"] == 2
        for field in dataclasses.fields(DissectionResult):
            left, right = getattr(one[name], field.name), getattr(two[name], field.name)
            if field.name == "mean_activation_in_concept":  # float32 sums, other thread counts
                np.testing.assert_allclose(left, right, rtol=1e-6)
            elif isinstance(left, np.ndarray):
                np.testing.assert_array_equal(left, right, err_msg=f"{name}.{field.name}")
            elif field.name != "params":
                assert left == right, f"{name}.{field.name}"
    assert one["layer2"].label(5) == "lamp"
