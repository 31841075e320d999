"""The shape of gan_dissect's public surface: small signatures around one checked subject."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import gan_dissect
from gan_dissect import streams
from gan_dissect.subject import Subject
from gan_dissect.synthetic import LampScenes, PaletteSegmenter
from training.errors import ConfigError, InputError

MOST_PARAMETERS = 8
PACKAGE = Path(gan_dissect.__file__).parent


def _public_functions() -> Iterator[tuple[str, Any]]:
    """Every public function and method defined in a public module of gan_dissect (a
    dataclass's generated ``__init__`` aside: it is the record's fields)."""
    for info in pkgutil.walk_packages(gan_dissect.__path__, "gan_dissect."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(value):
                yield f"{info.name}.{name}", value
            elif inspect.isclass(value):
                for attribute, member in vars(value).items():
                    function = getattr(member, "__func__", member)
                    if not inspect.isfunction(function):
                        continue
                    if attribute.startswith("_") and attribute != "__init__":
                        continue
                    if attribute == "__init__" and dataclasses.is_dataclass(value):
                        continue
                    yield f"{info.name}.{name}.{attribute}", function


def _parameters(function: Any) -> list[str]:
    names = list(inspect.signature(function).parameters)
    return names[1:] if names and names[0] in ("self", "cls") else names


def test_no_public_function_takes_more_than_eight_parameters():
    found = dict(_public_functions())
    # the walk sees the analyses, so a wrong walk cannot pass by finding nothing
    analyses = ["dissection.dissect_layers", "effects.measure_effect", "ranking.learn_unit_mask"]
    analyses += ["inversion.invert", "actmax.maximise_latent", "subject.Subject.build"]
    for name in analyses:
        assert f"gan_dissect.{name}" in found
    too_many = {
        name: len(_parameters(function))
        for name, function in found.items()
        if len(_parameters(function)) > MOST_PARAMETERS
    }
    assert not too_many, too_many


def test_every_analysis_takes_the_subject_first():
    for name in ("dissect", "dissect_layers", "measure_effect", "effect_curve", "unit_quantiles",
                 "learn_unit_mask", "rank_units_by_ablation", "maximise_latent", "invert",
                 "choose_units"):  # fmt: skip
        first = next(iter(inspect.signature(getattr(gan_dissect, name)).parameters.values()))
        assert first.name == "subject", name


def test_the_random_streams_are_defined_once():
    """Every seed stream is a constant of gan_dissect.streams; no module numbers one itself."""
    numbers = [getattr(streams, name) for name in dir(streams) if name.endswith("_STREAM")]
    assert len(numbers) == len(set(numbers)) == 8
    for path in PACKAGE.rglob("*.py"):
        if path.name == "streams.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    assert not (isinstance(target, ast.Name) and target.id.endswith("_STREAM")), (
                        f"{path.name} defines {target.id}"
                    )
        assert not re.search(r"_STREAM\s*[+-]\s*\d", path.read_text()), path.name


class _Drawn(torch.nn.Module):
    """A generator whose pixels lie in [0, 255] and that takes latents (4, 2, 2) only."""

    z_dim = 16

    def __init__(self) -> None:
        super().__init__()
        self.block = torch.nn.Conv2d(4, 3, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 4:
            raise RuntimeError(f"expected 4-D latents, got {tuple(z.shape)}")
        up = torch.nn.functional.interpolate(self.block(z), size=(8, 8))
        return 255 * torch.sigmoid(up)


def test_the_subject_checks_once_naming_the_flag_and_the_argument():
    with pytest.raises(InputError, match=r"--z-shape \(z_shape= in Python\)"):
        Subject.build(_Drawn(), None)
    subject = Subject.build(_Drawn(), None, z_shape=(4, 2, 2))
    assert subject.output_range == (0.0, 255.0)  # detected on the first batch, mapped
    with torch.no_grad():
        images = subject.generator(subject.latents(range(3)))
    assert images.shape == (3, 3, 8, 8)
    assert -1.0 <= float(images.min()) < float(images.max()) <= 1.0
    assert subject.image_size == (8, 8)
    with pytest.raises(InputError, match=r"--output-range low,high \(output_range= in Python\)"):
        Subject.build(_Drawn(), None, z_shape=(4, 2, 2), output_range=(0.0, 1.0))
    with pytest.raises(InputError, match=r"--layers \(layers= in Python\).*no layer 'blok'"):
        Subject.build(_Drawn(), None, z_shape=(4, 2, 2), layers=["blok"])
    with pytest.raises(ConfigError, match=r"--batch-size \(batch_size= in Python\)"):
        Subject.build(_Drawn(), None, z_shape=(4, 2, 2), batch_size=0)
    with pytest.raises(InputError, match=r"needs a segmenter: pass --segmenter"):
        subject.segmentation(images)
    with pytest.raises(InputError, match=r"--concepts \(concepts= in Python\)"):
        Subject.build(LampScenes(size=32).eval(), lambda images: images[:, 0].long())


def test_the_subject_draws_each_sample_from_its_own_stream():
    subject = Subject.build(LampScenes(size=32).eval(), PaletteSegmenter(), batch_size=4, seed=2)
    batches = list(subject.batches(10, streams.EFFECT_STREAM))
    assert [index.tolist() for index, _ in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    together = torch.cat([z for _, z in batches])
    torch.testing.assert_close(
        together, streams.latents(2, range(10), (16,), stream=streams.EFFECT_STREAM), rtol=0, atol=0
    )
    assert subject.layers == ()
    auto = Subject.build(LampScenes(size=32).eval(), PaletteSegmenter(), layers="auto")
    assert auto.layers == ("layer1", "layer2")
    assert subject.layer_units("layer2") == 16


def test_pages_are_built_from_results_and_nothing_imports_private_command_modules():
    """Page code takes computed results, never a model; benchmarks and tests use the public
    page builder (training.pages), not a command's private module."""
    from gan_dissect.report import write_report

    assert "subject" not in inspect.signature(write_report).parameters
    root = PACKAGE.parent
    for path in [*root.glob("benchmarks/*.py"), *root.glob("tests/**/*.py")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"gan_dissect\.commands(\.| import )_", text), path.name
