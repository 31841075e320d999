from __future__ import annotations

import pytest
import torch

from training.errors import CheckpointError, ConfigError
from training.models import Discriminator, Generator, LampClassifier, Segmenter
from training.pretrained import load_pretrained, save_pretrained
from training.scenes import CONCEPTS


def _feature_shapes(model: torch.nn.Module, names: list[str], z: torch.Tensor) -> dict:
    shapes = {}
    handles = [
        getattr(model, name).register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:]))
        )
        for name in names
    ]
    model(z)
    for handle in handles:
        handle.remove()
    return shapes


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (64, {"layer1": (256, 4), "layer2": (128, 8), "layer3": (64, 16), "layer4": (32, 32)}),
        (32, {"layer1": (128, 4), "layer2": (64, 8), "layer3": (32, 16)}),
    ],
)
@pytest.mark.parametrize("upsample", ["transposed", "nearest"])
def test_generator_layers_are_named_feature_maps(size, expected, upsample):
    generator = Generator(z_dim=16, size=size, width=32, upsample=upsample).eval()
    names = [*expected, "output"]
    assert generator.layer_names == names
    assert [n for n, _ in generator.named_children()] == names
    shapes = _feature_shapes(generator, names, torch.randn(2, 16))
    for name, (channels, side) in {**expected, "output": (3, size)}.items():
        assert shapes[name] == (channels, side, side)
        assert generator.layer_shapes[name] == (channels, side)


def test_nearest_upsampling_draws_no_checkerboard_where_transposed_convolution_does():
    torch.manual_seed(0)
    drawn = {}
    for upsample in ("transposed", "nearest"):
        generator = Generator(z_dim=16, size=64, width=8, upsample=upsample)
        # a featureless map: any pattern comes from the layer
        flat = torch.ones(1, generator.layer_shapes["layer1"][0], 8, 8)
        layer = dict(generator.named_children())["layer2"].eval()
        assert isinstance(layer, torch.nn.Sequential)
        with torch.no_grad():
            drawn[upsample] = layer[:-1](flat)[0, :, 2:-2, 2:-2]  # without the ReLU, off the rim
    nearest, transposed = drawn["nearest"], drawn["transposed"]
    torch.testing.assert_close(nearest, nearest[:, :1, :1].expand_as(nearest))
    # the transposed convolution repeats a 2 x 2 pattern: constant on each parity class only
    torch.testing.assert_close(transposed[:, ::2, ::2], transposed[:, :1, :1].expand(-1, 6, 6))
    pattern = transposed[:, :2, :2].flatten(1)
    assert (pattern.std(1) > 0.1 * pattern.abs().mean(1)).all()
    with pytest.raises(ConfigError, match="upsample must be"):
        Generator(upsample="bilinear")


def test_generator_takes_both_latent_shapes_and_stays_in_range():
    generator = Generator(z_dim=16).eval()
    z = generator.sample_z(3, seed=4)
    torch.testing.assert_close(z, generator.sample_z(3, seed=4))
    images = generator(z)
    torch.testing.assert_close(images, generator(z[:, :, None, None]))
    assert images.shape == (3, 3, 64, 64)
    assert images.abs().max() <= 1.0
    with pytest.raises(ConfigError, match=r"z of shape \(N, 16\)"):
        generator(torch.randn(3, 8))


@pytest.mark.parametrize("norm", ["batch", "spectral"])
def test_discriminator_gives_one_logit_per_image(norm):
    discriminator = Discriminator(size=32, width=8, norm=norm)
    assert discriminator(torch.randn(5, 3, 32, 32)).shape == (5,)
    has_batch_norm = any(isinstance(m, torch.nn.BatchNorm2d) for m in discriminator.modules())
    assert has_batch_norm == (norm == "batch")


@pytest.mark.parametrize("size", [32, 64, 128])
def test_segmenter_scores_every_pixel_at_any_size(size):
    segmenter = Segmenter(width=4).eval()
    assert segmenter.concepts == list(CONCEPTS)
    assert segmenter(torch.randn(2, 3, size, size)).shape == (2, len(CONCEPTS), size, size)


def test_lamp_classifier_has_two_named_classes():
    classifier = LampClassifier(width=4).eval()
    assert classifier.class_names == ("no lamp lit", "lamp lit")
    assert classifier(torch.randn(3, 3, 64, 64)).shape == (3, 2)


@pytest.mark.parametrize(
    ("model", "kwargs"),
    [
        (Generator, {"z_dim": 8, "size": 32, "width": 8}),
        (Discriminator, {"size": 32, "width": 8, "norm": "spectral"}),
        (Segmenter, {"width": 4, "concepts": list(CONCEPTS)}),
        (LampClassifier, {"width": 4}),
    ],
)
def test_models_round_trip_through_the_shipped_format(tmp_path, model, kwargs):
    net = model(**kwargs)
    for parameter in net.parameters():  # not the initial values, so a fresh build would differ
        torch.nn.init.normal_(parameter)
    save_pretrained(net, "m", kwargs=kwargs, weights_dir=tmp_path, seed=1)
    loaded = load_pretrained("m", weights_dir=tmp_path)
    for (name, a), (_, b) in zip(
        net.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, msg=name)
    wider = {**kwargs, "width": kwargs["width"] * 2}
    save_pretrained(model(**wider), "wide", kwargs=wider, weights_dir=tmp_path)
    # a card whose weights came from another configuration is one clear error
    (tmp_path / "wide.pt").write_bytes((tmp_path / "m.pt").read_bytes())
    with pytest.raises(
        CheckpointError, match=r"trained with another configuration\?\): shape mismatch for "
    ):
        load_pretrained("wide", weights_dir=tmp_path)
