from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from gan_dissect import loading
from gan_dissect.__main__ import COMMANDS, main
from gan_dissect.commands import dissect as command
from gan_dissect.dissection import checkpoint_files, load_dissection
from gan_dissect.synthetic import DCGANStandIn, LampScenes
from training.cli import parse_command_args
from training.sources import is_factory

ROOT = Path(__file__).resolve().parents[2]
SPEC = next(spec for spec in COMMANDS if spec.name == "dissect")


def test_dissect_command_writes_json_pictures_and_a_sortable_page(tmp_path):
    out = tmp_path / "run"
    config = tmp_path / "dissect.yaml"
    config.write_text(
        (ROOT / "configs" / "dissect_synthetic.yaml").read_text()
        + "num_samples: 200\nreport_units: 4\n"
    )
    assert main(["dissect", "--config", str(config), "--out", str(out)]) == 0
    results = load_dissection(out)
    assert list(results) == ["layer1", "layer2"]  # chosen automatically
    layer2 = results["layer2"]
    assert layer2.label(5) == "lamp"
    page = (out / "index.html").read_text()
    assert page.count('<table class="sortable units">') == 2
    # the lamp unit comes first among layer2's rows and shows its picture strip
    rows = re.findall(r'<td class="num">(\d+)</td>\s*<td>(\w+)</td>', page.split('id="layer2"')[1])
    assert rows[0] == ("5", "lamp")
    assert 'src="units/layer2/unit0005.png"' in page
    assert (out / "units" / "layer2" / "unit0005.png").stat().st_size > 500
    assert len(list((out / "units" / "layer2").glob("*.png"))) == 4
    assert (out / "figures" / "layer2_concepts.png").is_file()
    record = json.loads((out / "run.json").read_text())
    assert "best unit 5 = lamp" in record["summary"]
    assert record["title"] == "GAN dissection"
    assert not list(tmp_path.glob(".run.dissect-*")), "a finished run removes its checkpoint"


def test_missing_shipped_models_are_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("training.pretrained.WEIGHTS_DIR", tmp_path / "weights")
    status = main(["dissect", "--out", str(tmp_path / "out"), "--num-samples", "4"])
    assert status == 2
    assert "no shipped model 'generator'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_shipped_configs_name_only_known_options(tmp_path):
    for name in ("dissect.yaml", "dissect_synthetic.yaml"):
        args = parse_command_args("prog", SPEC, command, ["--config", str(ROOT / "configs" / name)])
        assert args.layers == "auto"
        assert args.quantile == 0.99
        assert args.iou_floor == 0.04


def test_auto_layers_are_the_feature_maps_smaller_than_the_image():
    assert loading.choose_layers(LampScenes(), "auto", (16,)) == ["layer1", "layer2"]
    assert loading.choose_layers(DCGANStandIn(), "auto", (128,)) == [
        "layer1",
        "layer2",
        "layer3",
        "layer4",
    ]
    assert loading.choose_layers(LampScenes(), "layer2, layer1", (16,)) == ["layer2", "layer1"]


def test_import_paths_name_classes_factories_or_the_model_itself():
    cpu = torch.device("cpu")
    generator = loading.load_generator("gan_dissect.synthetic:LampScenes", cpu)
    assert isinstance(generator, LampScenes)
    assert not generator.training
    # a function of images is the segmenter itself, not a factory to call
    assert is_factory(LampScenes) is True
    assert is_factory(lambda images: images) is False
    assert is_factory(lambda images=None: images) is True


def test_a_finished_dissection_deletes_exactly_its_own_checkpoint(tmp_path):
    keep = {"prog_notes.txt": "my notes", "program.py": "print('mine')\n", "prog.bak": "old"}
    for name, text in keep.items():
        (tmp_path / name).write_text(text)
    argv = [
        "dissect", "--config", str(ROOT / "configs" / "dissect_synthetic.yaml"),
        "--num-samples", "100", "--report-units", "1", "--checkpoint-interval", "0",
        "--checkpoint", str(tmp_path / "prog"), "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    assert main(argv) == 0
    assert {p.name: p.read_text() for p in tmp_path.iterdir() if p.is_file()} == keep
    assert checkpoint_files(tmp_path / "prog", 2) == [
        tmp_path / "prog.rank0-of-2",
        tmp_path / "prog.rank1-of-2",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", r"dissection\.json is not valid JSON \(Expecting property name"),
        ("[1, 2]", r"dissection\.json is not a seethrough dissection \(format None\)"),
        (b"\xff\xfe\x00garbage", r"dissection\.json is not valid JSON"),
    ],
)
def test_a_dissection_file_that_does_not_parse_is_one_line(tmp_path, capsys, text, message):
    folder = tmp_path / "dissection"
    folder.mkdir()
    path = folder / "dissection.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = tmp_path / "out"
    argv = [
        "ablate",
        "--generator", "gan_dissect.synthetic:DrawnLampScenes",
        "--segmenter", "gan_dissect.synthetic:PaletteSegmenter",
        "--layer", "layer2", "--ranking", "iou", "--dissection", str(folder), "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert re.search(message, error), error
    assert not out.exists()


def test_an_interruption_before_the_first_checkpoint_says_nothing_was_saved(
    tmp_path, monkeypatch, capsys
):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "dissect_layers", interrupted)
    argv = [
        "dissect", "--config", str(ROOT / "configs" / "dissect_synthetic.yaml"),
        "--checkpoint", str(tmp_path / "progress.ckpt"), "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    assert main(argv) == 130
    error = capsys.readouterr().err
    assert "no progress was saved yet (the first checkpoint comes after" in error
    assert "progress is saved in" not in error
    assert list(tmp_path.iterdir()) == []
