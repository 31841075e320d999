"""Does seethrough's MMD-critic pick exactly what the reference code and the PyPI package pick?

Run from the repository root::

    python -m benchmarks.mmd_reference

On scikit-learn's digits (1797 x 64), for m in {10, 40, 100} prototypes and 20 criticisms,
global and local, at three gammas (the median heuristic, 1e-3, 1e-2), compares the indices, in
order, chosen by:

- seethrough ``MMDCritic`` in float64 and in float32;
- the reference code, github.com/BeenKim/MMD-critic (``greedy_select_protos`` and
  ``select_criticism_regularized`` of its ``mmd.py``, found in ``--reference``, default
  /tmp/mmdref; the column is skipped with a message when it is absent) on
  ``sklearn.metrics.pairwise.rbf_kernel``; for the local kernel, that kernel times the
  same-class indicator, as its ``calculate_kernel_individual`` builds it (the reference also
  sorts the points by label first, which only renumbers them; here they keep their order);
- the PyPI package ``mmd-critic`` 0.1.2 (global only: it has no class-local kernel), whose
  criticisms drop the log-det term; they are compared with the reference's "logdet" and "None"
  criticisms.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from benchmarks import mmd_data
from surrogate.mmd_critic import MMDCritic, median_heuristic_gamma

M_VALUES = (10, 40, 100)
N_CRITICISMS = 20


def _pypi(X: np.ndarray, gamma: float, m: int) -> tuple[np.ndarray, np.ndarray]:
    from mmd_critic import MMDCritic as PyPIMMDCritic
    from mmd_critic.kernels import RBFKernel

    critic = PyPIMMDCritic(X, RBFKernel(sigma=1.0 / np.sqrt(2.0 * gamma)))
    prototypes = critic._greedy_select_protos(critic.prot_K, np.arange(len(X)), m)
    rows, _ = critic.select_criticisms(N_CRITICISMS, X[prototypes])
    index_of = {row.tobytes(): i for i, row in enumerate(X)}  # digits has no duplicate rows
    return prototypes, np.array([index_of[row.tobytes()] for row in rows])


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("SEETHROUGH_PROGRESS", "0")  # tables only, no progress bars
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--reference", type=Path, default=Path("/tmp/mmdref"))
    args = parser.parse_args(argv)
    X, y = mmd_data.digits()
    reference = None
    if (args.reference / "mmd.py").is_file():
        sys.path.insert(0, str(args.reference))
        import mmd as reference  # the reference code's mmd.py
        from sklearn.metrics.pairwise import rbf_kernel
    else:
        print(
            f"reference column skipped: {args.reference}/mmd.py not found (copy mmd.py of "
            "github.com/BeenKim/MMD-critic there to compare with it)"
        )
    print("| gamma | kernel | m | f64 = ref protos | f64 = ref crits (logdet) | f64 = ref crits "
          "(none) | f32 = ref protos, crits | PyPI = ref protos | PyPI crits = ref logdet | "
          "PyPI crits = ref none |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    mismatches = 0
    for gamma in (median_heuristic_gamma(X), 1e-3, 1e-2):
        kernels = {}
        if reference is not None:
            full = rbf_kernel(X, gamma=gamma)
            kernels = {"global": full, "local": full * (y[:, None] == y[None, :])}
        for scope in ("global", "local"):
            for m in M_VALUES:
                ours = {}
                for dtype in ("float64", "float32"):
                    for regularizer in ("logdet", "none"):
                        ours[dtype, regularizer] = MMDCritic(
                            m, N_CRITICISMS, gamma=gamma, local=scope == "local",
                            regularizer=regularizer, dtype=dtype, device="cpu",
                        ).fit(X, y)  # fmt: skip
                cells = ["-"] * 7
                if reference is not None:
                    K = kernels[scope]
                    protos = reference.greedy_select_protos(K, np.arange(len(X)), m)
                    crits = {
                        reg: reference.select_criticism_regularized(
                            K, protos, N_CRITICISMS, reg=reg, is_K_sparse=False
                        )
                        for reg in ("logdet", "None")
                    }
                    f64, f32 = ours["float64", "logdet"], ours["float32", "logdet"]
                    checks = [
                        np.array_equal(f64.prototype_indices_, protos),
                        np.array_equal(f64.criticism_indices_, crits["logdet"]),
                        np.array_equal(ours["float64", "none"].criticism_indices_, crits["None"]),
                        np.array_equal(f32.prototype_indices_, protos)
                        and np.array_equal(f32.criticism_indices_, crits["logdet"]),
                    ]
                    mismatches += checks.count(False)
                    cells[:4] = ["yes" if c else "NO" for c in checks]
                    if scope == "global":
                        pypi_protos, pypi_crits = _pypi(X, gamma, m)
                        cells[4:] = [
                            "yes" if np.array_equal(a, b) else "no"
                            for a, b in (
                                (pypi_protos, protos),
                                (pypi_crits, crits["logdet"]),
                                (pypi_crits, crits["None"]),
                            )
                        ]
                print(f"| {gamma:.4g} | {scope} | {m} | " + " | ".join(cells) + " |", flush=True)
    if reference is not None:
        print(f"\nseethrough vs reference: {mismatches} mismatches")


if __name__ == "__main__":
    main()
