"""``python -m training fit|validate|test``: LightningCLI over seethrough's modules and data.

Configs name a LightningModule and a LightningDataModule by class path (``configs/*.yaml``);
every option can be overridden on the command line (``--model.init_args.lr 1e-3``,
``--trainer.max_epochs 2``, ``--trainer.strategy ddp_find_unused_parameters_true
--trainer.devices 2 --trainer.accelerator cpu``). Fitting always writes ``record.json`` beside
the resolved ``config.yaml`` (see :class:`training.callbacks.TrainingRecord`). A checkpoint given
with ``--ckpt_path`` must be a local file (a URL is refused before anything is fetched); it is
read with the one safe loader (:func:`training.checkpoints.load_checkpoint`), the class its
hyper-parameters name must be a registered model class or the one the config names
(:func:`training.pretrained.model_class`), and it is checked against the configured model, so
a checkpoint from another configuration is one clear error. Lightning then loads it with
``weights_only=True``.
"""

from __future__ import annotations

import copy
import shlex
import warnings
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from training.callbacks import TrainingRecord
from training.checkpoints import check_local_checkpoint_path, load_checkpoint, load_weights
from training.errors import CheckpointError
from training.pretrained import model_class

LIGHTNING_CKPT_NAMES = ("last", "best", "hpc")
"""``--ckpt_path`` values Lightning resolves to a checkpoint of the run's own callbacks."""


class SeethroughCLI(LightningCLI):
    """LightningCLI that records how a fit was started and checks resumed checkpoints.

    It adds one option, ``torch_threads`` (0: torch's default, one per core): on a CPU shared
    with other jobs one thread per process can be faster than two that wait for each other.
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--torch_threads", type=int, default=0, help="torch CPU threads (0: one per core)"
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse as LightningCLI does, then refuse a checkpoint made with another model config.

        LightningCLI rebuilds the model from a checkpoint's hyper-parameters, which would
        silently override the options the user gave; a difference is one clear error instead.
        """
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or str(ckpt_path) in LIGHTNING_CKPT_NAMES:
            return
        if str(ckpt_path).startswith("registry"):
            raise CheckpointError(
                f"--ckpt_path {ckpt_path}: checkpoints from Lightning's model registry are not "
                "loaded (it needs the network); download the checkpoint and pass the file"
            )
        path = check_local_checkpoint_path(str(ckpt_path), flag="--ckpt_path")
        if not path.is_file():
            raise CheckpointError(f"--ckpt_path {ckpt_path} does not exist")
        checkpoint = load_checkpoint(path)
        hparams = dict(checkpoint.get("hyper_parameters") or {})
        model = self.config[subcommand].get("model")
        configured = model.get("class_path") if model is not None else None
        for key in ("_class_path", "class_path"):  # LightningCLI would build it: allowed only
            if key in hparams:
                model_class(str(hparams[key]), allowed=(configured,) if configured else ())
        if not hparams or model is None or "class_path" not in model:
            return
        given = model.get("init_args")
        given = given.as_dict() if given is not None else {}
        differences = [
            f"{key} {hparams[key]!r} in the checkpoint, {given[key]!r} in the config"
            for key in given
            if key in hparams and hparams[key] != given[key]
        ]
        trained_class = hparams.get("_class_path", model["class_path"])
        if trained_class != model["class_path"]:
            differences.insert(0, f"model {trained_class} in the checkpoint, {model['class_path']}")
        if differences:
            raise CheckpointError(
                f"{ckpt_path} was trained with another model configuration ("
                + "; ".join(differences)
                + "); use the run's own config or start a fresh run"
            )

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
        """Lightning's arguments for ``subcommand``, always loading with ``weights_only=True``."""
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if kwargs.get("weights_only") is False:
            raise CheckpointError(
                "--weights_only false is not supported: seethrough never unpickles objects "
                "from a checkpoint"
            )
        if "weights_only" in self._subcommand_method_arguments[subcommand]:
            kwargs["weights_only"] = True
        return kwargs

    def before_instantiate_classes(self) -> None:
        threads = self._get(self.config, "torch_threads")
        if threads:
            torch.set_num_threads(threads)

    def _check_checkpoint(self) -> None:
        ckpt_path = self.config_init[self.subcommand].get("ckpt_path")
        if ckpt_path and str(ckpt_path) not in LIGHTNING_CKPT_NAMES:
            # load into a throw-away copy: only the check matters here, Lightning loads for real
            load_weights(copy.deepcopy(self.model), ckpt_path)

    def before_fit(self) -> None:
        self._check_checkpoint()

    def before_validate(self) -> None:
        self._check_checkpoint()

    def before_test(self) -> None:
        self._check_checkpoint()


def run_lightning(subcommand: str, argv: Sequence[str]) -> int:
    """Run LightningCLI's ``subcommand`` with ``argv`` (e.g. ``["--config", "x.yaml"]``)."""
    command = shlex.join(["python", "-m", "training", subcommand, *argv])
    # argv comes from sys.argv through the training CLI, which LightningCLI would warn about
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    SeethroughCLI(
        model_class=pl.LightningModule,
        datamodule_class=pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=[subcommand, *argv],
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"callbacks": [TrainingRecord(command)]} if subcommand == "fit" else {},
        parser_kwargs={"prog": f"python -m training {subcommand}"},
        auto_configure_optimizers=False,
    )
    return 0
