"""The command-line family: ``python -m training|surrogate|gan_dissect <command> ...``.

Every command that produces results takes the same options, ``--config FILE.yaml``,
``--out FOLDER``, ``--overwrite``, ``--seed N`` and ``--device auto|cpu|cuda[:N]``, and writes
into one run folder (see :mod:`training.runs`; an existing run there is replaced only with
``--overwrite``). A config file's keys are the command's long option names (``num_samples`` or
``num-samples``); options given on the command line win over the file, the file wins over the
built-in defaults, and a value of the wrong type is one error naming the file and the key.
Commands are imported only when chosen, so ``--help`` is quick.

A command module provides ``add_arguments(parser)`` and ``run(args, run_folder)`` (kind
``"run"``), ``run(args)`` (kind ``"plain"``, no run folder), or ``main(argv) -> int`` (kind
``"passthrough"``, which parses its own arguments, e.g. LightningCLI). Its docstring is its help.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import yaml

from training.errors import ConfigError, SeethroughError
from training.runs import Terminated


@dataclass(frozen=True)
class CommandSpec:
    """One subcommand: its name, the module that implements it and a one-line summary."""

    name: str
    module: str
    summary: str
    kind: Literal["run", "plain", "passthrough"] = "run"


def run_cli(
    prog: str, description: str, commands: Sequence[CommandSpec], argv: Sequence[str] | None = None
) -> int:
    """Parse ``argv`` for one of ``commands``, run it and return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    by_name = {spec.name: spec for spec in commands}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in by_name:
        _print_overview(prog, description, commands)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\n{prog}: error: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0 if argv else 2
    spec = by_name[argv[0]]
    try:
        module = importlib.import_module(spec.module)
        if spec.kind == "passthrough":
            return int(module.main(argv[1:]) or 0)
        args = parse_command_args(prog, spec, module, argv[1:])
        if spec.kind == "plain":
            module.run(args)
            return 0
        return _run_in_folder(module, args)
    except (SeethroughError, FileNotFoundError, FileExistsError) as err:
        print(f"{prog} {spec.name}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog} {spec.name}: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Terminated as stop:
        print(f"{prog} {spec.name}: terminated (SIGTERM); nothing was written", file=sys.stderr)
        return int(stop.code or 143)


def parse_command_args(
    prog: str, spec: CommandSpec, module: ModuleType, argv: Sequence[str]
) -> argparse.Namespace:
    """Build the command's parser, apply its ``--config`` file, and parse ``argv``."""
    parser = argparse.ArgumentParser(
        prog=f"{prog} {spec.name}",
        description=(module.__doc__ or spec.summary).strip(),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    module.add_arguments(parser)
    if spec.kind == "run":
        _add_common_arguments(parser, spec.name)
    args = parser.parse_args(argv)
    config_path = getattr(args, "config", None)
    if config_path:
        parser.set_defaults(**load_config(config_path, parser))
        args = parser.parse_args(argv)
    return args


def _add_common_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    common = parser.add_argument_group("options every seethrough command takes")
    common.add_argument(
        "--config",
        type=Path,
        default=None,
        help="YAML file of option values (keys are the long option names); flags win over it",
    )
    common.add_argument(
        "--out",
        type=Path,
        default=Path("runs") / name,
        help="run folder to write (JSON, PNG, index.html); it appears when the run finishes",
    )
    common.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run at --out (only if it holds nothing but that run's files)",
    )
    common.add_argument("--seed", type=int, default=0, help="seed for every random choice")
    common.add_argument(
        "--device", default="auto", help="auto (a GPU when there is one), cpu, cuda or cuda:N"
    )


def load_config(path: str | Path, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Read a YAML config and check that every key is one of ``parser``'s options."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option names to values")
    actions = {action.dest: action for action in parser._actions if action.dest != "help"}
    config = {str(key).replace("-", "_"): value for key, value in values.items()}
    unknown = sorted(set(config) - set(actions))
    if unknown:
        raise ConfigError(
            f"config file {path} has unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(set(actions) - {'config'}))}"
        )
    return {key: _config_value(path, key, value, actions[key]) for key, value in config.items()}


def _config_value(path: Path, key: str, value: Any, action: argparse.Action) -> Any:
    """``value`` as the option's own type, or one error naming the file, the key and the type."""
    if value is None:
        return None
    wanted = action.type
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        wanted = bool
    try:
        if wanted is bool and not isinstance(value, bool):
            raise ValueError
        if wanted in (int, float):
            number = isinstance(value, (str, int, float)) and not isinstance(value, bool)
            if not number or (
                wanted is int and isinstance(value, float) and not value.is_integer()
            ):
                raise ValueError
            value = wanted(value)
        elif wanted is not bool and callable(wanted) and isinstance(value, (str, int, float)):
            value = wanted(value if isinstance(value, str) else str(value))
    except (TypeError, ValueError, argparse.ArgumentTypeError, SeethroughError) as err:
        detail = (
            f" ({err})" if isinstance(err, (argparse.ArgumentTypeError, SeethroughError)) else ""
        )
        raise ConfigError(
            f"config file {path}: {key}: {value!r} is not a valid "
            f"{getattr(wanted, '__name__', 'value')}{detail}"
        ) from err
    if action.choices is not None and value not in action.choices:
        raise ConfigError(
            f"config file {path}: {key}: {value!r} is not one of "
            f"{', '.join(map(str, action.choices))}"
        )
    return value


def _run_in_folder(module: ModuleType, args: argparse.Namespace) -> int:
    from training.runs import RunFolder
    from training.seeding import seed_everything

    seed_everything(args.seed)
    config = {k: v for k, v in vars(args).items() if k not in ("config", "overwrite")}
    if int(os.environ.get("RANK", "0")) != 0:
        # a process that a launcher (torchrun, SLURM) started beside rank 0 does its share of
        # the work; only rank 0 writes --out, so this one's folder is scratch, then dropped
        with (
            tempfile.TemporaryDirectory(prefix="seethrough-rank-") as scratch,
            RunFolder(Path(scratch) / "run", config=config, seed=args.seed) as run,
        ):
            module.run(args, run)
        return 0
    with RunFolder(args.out, config=config, seed=args.seed, overwrite=args.overwrite) as run:
        module.run(args, run)
    page = Path(args.out) / "index.html"
    print(f"wrote {page if page.is_file() else args.out}")
    return 0


def _print_overview(prog: str, description: str, commands: Sequence[CommandSpec]) -> None:
    print(f"usage: {prog} <command> [options]\n\n{description.strip()}\n")
    if commands:
        print("commands:")
        width = max(len(spec.name) for spec in commands)
        for spec in commands:
            print(f"  {spec.name:<{width}}  {spec.summary}")
        print(f"\n'{prog} <command> --help' explains a command's options.")
        if any(spec.kind == "run" for spec in commands):
            print(
                "Commands that write results take --config, --out, --overwrite, --seed and "
                "--device; "
                "each writes a run folder with JSON, PNG and index.html."
            )
    else:
        print("No commands are installed yet.")
