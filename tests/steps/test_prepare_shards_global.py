"""The sharded Prepare where one file cannot decide alone: a time split (its cut-offs are
quantiles of every row's time), a `positive_class` target (its mapping needs the version's
values), a multi-class target (its class list: a file may miss a class) and a regression
target. However the files are dealt out (1, 2, 3, 7 or 10 instances, some of them idle), the
merged outputs are byte for byte the single-instance Prepare's, and bad input is refused with
the single instance's message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.steps import SCHEMA, small_frame
from tests.steps.test_prepare_shards import FILES, outputs, prepare, run_sharded, version

INSTANCES = (1, 2, 3, 7, 10)


@pytest.fixture(autouse=True)
def failure_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from tests.steps.test_prepare_shards import step_failure

    path = tmp_path / "failure" / "message"
    monkeypatch.setenv(step_failure.FAILURE_FILE_ENV, str(path))
    return path


def single(source: Path, out: Path, schema: str, *extra: str) -> int:
    return prepare.main(
        ["--input-dir", str(source), "--output-dir", str(out), "--schema", schema, *extra]
    )


def assert_identical(
    source: Path,
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    instances: int,
    schema: str,
    *extra: str,
) -> dict[str, bytes]:
    assert single(source, work / "single", schema, *extra) == 0
    code, merged = run_sharded(
        source, work / "sharded", instances, monkeypatch, *extra, schema=schema
    )
    assert code == 0
    expected = outputs(work / "single")
    assert outputs(merged) == expected
    return expected


def assert_same_refusal(
    source: Path,
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    schema: str,
    failure: Path,
    *extra: str,
) -> str:
    """One instance refuses the version; three refuse it with the same message (returned)."""
    assert single(source, work / "single", schema, *extra) == 1
    expected = failure.read_text()
    code, _ = run_sharded(source, work / "w", 3, monkeypatch, *extra, schema=schema)
    assert code == 1
    assert failure.read_text() == expected
    return expected


def timed(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A time column with ties (whole hours), not in row order: the cut-offs fall on ties."""
    rng = np.random.default_rng(seed)
    frame = frame.copy()
    frame["ts"] = rng.integers(0, 400, size=len(frame)) * 3600
    return frame


@pytest.fixture(scope="module")
def timed_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return version(tmp_path_factory.mktemp("timed"), timed(small_frame(3000, seed=5), 1))


@pytest.mark.parametrize("instances", INSTANCES)
def test_a_time_split_merges_to_the_single_instance_outputs(
    timed_version: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instances: int
) -> None:
    expected = assert_identical(
        timed_version, tmp_path, monkeypatch, instances, json.dumps(SCHEMA), "--time-column", "ts"
    )
    rule = json.loads(expected["report/split_report.json"])["split_rule"]
    # The cut-offs over the whole version, computed here independently of Prepare.
    frame = pd.concat(
        pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
        for p in (timed_version / name for name in FILES)
    )
    times = frame.loc[frame["is_fraud"].notna(), "ts"].to_numpy(np.float64)
    assert rule["validation_from"] == np.sort(times)[int(np.ceil(0.70 * (times.size - 1)))]
    assert rule["test_from"] == np.sort(times)[int(np.ceil(0.85 * (times.size - 1)))]


def test_a_datetime_split_into_train_shards_merges_to_the_single_instance_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = timed(small_frame(2000, seed=8), 2)
    frame["ts"] = pd.to_datetime(frame["ts"], unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S")
    source = version(tmp_path / "version", frame)
    expected = assert_identical(
        source,
        tmp_path,
        monkeypatch,
        3,
        json.dumps(SCHEMA),
        "--time-column",
        "ts",
        "--train-shards",
        "4",
    )
    assert json.loads(expected["report/split_report.json"])["split_rule"]["time_kind"] == "datetime"


def test_times_of_two_kinds_in_two_files_stop_the_merge_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure_file: Path
) -> None:
    frame = timed(small_frame(1000, seed=8), 2).astype({"ts": str})
    frame.loc[frame.index < len(frame) // 2, "ts"] = "2026-01-01T00:00:00"  # a.csv's rows
    source = version(tmp_path / "version", frame, names=["a.csv", "b.csv"])
    code, _ = run_sharded(
        source,
        tmp_path / "w",
        2,
        monkeypatch,
        "--time-column",
        "ts",
        files=["a.csv", "b.csv"],
        schema=json.dumps(SCHEMA),
    )
    assert code == 1
    assert "time column 'ts' holds numbers in 'b.csv' but ISO 8601 date-times in 'a.csv'" in (
        failure_file.read_text()
    )


def test_a_bad_time_is_refused_after_the_values_as_on_one_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure_file: Path
) -> None:
    """An infinite amount in the first file, a time that is no time in the last: the single
    instance checks the values before it parses the times, so must the merge."""
    frame = timed(small_frame(2000, seed=8), 2).astype({"ts": str})
    frame.loc[3, "amount"] = np.inf
    frame.loc[len(frame) - 2, "ts"] = "yesterday"  # e.csv
    source = version(tmp_path / "version", frame)
    refusal = assert_same_refusal(
        source, tmp_path, monkeypatch, json.dumps(SCHEMA), failure_file, "--time-column", "ts"
    )
    assert "column 'amount' (float) has 1 infinite value(s)" in refusal


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        # Missing in three files: counted over the version, the first row of the version's.
        ("", "time column 'ts' has 3 missing value(s) (row {row}): every row needs a time"),
        ("yesterday", "time column 'ts' must hold numbers or ISO 8601 date-times, but 3 value(s)"),
    ],
)
def test_bad_times_in_several_files_are_refused_with_the_single_instance_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure_file: Path, bad: str, expected: str
) -> None:
    frame = timed(small_frame(2000, seed=8), 2)
    frame["ts"] = pd.to_datetime(frame["ts"], unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S")
    rows = [700, 1500, 1990]  # in 2026/02/c.parquet, batch-2/y.parquet and e.csv
    frame.loc[rows, "ts"] = bad
    source = version(tmp_path / "version", frame)
    refusal = assert_same_refusal(
        source, tmp_path, monkeypatch, json.dumps(SCHEMA), failure_file, "--time-column", "ts"
    )
    # The row among the version's labelled rows, read in the single instance's file order.
    labelled_rows = frame["is_fraud"].notna().to_numpy()
    row = int(labelled_rows[: rows[0]].sum()) + 1
    assert expected.format(row=row) in refusal
    if bad:
        assert f"e.g. 'yesterday' in row {row}" in refusal


def labelled(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["is_fraud"] = np.where(frame["is_fraud"] == 1, "fraud", "ok")
    return frame


@pytest.fixture(scope="module")
def text_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return version(tmp_path_factory.mktemp("text"), labelled(small_frame(3000, seed=9)))


@pytest.mark.parametrize("instances", INSTANCES)
def test_a_positive_class_target_merges_to_the_single_instance_outputs(
    text_version: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instances: int
) -> None:
    schema = json.dumps({**SCHEMA, "positive_class": "fraud"})
    expected = assert_identical(text_version, tmp_path, monkeypatch, instances, schema)
    labels = json.loads(expected["test/labels.json"])
    assert (labels["positive_class"], labels["negative_class"]) == ("fraud", "ok")


def test_a_positive_class_target_with_a_time_split_merges_to_the_single_instance_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = version(tmp_path / "version", labelled(timed(small_frame(2000, seed=9), 4)))
    schema = json.dumps({**SCHEMA, "positive_class": "fraud"})
    assert_identical(source, tmp_path, monkeypatch, 3, schema, "--time-column", "ts")


def test_a_third_target_value_across_files_is_refused_with_the_single_instance_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure_file: Path
) -> None:
    """Each file holds two values, the version three: no instance sees it, the merge does."""
    frame = labelled(small_frame(2000, seed=9))
    frame.loc[len(frame) - 10 :, "is_fraud"] = "unknown"  # in the last file only
    source = version(tmp_path / "version", frame)
    schema = json.dumps({**SCHEMA, "positive_class": "fraud"})
    refusal = assert_same_refusal(source, tmp_path, monkeypatch, schema, failure_file)
    assert "has 3 values ['fraud', 'ok', 'unknown']" in refusal


def species(frame: pd.DataFrame) -> pd.DataFrame:
    """Three classes by amount, and a fourth ('vip') in the first file only: every other
    file misses a class, so no instance alone knows the class list."""
    frame = frame.copy()
    frame["is_fraud"] = pd.cut(frame["amount"], [-np.inf, 40, 120, np.inf], labels=["a", "b", "c"])
    frame["is_fraud"] = frame["is_fraud"].astype(str)
    frame.loc[:40, "is_fraud"] = "vip"
    return frame.drop(columns=["amount"])


MULTICLASS = {
    **SCHEMA,
    "problem_type": "multiclass",
    "features": [f for f in SCHEMA["features"] if f["name"] != "amount"],
}


@pytest.fixture(scope="module")
def class_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = species(timed(small_frame(3000, 4), 3))
    frame["customer_id"] = [f"c{i % 2200}" for i in range(len(frame))]
    return version(tmp_path_factory.mktemp("classes"), frame)


@pytest.mark.parametrize("instances", INSTANCES)
def test_a_multiclass_target_merges_to_the_single_instance_outputs(
    class_version: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instances: int
) -> None:
    expected = assert_identical(
        class_version, tmp_path, monkeypatch, instances, json.dumps(MULTICLASS)
    )
    assert json.loads(expected["test/labels.json"])["classes"] == ["a", "b", "c", "vip"]


@pytest.mark.parametrize(
    "extra", [("--time-column", "ts"), ("--id-column", "customer_id"), ("--train-shards", "3")]
)
def test_a_multiclass_target_with_a_time_or_id_split_or_train_shards_merges_identically(
    class_version: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: tuple[str, ...]
) -> None:
    assert_identical(class_version, tmp_path, monkeypatch, 3, json.dumps(MULTICLASS), *extra)


def test_a_class_too_rare_over_the_version_is_refused_with_the_single_instance_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure_file: Path
) -> None:
    frame = species(small_frame(2000, 4))
    frame.loc[:40, "is_fraud"] = "a"
    frame.loc[[0, len(frame) - 1], "is_fraud"] = "vip"  # two rows, in two files
    source = version(tmp_path / "version", frame)
    refusal = assert_same_refusal(
        source, tmp_path, monkeypatch, json.dumps(MULTICLASS), failure_file
    )
    assert "has only 2 row(s) of class 'vip'" in refusal


REGRESSION = {
    **MULTICLASS,
    "target": "amount",
    "problem_type": "regression",
    "features": [*MULTICLASS["features"], {"name": "is_fraud", "type": "bool"}],
}


@pytest.mark.parametrize("extra", [(), ("--time-column", "ts")])
def test_a_regression_target_merges_to_the_single_instance_outputs(
    timed_version: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: tuple[str, ...]
) -> None:
    schema = json.dumps(REGRESSION)
    expected = assert_identical(timed_version, tmp_path, monkeypatch, 7, schema, *extra)
    balance = json.loads(expected["report/split_report.json"])["splits"]["train"]
    assert set(balance) == {"rows", "mean", "std", "min", "max"}


def test_an_infinite_regression_target_is_refused_before_a_bad_feature_as_on_one_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure_file: Path
) -> None:
    """The target is checked first: the file with the bad feature has no full part."""
    frame = small_frame(2000, 6)
    frame.loc[5, "amount"] = np.inf
    frame["hour"] = frame["hour"].astype(float)
    frame.loc[len(frame) - 3, "hour"] = 2.5
    source = version(tmp_path / "version", frame)
    refusal = assert_same_refusal(
        source, tmp_path, monkeypatch, json.dumps(REGRESSION), failure_file
    )
    assert "(regression) has 1 infinite value(s)" in refusal


def test_the_merge_leaves_the_instances_parts_as_they_were_and_can_run_again(
    class_version: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It places the rows in a folder of its own inside the downloaded parts (on the job's
    volume, nothing written beside the input folder): a retried merge reads what the
    instances uploaded, never what a first attempt left there, even a broken one."""
    schema = json.dumps(MULTICLASS)
    work = tmp_path / "w"
    code, first = run_sharded(class_version, work, 3, monkeypatch, schema=schema)
    assert code == 0
    uploaded = work / "uploaded"
    assert sorted(p.name for p in work.iterdir()) == [
        "algo-1",
        "algo-2",
        "algo-3",
        "merged",
        "uploaded",
    ]
    placed = uploaded / ".placed"
    assert sorted(p.name for p in placed.iterdir() if p.suffix == ".parquet")
    instances = {k: v for k, v in outputs(uploaded).items() if not k.startswith(".placed/")}
    assert instances == {
        k: v
        for host in ("algo-1", "algo-2", "algo-3")
        for k, v in outputs(work / host / "out").items()
    }
    for part in placed.iterdir():  # a first attempt that died mid-way
        part.write_bytes(b"garbage")
    again = tmp_path / "again"
    args = ["--parts-dir", str(uploaded), "--output-dir", str(again), "--schema", schema]
    assert prepare.main(args) == 0
    assert {k: v for k, v in outputs(uploaded).items() if not k.startswith(".placed/")} == instances
    assert outputs(again) == outputs(first)


CHANNEL = {"name": "channel", "type": "category"}


def gappy(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """About 5 % of the targets missing, a category feature with missing values, an id."""
    rng = np.random.default_rng(seed)
    frame = frame.copy()
    frame["channel"] = rng.choice(
        ["web", "store", "1", "1.0", ""], len(frame), p=[0.4, 0.3, 0.1, 0.1, 0.1]
    )
    frame["customer_id"] = [f"c{i % 1700}" for i in range(len(frame))]
    frame["is_fraud"] = frame["is_fraud"].astype(object)
    frame.loc[rng.random(len(frame)) < 0.05, "is_fraud"] = None
    return frame


@pytest.mark.parametrize(
    ("problem", "extra"),
    [
        ("binary", ("--time-column", "ts")),
        ("binary", ("--id-column", "customer_id")),
        ("multiclass", ("--time-column", "ts")),
    ],
)
def test_missing_targets_and_category_gaps_merge_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, problem: str, extra: tuple[str, ...]
) -> None:
    frame = timed(small_frame(3000, seed=21), 6)
    if problem == "multiclass":
        frame = species(frame)
        schema = {**MULTICLASS, "features": [*MULTICLASS["features"], CHANNEL]}
    else:
        schema = {**SCHEMA, "features": [*SCHEMA["features"], CHANNEL]}
    schema["max_missing_fraction"] = 0.2  # the category's 10 % and the targets' 5 % pass
    frame = gappy(frame, 3)
    source = version(tmp_path / "version", frame)
    expected = assert_identical(source, tmp_path, monkeypatch, 3, json.dumps(schema), *extra)
    report = json.loads(expected["report/split_report.json"])
    missing = int(frame["is_fraud"].isna().sum())
    assert 0.03 * len(frame) < missing < 0.08 * len(frame)
    assert report["input"]["dropped_missing_target"] == missing
    channel = json.loads(expected["baseline/statistics.json"])["features"]["channel"]
    # The gaps reach the statistics ("" is missing; "1" and "1.0" one category).
    assert channel["missing"] > 0
    assert set(channel["categories"]) == {"web", "store", "1"}
