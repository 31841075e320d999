"""Scale-out with a standard launcher: ``torchrun --nproc-per-node 2`` on the CPU (gloo).

Each test starts torchrun in a subprocess on a free port and compares what the two processes
wrote with what one process writes: the same bytes (the number of processes is recorded in
run.json, not in the results).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.distributed

ROOT = Path(__file__).resolve().parents[2]
MODELS = [
    "--generator",
    "gan_dissect.synthetic:LampScenes",
    "--segmenter",
    "gan_dissect.synthetic:PaletteSegmenter",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(argv: list[str], processes: int = 1) -> subprocess.CompletedProcess[str]:
    """``python ARGV`` alone, or under ``torchrun --nproc-per-node PROCESSES``; one thread per
    process either way, so that the generator's float rounding is the same."""
    launcher = [
        "-m",
        "torch.distributed.run",  # the torchrun command, from this interpreter
        "--nproc-per-node",
        str(processes),
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, *(launcher if processes > 1 else []), *argv]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_torchrun_writes_the_dissection_one_process_writes(tmp_path):
    """Two gloo processes each dissect every other batch and merge their statistics; rank 0
    alone writes --out. maxiou exercises all four passes and their merges."""
    common = [
        "-m", "gan_dissect", "dissect", *MODELS, "--layers", "layer1,layer2",
        "--num-samples", "50", "--batch-size", "10", "--thresholds", "maxiou",
        "--selection-samples", "30", "--report-units", "1", "--device", "cpu",
    ]  # fmt: skip
    _run([*common, "--out", str(tmp_path / "one")])
    _run([*common, "--out", str(tmp_path / "two")], processes=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # nothing else written
    one = json.loads((tmp_path / "one" / "dissection.json").read_text())
    two = json.loads((tmp_path / "two" / "dissection.json").read_text())
    assert list(one["layers"]) == list(two["layers"]) == ["layer1", "layer2"]
    # byte for byte: thresholds, IoUs, counts, ceilings, top samples and the float64 mean
    # activations (each batch's sums added in batch order, as one process adds them)
    one_bytes = (tmp_path / "one" / "dissection.json").read_bytes()
    assert one_bytes == (tmp_path / "two" / "dissection.json").read_bytes()
    assert one["layers"]["layer2"]["units"][5]["concept"] == "lamp"
    runs = [json.loads((tmp_path / n / "run.json").read_text()) for n in ("one", "two")]
    assert [run["processes"] for run in runs] == [1, 2]  # how it ran: in run.json, not results
    assert runs[1]["threads"]["torch_threads"] == 1  # recorded with every run


def test_measure_effect_under_torchrun_equals_one_process(tmp_path):
    """measure_effect and effect_curve from Python, inside the group torchrun starts: every
    rank returns the single-process result, bit for bit (per-batch sums replayed in order)."""
    script = tmp_path / "effect.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, sys
            import torch.distributed as dist
            from gan_dissect import Subject, UnitEdit, effect_curve, measure_effect
            from gan_dissect.distributed import group
            from gan_dissect.synthetic import DrawnLampScenes, PaletteSegmenter

            launched = "RANK" in __import__("os").environ
            if launched:
                dist.init_process_group("gloo")
            generator = DrawnLampScenes(size=32).eval()
            subject = Subject.build(generator, PaletteSegmenter(), batch_size=7)
            edit = UnitEdit("layer2", [9, 10, 11], on=3.0, region_name="everywhere")
            effect, examples = measure_effect(subject, edit, "lamp", num_samples=40, keep=9)
            orders = {"draw": [9, 10, 11]}
            curve = effect_curve(subject, "layer2", "lamp", orders, [1, 3], num_samples=20)
            record = {
                "effect": effect.to_dict(),
                "curve": curve.to_dict(),
                "examples": examples.before.sum().item(),
                "shown": list(examples.before.shape),
                "world": group()[1],
            }
            if group()[0] == 0:
                with open(sys.argv[1], "w") as out:
                    json.dump(record, out)
            if launched:
                dist.destroy_process_group()
            """
        )
    )
    _run([str(script), str(tmp_path / "one.json")])
    _run([str(script), str(tmp_path / "two.json")], processes=2)
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert (one.pop("world"), two.pop("world")) == (1, 2)
    assert one["effect"]["summary"]["removed_share"] == 1.0
    assert one["shown"] == [9, 3, 32, 32]
    assert json.dumps(one) == json.dumps(two)


@pytest.mark.slow
def test_the_multi_node_form_runs_as_two_nodes_on_one_machine(tmp_path):
    """README's multi-node command (--nnodes 2 --node-rank R --rdzv-endpoint HOST:PORT), with
    both "nodes" on this machine: one dissection between them, written once by global rank 0."""
    port = _free_port()
    command = [
        "-m", "gan_dissect", "dissect", *MODELS, "--layers", "layer2", "--num-samples", "30",
        "--batch-size", "10", "--report-units", "1", "--device", "cpu",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}

    def node(rank: int) -> list[str]:
        launcher = ["-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(rank)]
        launcher += ["--nproc-per-node", "1", "--rdzv-endpoint", f"127.0.0.1:{port}"]
        return [sys.executable, *launcher, *command, "--out", str(tmp_path / "two")]

    nodes = [
        subprocess.Popen(
            node(rank),
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    for started in nodes:
        _, errors = started.communicate(timeout=300)
        assert started.returncode == 0, errors[-3000:]
    _run([*command, "--out", str(tmp_path / "one")])
    one = json.loads((tmp_path / "one" / "dissection.json").read_text())["layers"]["layer2"]
    two = json.loads((tmp_path / "two" / "dissection.json").read_text())["layers"]["layer2"]
    assert json.dumps(one) == json.dumps(two)
