"""score.py (batch serving's scoring input): a version of bundled sample data becomes header-less
CSV with the row id first and the features in schema order, and scoring.json says where the
predictions go; each kind of bad scoring data fails with one reason naming file and column."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline_code.steps import load
from tests.steps import FEATURES, SCHEMA_JSON, TARGET, small_frame, write

score = load("score")
step_failure = load("common", "failure")

ARN = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlops-loop-dev-models/7"
URI = "s3://data-bucket/score/transactions/2026-12-07 08:00/"


@pytest.fixture
def failure_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "failure" / "message"
    monkeypatch.setenv(step_failure.FAILURE_FILE_ENV, str(path))
    return path


def scoring_frame(rows: int = 300, seed: int = 5) -> pd.DataFrame:
    """What a producer lands: an id column, the features in another order, no target."""
    frame = small_frame(rows, seed).drop(columns=[TARGET])
    frame.insert(0, "extra_note", "x")
    frame["id"] = [f"txn-{seed}-{i}" for i in range(rows)]
    return frame[["id", *reversed(FEATURES), "extra_note"]]


def run(
    input_dir: Path, output_dir: Path, arn: str = ARN, uri: str = URI, run_id: str = "exec0001"
) -> int:
    return score.main(
        [
            "--input-dir", str(input_dir),
            "--output-dir", str(output_dir),
            "--schema", SCHEMA_JSON,
            "--id-column", "id",
            "--input-data-uri", uri,
            "--model-package-arn", arn,
            "--run-id", run_id,
        ]
    )  # fmt: skip


def test_a_version_becomes_headerless_rows_in_schema_order(tmp_path: Path) -> None:
    first, second = scoring_frame(300, 5), scoring_frame(200, 6)
    write(first, tmp_path / "in" / "part-0001.csv")
    write(second, tmp_path / "in" / "part-0002.parquet")
    (tmp_path / "in" / "_SUCCESS").write_text("")
    assert run(tmp_path / "in", tmp_path / "out") == 0

    rows = sorted((tmp_path / "out" / score.ROWS_OUTPUT).iterdir())
    assert [p.name for p in rows] == ["part-00000.csv", "part-00001.csv"]
    with rows[0].open(newline="") as handle:
        written = list(csv.reader(handle))
    assert len(written) == 300  # no header
    assert written[0][0] == "txn-5-0"
    expected = first.iloc[0][FEATURES].astype(float).tolist()
    assert [float(v) if v else None for v in written[0][1:]] == pytest.approx(expected)

    summary = json.loads((tmp_path / "out" / score.REPORT_OUTPUT / score.SCORING_FILE).read_text())
    assert summary["rows"] == 500
    assert summary["features"] == FEATURES
    assert summary["model_version"] == "7"
    assert summary["output_uri"] == (
        "s3://data-bucket/predictions/transactions/2026-12-07 08:00/7/exec0001/"
    )


def test_bool_features_are_0_or_1_and_missing_values_stay_empty(tmp_path: Path) -> None:
    frame = scoring_frame(20)
    frame["used_chip"] = ["true", "false"] * 10
    frame["distance_from_last_txn_km"] = [None] + [1.5] * 19
    write(frame, tmp_path / "in" / "part.csv")
    assert run(tmp_path / "in", tmp_path / "out") == 0
    with (tmp_path / "out" / "rows" / "part-00000.csv").open(newline="") as handle:
        first, second = list(csv.reader(handle))[:2]
    chip = 1 + FEATURES.index("used_chip")
    distance = 1 + FEATURES.index("distance_from_last_txn_km")
    assert (float(first[chip]), float(second[chip])) == (1.0, 0.0)
    assert first[distance] == ""


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (lambda f: f.drop(columns=["amount"]), ["part.csv has no column(s) ['amount']"]),
        (lambda f: f.drop(columns=["id"]), ["no column(s) ['id']", "the id column 'id'"]),
        (
            lambda f: f.assign(hour=["late"] + ["3"] * (len(f) - 1)),
            ["column 'hour' in part.csv must hold numbers"],
        ),
        (
            lambda f: f.assign(online_order=["maybe"] + ["0"] * (len(f) - 1)),
            ["column 'online_order' in part.csv is a bool feature", "not 'maybe'"],
        ),
        (
            lambda f: f.assign(id=["a"] * len(f)),
            ["row id 'a' of part.csv appears more than once"],
        ),
        (lambda f: f.iloc[:0], ["no rows (its files hold a header only)"]),
        *(
            (
                lambda f, bad=bad: f.assign(id=[f"txn{bad}1", *f["id"][1:]]),
                [
                    f"row id {'txn' + bad + '1'!r}",
                    "must not hold a comma, a double quote or a line break",
                ],
            )
            for bad in (",", '"', "\n")
        ),
    ],
)
def test_bad_scoring_data_fails_with_its_reason(
    tmp_path: Path, failure_file: Path, change: object, fragments: list[str]
) -> None:
    write(change(scoring_frame(30)), tmp_path / "in" / "part.csv")  # type: ignore[operator]
    assert run(tmp_path / "in", tmp_path / "out") == 1
    reason = failure_file.read_text()
    for fragment in fragments:
        assert fragment in reason
    assert not (tmp_path / "out" / score.REPORT_OUTPUT / score.SCORING_FILE).exists()


def test_a_version_closed_by_a_manifest_scores_its_data_files_only(tmp_path: Path) -> None:
    """The manifest completion rule leaves `manifest.json` (the README's producer contract)
    beside the data: it is a marker, not data."""
    write(scoring_frame(40), tmp_path / "in" / "part-0.csv")
    manifest = {"files": [{"key": "part-0.csv", "size": 1}]}
    (tmp_path / "in" / "manifest.json").write_text(json.dumps(manifest))
    assert run(tmp_path / "in", tmp_path / "out") == 0
    summary = json.loads((tmp_path / "out" / score.REPORT_OUTPUT / score.SCORING_FILE).read_text())
    assert summary["files"] == [{"file": "part-0.csv", "rows": 40}]


def test_an_empty_version_fails(tmp_path: Path, failure_file: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "_SUCCESS").write_text("")
    assert run(tmp_path / "in", tmp_path / "out") == 1
    assert failure_file.read_text() == "the scoring version has no data files (an empty version)"


def test_without_a_served_package_nothing_is_scored(tmp_path: Path, failure_file: Path) -> None:
    write(scoring_frame(10), tmp_path / "in" / "part.csv")
    assert run(tmp_path / "in", tmp_path / "out", arn="") == 1
    assert "nothing is served yet (approve a package first)" in failure_file.read_text()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://b/score/d/v/", "s3://b/predictions/d/v/12/x9y8/"),
        ("s3://b/score/sales/50% off+q(1)/", "s3://b/predictions/sales/50% off+q(1)/12/x9y8/"),
    ],
)
def test_the_predictions_go_beside_the_version_under_the_model_version(
    uri: str, expected: str
) -> None:
    arn = ARN.removesuffix("/7") + "/12"
    assert score.predictions_uri(uri, arn, "x9y8") == (expected, "12")


def test_two_runs_of_the_same_version_and_model_write_to_different_prefixes(
    tmp_path: Path,
) -> None:
    """A stale `_SUCCESS` of one run can never vouch for another run's outputs."""
    write(scoring_frame(30), tmp_path / "in" / "part-0001.csv")
    uris = []
    for run_id in ("a1b2c3d4e5f6", "f6e5d4c3b2a1"):
        assert run(tmp_path / "in", tmp_path / run_id, run_id=run_id) == 0
        report = tmp_path / run_id / score.REPORT_OUTPUT / score.SCORING_FILE
        uris.append(json.loads(report.read_text())["output_uri"])
    assert uris[0] != uris[1]
    assert not uris[1].startswith(uris[0]) and not uris[0].startswith(uris[1])


@pytest.mark.parametrize("run_id", ["", "a/b", "../x", "-x"])
def test_a_run_id_that_is_not_one_key_segment_is_refused(run_id: str) -> None:
    with pytest.raises(score.ScoringDataError, match="--run-id"):
        score.predictions_uri(URI, ARN, run_id)


@pytest.mark.parametrize("uri", ["s3://b/landing/d/v/", "s3://b/score/d/", "b/score/d/v/"])
def test_an_input_outside_score_is_refused(uri: str) -> None:
    with pytest.raises(score.ScoringDataError, match="InputDataUri"):
        score.predictions_uri(uri, ARN, "x9y8")


def _run_with(schema: dict, input_dir: Path, output_dir: Path) -> int:
    return score.main(
        ["--input-dir", str(input_dir), "--output-dir", str(output_dir),
         "--schema", json.dumps(schema), "--id-column", "id", "--input-data-uri", URI,
         "--model-package-arn", ARN, "--run-id", "exec0001"]
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["category", "float"])
def test_a_missing_value_of_the_only_feature_is_refused_not_misjoined(
    tmp_path: Path, failure_file: Path, kind: str
) -> None:
    # The transform job sends `$[1:]` of each line: with one feature and its value missing,
    # `"p1",` leaves an empty record, which the served model's csv.reader skips, so every
    # later prediction would be joined to the wrong id.
    values = ["Biscoe", None, "Dream"] if kind == "category" else [1.5, None, 2.5]
    frame = pd.DataFrame({"id": ["p0", "p1", "p2"], "x": values})
    write(frame, tmp_path / "in" / "part.csv")
    schema = {"target": "y", "features": [{"name": "x", "type": kind}]}
    assert _run_with(schema, tmp_path / "in", tmp_path / "out") == 1
    reason = failure_file.read_text()
    assert "part.csv row id 'p1' has no 'x', the schema's only feature" in reason
    assert "\n" not in reason.strip()
    # with a second feature the record keeps its comma: the row is written, missing as empty
    frame["z"] = [0.5, 0.5, 0.5]
    write(frame, tmp_path / "in2" / "part.csv")
    schema["features"].append({"name": "z", "type": "float"})
    assert _run_with(schema, tmp_path / "in2", tmp_path / "out2") == 0
    with (tmp_path / "out2" / "rows" / "part-00000.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[1] == ["p1", "", "0.5"]
