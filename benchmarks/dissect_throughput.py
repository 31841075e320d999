"""Dissection throughput and peak memory on a CPU, on stand-ins of the shipped models' shape.

Run from the repository root::

    python -m benchmarks.dissect_throughput                          # layer3, 1k and 10k samples
    python -m benchmarks.dissect_throughput --layers layer1 layer2 layer3 layer4 --samples 1000

The generator is an untrained DCGAN of the shipped one's shape (``--generator-width 64``: z 128
-> 512@4, 256@8, 128@16, 64@32 -> 3@64 px; width 32 halves every layer) and the segmenter an
untrained U-Net of the shipped one's size (8 concepts at 64 px); weights do not change the work
done, so speed and memory are those of the shipped pair.
A full dissection of one layer is timed: the quantile pass and the IoU pass over all samples
(the generator runs twice per sample, the segmenter once), from the first batch to the result.
Throughput is samples per minute of that whole run.

Each (layer, samples) case runs in its own Python process with ``--threads`` torch threads
(2 by default), so its peak RSS (``ru_maxrss``) is its own: reported are the peak RSS after a
warm-up dissection of 100 samples (imports, thread pools, allocator) and at the end; their
difference is what the dissection of N samples added, which must not grow with N. "stats MB" is
the size of the saved statistics (sketch, top-k, IoU, ceiling and concept-mean state) at the
end. The machine load (``os.getloadavg``) is printed before and after each case: throughput
falls with load. The measured processes run with ``OMP_WAIT_POLICY=PASSIVE`` (change with
``--omp-wait-policy``): on a machine busy with other work, torch's default of spinning threads
that wait for each other made 2 threads several times slower than 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child(layer: str, samples: int, batch_size: int, threads: int, width: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    from gan_dissect.dissection import Checkpoint, dissect
    from gan_dissect.subject import Subject
    from gan_dissect.synthetic import DCGANStandIn, UNetStandIn

    subject = Subject.build(DCGANStandIn(width=width), UNetStandIn(), batch_size=batch_size)
    dissect(subject, layer, num_samples=100)  # warm-up
    rss_warm = _peak_rss_mb()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        state = Path(scratch) / "state.ckpt"
        started = time.perf_counter()
        result = dissect(
            subject,
            layer,
            num_samples=samples,
            # written only when a pass ends: the final statistics
            checkpoint=Checkpoint(state, math.inf),
        )
        seconds = time.perf_counter() - started
        state_mb = state.stat().st_size / 2**20
    return {
        "layer": layer,
        "units": result.units,
        "samples": samples,
        "seconds": seconds,
        "samples_per_minute": samples / seconds * 60.0,
        "rss_after_warmup_mb": rss_warm,
        "rss_peak_mb": _peak_rss_mb(),
        "statistics_mb": state_mb,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", nargs="+", default=["layer3"])
    parser.add_argument("--samples", nargs="+", type=int, default=[1000, 10000])
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--generator-width", type=int, default=64, help="64: the shipped one")
    parser.add_argument(
        "--omp-wait-policy",
        default="PASSIVE",
        help="OMP_WAIT_POLICY of the measured processes ('' leaves it unset)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        row = _child(
            args.layers[0], args.samples[0], args.batch_size, args.threads, args.generator_width
        )
        print(json.dumps(row))
        return 0
    env = {**os.environ, "SEETHROUGH_PROGRESS": "0"}
    if args.omp_wait_policy:
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy
    print(
        f"generator width {args.generator_width}, torch threads {args.threads}, "
        f"OMP_WAIT_POLICY={env.get('OMP_WAIT_POLICY', '(unset)')}"
    )
    print(
        f"{'layer':7} {'units':>5} {'samples':>8} {'seconds':>8} {'samples/min':>11} "
        f"{'RSS warm MB':>11} {'RSS peak MB':>11} {'added MB':>8} {'stats MB':>8}  "
        "load 1-min before/after"
    )
    for layer in args.layers:
        for samples in args.samples:
            command = [
                sys.executable,
                "-m",
                "benchmarks.dissect_throughput",
                "--child",
                "--layers",
                layer,
                "--samples",
                str(samples),
                "--batch-size",
                str(args.batch_size),
                "--threads",
                str(args.threads),
                "--generator-width",
                str(args.generator_width),
            ]
            output = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            row = json.loads(output.stdout.strip().splitlines()[-1])
            print(
                f"{row['layer']:7} {row['units']:5d} {row['samples']:8d} {row['seconds']:8.1f} "
                f"{row['samples_per_minute']:11.0f} {row['rss_after_warmup_mb']:11.0f} "
                f"{row['rss_peak_mb']:11.0f} "
                f"{row['rss_peak_mb'] - row['rss_after_warmup_mb']:8.0f} "
                f"{row['statistics_mb']:8.2f}  "
                f"{row['load_before'][0]:.2f} / {row['load_after'][0]:.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
