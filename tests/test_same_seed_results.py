"""The same seed gives byte-identical results: every command's result JSON, run twice.

Timings and thread counts belong to run.json (what happened), never to the results.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gan_dissect.__main__ import main as dissect_main
from surrogate.__main__ import main as surrogate_main

RUNS = [
    (
        surrogate_main,
        ["lime", "--num-samples", "300", "--instances", "0,1", "--sp-size", "4",
         "--sp-pick", "2", "--num-random", "2"],
        "explanations.json",
    ),
    (surrogate_main, ["prototypes", "--n-prototypes", "8", "--n-criticisms", "3"],
     "prototypes.json"),
    (surrogate_main, ["tree", "--data", "wine", "--max-depth", "2", "--oracle-samples", "3"],
     "tree.json"),
    (
        dissect_main,
        ["dissect", "--config", "configs/dissect_synthetic.yaml", "--num-samples", "64",
         "--report-units", "2"],
        "dissection.json",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("main", "argv", "result"), RUNS, ids=[run[2] for run in RUNS])
def test_same_seed_gives_byte_identical_results(main, argv, result, tmp_path, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # configs/ are named from the root
    first, second = tmp_path / "first", tmp_path / "second"
    assert main([*argv, "--seed", "3", "--out", str(first)]) == 0
    assert main([*argv, "--seed", "3", "--out", str(second)]) == 0
    assert (first / result).read_bytes() == (second / result).read_bytes()
