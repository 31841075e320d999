from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]

# Each rank saves its weights and a fingerprint of its first batch when fitting ends.
RANK_DUMP = """
import torch
import pytorch_lightning as pl


class RankDump(pl.Callback):
    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.first_batch = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.first_batch is None:
            self.first_batch = batch.detach().clone()

    def on_fit_end(self, trainer, pl_module):
        state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        torch.save(
            {"state": state, "first_batch": self.first_batch, "step": trainer.global_step},
            f"{self.folder}/rank{trainer.global_rank}.pt",
        )
"""


@pytest.mark.distributed
@pytest.mark.slow
def test_gan_trains_with_ddp_on_two_cpu_processes_and_ends_identical(tmp_path):
    (tmp_path / "rank_dump.py").write_text(RANK_DUMP)
    config = {
        "seed_everything": 0,
        "torch_threads": 1,
        "trainer": {
            "accelerator": "cpu",
            "max_steps": 6,
            "default_root_dir": str(tmp_path / "run"),
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "enable_checkpointing": False,
            "callbacks": [
                {"class_path": "rank_dump.RankDump", "init_args": {"folder": str(tmp_path)}}
            ],
        },
        "model": {
            "class_path": "training.modules.GANModule",
            "init_args": {"z_dim": 8, "size": 32, "generator_width": 8, "discriminator_width": 8},
        },
        "data": {
            "class_path": "training.data.SceneDataModule",
            "init_args": {"size": 32, "train_scenes": 64, "val_scenes": 0, "batch_size": 8},
        },
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
        "SEETHROUGH_PROGRESS": "0",
    }
    command = [sys.executable, "-m", "training", "fit", "--config", str(path)]
    command += ["--trainer.strategy", "ddp_find_unused_parameters_true", "--trainer.devices", "2"]
    result = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["step"] == ranks[1]["step"] == 6  # 3 batches, 2 optimizer steps each
    # the ranks saw different scenes (the data was split), yet ended with the same weights
    assert not torch.equal(ranks[0]["first_batch"], ranks[1]["first_batch"])
    parameters = [
        name for name in ranks[0]["state"] if "running_" not in name and "num_batches" not in name
    ]
    assert len(parameters) > 10
    for name in parameters:
        torch.testing.assert_close(
            ranks[0]["state"][name], ranks[1]["state"][name], rtol=0, atol=0, msg=name
        )
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert (record["world_size"], record["global_step"]) == (2, 6)
