"""``python -m surrogate prototypes``: what it writes, and that it shows the estimator's choice."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from sklearn.model_selection import train_test_split

from surrogate.__main__ import main
from surrogate.mmd_critic import MMDCritic
from training.sources import load_dataset


def test_digits_gallery_matches_the_estimator_and_writes_every_part(tmp_path):
    out = tmp_path / "digits"
    argv = ["prototypes", "--n-prototypes", "20", "--n-criticisms", "6", "--out", str(out)]
    assert main([*argv, "--seed", "3", "--device", "cpu"]) == 0
    results = json.loads((out / "prototypes.json").read_text())
    assert results["local"] is True  # labels present: class-local by default
    assert results["n_train"] + results["n_test"] == 1797
    # Refit on the rows the command fitted on (its stratified 75 % split with the run's seed):
    # the gallery shows the estimator's choice, in the estimator's order.
    data = load_dataset("digits")
    train, test = train_test_split(np.arange(1797), test_size=0.25, random_state=3, stratify=data.y)
    train = np.sort(train)
    assert len(test) == results["n_test"]
    fit = MMDCritic(20, 6, local=True, random_state=3, device="cpu").fit(
        data.X[train], data.y[train]
    )
    assert [p["row"] for p in results["prototypes"]] == train[fit.prototype_indices_].tolist()
    assert [c["row"] for c in results["criticisms"]] == train[fit.criticism_indices_].tolist()
    np.testing.assert_allclose(
        [p["witness"] for p in results["prototypes"]], fit.witness_[fit.prototype_indices_]
    )
    assert len(results["curves"]["error"]) == 20
    assert results["curves"]["error"][-1] < results["curves"]["random_error"][-1]
    for name in ("prototypes.png", "criticisms.png", "mmd2_curve.png", "error_curve.png"):
        with Image.open(out / name) as image:
            assert min(image.size) > 200, name
    page = (out / "index.html").read_text()
    assert 'src="prototypes.png"' in page
    assert 'src="error_curve.png"' in page
    run = json.loads((out / "run.json").read_text())
    assert run["title"] == "MMD-critic prototypes: digits"
    assert "nearest-prototype error" in run["summary"]


def test_tabular_data_gets_a_table_of_values_not_images(tmp_path):
    out = tmp_path / "cancer"
    argv = ["prototypes", "--data", "breast_cancer", "--global", "--n-prototypes", "6"]
    assert main([*argv, "--n-criticisms", "3", "--out", str(out), "--device", "cpu"]) == 0
    assert not (out / "prototypes.png").exists()
    results = json.loads((out / "prototypes.json").read_text())
    assert results["local"] is False
    assert len(results["prototypes"][0]["values"]) == 30
    page = (out / "index.html").read_text()
    assert "mean radius" in page
    assert page.count("<tr>") >= 6 + 3


def test_unlabelled_file_with_image_shape(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "blobs.npy"
    np.save(path, rng.random((120, 16)))
    out = tmp_path / "blobs"
    argv = ["prototypes", "--data", str(path), "--image-shape", "4,4", "--n-prototypes", "5"]
    assert main([*argv, "--n-criticisms", "2", "--out", str(out), "--device", "cpu"]) == 0
    results = json.loads((out / "prototypes.json").read_text())
    assert results["final_error"] is None
    assert (out / "prototypes.png").is_file()
    assert not (out / "error_curve.png").exists()


def test_errors_name_the_option(tmp_path, capsys):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((10, 3)))
    assert main(["prototypes", "--data", str(path), "--local", "--out", str(tmp_path / "a")]) == 2
    assert "--local needs class labels" in capsys.readouterr().err
    assert main(["prototypes", "--gamma", "wide", "--out", str(tmp_path / "b")]) == 2
    assert "--gamma must be a positive number" in capsys.readouterr().err
    assert main(["prototypes", "--n-prototypes", "5000", "--out", str(tmp_path / "c")]) == 2
    assert "n_prototypes must be an integer from 1" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in "abc")
