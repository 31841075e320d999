"""``python -m surrogate tree``: one run folder whose JSON, text, pictures and page agree."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from surrogate.__main__ import main


def _run(tmp_path, *options: str) -> dict:
    out = tmp_path / "tree"
    assert main(["tree", "--out", str(out), *options]) == 0
    return {
        "out": out,
        "results": json.loads((out / "tree.json").read_text()),
        "run": json.loads((out / "run.json").read_text()),
    }


def test_classification_run_writes_consistent_results(tmp_path):
    run = _run(
        tmp_path, "--data", "wine", "--max-depth", "3", "--oracle-samples", "3", "--seed", "1"
    )
    out, results = run["out"], run["results"]
    for name in ("tree.json", "rules.txt", "tree.png", "fidelity_curve.png", "index.html"):
        assert (out / name).is_file(), name
    curve = results["curves"]["oracle samples"]
    assert [row["depth"] for row in curve] == [1, 2, 3]
    assert curve[-1]["fidelity"] == results["surrogate"]["fidelity"]  # the same tree
    assert results["curves"]["plain tree"][-1]["fidelity"] == results["plain_tree"]["fidelity"]
    assert results["plain_tree"]["n_oracle_samples"] == 0
    assert results["data"]["test_rows"] == 89  # half of wine's 178 rows, rounded up
    tree = results["tree"]
    assert len(tree["rules"]) == tree["n_leaves"] == results["surrogate"]["n_leaves"]
    assert set(tree["outputs"]) == {"class_0", "class_1", "class_2"}  # data set's class names
    rules_text = (out / "rules.txt").read_text()
    assert rules_text.count("\n") == tree["n_leaves"]
    assert all(rule["prediction"] in rules_text for rule in tree["rules"])
    page = (out / "index.html").read_text()
    assert f"{results['surrogate']['fidelity']:.3g}" in page
    assert run["run"]["title"] == "Tree surrogate of random_forest on wine"
    assert "fidelity" in run["run"]["summary"]
    assert run["run"]["seed"] == 1
    width, height = Image.open(out / "tree.png").size
    assert width > 300
    assert height > 150


def test_regression_data_reports_r2(tmp_path):
    results = _run(tmp_path, "--data", "diabetes", "--max-depth", "2", "--oracle-samples", "2")[
        "results"
    ]
    assert results["tree"]["task"] == "regression"
    assert results["fidelity_definition"].startswith("R^2")
    assert 0.3 < results["surrogate"]["fidelity"] <= 1.0
    assert results["tree"]["outputs"] == ["score"]


def test_same_seed_same_tree_json_byte_for_byte(tmp_path):
    options = ("--data", "iris", "--max-depth", "2", "--oracle-samples", "3")
    first = _run(tmp_path / "a", *options)
    second = _run(tmp_path / "b", *options)
    assert (first["out"] / "tree.json").read_bytes() == (second["out"] / "tree.json").read_bytes()
    # the fitting times live in run.json, which records the run rather than its result
    assert set(first["run"]["fit_seconds"]) == {"oracle samples", "plain tree"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--model", "no_such_model"], "--model 'no_such_model' is not one of random_forest"),
        (["--curve-depths", "1,x"], "--curve-depths must be comma-separated integers"),
        (["--max-depth", "0"], "max_depth must be between 1 and 32"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, capsys, options, message):
    out = tmp_path / "tree"
    assert main(["tree", "--data", "iris", "--out", str(out), *options]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert not out.exists()


def test_model_given_by_import_path_is_fitted_on_the_training_rows(tmp_path):
    results = _run(
        tmp_path,
        "--data",
        "iris",
        "--model",
        "sklearn.linear_model:LogisticRegression",
        "--max-depth",
        "2",
        "--oracle-samples",
        "2",
    )["results"]
    assert "LogisticRegression" in results["black_box"]["description"]
    assert results["black_box"]["accuracy"] > 0.9
    assert np.isfinite(results["surrogate"]["fidelity"])


def test_a_device_this_machine_lacks_is_refused(tmp_path):
    import torch

    absent = "tpu:3" if torch.cuda.is_available() else "cuda"
    out = tmp_path / "tree"
    assert main(["tree", "--device", absent, "--out", str(out)]) == 2
    assert not out.exists()
