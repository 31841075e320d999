"""The inversion encoder learns to undo a frozen generator, and knows which generator it is for."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from training.encoder import (
    Encoder,
    EncoderModule,
    LatentData,
    evaluate_encoder,
    generator_digest,
)
from training.errors import InputError
from training.models import Generator
from training.pretrained import save_pretrained


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    generator = Generator(z_dim=16, size=16, width=8).eval()
    for module in generator.modules():  # weights large enough that every image tells its z
        if isinstance(module, torch.nn.ConvTranspose2d):
            torch.nn.init.normal_(module.weight, 0.0, 0.3)
    save_pretrained(
        generator, "generator", kwargs={"z_dim": 16, "size": 16, "width": 8}, weights_dir=tmp_path
    )
    return tmp_path


def test_training_brings_the_encoders_latents_close_and_leaves_the_generator_alone(weights):
    torch.manual_seed(1)
    module = EncoderModule(weights_dir=str(weights), width=8, lr=3e-3)
    frozen = {k: v.clone() for k, v in module.generator.state_dict().items()}
    before = evaluate_encoder(module.encoder, module.generator, n=128)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=60,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    data = LatentData(z_dim=16, train_latents=1024, val_latents=0, batch_size=32)
    trainer.fit(module, data)
    after = evaluate_encoder(module.encoder, module.generator, n=128)
    assert after["latent_mse"] < 0.7 * before["latent_mse"]
    assert after["sample_pixel_l1"] < 0.7 * before["sample_pixel_l1"]
    assert not module.generator.training, "the generator keeps its batch-norm statistics"
    for key, value in module.generator.state_dict().items():
        assert torch.equal(value, frozen[key]), f"generator {key} changed"
    kwargs = module.parts()["encoder"][1]
    assert kwargs["generator_digest"] == generator_digest(module.generator)
    assert evaluate_encoder(module.encoder, module.generator, n=8)["trained_for_this_generator"]
    rebuilt = Encoder(**kwargs)
    assert rebuilt.generator_digest == kwargs["generator_digest"]


def test_generator_digest_tells_generators_apart():
    first, second = Generator(z_dim=16, size=16, width=8), Generator(z_dim=16, size=16, width=8)
    assert generator_digest(first) == generator_digest(first)
    assert generator_digest(first) != generator_digest(second)


def test_encoder_refuses_images_of_another_size():
    with pytest.raises(InputError, match=r"expects images \(N, 3, 16, 16\)"):
        Encoder(z_dim=8, size=16, width=4)(torch.zeros(2, 3, 32, 32))
