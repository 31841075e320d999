from __future__ import annotations

import numpy as np
import pytest

from training.errors import ConfigError, InputError
from training.sources import import_object, load_dataset


def test_builtin_data_sets_carry_names_and_image_shapes():
    digits = load_dataset("digits")
    assert digits.X.shape == (1797, 64)
    assert digits.image_shape == (8, 8)
    cancer = load_dataset("breast_cancer")
    assert cancer.feature_names[0] == "mean radius"
    assert cancer.target_names == ["malignant", "benign"]


def test_builtin_scenes_are_the_held_out_scenes_labelled_by_their_lit_lamps():
    from training.scenes import held_out_scenes

    data = load_dataset("scenes")
    scenes = held_out_scenes(len(data.X))
    assert data.image_shape == (64, 64, 3)
    images = data.X.reshape(-1, 64, 64, 3).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(images * 2.0 - 1.0, scenes.images, atol=1e-6)
    np.testing.assert_array_equal(data.y, scenes.lamp_lit.any(axis=1))
    assert 0.3 < data.y.mean() < 0.7  # both classes are well represented


def test_csv_with_header_and_label_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n1,2,0\n3,4,1\n")
    data = load_dataset(path, label_column="label")
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(data.y, [0, 1])
    assert data.feature_names == ["a", "b"]


def test_nan_rows_and_unknown_sources_are_named(tmp_path):
    path = tmp_path / "bad.npy"
    X = np.ones((4, 2))
    X[2, 1] = np.nan
    np.save(path, X)
    with pytest.raises(InputError, match=r"NaN or infinite values in 1 rows \(first: 2\)"):
        load_dataset(path)
    with pytest.raises(InputError, match="neither a built-in data set"):
        load_dataset("mnist")


def test_import_object():
    assert import_object("numpy.linalg:norm") is np.linalg.norm
    with pytest.raises(ConfigError, match="has no attribute"):
        import_object("numpy:nope")
    with pytest.raises(ConfigError, match="not an import path"):
        import_object("numpy.linalg.norm")
