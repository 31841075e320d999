"""A generator and segmenter that are not the shipped ones, as a new user brings them.

``ToyGenerator`` draws 32 px images in [0, 1] (not [-1, 1]) from latents (8, 2, 2); unit
``PLANTED`` of ``layer2`` decides where the image is bright. ``BrightDark`` is a rule-based
segmenter that returns labels (N, H, W), no scores. The commands name them as
``test_own_gan:ToyGenerator`` and ``test_own_gan:BrightDark``.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from gan_dissect.__main__ import COMMANDS, main
from gan_dissect.commands import ablate as ablate_command
from gan_dissect.dissection import dissect_layers, load_dissection
from gan_dissect.models import check_generator, with_output_range
from gan_dissect.ranking import (
    LEARN_BATCH,
    LEARN_L2,
    LEARN_LR,
    LEARN_STEPS,
    LEARN_UNITS,
    LearnSettings,
    learn_unit_mask,
    rank_units_by_ablation,
)
from gan_dissect.subject import Segmentation, Subject
from gan_dissect.units import UnitSpec
from training.cli import parse_command_args
from training.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
PLANTED = 5
SIZE = 32
MODELS = ["--generator", "test_own_gan:ToyGenerator", "--segmenter", "test_own_gan:BrightDark"]


class ToyGenerator(torch.nn.Module):
    """Latents (8, 2, 2) -> layer1 (16 units, 4 x 4) -> layer2 (16 units, 8 x 8) -> 32 px images
    in [0.1, 0.9]: bright exactly where layer2's unit PLANTED, upsampled bilinearly, exceeds its
    0.9 quantile (so about a tenth of the pixels), dark elsewhere."""

    z_shape = (8, 2, 2)
    level: torch.Tensor
    scale: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layer1 = torch.nn.Sequential(
            torch.nn.Upsample(scale_factor=2), torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU()
        )
        conv = torch.nn.Conv2d(16, 16, 3, padding=1)
        self.layer2 = torch.nn.Sequential(
            torch.nn.Upsample(scale_factor=2, mode="bilinear"), conv, torch.nn.ReLU()
        )
        self.register_buffer("level", torch.zeros(()))
        self.register_buffer("scale", torch.ones(()))
        with torch.no_grad():
            assert conv.bias is not None
            conv.bias[PLANTED] = 0.2  # alive on most samples
            planted = self._planted(torch.randn(256, *self.z_shape))
            self.level.copy_(torch.quantile(planted.flatten(), 0.9))
            self.scale.copy_(planted.std())
        self.eval()

    def _planted(self, z: torch.Tensor) -> torch.Tensor:
        unit = self.layer2(self.layer1(z))[:, PLANTED : PLANTED + 1]
        return F.interpolate(unit, size=(SIZE, SIZE), mode="bilinear", align_corners=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        bright = torch.sigmoid(20 * (self._planted(z) - self.level) / self.scale)
        return (0.1 + 0.8 * bright).expand(-1, 3, -1, -1)


class BrightDark:
    """Labels (N, H, W) of images in [-1, 1]: 0 'bright' where the mean of the channels is
    above 0, else 1 'dark'."""

    concepts = ("bright", "dark")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return (images.mean(dim=1) <= 0).to(torch.int64)


@pytest.fixture(autouse=True)
def importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands import the models by name, as they would a user's module."""
    monkeypatch.setitem(sys.modules, "test_own_gan", sys.modules[__name__])


@pytest.fixture(scope="module")
def toy() -> torch.nn.Module:
    return ToyGenerator()


def test_the_output_range_is_detected_and_a_wrong_one_is_an_error_naming_the_option(toy):
    checked = check_generator(toy)
    assert checked.output_range == (0.0, 1.0)
    assert checked.detected
    assert checked.z_shape == (8, 2, 2)
    assert checked.image_size == (SIZE, SIZE)
    images = checked.generator(torch.randn(4, 8, 2, 2))
    assert images.min() >= -1
    assert images.max() <= 1
    assert images.min() < -0.5
    assert [name for name, _ in checked.generator.named_modules()][1:] == [
        name for name, _ in toy.named_modules()
    ][1:]
    with pytest.raises(InputError, match=r"no pixel is negative.*--output-range 0,1"):
        check_generator(toy, output_range=(-1.0, 1.0))
    with pytest.raises(InputError, match=r"outside the output range \[0, 0.5\].*--output-range"):
        check_generator(toy, output_range=(0.0, 0.5))
    with pytest.raises(InputError, match=r"latents of shape \(16, 32\).*--z-shape"):
        check_generator(toy, z_shape=(32,))


def test_dissecting_an_unmapped_generator_warns_naming_the_mapping(toy):
    # a subject made by hand skips Subject.build's checks; dissection still warns
    unchecked = Subject(toy, Segmentation(BrightDark()), (8, 2, 2), layers=("layer2",))
    with pytest.warns(UserWarning, match=r"no negative pixel.*with_output_range"):
        dissect_layers(unchecked, num_samples=4)
    with pytest.raises(InputError, match=r"no pixel is negative.*--output-range 0,1"):
        Subject.build(toy, BrightDark(), output_range=(-1.0, 1.0))


def test_a_perfect_planted_unit_reads_near_one_and_chance_matches_do_not_count(toy):
    generator = with_output_range(toy, (0.0, 1.0))
    subject = Subject.build(generator, BrightDark(), layers=["layer2"], batch_size=40)
    assert subject.output_range == (-1.0, 1.0)  # mapped already: nothing more to map
    results = dissect_layers(subject, num_samples=120)
    layer2 = results["layer2"]
    bright = layer2.concept_index("bright")
    assert layer2.label(PLANTED) == "bright"
    assert layer2.rule_ceiling_fraction()[PLANTED, bright] >= 0.95
    record = layer2.unit_records()[PLANTED]
    assert record["ceiling_fraction"] >= 0.95  # the JSON's headline fraction
    assert record["ceiling_fraction_best_level"] < 0.5  # the best-level ceiling, beside it
    summary = {row["concept"]: row for row in layer2.concept_summary()}
    assert summary["bright"]["best_ceiling_fraction"] >= 0.95

    maxiou = dissect_layers(subject, num_samples=120, thresholds="maxiou", selection_samples=60)[
        "layer2"
    ]
    best = maxiou.best_concepts()
    chance = maxiou.chance_iou()[np.arange(maxiou.units), best]
    matched = maxiou.matched()
    assert matched[PLANTED]
    assert maxiou.label(PLANTED) == "bright"
    assert not np.any(matched & (maxiou.best_iou() <= chance))
    at_chance = (best == maxiou.concept_index("dark")) & (maxiou.best_iou() <= chance)
    assert at_chance.sum() >= 1, "some random units meet 'dark' only at chance"
    assert not np.any(matched[at_chance])
    assert maxiou.rule_ceiling_fraction()[PLANTED, bright] >= 0.95


def test_labels_rank_units_by_ablation_and_the_learned_mask_names_the_alternatives(toy):
    subject = Subject.build(toy, BrightDark())  # [0, 1] detected and mapped
    assert subject.output_range == (0.0, 1.0)
    ranking = rank_units_by_ablation(subject, "layer2", "bright", num_samples=16)
    assert ranking.order()[0] == PLANTED
    assert ranking.strength[PLANTED] > 0.9
    assert np.delete(ranking.strength, PLANTED).max() < 0.2
    with pytest.raises(InputError, match=r"--ranking iou.*rank_units_by_ablation"):
        learn_unit_mask(subject, "layer2", "bright", settings=LearnSettings(steps=1))


def test_the_learned_ranking_has_one_set_of_defaults():
    assert inspect.signature(learn_unit_mask).parameters["settings"].default is None
    defaults = LearnSettings()  # what learn_unit_mask uses when given no settings
    assert defaults.steps == LEARN_STEPS
    assert defaults.batch_size == LEARN_BATCH
    assert defaults.lr == LEARN_LR
    assert defaults.l2 == LEARN_L2
    assert UnitSpec().learn == defaults  # the library's unit choice
    assert UnitSpec().num_units == LEARN_UNITS
    spec = next(spec for spec in COMMANDS if spec.name == "ablate")
    args = parse_command_args("prog", spec, ablate_command, [])
    assert (args.learn_steps, args.learn_batch) == (LEARN_STEPS, LEARN_BATCH)
    assert (args.learn_lr, args.learn_l2, args.num_units) == (LEARN_LR, LEARN_L2, LEARN_UNITS)
    config = yaml.safe_load((ROOT / "configs" / "ablate.yaml").read_text())
    assert config["learn_steps"] == LEARN_STEPS
    assert config["learn_lr"] == LEARN_LR
    assert config["learn_l2"] == LEARN_L2
    assert config["num_units"] == LEARN_UNITS


def test_late_failures_are_early_errors_naming_the_flag(tmp_path, capsys):
    def error(*flags: str) -> str:
        out = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        assert main([*flags, "--out", str(out)]) == 2
        assert not out.exists()
        return capsys.readouterr().err

    assert "--z-shape" in error("dissect", *MODELS, "--z-shape", "32", "--num-samples", "8")
    assert "--output-range 0,1" in error(
        "dissect", *MODELS, "--output-range=-1,1", "--num-samples", "8"
    )
    message = error("ablate", *MODELS, "--insert-region", "0,40,40,80", "--layer", "layer2")
    assert "--insert-region '0,40,40,80'" in message
    assert "inside the 32x32 image" in message


def test_the_toy_gan_runs_through_every_command_naming_only_the_models(tmp_path):
    dissection, ablation = tmp_path / "dissect", tmp_path / "ablate"
    assert main(["dissect", *MODELS, "--num-samples", "200", "--out", str(dissection)]) == 0
    layer2 = load_dissection(dissection)["layer2"]
    assert layer2.label(PLANTED) == "bright"
    run = json.loads((dissection / "run.json").read_text())
    fraction = re.search(
        rf"layer2: .*best unit {PLANTED} = bright \(IoU [0-9.]+, ([0-9.]+) of", run["summary"]
    )
    assert fraction is not None, run["summary"]
    assert float(fraction.group(1)) >= 0.95, run["summary"]
    page = (dissection / "index.html").read_text()
    assert "[0, 1] (detected) mapped to [-1, 1]" in page
    row = re.search(
        rf'<td class="num">{PLANTED}</td>\s*<td>bright</td>\s*<td class="num" data-value="[^"]+">'
        r'[^<]+</td>\s*<td class="num" data-value="([^"]+)">',
        page.split('id="layer2"')[1],
    )
    assert row is not None
    assert float(row.group(1)) >= 0.95  # the page's IoU / ceiling for the planted unit

    assert main(["ablate", *MODELS, "--out", str(ablation)]) == 0
    effect = json.loads((ablation / "effect.json").read_text())
    assert effect["choice"]["layer"] == "layer2"
    assert effect["choice"]["concept"] == "bright"
    assert effect["choice"]["units"] == [PLANTED]  # 8 % of 16 units: one
    assert "ablated alone" in effect["choice"]["how"]
    assert effect["summary"]["removed_share"] > 0.9
    curve = effect["curve"]
    assert curve["removed"]["single-unit ablation ranking"][0] > 0.9  # one unit: the planted
    assert max(curve["removed"]["random-0"][:1] + curve["removed"]["random-1"][:1]) < 0.5
    page = (ablation / "index.html").read_text()
    assert "Ablation of bright units" in page
    assert "lamp" not in page

    actmax, invert = tmp_path / "actmax", tmp_path / "invert"
    assert main(["actmax", *MODELS, "--out", str(actmax)]) == 0
    record = json.loads((actmax / "actmax.json").read_text())
    assert record["objective"] == f"layer2 unit {PLANTED}"  # labels: the chosen unit, not area
    assert record["ablation"]["units"] == [PLANTED]
    assert record["best_fall"] > 0.9  # with the unit off, no latent can drive it any more

    assert main(["invert", *MODELS, "--out", str(invert)]) == 0
    record = json.loads((invert / "invert.json").read_text())
    assert record["edit"]["units"] == [PLANTED]
    run = json.loads((invert / "run.json").read_text())
    fewer = re.search(
        r"bright pixels on the real images \d+ -> \d+ \(([0-9.]+) % fewer\)", run["summary"]
    )
    assert fewer is not None, run["summary"]
    assert float(fewer.group(1)) > 50, run["summary"]


def test_the_python_recipe_for_your_own_gan():
    """README's "Your own GAN" recipe carried on through actmax and inversion (toy models)."""
    MyGenerator, MySegmenter = ToyGenerator, BrightDark  # the names the README uses

    from gan_dissect import (
        InvertSettings,
        Subject,
        UnitEdit,
        ablate,
        dissect_layers,
        invert,
        maximise_latent,
        measure_effect,
        rank_units_by_ablation,
        unit_objective,
    )

    # checked once: latent shape, image size, output range ([0, 1], mapped to [-1, 1]), layers
    subject = Subject.build(MyGenerator(), MySegmenter(), layers=["layer2"])
    generator, segmenter = subject.generator, subject.segmenter
    layer2 = dissect_layers(subject, num_samples=200)["layer2"]
    best = layer2.units_for("bright", matched_only=True)[0]
    units = rank_units_by_ablation(subject, "layer2", "bright").order()[:1]
    effect, _ = measure_effect(subject, UnitEdit("layer2", units), "bright", num_samples=200)
    most = maximise_latent(subject, unit_objective("layer2", units[0]), steps=50)
    with torch.no_grad():
        photos = generator(torch.randn(4, *subject.z_shape))  # stand-ins for photos in [-1, 1]
    settings = InvertSettings(z_steps=50, feature_steps=0, candidates=8)
    inversion = invert(subject, photos, settings=settings)
    with torch.no_grad(), ablate(generator, "layer2", units):
        edited = generator(inversion.z)  # the photos' inversions with the units off

    assert best == PLANTED
    assert layer2.unit_records()[best]["ceiling_fraction"] >= 0.95
    assert units == [PLANTED]
    assert effect.removed_share() > 0.9
    assert float(most.scores.max()) > 0
    assert inversion.errors["latent"] <= inversion.errors["start"]
    assert int((segmenter(edited) == 0).sum()) == 0  # no bright pixel left


def test_the_readme_block_runs_as_written():
    """README's "Your own GAN" Python block, executed from README with the toy models."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("### Your own GAN", 1)[1]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {"MyGenerator": ToyGenerator, "MySegmenter": BrightDark}
    exec(compile(block, "README.md", "exec"), namespace)
    subject = namespace["subject"]
    assert isinstance(subject, Subject)
    assert subject.output_range == (0.0, 1.0)
    assert namespace["units"] == [PLANTED]
    assert namespace["layer2"].label(PLANTED) == "bright"  # type: ignore[attr-defined]
    assert namespace["effect"].removed_share() > 0.9  # type: ignore[attr-defined]
