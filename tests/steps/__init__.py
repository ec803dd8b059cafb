"""Tests of the pipeline's step scripts, the gate, the sample data and the local run.

Helpers shared by these tests live here: the sample schema and small data sets.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# XGBoost's OpenMP threads spin while they wait; on a shared 2-core runner that spinning makes
# small trainings 10-20x slower. Passive waiting must be chosen before xgboost is first loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pandas as pd

from pipeline_code import sample_data

SCHEMA = sample_data.sample_schema()
SCHEMA_JSON = json.dumps(SCHEMA)
TARGET = SCHEMA["target"]
FEATURES = [f["name"] for f in SCHEMA["features"]]


def small_frame(rows: int = 2000, seed: int = 3) -> pd.DataFrame:
    """Sample transactions with enough fraud rows (about 4 %) for every split."""
    return sample_data.generate(rows, seed)


def write(frame: pd.DataFrame, path: Path) -> Path:
    """Write `frame` as CSV / CSV.GZ / Parquet by suffix (plain header, like producers do)."""
    sample_data.write(frame, path)
    return path
