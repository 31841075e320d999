"""Ship a trained model: a run folder's checkpoint into ``training/weights/`` with its card.

``python -m training export runs/train/gan64 --name generator`` reads the run's
``checkpoints/last.ckpt`` (with ``weights_only=True``) and ``record.json``, rebuilds the
LightningModule named in the checkpoint's hyper-parameters, takes one of its parts (the
generator, the segmenter, ...), evaluates it on the held-out scenes and writes
``<name>.pt`` + ``<name>.json`` with :func:`training.pretrained.save_pretrained`. The card holds
the exact training command, seed, package versions, training time and evaluation figures.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from training.callbacks import RECORD_FILE
from training.checkpoints import load_checkpoint, load_weights
from training.errors import CheckpointError, ConfigError
from training.pretrained import WEIGHTS_DIR, build_module, save_pretrained


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m training export``."""
    parser.add_argument("run", type=Path, help="run folder written by 'python -m training fit'")
    parser.add_argument(
        "--name", required=True, help="shipped model name (generator, segmenter, ...)"
    )
    parser.add_argument(
        "--part",
        default=None,
        help="which network of the module to ship (default: its main one, e.g. the generator)",
    )
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="default: RUN/checkpoints/last.ckpt"
    )
    parser.add_argument(
        "--model-config",
        type=Path,
        default=None,
        help="a training config whose 'model' section replaces the checkpoint's own "
        "hyper-parameters",
    )
    parser.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR, help="where to write")
    parser.add_argument(
        "--eval-scenes", type=int, default=1024, help="held-out scenes for the card's figures"
    )


def module_from_checkpoint(
    checkpoint: dict[str, Any], model_config: dict[str, Any] | None = None
) -> Any:
    """Rebuild the LightningModule of a LightningCLI checkpoint and load its weights.

    ``model_config`` (``{"class_path": ..., "init_args": {...}}``) replaces the hyper-parameters
    stored in the checkpoint; if it describes another architecture, loading fails with one
    :class:`~training.errors.CheckpointError` naming the mismatched weights. The checkpoint's
    own class must be one of the registered model classes
    (:func:`training.pretrained.model_class`); one named in ``model_config`` may be any
    ``torch.nn.Module`` subclass, since the user chose it.
    """
    allowed: tuple[str, ...] = ()
    if model_config is None:
        hparams = dict(checkpoint.get("hyper_parameters") or {})
        class_path = hparams.pop("_class_path", None)
        kwargs = {k: v for k, v in hparams.items() if not k.startswith("_")}
    else:  # the user named this class on the command line, so it may be one of their own
        class_path = model_config.get("class_path")
        kwargs = dict(model_config.get("init_args") or {})
        allowed = (str(class_path),)
    if not class_path:
        raise CheckpointError(
            "the checkpoint does not name its LightningModule (not written by "
            "'python -m training fit'?); pass --model-config with a model section"
        )
    module = build_module(str(class_path), kwargs, allowed=allowed)
    load_weights(module, checkpoint)
    return module


def evaluate_part(part: Any, weights_dir: Path, scenes: int) -> dict[str, Any] | None:
    """The card's evaluation of a shipped part on the held-out scenes (None if none applies)."""
    from training import evaluation
    from training.models import Generator, LampClassifier, Segmenter
    from training.pretrained import load_pretrained
    from training.scenes import held_out_scenes

    if isinstance(part, Segmenter):
        return evaluation.evaluate_segmenter(part, held_out_scenes(scenes))
    if isinstance(part, LampClassifier):
        return evaluation.evaluate_classifier(part, held_out_scenes(scenes))
    from training.encoder import Encoder, evaluate_encoder

    if isinstance(part, Encoder):
        generator = load_pretrained("generator", weights_dir=weights_dir)
        real = held_out_scenes(scenes, size=part.size)
        return evaluate_encoder(part, generator, real.images)
    if isinstance(part, Generator):
        segmenter = load_pretrained("segmenter", weights_dir=weights_dir)
        real = held_out_scenes(scenes, size=part.size)
        return evaluation.evaluate_generator(part, segmenter, real, n=scenes)
    return None


def run(args: argparse.Namespace) -> None:
    """Export the run's model and print where it went with its headline figures."""
    checkpoint_path = args.checkpoint or args.run / "checkpoints" / "last.ckpt"
    record_path = args.run / RECORD_FILE
    if not record_path.is_file():
        raise CheckpointError(
            f"{args.run} has no {RECORD_FILE}: it is not a finished 'python -m training fit' run"
        )
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{record_path} is not valid JSON: {err}") from err
    model_config = None
    if args.model_config is not None:
        if not args.model_config.is_file():
            raise ConfigError(f"config file {args.model_config} does not exist")
        text = args.model_config.read_text(encoding="utf-8")
        model_config = (yaml.safe_load(text) or {}).get("model")
        if not isinstance(model_config, dict):
            raise ConfigError(f"config file {args.model_config} has no 'model' section")
    checkpoint = load_checkpoint(checkpoint_path)
    module = module_from_checkpoint(checkpoint, model_config)
    parts = module.parts()
    part_name = args.part or module.primary_part
    if part_name not in parts:
        raise ConfigError(f"--part {part_name!r} is not one of {', '.join(parts)}")
    part, kwargs = parts[part_name]
    part.eval()
    evaluation = evaluate_part(part, args.weights_dir, args.eval_scenes)
    card: dict[str, Any] = {
        "command": record["command"],
        "seed": record["seed"],
        "versions": record["versions"],
        "train_time_s": record["train_time_s"],
        "epochs": record["epochs"],
        "global_step": record["global_step"],
        "world_size": record["world_size"],
        "finished": record["finished"],
        "export_command": "python -m training export " + shlex.join(sys.argv[2:])
        if sys.argv[1:2] == ["export"]
        else None,
        "part": part_name,
        "evaluation": evaluation,
        "training_data": checkpoint.get("datamodule_hyper_parameters"),
    }
    for attribute in ("layer_shapes", "concepts", "class_names"):
        if hasattr(part, attribute):
            card[attribute] = getattr(part, attribute)
    path = save_pretrained(part, args.name, kwargs=kwargs, weights_dir=args.weights_dir, **card)
    size_mb = path.stat().st_size / 1e6
    print(f"wrote {path} ({size_mb:.1f} MB) and {path.with_suffix('.json')}")
    if evaluation:
        headline = {
            k: v for k, v in evaluation.items() if isinstance(v, (int, float)) and k != "seed"
        }
        print("evaluation:", ", ".join(f"{k}={v:.4g}" for k, v in headline.items()))
