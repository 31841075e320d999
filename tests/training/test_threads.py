"""Thread settings are chosen once, before torch starts, and recorded with every run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_seethrough_makes_openmp_wait_passively_unless_told_otherwise():
    code = "import surrogate.lime, os; print(os.environ['OMP_WAIT_POLICY'])"
    assert _python(code) == "PASSIVE"
    assert _python(code, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"


def test_every_run_records_its_thread_settings(tmp_path):
    out = tmp_path / "run"
    code = (
        "from surrogate.__main__ import main; import sys; "
        f"sys.exit(main(['tree', '--data', 'iris', '--max-depth', '1', '--oracle-samples', '0', "
        f"'--curve-depths', '1', '--out', {str(out)!r}]))"
    )
    _python(code, SEETHROUGH_PROGRESS="0")
    threads = json.loads((out / "run.json").read_text())["threads"]
    assert threads["omp_wait_policy"] == "PASSIVE"
    assert threads["cpu_count"] == os.cpu_count()
    assert threads["torch_threads"] is None or threads["torch_threads"] >= 1
