"""Rank GAN recipes by short training runs of equal wall time, measured like a person would see.

Run from the repository root (sequentially; each run uses one torch thread)::

    python -m benchmarks.gan_proxy --minutes 6 --samples 1000 --out runs/proxy

Every recipe trains through the project's own command, ``python -m training fit``, on a config
derived from ``configs/gan64.yaml``: the same data, seed and model, stopped by Lightning's
``max_time`` after ``--minutes`` of training (rendering the scenes comes before the clock
starts), or, with ``--cpu-minutes``, after that much CPU time
(:class:`training.callbacks.CpuTimeLimit`): on a machine shared with other work a wall-clock
budget buys each recipe a different amount of compute, a CPU-time budget the same. Recipes
are changes to a base recipe; with ``--greedy`` (the default) each change is applied on top of
the best recipe found so far, so the list reads as a ladder. Proxies keep an
average of the generator's weights with ``--ema-decay`` (0.99: a 100-batch horizon; the long
run's 0.999 would still hold half of the untrained weights after a few hundred batches).

Each finished run's last checkpoint is measured by :class:`training.evaluation.ImageQuality`
(``--samples`` generated images against as many held-out real scenes, FD, KID +- s.e.,
precision, recall, with the real-vs-real floor) for the averaged and the trained generator.
Results go to ``<out>/results.json`` after every recipe, and a table is printed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from training.evaluation import ImageQuality, generate, quality_table
from training.modules import generator_from_checkpoint
from training.pretrained import load_pretrained
from training.runs import atomic_write_json

BASE_CONFIG = Path("configs/gan64.yaml")

# name -> (what changes, the change): model init_args, and "precision" / "batch_size"
RECIPES: dict[str, tuple[str, dict[str, Any]]] = {
    "today": ("configs/gan64.yaml as shipped", {}),
    "nearest": ("nearest upsample + 3x3 conv in G", {"generator_upsample": "nearest"}),
    "sn_hinge": (
        "spectral-norm D of width 32, hinge loss, Adam betas (0, 0.9)",
        {
            "discriminator_norm": "spectral",
            "loss": "hinge",
            "discriminator_width": 32,
            "beta1": 0.0,
            "beta2": 0.9,
        },
    ),
    "r1": ("R1 penalty gamma 0.05, every 4th batch", {"r1_gamma": 0.05, "r1_every": 4}),
    "ttur": (
        "TTUR: lr D 4e-4, lr G 1e-4",
        {"lr_discriminator": 4e-4, "lr_generator": 1e-4},
    ),
    "fp32": ("fp32 instead of bf16-mixed", {"precision": "32-true"}),
    "batch32": ("batch size 32", {"batch_size": 32}),
    "d_width32": ("discriminator width 32", {"discriminator_width": 32}),
}


def recipe_config(
    base: dict[str, Any],
    changes: dict[str, Any],
    *,
    folder: Path,
    minutes: float,
    ema_decay: float,
    cpu_minutes: float | None = None,
    train_scenes: int | None = None,
) -> dict[str, Any]:
    """``base`` (a gan64 config) with ``changes``, a ``max_time`` budget (and a CPU-time one
    when ``cpu_minutes`` is given) and ``folder`` as the run folder."""
    config = copy.deepcopy(base)
    trainer, model, data = config["trainer"], config["model"]["init_args"], config["data"]
    seconds = round(minutes * 60)
    if cpu_minutes:
        # equal CPU time: on a shared machine a wall-clock budget buys more or less compute
        trainer["callbacks"].append(
            {
                "class_path": "training.callbacks.CpuTimeLimit",
                "init_args": {"seconds": round(cpu_minutes * 60)},
            }
        )
    trainer["max_time"] = f"00:00:{seconds // 60:02d}:{seconds % 60:02d}"
    trainer["max_epochs"] = 1000  # the clock stops the run
    trainer["default_root_dir"] = str(folder)
    trainer["enable_progress_bar"] = False
    trainer["logger"]["init_args"]["save_dir"] = str(folder)
    # the proxy measures at the end; a per-epoch quality pass would eat into the budget
    trainer["callbacks"] = [
        c for c in trainer["callbacks"] if not c["class_path"].endswith("GANQuality")
    ]
    config["torch_threads"] = 1
    model["ema_decay"] = ema_decay
    if train_scenes:
        data["init_args"]["train_scenes"] = train_scenes
    for key, value in changes.items():
        if key == "precision":
            trainer["precision"] = value
        elif key == "batch_size":
            data["init_args"]["batch_size"] = value
        else:
            model[key] = value
    return config


def train(config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Run ``python -m training fit`` on ``config``; return its ``record.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "proxy_config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(folder / "fit.log", "w") as log:
        subprocess.run(
            [sys.executable, "-m", "training", "fit", "--config", str(path)],
            check=True,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    record: dict[str, Any] = json.loads((folder / "record.json").read_text())
    # on a shared machine the wall-clock budget buys more or less CPU: say how much it bought
    record["cpu_s"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1)
    return record


def measure(quality: ImageQuality, checkpoint: Path, samples: int) -> dict[str, Any]:
    """Quality of the averaged and of the trained generator of ``checkpoint``."""
    return {
        "averaged": quality.measure(generate(generator_from_checkpoint(checkpoint), samples)),
        "trained": quality.measure(
            generate(generator_from_checkpoint(checkpoint, averaged=False), samples)
        ),
    }


def table(results: list[dict[str, Any]]) -> str:
    """The proxy results as text: the floor, then each recipe's averaged and trained generator."""
    rows: list[tuple[str, dict[str, Any]]] = []
    if results:
        rows.append(("real vs real (floor)", results[0]["quality"]["averaged"]["floor"]))
    for r in results:
        rows.append((f"{r['name']} (EMA, {r['batches']} batches)", r["quality"]["averaged"]))
        rows.append((f"{r['name']} (trained)", r["quality"]["trained"]))
    return quality_table(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=6.0, help="wall time per recipe")
    parser.add_argument(
        "--cpu-minutes",
        type=float,
        default=None,
        help="also stop each recipe after this much CPU time (fair on a shared machine)",
    )
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--recipes", default="today,nearest,sn_hinge,r1,ttur,fp32")
    parser.add_argument("--no-greedy", dest="greedy", action="store_false")
    parser.add_argument("--ema-decay", type=float, default=0.99)
    parser.add_argument("--train-scenes", type=int, default=None, help="default: the config's")
    parser.add_argument("--out", default="runs/proxy")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = args.recipes.split(",")
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown recipes {unknown}; known: {', '.join(RECIPES)}")
    out = Path(args.out)
    base = yaml.safe_load(BASE_CONFIG.read_text())
    quality = ImageQuality(load_pretrained("segmenter"), n=args.samples)
    results: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for name in names:
        description, change = RECIPES[name]
        start = dict(best["changes"]) if (args.greedy and best is not None) else {}
        changes = {**start, **change}
        folder = out / name
        config = recipe_config(
            base,
            changes,
            folder=folder,
            minutes=args.minutes,
            ema_decay=args.ema_decay,
            cpu_minutes=args.cpu_minutes,
            train_scenes=args.train_scenes,
        )
        started = time.strftime("%H:%M:%S")
        record = train(config, folder)
        result = {
            "name": name,
            "description": description,
            "on_top_of": best["name"] if (args.greedy and best is not None) else None,
            "changes": changes,
            "started": started,
            "train_time_s": record["train_time_s"],
            "global_step": record["global_step"],
            "batches": record["global_step"] // 2,
            "cpu_s": record["cpu_s"],
            "quality": measure(quality, folder / "checkpoints" / "last.ckpt", args.samples),
        }
        results.append(result)
        if (
            best is None
            or result["quality"]["averaged"]["kid"] < best["quality"]["averaged"]["kid"]
        ):
            best = result
        atomic_write_json(
            out / "results.json",
            {
                "minutes": args.minutes,
                "cpu_minutes": args.cpu_minutes,
                "samples": args.samples,
                "ema_decay": args.ema_decay,
                "greedy": args.greedy,
                "argv": sys.argv,
                "best": best["name"],
                "results": results,
            },
        )
        print(f"\n{name}: {description} (on top of {result['on_top_of']})", flush=True)
        print(table(results), flush=True)
    print(f"\nbest by KID of the averaged generator: {best['name'] if best else None}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
