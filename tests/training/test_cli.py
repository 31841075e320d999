from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from training.cli import CommandSpec, run_cli


def _fake_command() -> types.ModuleType:
    module = types.ModuleType("fake_command")
    module.__doc__ = "Write the options it was given."

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--num-samples", type=int, default=10)
        parser.add_argument("--kernel", default="rbf")

    def run(args: argparse.Namespace, folder) -> None:
        folder.write_json("args.json", {"num_samples": args.num_samples, "kernel": args.kernel})

    module.add_arguments = add_arguments
    module.run = run
    sys.modules["fake_command"] = module
    return module


SPEC = CommandSpec("fake", "fake_command", "a test command")


def test_flags_win_over_config_and_config_over_defaults(tmp_path):
    _fake_command()
    config = tmp_path / "c.yaml"
    config.write_text("num-samples: 50\nkernel: linear\nseed: 3\n")
    out = tmp_path / "out"
    status = run_cli(
        "prog",
        "d",
        [SPEC],
        ["fake", "--config", str(config), "--kernel", "poly", "--out", str(out)],
    )
    assert status == 0
    assert json.loads((out / "args.json").read_text()) == {"num_samples": 50, "kernel": "poly"}
    record = json.loads((out / "run.json").read_text())
    assert record["seed"] == 3
    assert record["config"]["kernel"] == "poly"


def test_unknown_config_key_is_one_clear_error(tmp_path, capsys):
    _fake_command()
    config = tmp_path / "c.yaml"
    config.write_text("num_sample: 5\n")
    status = run_cli(
        "prog", "d", [SPEC], ["fake", "--config", str(config), "--out", str(tmp_path / "o")]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert "unknown option(s) num_sample" in err
    assert "num_samples" in err
    assert not (tmp_path / "o").exists()


def test_unknown_command_is_refused(capsys):
    assert run_cli("prog", "d", [SPEC], ["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("package", ["surrogate", "gan_dissect", "training"])
def test_help_of_each_package(package):
    result = subprocess.run(
        [sys.executable, "-m", package, "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert f"usage: python -m {package} <command>" in result.stdout


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('num_samples: "lots"', "num_samples: 'lots' is not a valid int"),
        ("num-samples: 2.5", "num_samples: 2.5 is not a valid int"),
        ("num_samples: [1, 2]", r"num_samples: \[1, 2\] is not a valid int"),
        ("num_samples: true", "num_samples: True is not a valid int"),
        ("overwrite: maybe", "overwrite: 'maybe' is not a valid bool"),
    ],
)
def test_a_config_value_of_the_wrong_type_names_the_file_and_the_key(
    tmp_path, capsys, line, message
):
    _fake_command()
    config = tmp_path / "c.yaml"
    config.write_text(line + "\n")
    out = tmp_path / "o"
    assert run_cli("prog", "d", [SPEC], ["fake", "--config", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.search(f"error: config file {re.escape(str(config))}: {message}", err), err
    assert not out.exists()


def test_config_values_given_as_text_still_become_numbers(tmp_path):
    _fake_command()
    config = tmp_path / "c.yaml"
    config.write_text('num_samples: "7"\nkernel: 3\n')
    out = tmp_path / "o"
    assert run_cli("prog", "d", [SPEC], ["fake", "--config", str(config), "--out", str(out)]) == 0
    assert json.loads((out / "args.json").read_text()) == {"num_samples": 7, "kernel": 3}


def test_an_earlier_run_is_replaced_only_with_overwrite_and_never_with_a_user_file(
    tmp_path, capsys
):
    _fake_command()
    out = tmp_path / "o"

    def fake(*flags: str) -> int:
        return run_cli("prog", "d", [SPEC], ["fake", "--out", str(out), *flags])

    assert fake("--num-samples", "1") == 0
    capsys.readouterr()
    assert fake("--num-samples", "2") == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("already holds a finished run; pass --overwrite to replace it or choose "
                        "another --out")  # fmt: skip
    assert json.loads((out / "args.json").read_text())["num_samples"] == 1
    assert fake("--num-samples", "3", "--overwrite") == 0
    assert json.loads((out / "args.json").read_text())["num_samples"] == 3
    assert "overwrite" not in json.loads((out / "run.json").read_text())["config"]
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert fake("--num-samples", "4", "--overwrite") == 2
    assert "--overwrite refused" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "args.json").read_text())["num_samples"] == 3


_SLOW_COMMAND = """
import os, pathlib, sys, time, types
from training.cli import CommandSpec, run_cli
module = types.ModuleType("slow_command")
module.__doc__ = "Wait for a file."
def add_arguments(parser):
    parser.add_argument("--go", required=True)
def run(args, folder):
    folder.write_text("writer.txt", str(os.getpid()))
    pathlib.Path(args.go + ".started").write_text("")
    while not pathlib.Path(args.go).exists():
        time.sleep(0.05)
module.add_arguments, module.run = add_arguments, run
sys.modules["slow_command"] = module
sys.exit(run_cli("prog", "d", [CommandSpec("slow", "slow_command", "s")], sys.argv[1:]))
"""


def test_two_runs_on_one_out_the_second_fails_cleanly_and_nothing_is_lost(tmp_path):
    out, go = tmp_path / "o", tmp_path / "go"
    argv = [sys.executable, "-c", _SLOW_COMMAND, "slow", "--go", str(go), "--out", str(out)]
    first = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not Path(f"{go}.started").exists():
        assert first.poll() is None, first.stderr.read() if first.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = subprocess.run([*argv, "--overwrite"], capture_output=True, text=True, check=False)
    assert second.returncode == 2
    assert second.stderr.strip() == (
        f"prog slow: error: another run (process {first.pid}) is writing {out} now; wait for "
        "it to finish or choose another --out"
    )
    go.write_text("")
    assert first.wait(timeout=60) == 0
    assert (out / "writer.txt").read_text() == str(first.pid)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["go", "go.started", "o"]


def test_sigterm_ends_a_command_with_one_line_and_nothing_left(tmp_path):
    out, go = tmp_path / "o", tmp_path / "go"
    argv = [sys.executable, "-c", _SLOW_COMMAND, "slow", "--go", str(go), "--out", str(out)]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not Path(f"{go}.started").exists():
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    assert err.strip() == "prog slow: terminated (SIGTERM); nothing was written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["go.started"]
