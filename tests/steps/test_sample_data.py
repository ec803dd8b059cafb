"""sample_data.py: deterministic, realistic, learnable but not trivially, drift that shows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from pipeline_code import sample_data
from tests.steps import FEATURES, TARGET


@pytest.fixture(scope="module")
def normal() -> pd.DataFrame:
    return sample_data.generate(40_000, seed=1)


@pytest.fixture(scope="module")
def drifted() -> pd.DataFrame:
    return sample_data.generate(40_000, seed=1, drift=True)


def test_same_arguments_give_the_same_rows() -> None:
    pd.testing.assert_frame_equal(sample_data.generate(500, 7), sample_data.generate(500, 7))
    assert not sample_data.generate(500, 7).equals(sample_data.generate(500, 8))


def test_columns_follow_the_schema(normal: pd.DataFrame) -> None:
    assert list(normal.columns) == [TARGET, *FEATURES]
    assert len(normal) == 40_000
    for name, kind in sample_data.FEATURES:
        values = normal[name].dropna()
        if kind == "bool":
            assert set(values.unique()) == {0, 1}
        elif kind == "int":
            assert (values == values.round()).all()
    assert normal["hour"].between(0, 23).all()
    assert (normal["amount"] > 0).all()


def test_the_schema_is_the_projects(normal: pd.DataFrame) -> None:
    from stacks.config import load_config

    assert sample_data.sample_schema() == load_config("dev").schema.to_dict()


def test_fraud_is_rare(normal: pd.DataFrame, drifted: pd.DataFrame) -> None:
    assert 0.03 <= normal[TARGET].mean() <= 0.05
    assert 0.03 <= drifted[TARGET].mean() <= 0.06


def test_only_the_distance_to_the_last_transaction_has_gaps(normal: pd.DataFrame) -> None:
    missing = normal.isna().mean()
    assert 0.0 < missing["distance_from_last_txn_km"] < 0.01
    assert missing.drop("distance_from_last_txn_km").eq(0).all()


def test_a_model_learns_fraud_well_but_not_perfectly(normal: pd.DataFrame) -> None:
    train, test = normal.iloc[:30_000], normal.iloc[30_000:]
    data = xgb.DMatrix(train[FEATURES], label=train[TARGET])
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 5, "eta": 0.2}, data, 60)
    auc = roc_auc_score(test[TARGET], booster.predict(xgb.DMatrix(test[FEATURES])))
    assert 0.85 < auc < 0.96
    # No single feature gives it away.
    for name in FEATURES:
        single = roc_auc_score(test[TARGET], test[name].fillna(0))
        assert max(single, 1 - single) < 0.8, name


def test_drift_shifts_amount_distance_online_share_and_hour(
    normal: pd.DataFrame, drifted: pd.DataFrame
) -> None:
    assert drifted["amount"].median() > 1.5 * normal["amount"].median()
    assert drifted["distance_from_home_km"].median() > 2 * normal["distance_from_home_km"].median()
    assert drifted["online_order"].mean() > normal["online_order"].mean() + 0.2

    def night(frame: pd.DataFrame) -> float:
        return float(((frame["hour"] <= 5) | (frame["hour"] >= 22)).mean())

    assert night(drifted) > 2 * night(normal)


@pytest.mark.parametrize("name", ["data.csv", "data.csv.gz", "data.parquet"])
def test_cli_writes_every_format(tmp_path: Path, name: str) -> None:
    out = tmp_path / "nested" / name
    assert sample_data.main(["--rows", "300", "--seed", "4", "--drift", "--out", str(out)]) == 0
    read = pd.read_parquet(out) if name.endswith(".parquet") else pd.read_csv(out)
    expected = sample_data.generate(300, 4, drift=True)
    pd.testing.assert_frame_equal(read, expected, check_dtype=False)


def test_a_csv_has_a_plain_header(tmp_path: Path) -> None:
    sample_data.main(["--rows", "3", "--out", str(tmp_path / "d.csv")])
    assert (tmp_path / "d.csv").read_text().splitlines()[0] == ",".join([TARGET, *FEATURES])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rows", "0", "--out", "x.csv"], "rows = 0 is not allowed"),
        (["--rows", "10", "--out", "x.json"], "use a .csv, .csv.gz or .parquet"),
    ],
)
def test_cli_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    argv = [a if a != argv[-1] else str(tmp_path / a) for a in argv]
    assert sample_data.main(argv) == 1
    assert message in capsys.readouterr().err


def test_a_million_rows_are_vectorised() -> None:
    frame = sample_data.generate(1_000_000, seed=2)
    assert len(frame) == 1_000_000
    assert frame.memory_usage(deep=True).sum() < 100 * 2**20
    assert np.isclose(frame[TARGET].mean(), 0.039, atol=0.005)
