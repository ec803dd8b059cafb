"""Fixtures of the drift job's tests: the sample data as baseline and traffic, a job folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from pipeline_code.sample_data import FEATURES, generate
from tests.monitoring.capture_helpers import NAMES, write_statistics


@pytest.fixture(scope="module")
def baseline() -> pd.DataFrame:
    return generate(3000, seed=1)[NAMES]


@pytest.fixture(scope="module")
def same() -> pd.DataFrame:
    """Same distribution as the baseline, another seed."""
    return generate(1000, seed=2)[NAMES]


@pytest.fixture(scope="module")
def drifted() -> pd.DataFrame:
    return generate(1000, seed=3, drift=True)[NAMES]


@pytest.fixture()
def job(tmp_path: Path, baseline: pd.DataFrame) -> Path:
    """A job folder with the served model's baseline folder in place (baseline.csv and
    statistics.json): baseline/, capture/, output/, message."""
    (tmp_path / "baseline").mkdir()
    baseline.to_csv(tmp_path / "baseline" / "baseline.csv", index=False)
    write_statistics(tmp_path / "baseline", FEATURES)
    (tmp_path / "capture").mkdir()
    return tmp_path


@pytest.fixture()
def cloudwatch(aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="eu-west-1")
