from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from training.runs import RUN_FILE, RunFolder, RunFolderBusy, read_run


def test_finished_run_records_config_seed_command_and_versions(tmp_path):
    out = tmp_path / "run"
    with RunFolder(
        out, config={"alpha": 0.5, "path": tmp_path}, seed=7, command=["x", "a b"]
    ) as run:
        run.write_json("results.json", {"value": 1.5})
        assert not out.exists(), "nothing may appear at out before the run finishes"
    record = read_run(out)
    assert record["seed"] == 7
    assert record["config"] == {"alpha": 0.5, "path": str(tmp_path)}
    assert record["command"] == "x 'a b'"
    assert record["versions"]["torch"] != "not installed"
    assert json.loads((out / "results.json").read_text()) == {"value": 1.5}


def _write_then_fail(out, error: BaseException, seed: int = 0) -> None:
    with RunFolder(out, seed=seed, overwrite=True) as run:
        run.write_text("result.txt", "half-way")
        raise error


def test_interrupted_run_leaves_the_previous_result_untouched(tmp_path):
    out = tmp_path / "run"
    with RunFolder(out, seed=1) as run:
        run.write_text("result.txt", "first")
    with pytest.raises(KeyboardInterrupt):
        _write_then_fail(out, KeyboardInterrupt(), seed=2)
    assert (out / "result.txt").read_text() == "first"
    assert read_run(out)["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"], "staging must be cleaned up"


def test_a_failed_first_run_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="boom"):
        _write_then_fail(tmp_path / "run", ValueError("boom"))
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_a_run_of_ours_whole_and_leaves_nothing_beside_it(tmp_path):
    out = tmp_path / "run"
    with RunFolder(out) as run:
        run.write_text("old.txt", "x")
        run.write_text("units/a.txt", "x")
    with RunFolder(out, overwrite=True) as run:
        run.write_text("new.txt", "y")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt", RUN_FILE]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"], "no lock, staging or old copy"
    assert read_run(out)["files"] == {
        "new.txt": "a1fce4363854ff888cff4b8e7875d600c2682390412a8cf79b37d0b11148b0fa"
    }


def test_an_earlier_run_is_refused_without_overwrite(tmp_path):
    out = tmp_path / "run"
    with RunFolder(out, seed=1) as run:
        run.write_text("result.txt", "first")
    with pytest.raises(FileExistsError, match="pass --overwrite to replace it"), RunFolder(out):
        pytest.fail("the run must not start")
    assert (out / "result.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize("change", ["added", "edited", "added in a subfolder"])
def test_overwrite_never_deletes_a_file_the_run_did_not_write(tmp_path, change):
    out = tmp_path / "run"
    with RunFolder(out) as run:
        run.write_text("result.txt", "first")
    user_file = {
        "added": out / "notes.txt",
        "edited": out / "result.txt",
        "added in a subfolder": out / "mine" / "notes.txt",
    }[change]
    user_file.parent.mkdir(exist_ok=True)
    user_file.write_text("my own words")
    name = user_file.relative_to(out).as_posix()
    with (
        pytest.raises(FileExistsError, match=rf"--overwrite refused: .*\({name}\)"),
        RunFolder(out, overwrite=True),
    ):
        pytest.fail("the run must not start")
    assert user_file.read_text() == "my own words"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_run_folder_without_a_file_list_is_not_replaced(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / RUN_FILE).write_text(json.dumps({"command": "an older seethrough"}))
    (out / "mine.txt").write_text("x")
    with (
        pytest.raises(FileExistsError, match="does not list its files"),
        RunFolder(out, overwrite=True),
    ):
        pass
    assert (out / "mine.txt").is_file()


def _add_a_file_while_running(out) -> None:
    with RunFolder(out, overwrite=True) as run:
        run.write_text("result.txt", "second")
        (out / "notes.txt").write_text("written meanwhile")


def test_a_file_added_while_the_run_works_is_kept_and_the_results_too(tmp_path):
    out = tmp_path / "run"
    with RunFolder(out) as run:
        run.write_text("result.txt", "first")
    with pytest.raises(FileExistsError, match=r"notes\.txt.*results are in .*run\.new-"):
        _add_a_file_while_running(out)
    assert (out / "notes.txt").read_text() == "written meanwhile"
    assert (out / "result.txt").read_text() == "first"
    (kept,) = tmp_path.glob("run.new-*")
    assert (kept / "result.txt").read_text() == "second"


def test_a_second_run_on_the_same_out_fails_while_the_first_works(tmp_path):
    out = tmp_path / "run"
    first = RunFolder(out, seed=1)
    first.__enter__()
    first.write_text("result.txt", "first")
    with pytest.raises(RunFolderBusy, match=rf"another run \(process {os.getpid()}\) is writing"):
        RunFolder(out, seed=2, overwrite=True).__enter__()
    first.__exit__(None, None, None)
    assert read_run(out)["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    with RunFolder(out, seed=3, overwrite=True):  # the lock went with the first run
        pass
    assert read_run(out)["seed"] == 3


def test_stale_staging_folders_go_and_live_ones_stay(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    dead = tmp_path / f".run.staging-{finished.stdout.strip()}-abcd1234"
    alive = tmp_path / f".run.staging-{os.getppid()}-abcd1234"
    other = tmp_path / f".other.staging-{finished.stdout.strip()}-abcd1234"
    checkpoint = tmp_path / ".run.dissect-0123456789ab.ckpt"
    for folder in (dead, alive, other):
        (folder / "sub").mkdir(parents=True)
    checkpoint.write_bytes(b"progress")
    with RunFolder(tmp_path / "run"):
        pass
    assert not dead.exists()
    assert alive.is_dir()
    assert other.is_dir()
    assert checkpoint.is_file()


_HOLD_UNTIL_TERMINATED = """
import pathlib, sys, time
from training.runs import RunFolder
with RunFolder(sys.argv[1]) as run:
    run.write_text("half.txt", "half-way")
    pathlib.Path(sys.argv[2]).write_text("ready")
    time.sleep(60)
"""


def test_sigterm_removes_the_staging_folder_and_the_lock(tmp_path):
    out, ready = tmp_path / "runs" / "run", tmp_path / "ready"
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLD_UNTIL_TERMINATED, str(out), str(ready)],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.1)
    assert any(p.name.startswith(".run.staging-") for p in out.parent.iterdir())
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert list(out.parent.iterdir()) == [], "no staging folder, lock or output is left"


def test_refuses_to_replace_a_folder_that_is_not_a_run(tmp_path):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match="not a seethrough run"), RunFolder(precious):
        pass
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_non_finite_numbers_become_null(tmp_path):
    with RunFolder(tmp_path / "run") as run:
        run.write_json("x.json", {"nan": float("nan"), "inf": float("inf"), "ok": 1.0})
    assert json.loads((tmp_path / "run" / "x.json").read_text()) == {
        "nan": None,
        "inf": None,
        "ok": 1.0,
    }
