"""Nothing a file or a URL names is run: model cards, checkpoint hyper-parameters, ``pretrained:``
names, ``--ckpt_path`` and ``actmax --objective logit:...`` all go through one allow-list and
one safe loader, and the runs index links only inside its folder."""

from __future__ import annotations

import json
import re

import pytest
import torch

from training import pretrained
from training.errors import CheckpointError
from training.pages import write_index
from training.pretrained import (
    build_module,
    load_pretrained,
    model_class,
    register_model_class,
)
from training.runs import RunFolder
from training.sources import resolve_model


def _plant_card(weights, name: str, target, class_path="training.runs:atomic_write_text"):
    """A model card that, if its class were called, would write ``target``."""
    weights.mkdir(parents=True, exist_ok=True)
    card = {"class": class_path, "kwargs": {"path": str(target), "text": "import os\n"}}
    (weights / f"{name}.json").write_text(json.dumps(card))
    torch.save({}, weights / f"{name}.pt")


@pytest.mark.parametrize(
    "class_path",
    [
        "training.runs:atomic_write_text",  # a function inside the project
        "training.runs:RunFolder",  # a class inside the project that is no module
        "os:system",
        "torch.nn:Linear",  # a module class, but not one of the project's models
    ],
)
def test_a_card_may_name_only_a_registered_model_class(tmp_path, class_path):
    target = tmp_path / "planted.pth"
    _plant_card(tmp_path / "weights", "evil", target, class_path)
    with pytest.raises(CheckpointError, match=re.escape(f"refusing to build '{class_path}'")):
        load_pretrained("evil", weights_dir=tmp_path / "weights")
    assert not target.exists()


def test_pretrained_model_names_stay_inside_the_weights_folder(tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    monkeypatch.setattr("training.pretrained.WEIGHTS_DIR", weights)
    outside = tmp_path / "outside"
    _plant_card(outside, "evil", tmp_path / "planted.pth", "training.models:LampClassifier")
    for name in ("../outside/evil", str(outside / "evil"), "..", "a/b", ""):
        with pytest.raises(CheckpointError, match="is not a plain name"):
            load_pretrained(name)
        with pytest.raises(CheckpointError, match="is not a plain name"):
            resolve_model(f"pretrained:{name}", {}, device="cpu")


def test_pretrained_card_naming_a_function_writes_nothing_through_model(tmp_path, monkeypatch):
    monkeypatch.setattr("training.pretrained.WEIGHTS_DIR", tmp_path / "weights")
    target = tmp_path / "planted.pth"
    _plant_card(tmp_path / "weights", "evil", target)
    with pytest.raises(CheckpointError, match="refusing to build"):
        resolve_model("pretrained:evil", {}, device="cpu")
    assert not target.exists()


def test_lightning_class_paths_and_registered_classes(monkeypatch):
    from training.models import Generator

    assert model_class("training.models.Generator") is Generator
    assert model_class("training.models:Generator") is Generator

    class Mine(torch.nn.Module):
        pass

    monkeypatch.setattr("training.pretrained._registered", {})
    path = f"{Mine.__module__}:{Mine.__qualname__}"
    with pytest.raises(CheckpointError, match="refusing to build"):
        model_class(path)
    assert register_model_class(Mine) is Mine
    assert model_class(path) is Mine
    assert isinstance(build_module(path, {}), Mine)
    with pytest.raises(CheckpointError, match=r"not a torch\.nn\.Module subclass"):
        register_model_class(print)  # type: ignore[arg-type]


def test_export_refuses_hyper_parameters_naming_a_function(tmp_path):
    from training.commands.export import module_from_checkpoint

    target = tmp_path / "planted.pth"
    checkpoint = {
        "state_dict": {},
        "hyper_parameters": {
            "_class_path": "training.runs.atomic_write_text",
            "path": str(target),
            "text": "import os\n",
        },
    }
    with pytest.raises(
        CheckpointError, match=r"refusing to build 'training\.runs\.atomic_write_text'"
    ):
        module_from_checkpoint(checkpoint)
    assert not target.exists()


def _forbid_loading(monkeypatch) -> None:
    def fetched(*args, **kwargs):
        raise AssertionError("a checkpoint was loaded or fetched")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fetched)
    monkeypatch.setattr(torch, "load", fetched)


LIGHTNING_MODEL = [
    "--model", "training.modules.SegmenterModule",
    "--data", "training.data.SceneDataModule",
    "--trainer.logger", "false",
]  # fmt: skip


@pytest.mark.parametrize("subcommand", ["validate", "test", "fit"])
@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/evil.ckpt", "https://example.invalid/e.ckpt", "s3://b/e.ckpt"]
)
def test_ckpt_path_urls_are_refused_before_anything_is_fetched(
    subcommand, url, tmp_path, monkeypatch, capsys
):
    from training.__main__ import main

    monkeypatch.chdir(tmp_path)
    _forbid_loading(monkeypatch)
    assert main([subcommand, *LIGHTNING_MODEL, "--ckpt_path", url]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert f"--ckpt_path {url} is a URL; seethrough loads checkpoints from local files" in error


@pytest.mark.parametrize("key", ["_class_path", "class_path"])
def test_ckpt_path_hyper_parameters_naming_a_function_are_refused(
    tmp_path, monkeypatch, capsys, key
):
    from training.__main__ import main

    monkeypatch.chdir(tmp_path)
    target = tmp_path / "planted.pth"
    path = tmp_path / "evil.ckpt"
    torch.save(
        {
            "state_dict": {},
            "hyper_parameters": {
                key: "training.runs.atomic_write_text",
                "path": str(target),
                "text": "import os\n",
            },
        },
        path,
    )
    assert main(["validate", *LIGHTNING_MODEL, "--ckpt_path", str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert "refusing to build 'training.runs.atomic_write_text'" in error
    assert len(error.splitlines()) == 1
    assert not target.exists()


def test_lightning_always_loads_with_weights_only(tmp_path):
    from training.lightning_cli import SeethroughCLI

    cli = SeethroughCLI.__new__(SeethroughCLI)
    cli.model = torch.nn.Linear(1, 1)
    cli.datamodule = None
    cli._subcommand_method_arguments = {"validate": {"ckpt_path", "weights_only"}}
    cli.config_init = {"validate": {"ckpt_path": "x.ckpt", "weights_only": None}}
    assert cli._prepare_subcommand_kwargs("validate")["weights_only"] is True
    cli.config_init = {"validate": {"ckpt_path": "x.ckpt", "weights_only": False}}
    with pytest.raises(CheckpointError, match="--weights_only false is not supported"):
        cli._prepare_subcommand_kwargs("validate")


def test_actmax_logit_classifier_goes_through_the_allow_list(tmp_path, monkeypatch, capsys):
    from gan_dissect.__main__ import main

    weights = tmp_path / "weights"
    target = tmp_path / "planted.pth"
    shipped = pretrained.WEIGHTS_DIR
    for name in ("generator", "segmenter"):  # the shipped models, beside the planted card
        weights.mkdir(exist_ok=True)
        for suffix in (".json", ".pt"):
            (weights / f"{name}{suffix}").write_bytes((shipped / f"{name}{suffix}").read_bytes())
    _plant_card(weights, "evil", target)
    monkeypatch.setattr("training.pretrained.WEIGHTS_DIR", weights)
    for classifier, message in [
        ("evil", "refusing to build 'training.runs:atomic_write_text'"),
        ("../weights/evil", "is not a plain name"),
        (str(weights / "evil"), "is not a plain name"),
    ]:
        out = tmp_path / "out"
        argv = ["actmax", "--objective", f"logit:{classifier}:1", "--device", "cpu"]
        assert main([*argv, "--steps", "1", "--out", str(out)]) == 2
        error = capsys.readouterr().err.strip()
        assert message in error
        assert len(error.splitlines()) == 1
        assert not out.exists()
    assert not target.exists()


@pytest.mark.parametrize(
    ("name", "link"),
    [
        ("javascript:alert(1)", "./javascript%3Aalert%281%29/index.html"),
        ("data:text", "./data%3Atext/index.html"),
        ("a#b?c", "./a%23b%3Fc/index.html"),
        ("plain", "./plain/index.html"),
    ],
)
def test_index_links_every_run_folder_as_a_relative_path(tmp_path, name, link):
    with RunFolder(tmp_path / name, seed=0) as run:
        run.write_text("index.html", "x")
        run.write_text("p.png", "x")
        run.describe("title", "summary", preview="p.png")
    page = write_index(tmp_path).read_text()
    assert f'href="{link}"' in page
    assert f'src="{link.removesuffix("index.html")}p.png"' in page
    assert 'href="javascript' not in page
    assert 'href="data' not in page


def test_index_shows_no_preview_outside_the_run(tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_text("x")
    runs = tmp_path / "runs"
    with RunFolder(runs / "run", seed=0) as run:
        run.write_text("index.html", "x")
        run.describe("title", "summary", preview="../../secret.png")
    with RunFolder(runs / "abs", seed=0) as run:
        run.write_text("index.html", "x")
        run.describe("title", "summary", preview=str(outside))
    page = write_index(runs).read_text()
    assert "secret.png" not in page
