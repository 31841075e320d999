"""MMD-critic prototype selection: seethrough side by side with the PyPI package and the reference.

Run from the repository root::

    python -m benchmarks.mmd_speed                       # every case
    python -m benchmarks.mmd_speed --cases digits usps410 --repeats 5

Each (case, implementation) runs in its own Python process, so that one's peak memory cannot
hide another's: the process loads the data from a .npy file, does one small warm-up fit (thread
pools, lazy imports), records its peak RSS, then times ``repeats`` fits of ``m`` prototypes
(kernel and greedy together; the same gamma everywhere) and records its peak RSS again. Reported:
the best and median wall time, the peak RSS of the process and its growth during the timed fits
(the algorithm's own memory; ``import torch`` alone holds ~0.7 GB of RSS, most of it shared
library pages), whether the chosen prototypes equal the other implementations', and the machine
load (os.getloadavg) before each case.

Implementations:
- ``seethrough``: ``surrogate.mmd_critic.MMDCritic`` (float32 unless marked f64), blockwise.
- ``pypi``: the PyPI package ``mmd-critic`` 0.1.2 (``MMDCritic(X, RBFKernel(sigma))`` then its
  greedy; sigma = 1 / sqrt(2 gamma)), which builds the n x n float64 kernel.
- ``reference``: ``greedy_select_protos`` of github.com/BeenKim/MMD-critic on
  ``sklearn.metrics.pairwise.rbf_kernel``, as its ``run_digits.py`` does; it is used when its
  ``mmd.py`` is found in ``--reference`` (default /tmp/mmdref), and reported as absent otherwise.

The data: digits (1797 x 64); USPS-shaped 7291 x 256 and MNIST-shaped 60000 x 784 jittered
upsampled digits (benchmarks/mmd_data.py); 20000 x 64 standard normal. Gamma: the median
heuristic of each data set.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks import mmd_data


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    m: int
    implementations: tuple[str, ...]
    scale: bool = False  # baselines only with --baselines-at-scale (they need several GB)


CASES = (
    Case("digits", "digits 1797 x 64", 100, ("seethrough", "seethrough-f64", "pypi", "reference")),
    Case(
        "usps410",
        "USPS-shaped 7291 x 256",
        410,
        ("seethrough", "seethrough-f64", "pypi", "reference"),
    ),
    Case(
        "usps1000",
        "USPS-shaped 7291 x 256",
        1000,
        ("seethrough", "seethrough-f64", "pypi", "reference"),
    ),
    Case(
        "gauss20k", "random normal 20000 x 64", 100, ("seethrough", "pypi", "reference"), scale=True
    ),
    Case("mnist60k", "MNIST-shaped 60000 x 784", 100, ("seethrough",)),
)
BASELINES = ("pypi", "reference")


def _data(name: str) -> np.ndarray:
    if name == "digits":
        return mmd_data.digits()[0]
    if name.startswith("usps"):
        return mmd_data.usps_shaped()[0]
    if name == "gauss20k":
        return mmd_data.gaussian(20000, 64)
    return mmd_data.mnist_shaped()[0]


# ------------------------------------------------------------------------ child process
def _peak_mb() -> float:
    """This process's peak RSS (VmHWM) in MB.

    ru_maxrss is not used: Linux carries it over from the parent across fork and exec, so a
    child of a large parent would report the parent's size.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child(args: argparse.Namespace) -> None:
    X = np.load(args.data)
    gamma, m = args.gamma, args.m
    if args.implementation.startswith("seethrough"):
        from surrogate.mmd_critic import MMDCritic

        dtype = "float64" if args.implementation.endswith("f64") else "float32"

        def select(points: np.ndarray, k: int) -> np.ndarray:
            fit = MMDCritic(k, gamma=gamma, dtype=dtype, device="cpu").fit(points)
            return fit.prototype_indices_

    elif args.implementation == "pypi":
        from mmd_critic import MMDCritic as PyPIMMDCritic
        from mmd_critic.kernels import RBFKernel

        def select(points: np.ndarray, k: int) -> np.ndarray:
            critic = PyPIMMDCritic(points, RBFKernel(sigma=1.0 / np.sqrt(2.0 * gamma)))
            # select_prototypes returns rows, not indices; it runs exactly this greedy.
            return critic._greedy_select_protos(critic.prot_K, np.arange(len(points)), k)

    else:
        sys.path.insert(0, str(args.reference))
        from mmd import greedy_select_protos  # the reference code's mmd.py
        from sklearn.metrics.pairwise import rbf_kernel

        def select(points: np.ndarray, k: int) -> np.ndarray:
            kernel = rbf_kernel(points, gamma=gamma)
            return greedy_select_protos(kernel, np.arange(len(points)), k)

    select(X[:300], 5)  # warm-up: thread pools, lazy imports
    before = _peak_mb()
    times, chosen = [], np.empty(0)
    for _ in range(args.repeats):
        start = time.perf_counter()
        chosen = select(X, m)
        times.append(time.perf_counter() - start)
    after = _peak_mb()
    print(
        json.dumps(
            {
                "times": times,
                "peak_mb": after,
                "growth_mb": after - before,
                "indices": [int(i) for i in chosen],
            }
        )
    )


# ------------------------------------------------------------------------ parent process
def _run_child(
    implementation: str,
    data: Path,
    case: Case,
    gamma: float,
    repeats: int,
    args: argparse.Namespace,
) -> dict:
    env = dict(os.environ, SEETHROUGH_PROGRESS="0")
    if args.omp_wait_policy:
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy
    command = [
        sys.executable, "-m", "benchmarks.mmd_speed", "--child", implementation,
        "--data", str(data), "--m", str(case.m), "--gamma", repr(gamma),
        "--repeats", str(repeats), "--reference", str(args.reference),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr else "failed"}
    report: dict = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("SEETHROUGH_PROGRESS", "0")  # tables only, no progress bars
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--cases", nargs="*", default=[c.name for c in CASES])
    parser.add_argument(
        "--implementations",
        nargs="*",
        default=["seethrough", "seethrough-f64", "pypi", "reference"],
        help="which implementations to run (where a case has them)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed fits of seethrough")
    parser.add_argument("--baseline-repeats", type=int, default=1, help="timed fits of baselines")
    parser.add_argument("--reference", type=Path, default=Path("/tmp/mmdref"))
    parser.add_argument(
        "--baselines-at-scale",
        action="store_true",
        help="also run the n x n baselines on 20000 x 64 (3.3 and 6.4 GB)",
    )
    parser.add_argument(
        "--omp-wait-policy",
        default="PASSIVE",
        help="OMP_WAIT_POLICY for the child processes (PASSIVE keeps torch's OpenMP threads "
        "from spinning when other work shares the cores; empty: leave unset)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    # Child-process options.
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--implementation", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--m", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--gamma", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.implementation = args.child
        _child(args)
        return

    from surrogate.mmd_critic import median_heuristic_gamma

    reference_present = (args.reference / "mmd.py").is_file()
    print(f"cores: {os.cpu_count()}, OMP_WAIT_POLICY={args.omp_wait_policy or 'unset'}")
    if not reference_present:
        print(
            f"reference column skipped: {args.reference}/mmd.py not found (copy mmd.py of "
            "github.com/BeenKim/MMD-critic there to compare with it)"
        )
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for case in CASES:
            if case.name not in args.cases:
                continue
            X = _data(case.name)
            path = Path(folder) / f"{case.name}.npy"
            np.save(path, X)
            gamma = median_heuristic_gamma(X)
            results: dict[str, dict] = {}
            for implementation in case.implementations:
                if implementation not in args.implementations:
                    continue
                baseline = implementation in BASELINES
                if implementation == "reference" and not reference_present:
                    results[implementation] = {"skipped": "reference code not found"}
                    continue
                if baseline and case.scale and not args.baselines_at_scale:
                    gb = 8 * len(X) ** 2 / 1e9
                    results[implementation] = {
                        "skipped": f"n x n float64 kernel ({gb:.1f} GB); --baselines-at-scale"
                    }
                    continue
                load = os.getloadavg()
                repeats = args.baseline_repeats if baseline else args.repeats
                report = _run_child(implementation, path, case, gamma, repeats, args)
                report["load"] = load
                results[implementation] = report
                _print_result(case, implementation, report)
            if case.name == "mnist60k":
                gb = 8 * len(X) ** 2 / 1e9
                print(f"  pypi, reference: not run, an n x n float64 kernel is {gb:.1f} GB")
            _print_agreement(results)
            rows.append(
                {"case": case.name, "description": case.description, "m": case.m, "n": len(X),
                 "d": X.shape[1], "gamma": gamma, "results": results}
            )  # fmt: skip
            del X
    _print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def _print_result(case: Case, implementation: str, report: dict) -> None:
    if "error" in report:
        print(f"{case.name:9s} {implementation:15s} FAILED: {report['error']}")
        return
    times = report["times"]
    print(
        f"{case.name:9s} {implementation:15s} m={case.m:<5d} best {min(times):8.3f} s  "
        f"median {np.median(times):8.3f} s  peak RSS {report['peak_mb']:7.0f} MB  "
        f"growth {report['growth_mb']:7.0f} MB  load {report['load'][0]:.2f}",
        flush=True,
    )


def _print_agreement(results: dict[str, dict]) -> None:
    picks = {k: v["indices"] for k, v in results.items() if "indices" in v}
    names = list(picks)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            same = picks[a] == picks[b]
            print(f"  same prototypes, same order: {a} vs {b}: {'yes' if same else 'NO'}")


def _print_table(rows: list[dict]) -> None:
    print(
        "\n| case | m | seethrough (s) | PyPI (s) | speed-up vs PyPI | reference (s) | speed-up"
        " vs reference | seethrough peak RSS / growth (MB) | PyPI growth (MB) | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        results = row["results"]
        ours = results.get("seethrough", {})
        if "times" not in ours:
            continue
        best = min(ours["times"])

        def cell(name: str, ours_best: float = best, results: dict = results) -> tuple[str, ...]:
            other = results.get(name, {})
            if "times" not in other:
                return "-", "-", "-"
            theirs = min(other["times"])
            return f"{theirs:.3f}", f"{theirs / ours_best:.0f}x", f"{other['growth_mb']:.0f}"

        pypi_time, pypi_ratio, pypi_growth = cell("pypi")
        ref_time, ref_ratio, _ = cell("reference")
        print(
            f"| {row['description']} | {row['m']} | {best:.3f} | {pypi_time} | {pypi_ratio} | "
            f"{ref_time} | {ref_ratio} | {ours['peak_mb']:.0f} / {ours['growth_mb']:.0f} | "
            f"{pypi_growth} | {ours['load'][0]:.2f} |"
        )


if __name__ == "__main__":
    main()
