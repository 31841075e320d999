"""``python -m gan_dissect ablate|actmax|invert`` on planted stand-ins: files, figures, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gan_dissect.__main__ import COMMANDS, main
from gan_dissect.units import unit_count
from training.cli import parse_command_args

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]
DRAWN = [
    "--generator", "gan_dissect.synthetic:DrawnLampScenes",
    "--segmenter", "gan_dissect.synthetic:PaletteSegmenter",
    "--layer", "layer2", "--num-units", "3", "--dissect-samples", "60", "--learn-steps", "30",
]  # fmt: skip


@pytest.fixture(scope="module")
def ablate_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "ablate"
    status = main([
        "ablate", *DRAWN, "--num-samples", "60", "--region-samples", "40",
        "--curve-counts", "2,3", "--curve-samples", "40", "--random-repeats", "2",
        "--show", "4", "--out", str(out),
    ])  # fmt: skip
    assert status == 0
    return out


def test_ablate_writes_the_effect_the_pictures_and_a_page_ending_with_the_streets(ablate_run):
    record = json.loads((ablate_run / "effect.json").read_text())
    assert record["choice"]["units"] == [9, 10, 11]  # the planted draw units, not the decoys
    assert record["summary"]["removed_share"] == 1.0
    assert record["summary"]["relative_changes"]["sky"] == 0.0
    assert record["insertion_in_region"]["ace_in_region"]["ace"] > 0
    shown = record["shown"]  # the streets on the page: bright lamp pixels before and after
    assert min(shown["bright_pixels_before"]) > 10  # the planted lamps are drawn lit
    assert (shown["showing_before"], shown["showing_after"]) == (4, 0)
    curve = record["curve"]
    assert curve["removed"]["learned ranking"][-1] == 1.0
    assert curve["removed"]["IoU ranking"][0] == 0.0  # its first two units are the decoys
    for name in ("before", "after", "difference", "unedited", "inserted", "curve"):
        assert (ablate_run / f"{name}.png").stat().st_size > 1000, name
    page = (ablate_run / "index.html").read_text()
    headings = re.findall(r"<h2 id=\"([\w-]+)\">", page)
    assert headings[-1] == "streets", "the page ends with the streets with and without lamps"
    last = page.split('id="streets"')[1]
    assert [src for src in re.findall(r'src="([\w.]+)"', last)] == [
        "before.png",
        "after.png",
        "difference.png",
    ]
    assert re.search(r'src="before.png"[^>]*width="(\d+)"', last).group(1) == str(
        4 * 64 * 3 + 5 * 6
    ), "four 64 px samples three times their size"
    run = json.loads((ablate_run / "run.json").read_text())
    assert run["title"] == "Ablation of lamp units"
    assert "100.0 % of lamp pixels removed" in run["summary"]


def test_actmax_uses_the_units_of_an_ablate_run_and_finds_no_lamp_under_their_ablation(
    ablate_run, tmp_path
):
    out = tmp_path / "actmax"
    status = main([
        "actmax", *DRAWN[:4], "--units", str(ablate_run), "--restarts", "3", "--steps", "15",
        "--pixel-steps", "15", "--typical-samples", "20", "--out", str(out),
    ])  # fmt: skip
    assert status == 0
    record = json.loads((out / "actmax.json").read_text())
    assert record["ablation"]["units"] == [9, 10, 11]
    assert record["best_fall"] > 0.9
    assert record["pixels"]["best_score"] > 10 * record["constrained"]["best_score"]
    realism = record["realism"]
    assert realism["pixel space"]["nearest_real_l1"] > realism["constrained"]["nearest_real_l1"]
    for name in ("constrained", "pixels", "under_ablation", "history"):
        assert (out / f"{name}.png").is_file(), name


def test_invert_runs_on_stand_ins_and_measures_on_real_pixels(tmp_path):
    out = tmp_path / "invert"
    status = main([
        "invert", "--generator", "gan_dissect.synthetic:DCGANStandIn",
        "--segmenter", "gan_dissect.synthetic:UNetStandIn", "--encoder", "none",
        "--num-images", "2", "--z-steps", "3", "--feature-steps", "3", "--candidates", "4",
        "--layer", "layer3", "--units", "1,2", "--dissect-samples", "8", "--out", str(out),
    ])  # fmt: skip
    assert status == 0
    record = json.loads((out / "invert.json").read_text())
    assert record["edit"]["units"] == [1, 2]
    assert set(record["inversion"]["errors"]) == {"start", "latent", "features"}
    assert record["measures"]["pixel_l1"] > 0
    assert record["images"]["held_out_indices"] == sorted(record["images"]["held_out_indices"])
    for name in ("real", "reconstruction", "edited", "edited_real", "difference"):
        assert (out / f"{name}.png").is_file(), name


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ablate", *DRAWN, "--concept", "lamps"], "--concept 'lamps' is not one of"),
        (["ablate", *DRAWN, "--num-units", "17"], r"--num-units must lie in 1\.\.16 \(units of"),
        (["ablate", *DRAWN, "--num-units", "150%"], "--num-units must be a whole number or a"),
        (["ablate", *DRAWN, "--num-units", "eight"], "--num-units must be a whole number or a"),
        (["ablate", *DRAWN, "--units", "9,x"], "--units '9,x' is neither 'auto'"),
        (["ablate", *DRAWN, "--units", "9,16"], r"unit\(s\) \[16\] out of range"),
        (["ablate", *DRAWN, "--units", "3,3,3"], r"--units names unit\(s\) \[3\] more than once"),
        (["ablate", *DRAWN, "--curve-counts", "x"], "--curve-counts must be comma-separated"),
        (["ablate", *DRAWN, "--layer", "layr2"], "no layer 'layr2'; did you mean layer2"),
        (["ablate", *DRAWN, "--off-level", "mean"], "--off-level 'mean' is not an ablation"),
        (["ablate", *DRAWN, "--on-level", "nan"], "--on-level must be a finite number"),
        (["ablate", *DRAWN, "--insert-region", "0,0,99,9"], r"does not lie inside the 64x64"),
        (["actmax", *DRAWN, "--objective", "unit:layer2"], "is not concept:NAME, unit:LAYER"),
        (
            [
                "invert",
                *DRAWN[:4],
                "--encoder",
                "none",
                "--refine-layer",
                "layer2",
                "--layer",
                "layer1",
                "--units",
                "0",
            ],
            "edit layer layer1 comes before --refine-layer layer2",
        ),
    ],
)
def test_bad_options_are_one_line_and_write_nothing(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert re.search(message, error), error
    assert len(error.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "config",
    [
        "ablate.yaml",
        "ablate_demo.yaml",
        "actmax.yaml",
        "actmax_demo.yaml",
        "invert.yaml",
        "invert_demo.yaml",
    ],
)
def test_configs_name_only_known_options(config):
    name = config.split("_")[0].split(".")[0]
    spec = next(spec for spec in COMMANDS if spec.name == name)
    module = __import__(spec.module, fromlist=["run"])
    args = parse_command_args("prog", spec, module, ["--config", str(ROOT / "configs" / config)])
    assert args.concept == "lamp"


def test_a_share_of_the_layer_is_rounded_down_to_whole_units_and_never_to_none():
    assert unit_count("8%", 128) == 10  # 10.24
    assert unit_count("8%", 64) == 5  # 5.12
    assert unit_count("8%", 16) == 1  # 1.28
    assert unit_count("1%", 16) == 1  # 0.16: at least one
    assert unit_count("100%", 16) == 16
    assert unit_count(" 7 ", 16) == 7
    assert unit_count("12.5%", 64) == 8  # exactly 8, not 7 by rounding error


def test_a_broken_effect_record_is_one_line(tmp_path, capsys):
    folder = tmp_path / "earlier"
    folder.mkdir()
    (folder / "effect.json").write_text("{ not json")
    out = tmp_path / "out"
    assert main(["actmax", *DRAWN, "--units", str(folder), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "is not the effect record of an ablate run" in error
    assert len(error.strip().splitlines()) == 1
    assert not out.exists()
