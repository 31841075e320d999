from __future__ import annotations

import json

import pytest

from training.runs import RUN_FILE, RunFolder, read_run


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
    with RunFolder(out, seed=seed) as run:
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


def test_rerun_replaces_the_whole_folder(tmp_path):
    out = tmp_path / "run"
    with RunFolder(out) as run:
        run.write_text("old.txt", "x")
    with RunFolder(out) as run:
        run.write_text("new.txt", "y")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt", RUN_FILE]


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
