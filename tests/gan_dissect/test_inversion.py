"""Inversion: a generator's own samples come back, and edits carry over to the inverted image."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_dissect.intervention import ablate
from gan_dissect.inversion import FeatureLoss, InvertSettings, invert, paste, psnr
from gan_dissect.subject import Subject
from training.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")


class SmoothScenes(nn.Module):
    """A small smooth generator z (N, 8) -> (N, 3, 16, 16) whose pictures vary strongly with z."""

    def __init__(self) -> None:
        super().__init__()
        self.z_dim = 8
        self.layer1 = nn.Sequential(nn.Linear(8, 64), nn.ReLU())
        self.layer2 = nn.Sequential(
            nn.Unflatten(1, (4, 4, 4)), nn.ConvTranspose2d(4, 8, 4, 2, 1), nn.ReLU()
        )
        self.output = nn.Sequential(nn.ConvTranspose2d(8, 3, 4, 2, 1), nn.Tanh())
        with torch.random.fork_rng():
            torch.manual_seed(0)
            for module in self.modules():
                if isinstance(module, (nn.Linear, nn.ConvTranspose2d)):
                    nn.init.normal_(module.weight, 0.0, 0.5)
        self.eval()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.output(self.layer2(self.layer1(z.reshape(len(z), -1))))


@pytest.fixture(scope="module")
def sample() -> tuple[SmoothScenes, torch.Tensor, torch.Tensor]:
    generator = SmoothScenes()
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        images = generator(z)
    return generator, z, images


def test_a_sample_of_the_generator_is_recovered(sample):
    generator, z, images = sample
    assert images.std() > 0.5, "the pictures are far from flat"
    result = invert(
        Subject.build(generator, None, batch_size=16),
        images,
        settings=InvertSettings(z_steps=200, lr=0.05),
    )
    assert result.errors["start"] > 0.2, "the best random start is far off"
    assert result.errors["latent"] < 0.01
    assert torch.all((result.z - z).norm(dim=1) < 0.02 * z.norm(dim=1))
    assert psnr(result.reconstructions, images).min() > 35.0
    assert result.history[0]["stage"] == "latent"


def test_feature_refinement_gets_closer_and_edits_apply_to_the_inverted_image(sample):
    generator, _, images = sample
    target = images.clone()
    target[:, :, :4, :4] = 0.9  # a patch the generator cannot quite paint from z alone
    result = invert(
        Subject.build(generator, None, batch_size=16),
        target,
        layer="layer2",
        settings=InvertSettings(z_steps=100, feature_steps=150),
    )
    assert result.errors["features"] < 0.8 * result.errors["latent"]
    with torch.no_grad(), result.applied(generator):
        again = generator(result.z)
        with ablate(generator, "layer2", list(range(8))):
            edited = generator(result.z)
    torch.testing.assert_close(again, result.reconstructions)
    # every unit of layer2 off leaves only the output layer's bias
    bias = torch.tanh(generator.output[0].bias)[None, :, None, None].expand_as(edited)
    torch.testing.assert_close(edited, bias)
    for mode in ("difference", "mask"):  # no edit: the real image itself
        pasted = paste(target, result.reconstructions, again, mode=mode)  # type: ignore[arg-type]
        torch.testing.assert_close(pasted, target.clamp(-1, 1))
    assert all(not m._forward_hooks for m in generator.modules())


def test_an_encoder_start_is_used(sample):
    generator, z, images = sample

    class Oracle(nn.Module):
        def forward(self, pictures: torch.Tensor) -> torch.Tensor:
            return z[: len(pictures)]

    result = invert(
        Subject.build(generator, None, batch_size=16),
        images,
        encoder=Oracle(),
        settings=InvertSettings(z_steps=0),
    )
    assert result.errors["start"] == 0.0 == result.errors["latent"]
    assert result.params["encoder"] is True
    assert result.params["candidates"] is None


def test_feature_loss_compares_inner_layers(sample):
    images = sample[2]
    network = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    loss = FeatureLoss(network, ["1"])
    target = loss.features(images, graph=False)
    assert loss(images, target).abs().max() == 0
    assert loss(-images, target).min() > 0
    with pytest.raises(InputError, match="no layer 'relu'"):
        FeatureLoss(network, ["relu"])


def test_bad_images_are_one_clear_error(sample):
    generator, _, images = sample
    subject = Subject.build(generator, None, batch_size=16)
    with pytest.raises(InputError, match=r"images must be \(N, 3, H, W\)"):
        invert(subject, images[:, 0])
    with pytest.raises(InputError, match=r"finite and lie in \[-1, 1\]"):
        invert(subject, images * float("nan"))
    with pytest.raises(InputError, match=r"finite and lie in \[-1, 1\]"):
        invert(subject, images * 3)
    with pytest.raises(InputError, match="no layer 'layer9'"):
        invert(subject, images, layer="layer9")
    with pytest.raises(InputError, match="paste mode must be 'difference', 'mask' or 'none'"):
        paste(images, images, images, mode="blend")  # type: ignore[arg-type]


def test_mask_paste_takes_the_generators_pixels_only_where_the_edit_changed_something():
    real = torch.zeros(1, 3, 8, 8)
    reconstruction = torch.full((1, 3, 8, 8), 0.2)  # blurry: off by 0.2 everywhere
    edited = reconstruction.clone()
    edited[:, :, 2:4, 2:4] = -0.8  # the edit darkens a 2 x 2 patch
    pasted = paste(real, reconstruction, edited, mode="mask")
    assert torch.equal(pasted[:, :, 2:4, 2:4], edited[:, :, 2:4, 2:4])
    grown = torch.zeros(8, 8, dtype=torch.bool)
    grown[1:5, 1:5] = True  # the patch grown by a pixel takes the edit too
    assert torch.equal(pasted[0, 0][grown], edited[0, 0][grown])
    assert torch.equal(pasted[0, 0][~grown], real[0, 0][~grown])
    moved = paste(real, reconstruction, edited, mode="difference")
    torch.testing.assert_close(moved[:, :, 2, 2], torch.full((1, 3), -1.0))
    assert torch.equal(moved[0, 0][~grown], real[0, 0][~grown])
