"""Every refusal of the values through both paths: the single-instance Prepare and the sharded
one (instances record what they find, the merge decides) refuse the same version with the same
one-line message, whichever instance read the bad value and whatever else is wrong with the
version (the single instance's order of checks: rows, the target's missing fraction, a 0/1
target, each feature's missing fraction then its values in schema order, then the classes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.steps import SCHEMA, SCHEMA_JSON, small_frame
from tests.steps.test_prepare_shards import failure_file, prepare, run_sharded, version

__all__ = ["failure_file"]  # the fixture, shared

TARGET = SCHEMA["target"]
# 600 rows over the 8 files: rows 150-224 land in 2026/02/c.parquet, 450-524 in
# batch-2/y.parquet. A CSV's text is refused as it is read (a bool '2', a target '2'); a
# Parquet number reaches the checks of the values.
C_PARQUET, Y_PARQUET = 160, 460
Change = Callable[[pd.DataFrame], None]


def _set(column: str, rows: slice | list[int], value: float) -> Change:
    def change(frame: pd.DataFrame) -> None:
        frame[column] = frame[column].astype("float64")
        frame.loc[frame.index[rows], column] = value

    return change


def _both(*changes: Change) -> Change:
    def change(frame: pd.DataFrame) -> None:
        for one in changes:
            one(frame)

    return change


CASES: dict[str, tuple[Change, str]] = {
    "bool not 0/1": (
        _set("used_chip", [C_PARQUET], 2.0),
        "column 'used_chip' (bool) must contain 0/1 or true/false, but 1 value(s)",
    ),
    "int not whole": (_set("hour", [-1], 1.5), "column 'hour' (int) must contain whole numbers"),
    "float beyond float32": (
        _set("amount", [-1], 1e39),
        "column 'amount' (float) must contain numbers of magnitude at most",
    ),
    "target not 0/1 in two files": (
        _both(_set(TARGET, [C_PARQUET], 2.0), _set(TARGET, [Y_PARQUET], 7.0)),
        "but 2 row(s) are not, e.g. 2 (values seen: 0, 1, 2, 7)",
    ),
    # The reviewer's case: an instance saw a target 2, but the version first fails the
    # target's missing fraction (the single instance checks that before the values).
    "target missing before target not 0/1": (
        _both(_set(TARGET, [Y_PARQUET], 2.0), _set(TARGET, slice(0, 120), np.nan)),
        f"column {TARGET!r} has 20.0% missing values",
    ),
    # A feature earlier in the schema is refused before a later one, whichever file has it.
    "schema order, not file order": (
        _both(_set("used_chip", [C_PARQUET], 2.0), _set("hour", [Y_PARQUET], 1.5)),
        "column 'hour' (int) must contain whole numbers",
    ),
    "a feature's missing fraction before its values": (
        _both(_set("hour", slice(0, 300), np.nan), _set("hour", [Y_PARQUET], 1.5)),
        "column 'hour' has 50.0% missing values",
    ),
    "an earlier feature's missing fraction before a later one's values": (
        _both(_set("amount", slice(0, 300), np.nan), _set("hour", [C_PARQUET], 1.5)),
        "column 'amount' has 50.0% missing values",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_refused_version_gets_the_single_instance_message_from_the_merge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure_file: Path, case: str
) -> None:
    change, fragment = CASES[case]
    frame = small_frame(600, seed=13)
    change(frame)
    source = version(tmp_path / "version", frame)
    args = ["--input-dir", str(source), "--output-dir", str(tmp_path / "one")]
    assert prepare.main([*args, "--schema", SCHEMA_JSON]) == 1
    alone = failure_file.read_text()
    assert fragment in alone
    for instances in (2, 3):
        failure_file.unlink()
        code, merged = run_sharded(
            source, tmp_path / f"sharded-{instances}", instances, monkeypatch
        )
        assert code == 1
        assert failure_file.read_text() == alone
        assert not (merged / "train" / "train.csv").exists()


def test_a_whole_version_check_fails_in_the_merge_as_it_would_on_one_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure_file: Path
) -> None:
    """Each file alone is fine; the version has too many missing values of one feature."""
    frame = small_frame(2000, seed=5)
    column = SCHEMA["features"][0]["name"]
    frame[column] = frame[column].astype("float64")
    frame.loc[: int(len(frame) * 0.6), column] = np.nan
    source = version(tmp_path / "version", frame)
    args = ["--input-dir", str(source), "--output-dir", str(tmp_path / "single")]
    assert prepare.main([*args, "--schema", SCHEMA_JSON]) == 1
    alone = failure_file.read_text()
    code, merged = run_sharded(source, tmp_path / "sharded", 2, monkeypatch)
    assert code == 1
    assert failure_file.read_text() == alone
    assert column in alone
    assert not (merged / "train" / "train.csv").exists()


@pytest.mark.parametrize(
    ("positives", "fragment"),
    [
        (0, "has a single class"),
        (2, "has only 2 row(s) of class 1; at least 3 are needed"),
        (3, "after the split (hash-v1"),  # three positives cannot fill every split here
    ],
)
def test_class_checks_of_the_whole_version_fail_in_the_merge_as_on_one_instance(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failure_file: Path,
    positives: int,
    fragment: str,
) -> None:
    """Every file has too few positives or none; the merge decides from the summed counts."""
    frame = small_frame(400, seed=11)
    frame[TARGET] = 0
    frame.loc[frame.index[:positives], TARGET] = 1
    source = version(tmp_path / "version", frame)
    args = ["--input-dir", str(source), "--output-dir", str(tmp_path / "single")]
    assert prepare.main([*args, "--schema", SCHEMA_JSON]) == 1
    alone = failure_file.read_text()
    assert fragment in alone
    code, merged = run_sharded(source, tmp_path / "sharded", 3, monkeypatch)
    assert code == 1
    assert failure_file.read_text() == alone
    assert not (merged / "train" / "train.csv").exists()
