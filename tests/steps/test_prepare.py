"""prepare.py: what users rely on, and one test per kind of bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_code import sample_data
from pipeline_code.steps import load
from tests.steps import FEATURES, SCHEMA, SCHEMA_JSON, TARGET, small_frame, write

prepare = load("prepare")
step_failure = load("common", "failure")
split_outputs = load("prepare", "split_outputs")


@pytest.fixture
def failure_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "failure" / "message"
    monkeypatch.setenv(step_failure.FAILURE_FILE_ENV, str(path))
    return path


def run(input_dir: Path, output_dir: Path, *extra: str, schema: str = SCHEMA_JSON) -> int:
    return prepare.main(
        ["--input-dir", str(input_dir), "--output-dir", str(output_dir), "--schema", schema, *extra]
    )


def expect_failure(
    input_dir: Path,
    output_dir: Path,
    failure_file: Path,
    *fragments: str,
    schema: str = SCHEMA_JSON,
) -> str:
    """Run, expect exit code 1, a reason naming every fragment, and no outputs written."""
    assert run(input_dir, output_dir, schema=schema) == 1
    reason = failure_file.read_text(encoding="utf-8")
    for fragment in fragments:
        assert fragment in reason, reason
    assert not (output_dir / "train" / "train.csv").exists()
    return reason


def read_split(output_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(output_dir / name / f"{name}.csv")


# ---------------------------------------------------------------------------- happy path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    root = tmp_path_factory.mktemp("prepared")
    frame = small_frame(4000)
    write(frame, root / "in" / "part-0.csv")
    assert run(root / "in", root / "out") == 0
    return frame, root / "out"


def test_splits_have_target_first_then_schema_order(prepared: tuple[pd.DataFrame, Path]) -> None:
    _, out = prepared
    for name in ("train", "validation", "test"):
        header = (out / name / f"{name}.csv").read_text().splitlines()[0]
        assert header == ",".join([TARGET, *FEATURES])


def test_split_sizes_follow_the_fractions_and_every_split_has_both_classes(
    prepared: tuple[pd.DataFrame, Path],
) -> None:
    frame, out = prepared
    splits = {name: read_split(out, name) for name in ("train", "validation", "test")}
    # Each row is placed by its own hash: the sizes are binomial around 70/15/15 %.
    sizes = [len(s) for s in splits.values()]
    assert sizes == pytest.approx([2800, 600, 600], abs=75)
    for split in splits.values():
        assert set(split[TARGET]) == {0, 1}
    # Every input row lands in exactly one split, nothing lost or duplicated.
    combined = pd.concat(splits.values()).sort_values(FEATURES).reset_index(drop=True)
    original = frame.sort_values(FEATURES).reset_index(drop=True)
    pd.testing.assert_frame_equal(combined, original, check_dtype=False)


def test_bools_and_ints_are_written_as_whole_numbers(prepared: tuple[pd.DataFrame, Path]) -> None:
    _, out = prepared
    lines = (out / "train" / "train.csv").read_text().splitlines()[1:50]
    types = {f["name"]: f["type"] for f in SCHEMA["features"]}
    for line in lines:
        cells = dict(zip([TARGET, *FEATURES], line.split(","), strict=True))
        assert cells[TARGET] in ("0", "1")
        for name, kind in types.items():
            if kind == "bool":
                assert cells[name] in ("0", "1")
            elif kind == "int":
                assert cells[name].lstrip("-").isdigit()


def test_missing_values_stay_missing(prepared: tuple[pd.DataFrame, Path]) -> None:
    frame, out = prepared
    written = pd.concat(read_split(out, n) for n in ("train", "validation", "test"))
    column = "distance_from_last_txn_km"
    assert frame[column].isna().sum() > 0
    assert written[column].isna().sum() == frame[column].isna().sum()


def test_baseline_is_the_test_split_features(prepared: tuple[pd.DataFrame, Path]) -> None:
    _, out = prepared
    baseline = pd.read_csv(out / "baseline" / "baseline.csv")
    test = read_split(out, "test")
    assert list(baseline.columns) == FEATURES
    pd.testing.assert_frame_equal(baseline, test[FEATURES])


def test_model_monitor_baseline_is_baseline_csv_without_its_header(tmp_path: Path) -> None:
    # Input columns reversed and an extra column: the output still follows the schema order.
    frame = small_frame(1500)
    frame["customer_id"] = "c-" + frame.index.astype(str)
    write(frame[list(reversed(frame.columns))], tmp_path / "in" / "data.csv")
    assert run(tmp_path / "in", tmp_path / "out") == 0
    baseline_dir = tmp_path / "out" / "baseline"
    with_header = (baseline_dir / "baseline.csv").read_text().splitlines()
    features = (baseline_dir / "features.csv").read_text().splitlines()
    assert split_outputs.MODEL_MONITOR_BASELINE_FILE == "features.csv"

    assert with_header[0] == ",".join(FEATURES)
    assert features == with_header[1:]  # same rows, same order, no header line
    headerless = pd.read_csv(baseline_dir / "features.csv", header=None)
    assert headerless.shape == (len(with_header) - 1, len(FEATURES))
    assert all(pd.api.types.is_numeric_dtype(dtype) for dtype in headerless.dtypes)
    # Column i is the schema's i-th feature (Model Monitor's _c<i>), values as in the test split.
    test = read_split(tmp_path / "out", "test")
    headerless.columns = FEATURES
    pd.testing.assert_frame_equal(headerless, test[FEATURES])


def test_statistics_describe_the_test_split(prepared: tuple[pd.DataFrame, Path]) -> None:
    _, out = prepared
    stats = json.loads((out / "baseline" / "statistics.json").read_text())
    test = read_split(out, "test")
    assert stats["rows"] == len(test)
    amount = stats["features"]["amount"]
    assert amount["count"] == len(test)
    assert amount["mean"] == pytest.approx(test["amount"].mean())
    assert amount["max"] == pytest.approx(test["amount"].max())
    assert amount["quantiles"]["0.5"] == pytest.approx(test["amount"].median())
    chip = stats["features"]["used_chip"]["categories"]
    assert int(chip["1"]) == int(test["used_chip"].sum())
    assert stats["features"]["distance_from_last_txn_km"]["missing"] == int(
        test["distance_from_last_txn_km"].isna().sum()
    )


def test_split_report_lists_files_balance_and_distances(
    prepared: tuple[pd.DataFrame, Path],
) -> None:
    frame, out = prepared
    report = json.loads((out / "report" / "split_report.json").read_text())
    assert report["input"] == {
        "files": [{"file": "part-0.csv", "rows": len(frame)}],
        "rows": len(frame),
        "dropped_missing_target": 0,
    }
    assert report["splits"]["test"]["positives"] == int(read_split(out, "test")[TARGET].sum())
    assert report["split_rule"]["method"] == "hash-v1"
    for name in FEATURES:
        distance = report["feature_distance"][name]["train_vs_test"]
        # Hash splits of one data set are samples of the same rows: nothing is flagged.
        assert distance["level"] == "none"
        assert 0.0 <= distance["psi"] < 0.1


def test_the_split_report_sees_a_shift_between_past_and_future(tmp_path: Path) -> None:
    """A time split whose newest rows moved: binary features included (their PSI is not 0)."""
    old, new = small_frame(3400, seed=31), sample_data.generate(600, seed=32, drift=True)
    frame = pd.concat([old, new], ignore_index=True)
    frame.insert(0, "t", np.arange(len(frame)))
    write(frame, tmp_path / "in" / "data.csv")
    assert run(tmp_path / "in", tmp_path / "out", "--time-column", "t") == 0
    report = json.loads((tmp_path / "out" / "report" / "split_report.json").read_text())
    distance = {n: d["train_vs_test"] for n, d in report["feature_distance"].items()}
    assert distance["online_order"]["kind"] == "binary"
    assert distance["online_order"]["psi"] > 0.1
    assert distance["online_order"]["level"] == "large"
    assert distance["amount"]["level"] == "large"
    assert distance["merchant_category"]["level"] == "none"


def test_the_training_split_profile_travels_to_train_and_statistics(
    prepared: tuple[pd.DataFrame, Path],
) -> None:
    _, out = prepared
    record = json.loads((out / "train" / "training_data.json").read_text())
    statistics = json.loads((out / "baseline" / "statistics.json").read_text())
    train = read_split(out, "train")
    assert record["reference"] == statistics["reference"]
    reference = record["reference"]
    assert (reference["rows"], reference["positives"]) == (len(train), int(train[TARGET].sum()))
    amount = reference["features"]["amount"]
    assert amount["kind"] == "numeric" and len(amount["percentiles"]) == 99
    assert amount["percentiles"][49] == pytest.approx(train["amount"].median())
    assert amount["share_at_or_below"][49] == pytest.approx(
        (train["amount"] <= train["amount"].median()).mean()
    )
    assert reference["features"]["used_pin"]["categories"] == {
        "0": int((train["used_pin"] == 0).sum()),
        "1": int((train["used_pin"] == 1).sum()),
    }
    assert reference["features"]["hour"]["kind"] == "categorical"
    assert record["version_rows"] == 4000


def test_same_seed_gives_identical_splits(tmp_path: Path) -> None:
    write(small_frame(1500), tmp_path / "in" / "data.csv")
    assert run(tmp_path / "in", tmp_path / "a", "--seed", "7") == 0
    assert run(tmp_path / "in", tmp_path / "b", "--seed", "7") == 0
    assert run(tmp_path / "in", tmp_path / "c", "--seed", "8") == 0
    first = (tmp_path / "a" / "test" / "test.csv").read_bytes()
    assert first == (tmp_path / "b" / "test" / "test.csv").read_bytes()
    assert first != (tmp_path / "c" / "test" / "test.csv").read_bytes()


def test_baseline_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(split_outputs, "BASELINE_MAX_ROWS", 50)
    write(small_frame(1500), tmp_path / "in" / "data.csv")
    assert run(tmp_path / "in", tmp_path / "out") == 0
    baseline = pd.read_csv(tmp_path / "out" / "baseline" / "baseline.csv")
    test = read_split(tmp_path / "out", "test")
    assert len(baseline) == 50
    assert len(pd.read_csv(tmp_path / "out" / "baseline" / "features.csv", header=None)) == 50
    assert len(baseline.merge(test, on=FEATURES)) >= 50  # every baseline row is a test row


def test_mixed_formats_several_files_markers_and_unicode_names(tmp_path: Path) -> None:
    frame = small_frame(3000)
    data = tmp_path / "in" / "données 2024"
    write(frame.iloc[:1000], data / "part 1 é.csv")
    write(frame.iloc[1000:2000], data / "sub dir" / "part-2.parquet")
    write(frame.iloc[2000:], data / "part-3.csv.gz")
    (data / "_SUCCESS").write_text("")
    (data / "manifest.json").write_text('{"files": ["part 1 é.csv"]}')
    (data / "notes.txt").write_text("not data")
    # metadata by the Hadoop/Spark convention (and for the trigger's digest): not data
    write(frame.iloc[:10], data / "_committed_part.csv")
    write(frame.iloc[:10], data / ".part-1.csv.crc.csv")
    assert run(tmp_path / "in", tmp_path / "out") == 0
    report = json.loads((tmp_path / "out" / "report" / "split_report.json").read_text())
    assert report["input"]["rows"] == 3000
    assert sorted(f["file"] for f in report["input"]["files"]) == [
        "données 2024/part 1 é.csv",
        "données 2024/part-3.csv.gz",
        "données 2024/sub dir/part-2.parquet",
    ]


def test_text_booleans_and_reordered_extra_columns_are_accepted(tmp_path: Path) -> None:
    frame = small_frame(1500)
    frame["used_chip"] = frame["used_chip"].map({0: "false", 1: "true"})
    frame["customer_id"] = "c-" + frame.index.astype(str)
    frame = frame[list(reversed(frame.columns))]
    write(frame, tmp_path / "in" / "data.csv")
    assert run(tmp_path / "in", tmp_path / "out") == 0
    train = read_split(tmp_path / "out", "train")
    assert list(train.columns) == [TARGET, *FEATURES]
    assert set(train["used_chip"]) == {0, 1}


def test_schema_can_be_a_file(tmp_path: Path) -> None:
    write(small_frame(1500), tmp_path / "in" / "data.csv")
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(SCHEMA_JSON)
    assert run(tmp_path / "in", tmp_path / "out", schema=str(schema_file)) == 0


def test_an_empty_part_file_next_to_data_is_skipped(tmp_path: Path) -> None:
    write(small_frame(1500), tmp_path / "in" / "part-0.csv")
    (tmp_path / "in" / "part-1.csv").write_bytes(b"")
    assert run(tmp_path / "in", tmp_path / "out") == 0
    report = json.loads((tmp_path / "out" / "report" / "split_report.json").read_text())
    assert {"file": "part-1.csv", "rows": 0} in report["input"]["files"]


def test_rows_without_target_are_dropped_within_the_limit(tmp_path: Path) -> None:
    frame = small_frame(2000).astype({TARGET: "float64"})
    frame.loc[:19, TARGET] = np.nan  # 1 %, limit 5 %
    write(frame, tmp_path / "in" / "data.csv")
    assert run(tmp_path / "in", tmp_path / "out") == 0
    report = json.loads((tmp_path / "out" / "report" / "split_report.json").read_text())
    assert report["input"]["dropped_missing_target"] == 20
    assert sum(s["rows"] for s in report["splits"].values()) == 1980


# ----------------------------------------------------------------------------- bad input


def test_missing_target_column(tmp_path: Path, failure_file: Path) -> None:
    write(small_frame(500).drop(columns=[TARGET]), tmp_path / "in" / "data.csv")
    expect_failure(
        tmp_path / "in",
        tmp_path / "out",
        failure_file,
        "data.csv",
        "missing target column",
        f"'{TARGET}'",
    )


def test_missing_feature_column(tmp_path: Path, failure_file: Path) -> None:
    write(small_frame(500).drop(columns=["hour", "used_pin"]), tmp_path / "in" / "data.csv")
    expect_failure(tmp_path / "in", tmp_path / "out", failure_file, "'hour'", "'used_pin'")


def test_text_in_a_float_column(tmp_path: Path, failure_file: Path) -> None:
    frame = small_frame(500).astype({"amount": str})
    frame.loc[17, "amount"] = "12,50 EUR"
    frame.loc[40, "amount"] = "abc"
    write(frame, tmp_path / "in" / "data.csv")
    reason = expect_failure(
        tmp_path / "in", tmp_path / "out", failure_file, "column 'amount' (float)", "numbers"
    )
    assert "'12,50 EUR'" in reason and "line 19" in reason and "2 value(s)" in reason


def test_text_in_a_bool_column(tmp_path: Path, failure_file: Path) -> None:
    frame = small_frame(500).astype({"online_order": str})
    frame.loc[3, "online_order"] = "maybe"
    write(frame, tmp_path / "in" / "data.csv")
    expect_failure(
        tmp_path / "in", tmp_path / "out", failure_file, "'online_order' (bool)", "'maybe'"
    )


def test_text_in_a_parquet_column(tmp_path: Path, failure_file: Path) -> None:
    frame = small_frame(500).astype({"hour": str})
    frame.loc[5, "hour"] = "noon"
    write(frame, tmp_path / "in" / "data.parquet")
    expect_failure(
        tmp_path / "in", tmp_path / "out", failure_file, "'hour' (int)", "'noon'", "row 6"
    )


def test_fractions_in_an_int_column(tmp_path: Path, failure_file: Path) -> None:
    frame = small_frame(500).astype({"txn_count_24h": float})
    frame.loc[8, "txn_count_24h"] = 2.5
    write(frame, tmp_path / "in" / "data.csv")
    expect_failure(tmp_path / "in", tmp_path / "out", failure_file, "'txn_count_24h' (int)", "2.5")


def test_target_that_is_not_binary(tmp_path: Path, failure_file: Path) -> None:
    frame = small_frame(500)
    frame.loc[0, TARGET] = 2
    write(frame, tmp_path / "in" / "data.csv")
    expect_failure(
        tmp_path / "in",
        tmp_path / "out",
        failure_file,
        f"target column '{TARGET}' has values ['0', '1', '2']",
        "set schema.positive_class",
    )


def test_empty_file(tmp_path: Path, failure_file: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "data.csv").write_bytes(b"")
    expect_failure(tmp_path / "in", tmp_path / "out", failure_file, "empty input", "1 file(s)")


def test_empty_gzip_file(tmp_path: Path, failure_file: Path) -> None:
    (tmp_path / "in").mkdir()
    with gzip.open(tmp_path / "in" / "data.csv.gz", "wb"):
        pass
    expect_failure(tmp_path / "in", tmp_path / "out", failure_file, "empty input")


def test_header_only_file(tmp_path: Path, failure_file: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "data.csv").write_text(",".join([TARGET, *FEATURES]) + "\n")
    expect_failure(tmp_path / "in", tmp_path / "out", failure_file, "empty input", "no data rows")


def test_no_files(tmp_path: Path, failure_file: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "_SUCCESS").write_text("")
    expect_failure(tmp_path / "in", tmp_path / "out", failure_file, "no input files", "*.csv")


def test_input_dir_does_not_exist(tmp_path: Path, failure_file: Path) -> None:
    expect_failure(tmp_path / "nowhere", tmp_path / "out", failure_file, "does not exist")


def test_single_class(tmp_path: Path, failure_file: Path) -> None:
    frame = small_frame(500)
    frame[TARGET] = 0
    write(frame, tmp_path / "in" / "data.csv")
    expect_failure(
        tmp_path / "in", tmp_path / "out", failure_file, "single class", "all 500", "are 0"
    )


def test_too_few_rows_of_the_rare_class(tmp_path: Path, failure_file: Path) -> None:
    frame = small_frame(500)
    frame[TARGET] = 0
    frame.loc[:1, TARGET] = 1
    write(frame, tmp_path / "in" / "data.csv")
    expect_failure(tmp_path / "in", tmp_path / "out", failure_file, "only 2 row(s) of class 1")


def test_missing_values_beyond_the_limit(tmp_path: Path, failure_file: Path) -> None:
    frame = small_frame(1000)
    frame.loc[: 72 - 1, "amount"] = np.nan
    write(frame, tmp_path / "in" / "data.csv")
    reason = expect_failure(tmp_path / "in", tmp_path / "out", failure_file)
    assert reason == (
        "column 'amount' has 7.2% missing values (72 of 1000 rows), more than the allowed "
        "5.0% (max_missing_fraction)"
    )


def test_a_file_that_is_not_csv(tmp_path: Path, failure_file: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "data.parquet").write_bytes(b"PK\x03\x04 definitely not parquet")
    expect_failure(tmp_path / "in", tmp_path / "out", failure_file, "not a readable Parquet file")


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ('{"target": "y", "features": []}', "non-empty list"),
        ('{"target": "y", "features": [{"name": "a", "type": "text"}]}', "'text'"),
        ('{"target": "a", "features": [{"name": "a", "type": "int"}]}', "also listed"),
        ("does/not/exist.json", "neither a JSON object nor a readable file"),
    ],
)
def test_bad_schema(tmp_path: Path, failure_file: Path, schema: str, fragment: str) -> None:
    write(small_frame(300), tmp_path / "in" / "data.csv")
    expect_failure(tmp_path / "in", tmp_path / "out", failure_file, fragment, schema=schema)


def test_fractions_that_leave_no_training_rows(tmp_path: Path, failure_file: Path) -> None:
    write(small_frame(300), tmp_path / "in" / "data.csv")
    code = run(
        tmp_path / "in", tmp_path / "out", "--validation-fraction", "0.5", "--test-fraction", "0.5"
    )
    assert code == 1
    assert "must leave rows for training" in failure_file.read_text()


def test_failure_reason_also_goes_to_stderr(
    tmp_path: Path, failure_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expect_failure(tmp_path / "nowhere", tmp_path / "out", failure_file)
    assert "prepare failed: no input files" in capsys.readouterr().err


def test_failure_reason_is_cut_to_one_kilobyte(tmp_path: Path, failure_file: Path) -> None:
    step_failure.report_failure("prepare", "é" * 2000, str(failure_file))
    assert len(failure_file.read_bytes()) <= step_failure.FAILURE_MESSAGE_MAX_BYTES


def test_schema_types_match_the_contract() -> None:
    assert prepare.parse_schema(SCHEMA_JSON).features == tuple(
        (f["name"], f["type"]) for f in SCHEMA["features"]
    )


# ------------------------------------------------------- evaluation only: --all-to-test

ALL_TO_TEST = ("--all-to-test", "--data-digest", "sha256-0f3a")


def test_all_to_test_keeps_every_labelled_row_in_test(tmp_path: Path) -> None:
    frame = small_frame(1500).astype({TARGET: "float64"})
    frame.loc[:9, TARGET] = np.nan  # unlabelled rows are dropped, as in training
    write(frame.iloc[:700], tmp_path / "in" / "part-0.csv")
    write(frame.iloc[700:], tmp_path / "in" / "part-1.parquet")
    assert run(tmp_path / "in", tmp_path / "out", *ALL_TO_TEST) == 0

    test = read_split(tmp_path / "out", "test")
    assert list(test.columns) == [TARGET, *FEATURES]
    labelled = frame.dropna(subset=[TARGET]).astype({TARGET: "int64"})
    pd.testing.assert_frame_equal(
        test.reset_index(drop=True), labelled.reset_index(drop=True), check_dtype=False
    )
    written = sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.*")
    )
    # no split, no baseline; the labels' meaning beside the rows (Evaluate checks it)
    assert written == ["report/split_report.json", "test/labels.json", "test/test.csv"]

    report = json.loads((tmp_path / "out" / "report" / "split_report.json").read_text())
    assert report["mode"] == "all-to-test"
    assert report["input"]["rows"] == 1500
    assert report["input"]["dropped_missing_target"] == 10
    assert report["input"]["data_digest"] == "sha256-0f3a"
    assert report["splits"] == {
        "test": {
            "rows": 1490,
            "positives": int(labelled[TARGET].sum()),
            "negatives": int(1490 - labelled[TARGET].sum()),
            "positive_fraction": labelled[TARGET].mean(),
        }
    }


def test_all_to_test_needs_only_one_row_of_each_class(tmp_path: Path) -> None:
    frame = small_frame(300)
    frame[TARGET] = 0
    frame.loc[0, TARGET] = 1  # too few to split for training, enough to compute AUC
    write(frame, tmp_path / "in" / "data.csv")
    assert run(tmp_path / "in", tmp_path / "out", *ALL_TO_TEST) == 0
    assert read_split(tmp_path / "out", "test")[TARGET].sum() == 1


def expect_evaluation_failure(tmp_path: Path, failure_file: Path, *fragments: str) -> None:
    assert run(tmp_path / "in", tmp_path / "out", *ALL_TO_TEST) == 1
    reason = failure_file.read_text(encoding="utf-8")
    for fragment in fragments:
        assert fragment in reason, reason
    assert not (tmp_path / "out" / "test" / "test.csv").exists()


def test_all_to_test_with_a_single_class_fails_because_auc_is_undefined(
    tmp_path: Path, failure_file: Path
) -> None:
    frame = small_frame(400)
    frame[TARGET] = 1
    write(frame, tmp_path / "in" / "data.csv")
    expect_evaluation_failure(
        tmp_path, failure_file, "single class", "all 400", "are 1", "AUC is undefined"
    )


def test_all_to_test_without_the_target_column(tmp_path: Path, failure_file: Path) -> None:
    write(small_frame(300).drop(columns=[TARGET]), tmp_path / "in" / "data.csv")
    expect_evaluation_failure(tmp_path, failure_file, "missing target column", f"'{TARGET}'")


def test_all_to_test_applies_the_training_type_rules(tmp_path: Path, failure_file: Path) -> None:
    frame = small_frame(300).astype({"hour": str})
    frame.loc[7, "hour"] = "noon"
    write(frame, tmp_path / "in" / "data.csv")
    expect_evaluation_failure(tmp_path, failure_file, "column 'hour'", "'noon'", "line 9")


def test_all_to_test_with_no_files(tmp_path: Path, failure_file: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "_SUCCESS").write_text("")
    expect_evaluation_failure(tmp_path, failure_file, "no input files")
