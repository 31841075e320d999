"""An interrupted GAN run continues where it stopped (`--ckpt_path last`)."""

from __future__ import annotations

import json
from typing import Any

import torch
import yaml

from training.__main__ import main
from training.checkpoints import load_checkpoint
from training.modules import GANModule


def _config(tmp_path, *, r1_gamma: float = 0.0) -> str:
    config = {
        "seed_everything": 5,
        "torch_threads": 1,
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
                {
                    "class_path": "training.callbacks.MirrorCheckpoint",
                    "init_args": {"folder": str(tmp_path / "mirror")},
                },
            ],
        },
        "model": {
            "class_path": "training.modules.GANModule",
            "init_args": {
                "z_dim": 8,
                "size": 32,
                "generator_width": 8,
                "discriminator_width": 8,
                "ema_decay": 0.9,
                "generator_upsample": "nearest",
                "discriminator_norm": "spectral",
                "loss": "hinge",
                "r1_gamma": r1_gamma,
                "r1_every": 2,
            },
        },
        "data": {
            "class_path": "training.data.SceneDataModule",
            "init_args": {"size": 32, "train_scenes": 24, "val_scenes": 0, "batch_size": 8},
        },
    }
    path = tmp_path / "gan.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _clone(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_clone(v) for v in value)
    return value


def _assert_same(saved, restored, where: str = "") -> int:
    """Assert nested states are equal, tensor by tensor; return how many tensors were compared."""
    if isinstance(saved, torch.Tensor):
        assert torch.equal(saved, restored), where
        return 1
    if isinstance(saved, dict):
        assert set(saved) == set(restored), where
        return sum(_assert_same(saved[k], restored[k], f"{where}.{k}") for k in saved)
    if isinstance(saved, (list, tuple)):
        assert len(saved) == len(restored), where
        pairs = enumerate(zip(saved, restored, strict=True))
        return sum(_assert_same(s, r, f"{where}[{i}]") for i, (s, r) in pairs)
    assert saved == restored, where
    return 0


def test_a_resumed_run_continues_at_the_saved_step_with_every_state_restored(tmp_path, monkeypatch):
    config = _config(tmp_path, r1_gamma=0.5)
    assert main(["fit", "--config", config]) == 0
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 6  # 3 batches, each a D and a G step

    seen: dict[str, Any] = {}

    def capture(module: GANModule) -> None:
        seen["step"] = module.trainer.global_step
        seen["epoch"] = module.trainer.current_epoch
        seen["state"] = _clone(module.state_dict())
        seen["optimizers"] = [_clone(o.state_dict()) for o in module.trainer.optimizers]

    monkeypatch.setattr(GANModule, "on_train_start", capture, raising=False)
    resumed = ["fit", "--config", config, "--trainer.max_epochs", "2", "--ckpt_path", "last"]
    assert main(resumed) == 0

    assert (seen["step"], seen["epoch"]) == (6, 1)
    state = seen["state"]
    assert any(k.startswith("generator_ema.") for k in state)
    assert any(k.startswith("discriminator.") for k in state)
    assert _assert_same(checkpoint["state_dict"], state) == len(state)
    compared = _assert_same(checkpoint["optimizer_states"], seen["optimizers"])
    assert compared >= 3 * 2  # Adam's step, exp_avg and exp_avg_sq of both optimizers at least
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["global_step"] == 12  # continued from 6, not started again from 0
    final = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert final["global_step"] == 12
    # the mirror holds the same final checkpoint, byte for byte
    mirrored = (tmp_path / "mirror" / "last.ckpt").read_bytes()
    assert mirrored == (tmp_path / "run" / "checkpoints" / "last.ckpt").read_bytes()
    moved = [k for k in state if not torch.equal(state[k], final["state_dict"][k])]
    assert any(k.startswith("generator_ema.") for k in moved)
