from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types

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
