from __future__ import annotations

import json

import numpy as np

from training.__main__ import main
from training.scenes import CONCEPTS, concept_shares, render_scenes


def test_scenes_command_writes_pictures_and_the_statistics_of_what_it_rendered(tmp_path):
    out = tmp_path / "scenes"
    assert (
        main(
            [
                "scenes",
                "--out",
                str(out),
                "--num-scenes",
                "8",
                "--stats-scenes",
                "256",
                "--seed",
                "4",
            ]
        )
        == 0
    )
    for name in ("scenes.png", "labels.png", "lamps.png", "glow.png", "index.html", "run.json"):
        assert (out / name).is_file(), name
    statistics = json.loads((out / "statistics.json").read_text())
    expected = concept_shares(render_scenes(256, seed=4).labels).mean(0)
    np.testing.assert_allclose([statistics["concept_share"][c] for c in CONCEPTS], expected)
    assert abs(sum(statistics["lamp_count_distribution"]) - 1) < 1e-9
    assert "lamp" in (out / "index.html").read_text()


def test_training_commands_are_listed(capsys):
    assert main(["--help"]) == 0
    listing = capsys.readouterr().out
    for command in ("fit", "validate", "test", "export", "scenes"):
        assert f"  {command} " in listing


def test_export_of_an_unfinished_run_is_refused(tmp_path, capsys):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    assert main(["export", str(tmp_path / "run"), "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert "has no record.json: it is not a finished 'python -m training fit' run" in err
