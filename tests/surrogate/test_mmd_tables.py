"""MMD-critic on real tables: the kernel's embedding, units, codes, string labels, the command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from surrogate.__main__ import main
from surrogate.mmd_critic import MMDCritic
from training.errors import InputError
from training.tables import TableSchema


def small_table(seed: int = 0, n: int = 60) -> pd.DataFrame:
    """Numbers in two units (one with gaps), text with gaps, booleans."""
    rng = np.random.default_rng(seed)
    weight = rng.normal(3000.0, 600.0, n)
    length = rng.normal(40.0, 5.0, n)
    length[rng.choice(n, 7, replace=False)] = np.nan
    colour = rng.choice(["red", "green", "blue"], n).astype(object)
    colour[rng.choice(n, 5, replace=False)] = None
    return pd.DataFrame(
        {"weight": weight, "length": length, "colour": colour, "tame": rng.random(n) < 0.3}
    )


def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three classes of 2-D points whose spread differs between the columns."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [3.0, 1.0], [0.5, 3.0]])
    y = np.repeat(np.arange(3), 80)
    X = centres[y] + rng.standard_normal((len(y), 2)) * [1.0, 0.7]
    return X, y


def test_embedding_distance_is_standardised_difference_plus_mismatches():
    frame = small_table()
    fit = MMDCritic(5, device="cpu").fit(frame)
    points = fit.embedding_.transform(frame)
    by_kernel = cdist(points, points, "sqeuclidean")

    expected = np.zeros_like(by_kernel)
    for name in ("weight", "length"):
        values = frame[name].to_numpy(dtype=float)
        present = ~np.isnan(values)
        z = np.where(present, (values - values[present].mean()) / values[present].std(), 0.0)
        expected += (z[:, None] - z[None, :]) ** 2
        expected += present[:, None] != present[None, :]  # a missing value: one mismatch
    for name in ("colour", "tame"):
        values = frame[name].astype(object).where(frame[name].notna(), "<none>").to_numpy()
        expected += values[:, None] != values[None, :]
    np.testing.assert_allclose(by_kernel, expected, rtol=0, atol=1e-10)
    assert fit.embedding_.names[:3] == ["weight", "length", "length missing"]
    assert "colour=missing" in fit.embedding_.names
    # An RBF on an embedding is positive (semi-)definite: MMD and log det keep their meaning.
    assert np.linalg.eigvalsh(np.exp(-fit.gamma_ * by_kernel)).min() > -1e-10


def test_units_do_not_change_the_prototypes_once_standardised():
    X, y = blobs()
    in_grams = X * [1.0, 1000.0]
    frame = pd.DataFrame(X, columns=["a", "b"])
    frame_grams = pd.DataFrame(in_grams, columns=["a", "b"])
    params = {"n_prototypes": 12, "n_criticisms": 4, "dtype": "float64", "device": "cpu"}
    standardised = MMDCritic(**params).fit(frame, y)
    rescaled = MMDCritic(**params).fit(frame_grams, y)
    np.testing.assert_array_equal(standardised.prototype_indices_, rescaled.prototype_indices_)
    np.testing.assert_array_equal(standardised.criticism_indices_, rescaled.criticism_indices_)
    # In raw units (today's behaviour for arrays) column b dominates and the choice moves.
    raw = MMDCritic(**params).fit(X, y)
    raw_grams = MMDCritic(**params).fit(in_grams, y)
    shared = np.intersect1d(raw.prototype_indices_, raw_grams.prototype_indices_)
    assert len(shared) < 6
    assert MMDCritic(**params, standardize=True).fit(in_grams).prototype_indices_.tolist() == (
        MMDCritic(**params, standardize=True).fit(X).prototype_indices_.tolist()
    )


def test_plain_arrays_keep_raw_units_unless_asked():
    X, y = blobs()
    auto = MMDCritic(10, dtype="float64", device="cpu").fit(X, y)
    unscaled = MMDCritic(10, dtype="float64", device="cpu", standardize=False).fit(X, y)
    np.testing.assert_array_equal(auto.prototype_indices_, unscaled.prototype_indices_)
    assert not auto.embedding_.standardized
    np.testing.assert_array_equal(auto.prototypes_, X[auto.prototype_indices_])


def test_dataframe_gives_what_its_codes_give_with_categorical_features():
    frame = small_table(seed=1, n=90)
    y = np.where(frame["weight"].to_numpy() > 3000, "heavy", "light")
    _, codes = TableSchema.from_data(frame)
    params = {"n_prototypes": 9, "n_criticisms": 4, "local": True, "dtype": "float64"}
    from_frame = MMDCritic(**params, device="cpu").fit(frame, y)
    from_codes = MMDCritic(**params, device="cpu", categorical_features=[2, 3]).fit(codes, y)
    np.testing.assert_array_equal(from_frame.prototype_indices_, from_codes.prototype_indices_)
    np.testing.assert_array_equal(from_frame.criticism_indices_, from_codes.criticism_indices_)
    np.testing.assert_allclose(from_frame.witness_, from_codes.witness_, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(from_frame.predict(frame), from_codes.predict(codes))
    # Prototypes of a DataFrame are its own rows, with their original values and index.
    pd.testing.assert_frame_equal(from_frame.prototypes_, frame.iloc[from_frame.prototype_indices_])
    assert list(from_frame.feature_names_in_) == ["weight", "length", "colour", "tame"]


def test_string_labels_of_different_lengths():
    X, y = blobs(seed=2)
    species = np.array(["Adelie", "Chinstrap", "Gentoo penguin"])
    test_X, test_y = blobs(seed=3)
    by_name = MMDCritic(15, local=True, device="cpu").fit(X, species[y])
    by_code = MMDCritic(15, local=True, device="cpu").fit(X, y)
    np.testing.assert_array_equal(by_name.prototype_indices_, by_code.prototype_indices_)
    np.testing.assert_array_equal(by_name.predict(test_X), species[by_code.predict(test_X)])
    # Predictions held in the first label's width ("Adelie") would cut "Chinstrap" short and
    # count every one of them wrong.
    curve = by_name.error_curve(test_X, species[test_y])
    np.testing.assert_array_equal(curve, by_code.error_curve(test_X, test_y))
    assert curve[-1] < 0.3


def test_predict_on_rows_with_a_category_never_seen_names_it():
    frame = small_table()
    fit = MMDCritic(5, device="cpu").fit(frame, np.arange(len(frame)) % 2)
    unseen = frame.head(2).assign(colour=["purple", "red"])
    with pytest.raises(InputError, match="'colour' has the value 'purple'"):
        fit.predict(unseen)
    with pytest.raises(InputError, match='standardize must be "auto", True or False'):
        MMDCritic(5, standardize="yes").fit(frame)


def test_integer_column_names_work_like_text_ones():
    frame = small_table(seed=5)
    numbered = frame.set_axis(range(frame.shape[1]), axis=1)
    y = np.arange(len(frame)) % 3
    by_name = MMDCritic(6, 2, device="cpu").fit(frame, y)
    by_number = MMDCritic(6, 2, device="cpu").fit(numbered, y)
    np.testing.assert_array_equal(by_name.prototype_indices_, by_number.prototype_indices_)
    np.testing.assert_array_equal(by_name.predict(frame), by_number.predict(numbered))


def test_penguins_prototypes_beat_the_majority_class_only_once_standardised():
    palmerpenguins = pytest.importorskip("palmerpenguins")
    table = palmerpenguins.load_penguins()
    y = table["species"].to_numpy()
    frame = table.drop(columns=["species"])
    train = np.arange(len(frame)) % 4 != 0
    test = ~train
    labels, counts = np.unique(y[train], return_counts=True)
    majority = np.mean(y[test] != labels[np.argmax(counts)])
    fit = MMDCritic(40, local=True, device="cpu").fit(frame[train], y[train])
    error = fit.error_curve(frame[test], y[test])[-1]
    # Raw units, as before: codes with the gaps filled by the column means.
    schema, codes = TableSchema.from_data(frame[train])
    means = np.nanmean(codes, axis=0)
    raw = np.where(np.isnan(codes), means, codes)
    test_codes = schema.encode(frame[test])
    raw_test = np.where(np.isnan(test_codes), means, test_codes)
    raw_error = MMDCritic(40, local=True, device="cpu").fit(raw, y[train])
    assert error < 0.1 < majority - 0.3
    assert raw_error.error_curve(raw_test, y[test])[-1] > error + 0.1


def test_command_reads_a_real_csv_and_names_rows_by_id(tmp_path):
    """Quoted commas, a byte-order mark, text and missing values, a text label, an id column."""
    rng = np.random.default_rng(4)
    n = 120
    sex = rng.choice(["female", "male"], n)
    survived = np.where((sex == "female") ^ (rng.random(n) < 0.15), "yes", "no")
    lines = ["name,sex,age,fare,survived"]
    for i in range(n):
        age = "" if i % 9 == 0 else f"{rng.uniform(1, 70):.1f}"
        lines.append(f'"Doe, Passenger {i}",{sex[i]},{age},{rng.uniform(5, 500):.2f},{survived[i]}')
    path = tmp_path / "passengers.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    out = tmp_path / "run"
    argv = ["prototypes", "--data", str(path), "--label-column", "survived", "--id-column", "name"]
    argv += ["--n-prototypes", "10", "--n-criticisms", "3", "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    results = json.loads((out / "prototypes.json").read_text())
    assert results["feature_names"] == ["sex", "age", "fare"]
    assert results["categorical"] == ["sex"]
    assert results["standardized"] is True
    chosen = results["prototypes"] + results["criticisms"]
    assert len(chosen) == 13
    for item in chosen:
        row = item["row"]
        assert item["id"] == f"Doe, Passenger {row}"
        assert item["label"] == survived[row]
        assert item["values"][0] == sex[row]
        assert (item["values"][1] is None) == (row % 9 == 0)
    # The sex rule alone errs on 15 %: prototypes must do far better than the majority class.
    assert results["final_error"] < results["majority_error"] - 0.15
    page = (out / "index.html").read_text()
    assert f"Doe, Passenger {chosen[0]['row']}" in page
    assert any(item["values"][1] is None for item in chosen)
    assert '<td class="missing">missing</td>' in page  # a missing age reads "missing"
    assert (out / "error_curve.png").is_file()


def test_page_warns_when_prototypes_lose_to_the_majority_or_to_random():
    from surrogate.commands.prototypes import _warnings

    def curves(error: float, random: float, majority: float) -> dict:
        return {"error": [0.5, error], "random_error": [0.5, random], "majority_error": majority}

    assert "not below the majority-class error (38.1%)" in _warnings(curves(0.40, 0.3, 0.381))[0]
    assert (
        "randomly chosen prototypes do as well (26.6%" in _warnings(curves(0.274, 0.266, 0.381))[0]
    )
    assert _warnings(curves(0.023, 0.030, 0.558)) == []
    assert _warnings({"m": [1]}) == []
