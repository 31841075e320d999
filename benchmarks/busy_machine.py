"""A dissection and an MMD-critic fit on a quiet and on a busy machine.

Run from the repository root::

    python -m benchmarks.busy_machine                  # 3 rounds, about 6 minutes
    python -m benchmarks.busy_machine --rounds 5 --dissect-samples 500

"Busy" is another job with 2 torch threads (a float32 matrix product in a loop, started in its
own process and session, with the environment a user's own job would have: no OpenMP wait policy
chosen) running for the whole measurement. Each workload runs in a fresh Python process, as a
user runs it, in three conditions:

- ``quiet``: no other job, seethrough's default settings (``OMP_WAIT_POLICY=PASSIVE``, set on
  import by :mod:`training.threads`);
- ``busy``: the other job running, the same default settings;
- ``busy, spinning``: the other job running, ``OMP_WAIT_POLICY=ACTIVE`` (threads that spin while
  they wait: what the defaults were before seethrough chose the policy).

The workloads:

- ``dissection``: ``python -m gan_dissect dissect`` of the shipped GAN's layer3 (``--num-samples``
  samples, seed 0), timed from the start of the process to its exit (imports included);
- ``mmd-critic fit``: ``MMDCritic(100, gamma=median heuristic).fit(X)`` on the USPS-shaped
  7,291 x 256 set of :mod:`benchmarks.mmd_data`, the median of 5 fits after a warm-up fit, timed
  inside the process.

Rounds interleave the conditions (quiet, busy, busy spinning, quiet, ...) so that slow drifts of
the machine's load fall on all of them; reported are the medians over rounds, the ratio busy /
quiet (the target: at most 1.5) and the load average (``os.getloadavg``) seen before each run.
On a 2-core machine a busy run has at most half of the cores that a quiet run has.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_LOAD_JOB = """
import torch
torch.set_num_threads(2)
a = torch.randn(512, 512)
while True:
    a = torch.tanh(a @ a.T / 512.0)
"""

_MMD_CHILD = """
import json, statistics, time
from benchmarks.mmd_data import usps_shaped
from surrogate.mmd_critic import MMDCritic, median_heuristic_gamma
X = usps_shaped()[0].astype("float32")
gamma = median_heuristic_gamma(X)
MMDCritic(10, gamma=gamma).fit(X)
times = []
for _ in range(5):
    start = time.perf_counter()
    MMDCritic(100, gamma=gamma).fit(X)
    times.append(time.perf_counter() - start)
print(json.dumps({"seconds": statistics.median(times)}))
"""

CONDITIONS = ("quiet", "busy", "busy, spinning")


def _env(policy: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    env["SEETHROUGH_PROGRESS"] = "0"
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    return env


def _dissection(samples: int, policy: str | None, scratch: Path) -> float:
    out = scratch / f"dissect-{time.monotonic_ns()}"
    command = [
        sys.executable, "-m", "gan_dissect", "dissect", "--layers", "layer3",
        "--num-samples", str(samples), "--seed", "0", "--out", str(out),
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, env=_env(policy), check=True, capture_output=True)
    return time.perf_counter() - start


def _mmd_fit(policy: str | None) -> float:
    result = subprocess.run(
        [sys.executable, "-c", _MMD_CHILD],
        env=_env(policy),
        check=True,
        capture_output=True,
        text=True,
    )
    return float(json.loads(result.stdout.strip().splitlines()[-1])["seconds"])


def _start_load() -> subprocess.Popen[bytes]:
    job = subprocess.Popen(
        [sys.executable, "-c", _LOAD_JOB],
        env=_env(None),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(3.0)  # imports done, both threads computing
    return job


def _stop_load(job: subprocess.Popen[bytes]) -> None:
    os.killpg(job.pid, signal.SIGTERM)
    job.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dissect-samples", type=int, default=300)
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args()

    workloads = {
        "dissection": lambda policy, scratch: _dissection(args.dissect_samples, policy, scratch),
        "mmd-critic fit": lambda policy, scratch: _mmd_fit(policy),
    }
    seconds: dict[str, dict[str, list[float]]] = {w: {c: [] for c in CONDITIONS} for w in workloads}
    loads: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for round_ in range(args.rounds):
            for condition in CONDITIONS:
                job = _start_load() if condition != "quiet" else None
                policy = "ACTIVE" if condition == "busy, spinning" else None
                try:
                    loads[condition].append(os.getloadavg()[0])
                    for name, run in workloads.items():
                        took = run(policy, scratch)
                        seconds[name][condition].append(took)
                        print(
                            f"round {round_ + 1} {condition:15s} {name:15s} {took:8.3f} s",
                            flush=True,
                        )
                finally:
                    if job is not None:
                        _stop_load(job)
                time.sleep(2.0)  # let the load job's threads leave the cores

    print()
    print(f"{os.cpu_count()} cores; medians of {args.rounds} rounds; load average before the runs:")
    print("  " + ", ".join(f"{c} {statistics.median(v):.1f}" for c, v in loads.items()))
    print()
    print("| workload | quiet s | busy s | busy / quiet | busy, spinning s | spinning / quiet |")
    print("|---|---|---|---|---|---|")
    report: dict[str, Any] = {"cpu_count": os.cpu_count(), "rounds": args.rounds, "loads": loads}
    for name, by_condition in seconds.items():
        quiet, busy, spinning = (statistics.median(by_condition[c]) for c in CONDITIONS)
        print(
            f"| {name} | {quiet:.3f} | {busy:.3f} | {busy / quiet:.2f} | {spinning:.3f} "
            f"| {spinning / quiet:.2f} |"
        )
        report[name] = {
            "seconds": by_condition,
            "busy_ratio": busy / quiet,
            "spin_ratio": spinning / quiet,
        }
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
