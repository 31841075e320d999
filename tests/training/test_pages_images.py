from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from training.errors import InputError
from training.images import make_grid, overlay_mask, save_grid, to_uint8_images
from training.pages import render_page, write_index
from training.runs import RunFolder, display_command


def test_a_label_with_a_script_tag_is_escaped(tmp_path):
    with RunFolder(tmp_path / "evil", seed=0) as run:
        run.extra["title"] = "<script>alert(1)</script>"
        run.extra["summary"] = "a & b"
        run.write_text("index.html", "x")
    page = write_index(tmp_path).read_text()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a &amp; b" in page
    assert 'href="./evil/index.html"' in page


def test_base_page_escapes_titles_too():
    html = render_page("runs_index.html", title='"><img src=x onerror=alert(1)>', runs=[])
    assert "<img src=x" not in html
    assert "&#34;&gt;&lt;img" in html


def test_value_ranges_and_layouts_map_to_the_same_pixels():
    chw = torch.tensor([[[[-1.0, 0.0], [1.0, 0.5]]]]).repeat(1, 3, 1, 1)  # (1, 3, 2, 2)
    pixels = to_uint8_images(chw)
    assert pixels.shape == (1, 2, 2, 3)
    np.testing.assert_array_equal(pixels[0, :, :, 0], [[0, 128], [255, 191]])
    hwc = to_uint8_images(np.array([[[0.0, 0.5, 1.0]]]))  # one (H, W, C) image in [0, 1]
    np.testing.assert_array_equal(hwc[0, 0, 0], [0, 128, 255])
    with pytest.raises(InputError, match="NaN"):
        to_uint8_images(np.full((1, 3, 2, 2), np.nan))


def test_grid_places_each_tile_with_padding(tmp_path):
    images = np.zeros((5, 3, 4, 4))
    for i in range(5):
        images[i] = i / 4
    grid = make_grid(images, nrow=3, pad=1, scale=2)
    assert grid.shape == (2 * 8 + 3, 3 * 8 + 4, 3)
    assert (grid[1:9, 1:9] == 0).all()
    assert (grid[10:18, 10:18] == 255).all()
    assert (grid[10:18, 19:27] == 255).all(), "the empty sixth cell is background"
    path = save_grid(images, tmp_path / "g.png", nrow=3, pad=1, scale=2)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), grid)


def test_outline_marks_only_the_border():
    mask = np.zeros((1, 5, 5), bool)
    mask[0, 1:4, 1:4] = True
    pictures = overlay_mask(np.zeros((1, 3, 5, 5)), mask, outline=True)
    red = pictures[0, :, :, 0] == 255
    assert red.sum() == 8
    assert not red[2, 2]


def test_index_lists_runs_in_the_order_they_finished_with_their_pictures(tmp_path):
    for name in ("zeta", "alpha"):  # zeta finishes first, so it comes first despite its name
        with RunFolder(tmp_path / name, seed=0) as run:
            save_grid(np.zeros((1, 3, 4, 4)), run.path("picture.png"))
            run.extra["preview"] = "picture.png" if name == "zeta" else "missing.png"
            run.extra["title"] = f"run {name}"
            run.write_text("index.html", "x")
        record = json.loads((tmp_path / name / "run.json").read_text())
        record["finished"] = {"zeta": "2026-01-01T00:00:00", "alpha": "2026-01-02T00:00:00"}[name]
        (tmp_path / name / "run.json").write_text(json.dumps(record))
    page = write_index(tmp_path).read_text()
    assert page.index("run zeta") < page.index("run alpha")
    assert 'src="./zeta/picture.png"' in page
    assert "missing.png" not in page  # a preview that does not exist is not linked


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (
            ["/repo/surrogate/__main__.py", "lime", "--out", "a b"],
            "python -m surrogate lime --out 'a b'",
        ),
        (["/venv/bin/seethrough-dissect", "dissect"], "seethrough-dissect dissect"),
        (["script.py", "--x"], "script.py --x"),
    ],
)
def test_runs_record_the_command_as_it_is_typed(argv, shown):
    assert display_command(argv) == shown
