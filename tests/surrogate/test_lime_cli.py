"""``python -m surrogate lime``: one run folder per kind, and torch image models by import path."""

from __future__ import annotations

import json
import textwrap

import numpy as np

from surrogate.__main__ import main
from surrogate.lime import Explanation, ImageExplanation

QUICK = ["--num-samples", "300", "--sp-size", "6", "--sp-pick", "2", "--num-random", "3"]


def _run(tmp_path, *options):
    out = tmp_path / "run"
    status = main(["lime", "--out", str(out), *QUICK, *options])
    return status, out


def _check_folder(out, kind, rows):
    result = json.loads((out / "explanations.json").read_text())
    assert result["kind"] == kind
    assert [item["row"] for item in result["instances"]] == rows
    for item in result["instances"]:
        explanation = Explanation.from_dict(item["explanation"])
        assert explanation.available_labels() == [item["label"]]
        assert 0 <= item["deletion"]["auc"] <= 1
        for picture in item["pictures"].values():
            assert (out / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(result["submodular_pick"]["rows"]) == 2
    record = json.loads((out / "run.json").read_text())
    assert record["title"].startswith(f"LIME: {kind}")
    assert "deletion AUC" in record["summary"]
    page = (out / "index.html").read_text()
    assert all(
        f'src="{p}"' in page
        for i in result["instances"]
        for p in i["pictures"].values()
        if not p.endswith("_bars.png")
    )
    return result


def test_tabular_run_writes_json_pictures_and_page(tmp_path):
    status, out = _run(tmp_path, "--kind", "tabular", "--instances", "0,3")
    assert status == 0
    result = _check_folder(out, "tabular", [0, 3])
    assert result["held_out_accuracy"] > 0.9
    names = {name for name, _ in result["submodular_pick"]["explanations"][0]["top"]}
    assert all(any(c.isalpha() for c in name) for name in names)  # readable feature names


def test_image_run_on_digits(tmp_path):
    status, out = _run(tmp_path, "--kind", "image", "--image-size", "16", "--instances", "1")
    assert status == 0
    result = _check_folder(out, "image", [1])
    explanation = Explanation.from_dict(result["instances"][0]["explanation"])
    assert isinstance(explanation, ImageExplanation)
    assert explanation.segments.shape == (16, 16)
    assert explanation.params["hide_color"] == 0.0
    assert result["held_out_accuracy"] > 0.9


def test_image_run_with_a_torch_module_from_an_import_path(tmp_path, monkeypatch):
    (tmp_path / "tiny_models.py").write_text(
        textwrap.dedent(
            '''
            import torch

            class Brightness(torch.nn.Module):
                """Logits of (dark, bright) from images (N, 3, H, W) in [-1, 1]."""

                class_names = ["dark", "bright"]

                def forward(self, images):
                    level = images[:, :, :, : images.shape[-1] // 2].mean(dim=(1, 2, 3))
                    return torch.stack([-6 * level, 6 * level], dim=1)

            def make():
                return Brightness()
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    rng = np.random.default_rng(0)
    images = (rng.random((40, 24, 24, 3)) * 255).astype(np.uint8)
    np.save(tmp_path / "pictures.npy", images)
    status, out = _run(
        tmp_path,
        "--kind", "image",
        "--data", str(tmp_path / "pictures.npy"),
        "--model", "tiny_models:make",
        "--instances", "0",
    )  # fmt: skip
    assert status == 0
    result = _check_folder(out, "image", [0])
    explanation = Explanation.from_dict(result["instances"][0]["explanation"])
    assert explanation.class_names == ["dark", "bright"]
    # The module reads the left half only: superpixels there carry the weight.
    weights = dict(explanation.as_map()[explanation.available_labels()[0]])
    left = {f: (explanation.segments[:, :12] == f).sum() for f in weights}
    largest = max(abs(w) for w in weights.values())
    assert left[max(weights, key=lambda f: abs(weights[f]))] > 0
    assert all(abs(weights[f]) < 0.05 * largest for f in weights if left[f] == 0)


def test_text_run_on_reviews(tmp_path):
    status, out = _run(tmp_path, "--kind", "text", "--instances", "0,1")
    assert status == 0
    result = _check_folder(out, "text", [0, 1])
    sentiment = {"good", "great", "excellent", "lovely", "moving", "superb", "fun", "charming"}
    sentiment |= {"bad", "awful", "poor", "boring", "dull", "weak", "clumsy", "tedious"}
    for item in result["instances"]:
        top_word = Explanation.from_dict(item["explanation"]).as_list(item["label"])[0][0]
        assert top_word in sentiment


def test_rows_outside_the_held_out_set_are_refused(tmp_path, capsys):
    status, out = _run(tmp_path, "--kind", "tabular", "--instances", "0,999")
    assert status == 2
    assert "--instances [999] are outside the 143 held-out rows" in capsys.readouterr().err
    assert not out.exists()


def test_hidden_superpixels_can_take_their_mean_colour(tmp_path):
    status, out = _run(
        tmp_path, "--kind", "image", "--image-size", "8", "--instances", "0", "--hide-color",
        "mean", "--sp-size", "0",
    )  # fmt: skip
    assert status == 0
    result = json.loads((out / "explanations.json").read_text())
    assert result["instances"][0]["explanation"]["params"]["hide_color"] is None
    assert result["submodular_pick"] is None


def test_same_seed_gives_bit_identical_explanations_json(tmp_path):
    runs = {}
    for name, seed in (("first", "3"), ("again", "3"), ("other", "4")):
        out = tmp_path / name
        options = ["--kind", "text", "--instances", "0", "--sp-size", "4", "--seed", seed]
        assert main(["lime", "--out", str(out), *QUICK, *options]) == 0
        runs[name] = (out / "explanations.json").read_bytes()
    assert runs["first"] == runs["again"]
    assert runs["first"] != runs["other"]


_PEOPLE = "\ufeffname,city,size,member,label\n" + "".join(
    f'"Person, {i}",{["Oslo", "Rome", ""][i % 3]},{"" if i % 7 == 0 else i % 10},'
    f"{i % 2 == 0},{'yes' if (i % 3 == 0) != (i % 10 > 7) else 'no'}\n"
    for i in range(120)
)


def test_a_csv_with_text_gaps_and_ids_is_explained_in_raw_columns(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(_PEOPLE, encoding="utf-8")
    status, out = _run(
        tmp_path,
        "--data", str(path), "--label-column", "label", "--id-column", "name",
        "--instances", '"Person, 3", "Person, 7"',
    )  # fmt: skip
    assert status == 0
    result = json.loads((out / "explanations.json").read_text())
    assert [item["row_name"] for item in result["instances"]] == ["Person, 3", "Person, 7"]
    first = Explanation.from_dict(result["instances"][0]["explanation"])
    assert first.class_names == ["no", "yes"]
    names = [name for name, _ in first.as_list(first.available_labels()[0])]
    assert "city=Oslo" in names  # person 3 lives in Oslo: a category, not a code
    second = Explanation.from_dict(result["instances"][1]["explanation"])
    second_names = [name for name, _ in second.as_list(second.available_labels()[0])]
    assert "size is missing" in second_names  # person 7 has no size
    assert result["instances"][0]["true_label"] == "yes"
    page = (out / "index.html").read_text()
    assert "Person, 3" in page
    status, _ = _run(tmp_path, "--data", str(path), "--label-column", "label",
                     "--id-column", "name", "--instances", "Nobody")  # fmt: skip
    assert status != 0


def test_a_regression_csv_is_explained_as_values(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    target = 1000.0 * x[:, 1] + 10.0 * x[:, 0]  # house-price units: the curve must not be
    path = tmp_path / "houses.csv"
    lines = ["a,b,c,price"] + [f"{r[0]},{r[1]},{r[2]},{t}" for r, t in zip(x, target, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    status, out = _run(tmp_path, "--data", str(path), "--label-column", "price",
                       "--model", "random_forest", "--instances", "0,1")  # fmt: skip
    assert status == 0
    result = json.loads((out / "explanations.json").read_text())
    for item in result["instances"]:
        explanation = Explanation.from_dict(item["explanation"])
        assert explanation.mode == "regression"
        assert explanation.as_list(0)[0][0].count("b") == 1  # b decides the price
        curve = item["deletion"]
        assert curve["scores"][0] == 1.0
        assert abs(curve["scores"][-1]) < 1e-9
        assert curve["auc"] < curve["random_auc"]


def test_zero_samples_or_features_are_refused_not_replaced(tmp_path):
    for flag in ("--num-samples", "--num-features"):
        status, out = _run(tmp_path, flag, "0")
        assert status != 0
        assert not out.exists()


def test_a_device_this_machine_lacks_is_refused(tmp_path):
    import torch

    absent = "tpu:3" if torch.cuda.is_available() else "cuda"
    status, out = _run(tmp_path, "--device", absent)
    assert status != 0
    assert not out.exists()


def test_table_options_for_images_are_refused_not_ignored(tmp_path, capsys):
    status, out = _run(tmp_path, "--kind", "image", "--label-column", "foo")
    assert status == 2
    assert "--label-column: options of --kind tabular only, not of image" in capsys.readouterr().err
    assert not out.exists()
