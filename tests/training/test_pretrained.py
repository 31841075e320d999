from __future__ import annotations

import json

import pytest
import torch

from training.errors import CheckpointError
from training.pretrained import load_pretrained, register_model_class, save_pretrained


class TinyNet(torch.nn.Module):
    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


def test_saved_model_comes_back_identical_and_in_eval_mode(tmp_path, monkeypatch):
    monkeypatch.setattr("training.pretrained._registered", {})
    net = TinyNet(width=5).train()
    with pytest.raises(CheckpointError, match="register_model_class"):  # not a project model
        save_pretrained(net, "tiny", kwargs={"width": 5}, weights_dir=tmp_path)
    register_model_class(TinyNet)
    save_pretrained(net, "tiny", kwargs={"width": 5}, weights_dir=tmp_path, seed=3, command="x")
    loaded = load_pretrained("tiny", weights_dir=tmp_path)
    assert isinstance(loaded, TinyNet)
    assert not loaded.training
    torch.testing.assert_close(loaded.layer.weight, net.layer.weight)
    assert json.loads((tmp_path / "tiny.json").read_text())["seed"] == 3


def test_card_naming_a_foreign_class_is_refused(tmp_path):
    (tmp_path / "evil.json").write_text(json.dumps({"class": "os:system", "kwargs": {}}))
    torch.save({}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refusing to build 'os:system'"):
        load_pretrained("evil", weights_dir=tmp_path)


def test_missing_model_lists_what_is_there(tmp_path):
    (tmp_path / "generator.json").write_text("{}")
    with pytest.raises(
        CheckpointError, match=r"no shipped model 'segmenter'.*available: generator"
    ):
        load_pretrained("segmenter", weights_dir=tmp_path)
