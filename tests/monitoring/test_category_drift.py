"""Category features in the drift job (Evidently engine): the baseline folder the real Prepare
writes for a schema with text categories, captured requests carrying the categories as text
(quoted when they hold a comma), and Evidently's categorical test on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline_code import penguin_data
from pipeline_code.steps import load
from tests.monitoring.capture_helpers import run, write_capture

prepare = load("prepare")

FEATURES = [
    {"name": "species", "type": "category"},
    {"name": "island", "type": "category"},
    {"name": "bill_length_mm", "type": "float"},
    {"name": "body_mass_g", "type": "int"},
]
NAMES = [f["name"] for f in FEATURES]
SCHEMA = {
    "target": "sex",
    "positive_class": "female",
    "features": FEATURES,
    "max_missing_fraction": 0.05,
}


@pytest.fixture()
def job(tmp_path: Path) -> Path:
    """A drift job folder whose baseline/ is the real Prepare's output for the penguins
    (20,000 rows: a 3,000-row test split, so the baseline's own sampling noise is small)."""
    (tmp_path / "in").mkdir()
    penguin_data.generate(20000, seed=5).to_csv(tmp_path / "in" / "p.csv", index=False)
    args = ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "prepared")]
    assert prepare.main([*args, "--schema", json.dumps(SCHEMA)]) == 0
    (tmp_path / "prepared" / "baseline").rename(tmp_path / "baseline")
    (tmp_path / "capture").mkdir()
    return tmp_path


def traffic(seed: int) -> pd.DataFrame:
    frame = penguin_data.generate(1000, seed=seed)[NAMES].copy()
    # A caller sends what the endpoint accepts: CSV-quoted text where a value holds a comma.
    frame["island"] = frame["island"].map(lambda v: f'"{v}"')
    return frame


def test_a_category_feature_is_tested_as_categorical_and_its_shift_flagged(job: Path) -> None:
    moved = traffic(8)
    moved["species"] = ["Emperor"] * 700 + ["Gentoo"] * 300  # a species never seen before
    moved.loc[:99, "island"] = '"Ross Island, Antarctica"'
    write_capture(job / "capture", moved)
    summary = run(job)
    by_name: dict[str, Any] = {f["name"]: f for f in summary["features"]}
    assert summary["rows_analysed"] == 1000
    assert by_name["species"]["type"] == "category"
    # Evidently's categorical test for a large reference, not a numeric one.
    assert by_name["species"]["method"] == "Jensen-Shannon distance"
    assert by_name["species"]["drifted"] is True
    assert by_name["species"]["reference_mean"] is None  # text: no mean
    assert by_name["body_mass_g"]["method"] == "Wasserstein distance (normed)"


def test_unshifted_categories_are_not_flagged(job: Path) -> None:
    write_capture(job / "capture", traffic(9))
    summary = run(job)
    by_name = {f["name"]: f for f in summary["features"]}
    assert by_name["species"]["drifted"] is False and by_name["island"]["drifted"] is False
    assert by_name["island"]["method"] == "Jensen-Shannon distance"
    assert by_name["island"]["current_missing"] == 0  # quoted text read as its value
