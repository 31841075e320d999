from __future__ import annotations

import collections
import pickle

import numpy as np
import pytest
import torch

from training.checkpoints import load_checkpoint, load_weights, save_checkpoint
from training.errors import CheckpointError


class Payload:
    """A class whose unpickling would run arbitrary code in an unsafe loader."""

    def __reduce__(self):
        return (print, ("pwned",))


def test_round_trip_of_a_state_dict(tmp_path):
    net = torch.nn.Linear(3, 2)
    path = save_checkpoint({"state_dict": net.state_dict(), "epoch": 3}, tmp_path / "ok.pt")
    fresh = load_weights(torch.nn.Linear(3, 2), path)
    torch.testing.assert_close(fresh.weight, net.weight)
    assert load_checkpoint(path)["epoch"] == 3


def test_a_checkpoint_holding_a_pickled_object_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "payload": Payload()}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(path)
    assert "pwned" not in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_plain_pickle_and_truncated_files_are_corrupt(tmp_path):
    truncated = tmp_path / "cut.pt"
    save_checkpoint({"w": torch.ones(1000)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(truncated)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps(collections.Counter("abc")))
    with pytest.raises(CheckpointError):
        load_checkpoint(plain)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_random_bytes_are_not_a_checkpoint_rather_than_pickled_objects(tmp_path):
    path = tmp_path / "noise.ckpt"
    path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    with pytest.raises(CheckpointError, match=r"noise\.ckpt is not a checkpoint \(neither a torch"):
        load_checkpoint(path)
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="is not a checkpoint"):
        load_checkpoint(empty)


def test_a_refused_pickle_names_the_object_it_holds(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"payload": Payload()}, path)
    with pytest.raises(
        CheckpointError, match=r"refusing to load it \(weights_only=True\): it names print$"
    ):
        load_checkpoint(path)


@pytest.mark.parametrize("url", ["http://h/x.pt", "https://h/x.pt", "s3://b/x.pt", "file:///x"])
def test_urls_are_refused_before_anything_is_fetched(url, monkeypatch):
    def fetched(*args, **kwargs):
        raise AssertionError("fetched")

    monkeypatch.setattr(torch, "load", fetched)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fetched)
    with pytest.raises(CheckpointError, match="is a URL; seethrough loads checkpoints from local"):
        load_checkpoint(url)
    with pytest.raises(CheckpointError, match="is a URL"):
        load_weights(torch.nn.Linear(1, 1), url)


def test_a_checkpoint_from_another_configuration_names_the_mismatch(tmp_path):
    path = save_checkpoint(torch.nn.Linear(8, 2).state_dict(), tmp_path / "wide.pt")
    with pytest.raises(
        CheckpointError, match=r"shape mismatch for weight: checkpoint \(2, 8\) vs model \(2, 4\)"
    ):
        load_weights(torch.nn.Linear(4, 2), path)
    with pytest.raises(
        CheckpointError,
        match=r"missing keys 0.bias, 0.weight, 1.bias and 1 more; unexpected keys bias, weight",
    ):
        load_weights(torch.nn.Sequential(torch.nn.Linear(8, 2), torch.nn.Linear(2, 2)), path)


def test_prefix_selects_a_submodule(tmp_path):
    outer = torch.nn.Module()
    outer.generator = torch.nn.Linear(2, 2)
    outer.critic = torch.nn.Linear(2, 1)
    path = save_checkpoint({"state_dict": outer.state_dict()}, tmp_path / "gan.pt")
    generator = load_weights(torch.nn.Linear(2, 2), path, prefix="generator.")
    torch.testing.assert_close(generator.weight, outer.generator.weight)
    with pytest.raises(CheckpointError, match=r"no weights under the prefix 'encoder\.'"):
        load_weights(torch.nn.Linear(2, 2), path, prefix="encoder.")
