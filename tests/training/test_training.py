from __future__ import annotations

import json
import math

import pytest
import pytorch_lightning as pl
import torch
import yaml

from training.__main__ import main
from training.checkpoints import load_checkpoint
from training.data import SceneDataModule
from training.models import Segmenter
from training.modules import GANModule, LampClassifierModule, SegmenterModule
from training.pretrained import load_pretrained, read_model_card, save_pretrained
from training.scenes import CONCEPTS


def _trainer(steps: int) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


@pytest.mark.parametrize(
    ("module", "target", "watched", "exempt"),
    [
        (
            GANModule(z_dim=8, size=32, generator_width=8, discriminator_width=8),
            "none",
            ("loss/generator_step", "loss/discriminator_step"),
            (),
        ),
        (
            GANModule(
                z_dim=8,
                size=32,
                generator_width=8,
                discriminator_width=8,
                discriminator_norm="spectral",
                loss="hinge",
            ),
            "none",
            ("loss/generator_step", "loss/discriminator_step"),
            # while every logit sits inside the hinge margin, the bias gradients of real and
            # fake cancel exactly (-1 + 1), so the hinge loss leaves the final bias alone
            ("discriminator.output.bias",),
        ),
        (
            GANModule(
                z_dim=8,
                size=32,
                generator_width=8,
                discriminator_width=8,
                generator_upsample="nearest",
                r1_gamma=1.0,
            ),
            "none",
            ("loss/generator_step", "loss/discriminator_step", "loss/r1_step"),
            (),
        ),
        (SegmenterModule(width=4), "labels", ("loss/train_step",), ()),
        (LampClassifierModule(width=4), "lamp_lit", ("loss/train",), ()),
    ],
)
def test_one_training_step_changes_every_weight_and_logs_finite_losses(
    module, target, watched, exempt
):
    before = _snapshot(module)
    data = SceneDataModule(target=target, size=32, train_scenes=16, val_scenes=0, batch_size=8)
    steps = 2 if isinstance(module, GANModule) else 1  # a GAN batch is two optimizer steps
    trainer = _trainer(steps)
    trainer.fit(module, datamodule=data)
    assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == 1
    after = _snapshot(module)
    unchanged = [name for name in before if torch.equal(before[name], after[name])]
    assert unchanged == list(exempt), f"one step left {unchanged} untouched"
    for key in watched:
        value = float(trainer.logged_metrics[key])
        assert math.isfinite(value)
        assert value != 0


def test_gan_step_counts_both_optimizers():
    module = GANModule(z_dim=8, size=32, generator_width=8, discriminator_width=8)
    data = SceneDataModule(size=32, train_scenes=32, val_scenes=0, batch_size=8)
    trainer = _trainer(6)
    trainer.fit(module, datamodule=data)
    assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == 3
    assert trainer.global_step == 6


def _tiny_gan_config(tmp_path, weights_dir, *, width: int = 8) -> str:
    config = {
        "seed_everything": 3,
        "torch_threads": 2,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_epochs": 1,
            "default_root_dir": str(tmp_path / "run"),
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "callbacks": [
                {
                    "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
                    "init_args": {"save_last": True, "save_top_k": 0},
                },
                {"class_path": "training.callbacks.SampleGrid", "init_args": {"num_samples": 8}},
                {
                    "class_path": "training.callbacks.GANQuality",
                    "init_args": {"num_samples": 16, "weights_dir": str(weights_dir)},
                },
            ],
        },
        "model": {
            "class_path": "training.modules.GANModule",
            "init_args": {
                "z_dim": 8,
                "size": 32,
                "generator_width": width,
                "discriminator_width": 8,
            },
        },
        "data": {
            "class_path": "training.data.SceneDataModule",
            "init_args": {"size": 32, "train_scenes": 16, "val_scenes": 0, "batch_size": 8},
        },
    }
    path = tmp_path / f"gan_w{width}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture(scope="module")
def fitted_run(tmp_path_factory):
    """A GAN fitted for one epoch through ``python -m training fit`` (in process)."""
    tmp_path = tmp_path_factory.mktemp("fit")
    weights = tmp_path / "weights"
    segmenter = Segmenter(width=4)
    save_pretrained(
        segmenter, "segmenter", kwargs={"width": 4, "concepts": list(CONCEPTS)}, weights_dir=weights
    )
    config = _tiny_gan_config(tmp_path, weights)
    assert main(["fit", "--config", config]) == 0
    return tmp_path, weights, config


def test_fit_writes_record_samples_quality_and_a_safe_checkpoint(fitted_run):
    tmp_path, _, config = fitted_run
    run = tmp_path / "run"
    record = json.loads((run / "record.json").read_text())
    assert record["command"] == f"python -m training fit --config {config}"
    assert (record["seed"], record["finished"], record["global_step"]) == (3, True, 4)
    assert record["epochs"] == 1

    assert record["versions"]["torch"].startswith("2.")
    assert (run / "samples" / "epoch_001.png").is_file()
    quality = json.loads((run / "quality" / "epoch_001.json").read_text())
    assert set(quality["concepts"]) == set(CONCEPTS)
    assert quality["real_images"] == quality["generated_images"] == 16
    features = quality["features"]
    assert features["samples"] == features["floor"]["samples"] == 16
    # an untrained generator lies far outside the real scenes, the floor does not
    assert features["fd"] > 10 * features["floor"]["fd"]
    assert features["precision"] < features["floor"]["precision"]
    checkpoint = load_checkpoint(run / "checkpoints" / "last.ckpt")  # weights_only=True
    assert checkpoint["hyper_parameters"]["_class_path"] == "training.modules.GANModule"


def test_a_record_written_at_an_epoch_end_counts_that_epoch(tmp_path):
    """A run stopped after its epoch-end record (killed, or cut by max_time) must not claim one
    epoch less than it trained: at on_train_epoch_end current_epoch is still 0-based."""
    from types import SimpleNamespace

    from training.callbacks import TrainingRecord

    callback = TrainingRecord("python -m training fit")
    callback.folder = tmp_path
    trainer = SimpleNamespace(
        is_global_zero=True, current_epoch=14, global_step=12000, world_size=1, accelerator=None
    )
    callback.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
    record = json.loads((tmp_path / "record.json").read_text())
    assert (record["epochs"], record["finished"]) == (15, False)


def test_export_ships_the_trained_generator_with_its_card(fitted_run, capsys):
    tmp_path, weights, _ = fitted_run
    status = main(
        [
            "export",
            str(tmp_path / "run"),
            "--name",
            "generator",
            "--weights-dir",
            str(weights),
            "--eval-scenes",
            "16",
        ]
    )
    assert status == 0, capsys.readouterr().err
    generator = load_pretrained("generator", weights_dir=weights)
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["state_dict"]
    for name, value in generator.state_dict().items():
        torch.testing.assert_close(value, state[f"generator.{name}"])
    card = read_model_card("generator", weights_dir=weights)
    assert (card["seed"], card["epochs"]) == (3, 1)
    assert card["train_time_s"] > 0
    assert card["command"].startswith("python -m training fit --config")
    assert card["layer_shapes"]["layer3"] == [8, 16]
    assert set(card["evaluation"]["concepts"]) == set(CONCEPTS)
    assert card["versions"]["pytorch-lightning"].startswith("2.6")


def test_a_checkpoint_from_another_configuration_is_one_clear_error(fitted_run, capsys):
    tmp_path, weights, _ = fitted_run
    wider = _tiny_gan_config(tmp_path, weights, width=16)
    checkpoint = str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    capsys.readouterr()
    assert (
        main(
            [
                "export",
                str(tmp_path / "run"),
                "--name",
                "g",
                "--model-config",
                wider,
                "--weights-dir",
                str(tmp_path / "other"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "does not fit GANModule (was it trained with another configuration?)" in err
    assert "generator.layer1.0.weight: checkpoint (8, 32, 4, 4) vs model (8, 64, 4, 4)" in err
    assert not (tmp_path / "other").exists()
    # resuming with another config is refused before anything is built (LightningCLI would
    # silently rebuild the checkpoint's model instead of the one asked for)
    assert main(["fit", "--config", wider, "--ckpt_path", checkpoint]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert (
        "trained with another model configuration (generator_width 8 in the checkpoint, 16"
        in err[0]
    )


def test_generator_average_follows_the_weights_and_is_what_gets_sampled():
    module = GANModule(z_dim=8, size=32, generator_width=8, discriminator_width=8, ema_decay=0.75)
    start = _snapshot(module.generator)
    _trainer(2).fit(
        module, datamodule=SceneDataModule(size=32, train_scenes=8, val_scenes=0, batch_size=8)
    )
    trained = _snapshot(module.generator)
    assert module.generator_ema is not None
    for name, averaged in module.generator_ema.named_parameters():
        torch.testing.assert_close(averaged, 0.75 * start[name] + 0.25 * trained[name])
    sampler = module.sampling_generator()
    assert sampler is module.generator_ema
    norm = sampler.layer1[1]
    assert int(norm.num_batches_tracked) == 16  # its statistics were measured on its own samples
    parts = module.parts()
    assert parts["generator"][0] is module.generator_ema
    assert parts["generator_live"][0] is module.generator


def test_a_cpu_time_budget_stops_training_after_the_batch_that_spends_it():
    from training.callbacks import CpuTimeLimit

    module = GANModule(z_dim=8, size=32, generator_width=8, discriminator_width=8)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[CpuTimeLimit(seconds=0.0)],
    )
    trainer.fit(
        module, datamodule=SceneDataModule(size=32, train_scenes=32, val_scenes=0, batch_size=8)
    )
    assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == 1
