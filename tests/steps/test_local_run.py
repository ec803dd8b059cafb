"""local_run.py: the docker-free end-to-end run, its outputs, and clear failures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from pipeline_code import local_run, sample_data
from pipeline_code.schema_inference import SchemaInferenceError, infer, infer_schema
from pipeline_code.steps import load
from tests.steps import SCHEMA_JSON, TARGET, small_frame, write

contract = load("evaluate", "evaluation_contract")

ROWS = "3000"
#: 3,000 rows hold about 18 test positives: the gate's guard (100 by default) would fire.
FEW = ("--min-positives", "5")


def run(workdir: Path, *extra: str) -> int:
    return local_run.main(["--workdir", str(workdir), *extra])


def test_a_run_mirrors_the_container_layout(tmp_path: Path) -> None:
    assert run(tmp_path / "w", "--rows", ROWS) == 0
    prepare = tmp_path / "w" / "prepare" / "opt" / "ml" / "processing"
    assert (prepare / "output" / "train" / "train.csv").exists()
    assert (prepare / "output" / "baseline" / "baseline.csv").exists()
    assert (tmp_path / "w" / "train" / "opt" / "ml" / "model" / "xgboost-model").exists()
    evaluated = tmp_path / "w" / "evaluate" / "opt" / "ml" / "processing"
    assert (evaluated / "model" / "model.tar.gz").exists()
    report = json.loads((evaluated / "evaluation" / contract.EVALUATION_FILE).read_text())
    test = pd.read_csv(prepare / "output" / "test" / "test.csv")
    assert report["gate"]["test_rows"] == len(test)


def test_the_output_ends_with_metrics_and_the_gate_decision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path / "w", "--rows", ROWS, "--floor", "0.5", *FEW) == 0
    out = capsys.readouterr().out
    evaluation = json.loads(
        (tmp_path / "w" / "evaluate/opt/ml/processing/evaluation/evaluation.json").read_text()
    )
    test_rows = evaluation["gate"]["test_rows"]
    for step, rows in (("prepare", "3,000"), ("evaluate", f"{test_rows:,}")):
        assert any(line.startswith(step) and f"{rows} rows" in line for line in out.splitlines())
    assert "note: schema from cdk.json" in out
    assert "auc " in out and "log_loss" in out and "±" in out
    baseline = evaluation["baseline"]["always_majority_accuracy"]
    assert f"accuracy of always predicting class 0: {baseline:.4f}" in out
    calibration = evaluation["calibration"]
    assert f"calibration (challenger): Brier {calibration['brier_score']:.4f}" in out
    assert f"ECE {calibration['expected_calibration_error']:.4f} (10 equal-count bins)" in out
    threshold = evaluation["decision_threshold"]["challenger"]
    assert f"decision threshold: predict 1 when p >= {threshold:.4f} (chosen on validation" in out
    assert "data shift vs the champion's training data: skipped: no champion" in out
    assert "gate: PASSED - register: challenger auc" in out
    assert ">= floor 0.5000; no champion" in out


def test_a_failed_gate_is_a_decision_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path / "w", "--rows", ROWS, "--floor", "0.99", *FEW) == 0
    assert "gate: FAILED - do not register: challenger auc" in capsys.readouterr().out


def test_too_few_test_positives_fail_the_gate_with_the_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path / "w", "--rows", ROWS) == 0
    out = capsys.readouterr().out
    assert "gate: FAILED - do not register: too little evaluation data to decide: the test " in out
    assert "the gate needs at least 100 of each (pipeline.min_positives)" in out


def test_the_previous_model_can_be_the_champion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path / "first", "--rows", ROWS, *FEW) == 0
    champion = tmp_path / "first" / "train" / "opt" / "ml" / "model"
    args = ["--rows", ROWS, "--champion-model-dir", str(champion), *FEW]
    assert run(tmp_path / "second", *args) == 0
    out = capsys.readouterr().out
    assert "neither model trained on, challenger" in out
    assert "delta +0.0000, standard error 0.0000" in out
    assert "comparison rows: same split rule as the champion" in out
    assert "data shift vs the champion's training data: none" in out
    assert [line for line in out.splitlines() if line.startswith("gate: PASSED")]


def test_a_cumulative_snapshot_passes_against_the_champion_of_the_earlier_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12's case: v1 = 60k rows, v2 = v1 + 40k new rows, the champion trained on v1. With
    a random split a quarter of v2's test rows were the champion's training rows and the gate
    failed a better challenger (delta -0.022); with the stable split no test row is one the
    champion trained on, and the challenger (truly about +0.003 better) passes."""
    v1 = sample_data.generate(60_000, 20_000)
    write(v1, tmp_path / "v1" / "part-1.csv")
    write(v1, tmp_path / "v2" / "part-1.csv")
    write(sample_data.generate(40_000, 30_000), tmp_path / "v2" / "part-2.csv")
    assert run(tmp_path / "run1", "--data", str(tmp_path / "v1")) == 0
    champion = tmp_path / "run1" / "train" / "opt" / "ml" / "model"
    assert (
        run(
            tmp_path / "run2", "--data", str(tmp_path / "v2"), "--champion-model-dir", str(champion)
        )
        == 0
    )

    out = capsys.readouterr().out
    gate = json.loads(
        (tmp_path / "run2/evaluate/opt/ml/processing/evaluation/evaluation.json").read_text()
    )["gate"]
    assert gate["decision"] == "register", gate["reason"]
    assert gate["comparison"]["excluded"] == {"champion_train": 0, "champion_validation": 0}
    assert gate["comparison"]["rows"] == gate["test_rows"] > 14_000
    # No test row of v2 was in the champion's train or validation split (checked by content).
    prepared = "prepare/opt/ml/processing/output"
    seen = pd.concat(
        pd.read_csv(tmp_path / "run1" / prepared / split / f"{split}.csv")
        for split in ("train", "validation")
    )
    test = pd.read_csv(tmp_path / "run2" / prepared / "test" / "test.csv")
    assert test.merge(seen, how="inner").empty
    assert abs(gate["delta"]) < 3 * gate["standard_error"] < 0.01
    assert [line for line in out.splitlines() if line.startswith("gate: PASSED")]


def test_a_drifted_version_is_flagged_in_the_report_the_registry_and_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12's split report, end to end: the champion trained on v1; v2 comes from the
    drifted sample (amount x1.8, distances x2.5, online share 35 % -> 60 %). Evaluate compares
    v2's test rows with the champion's training split and flags the shifted features in
    evaluation.json, in the registry metadata and in what the run prints."""
    write(sample_data.generate(8_000, 1), tmp_path / "v1" / "part-1.csv")
    write(sample_data.generate(8_000, 2, drift=True), tmp_path / "v2" / "part-1.csv")
    assert run(tmp_path / "run1", "--data", str(tmp_path / "v1"), *FEW) == 0
    champion = tmp_path / "run1" / "train" / "opt" / "ml" / "model"
    capsys.readouterr()
    v2 = ("--data", str(tmp_path / "v2"), "--champion-model-dir", str(champion), *FEW)
    assert run(tmp_path / "run2", *v2) == 0

    evaluation = json.loads(
        (tmp_path / "run2/evaluate/opt/ml/processing/evaluation/evaluation.json").read_text()
    )
    shift = evaluation["data_shift"]
    assert {"amount", "distance_from_home_km"} <= set(shift["large"]), shift["summary"]
    assert shift["features"]["amount"]["level"] == "large"
    assert shift["rows"]["compared"] == evaluation["gate"]["test_rows"]
    registry = evaluation["registry_metadata"]["data_shift"]
    assert registry.startswith("large=") and "amount" in registry and len(registry) <= 256
    out = capsys.readouterr().out
    assert f"data shift vs the champion's training data: {shift['summary']}" in out
    assert [line for line in out.splitlines() if line.strip().startswith("amount (")]

    # the same version against a champion of the same distribution flags nothing large
    write(sample_data.generate(8_000, 3), tmp_path / "v3" / "part-1.csv")
    v3 = ("--data", str(tmp_path / "v3"), "--champion-model-dir", str(champion), *FEW)
    assert run(tmp_path / "run3", *v3) == 0
    same = json.loads(
        (tmp_path / "run3/evaluate/opt/ml/processing/evaluation/evaluation.json").read_text()
    )["data_shift"]
    assert same["large"] == [], same["summary"]


def test_no_environment_variable_leaks(tmp_path: Path) -> None:
    before = dict(os.environ)
    assert run(tmp_path / "w", "--rows", ROWS) == 0
    assert dict(os.environ) == before


def test_own_data_with_a_target_gets_an_inferred_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = small_frame(3000).rename(columns={TARGET: "label", "amount": "amount_eur"})
    frame["label"] = frame["label"].map({0: "false", 1: "true"})
    frame["merchant"] = "shop-" + (frame.index % 7).astype(str)  # repeated text: a category
    frame["note"] = "row " + frame.index.astype(str)  # free text: ignored, with the reason
    write(frame, tmp_path / "my data.csv")
    assert run(tmp_path / "w", "--data", str(tmp_path / "my data.csv"), "--target", "label") == 0
    out = capsys.readouterr().out
    inferred = out.split("schema inferred")[1].splitlines()[0]
    assert "amount_eur (float)" in out and "used_chip (bool)" in out and "hour (int)" in out
    assert "merchant (category)" in inferred
    assert "ignored: note (text with 3000 distinct values in 3000 rows" in inferred
    assert "gate: " in out


def test_the_bundled_penguins_run_with_a_text_label_and_category_features(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = Path(__file__).resolve().parents[2] / "examples" / "penguins.csv"
    args = ["--data", str(data), "--target", "sex", "--positive-class", "female"]
    assert run(tmp_path / "w", *args) == 0
    out = capsys.readouterr().out
    inferred = out.split("schema inferred")[1].splitlines()[0]
    assert "target 'sex' (class 1: 'female')" in inferred
    assert "species (category)" in inferred and "island (category)" in inferred
    assert "ignored: comment (text with 3000 distinct values" in inferred
    assert "gate: PASSED" in out


def test_a_schema_can_be_given_explicitly(tmp_path: Path) -> None:
    write(small_frame(3000), tmp_path / "data" / "part-0.parquet")
    args = ["--data", str(tmp_path / "data"), "--schema-json", SCHEMA_JSON, "--floor", "0.5"]
    args += FEW
    assert run(tmp_path / "w", *args) == 0


def test_infer_schema_types(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"y": [0, 1, 0, 1], "f": [0.5, 1.5, 2.0, 3.0], "i": [1, 2, 3, 40], "b": [1, 0, 0, 1]}
    )
    frame["t"] = ["yes", "no", "no", "yes"]
    frame["id"] = ["a1", "a2", "a3", "a4"]
    frame["empty"] = [None, None, None, None]
    frame.to_csv(tmp_path / "d.csv", index=False)
    schema, ignored, _ = infer(tmp_path / "d.csv", "y")
    assert schema["features"] == [
        {"name": "f", "type": "float"},
        {"name": "i", "type": "int"},
        {"name": "b", "type": "bool"},
        {"name": "t", "type": "category"},
    ]
    # Every other column is listed with its reason: none is dropped silently.
    assert ignored == {
        "id": "text with 4 distinct values in 4 rows: an identifier or free text, not a "
        "category (at most 50, repeated)",
        "empty": "no value in the rows read",
    }
    assert infer_schema(tmp_path / "d.csv", "y") == schema


def test_a_text_target_needs_its_positive_class_and_lists_the_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.DataFrame({"sex": ["female", "male"] * 20, "mass": range(40)})
    frame.to_csv(tmp_path / "d.csv", index=False)
    code = run(tmp_path / "w", "--data", str(tmp_path / "d.csv"), "--target", "sex")
    expect_failure(
        capsys, code, "--target 'sex' is not 0/1 or true/false", "['female', 'male']", "POSITIVE="
    )
    schema, _, _ = infer(tmp_path / "d.csv", "sex", "female")
    assert schema["positive_class"] == "female"
    with pytest.raises(SchemaInferenceError, match=r"POSITIVE='Female' is not a value .*'male'"):
        infer(tmp_path / "d.csv", "sex", "Female")
    frame["sex"] = ["female", "male", "unknown", "male"] * 10
    frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(SchemaInferenceError, match="has 3 values"):
        infer(tmp_path / "d.csv", "sex", "female")


# ----------------------------------------------------------------------------- bad input


def expect_failure(capsys: pytest.CaptureFixture[str], code: int, *fragments: str) -> None:
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("local run failed: ")
    for fragment in fragments:
        assert fragment in err, err


def test_unknown_target_lists_the_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(small_frame(100), tmp_path / "d.csv")
    code = run(tmp_path / "w", "--data", str(tmp_path / "d.csv"), "--target", "fraud")
    expect_failure(capsys, code, "--target 'fraud' is not a column of d.csv", "'is_fraud'")


def test_a_numeric_target_is_inferred_a_regression_target(tmp_path: Path) -> None:
    # Once refused as "not 0/1": a whole-number target with many values is now a quantity.
    write(small_frame(200), tmp_path / "d.csv")
    schema, _, why = infer(tmp_path / "d.csv", "hour")
    assert schema["problem_type"] == "regression"
    assert why == "whole numbers with 24 distinct values"


def test_a_file_that_cannot_be_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "d.parquet").write_bytes(b"garbage")
    code = run(tmp_path / "w", "--data", str(tmp_path / "d.parquet"), "--target", "y")
    expect_failure(capsys, code, "cannot read it as CSV or Parquet")


def test_a_missing_data_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(tmp_path / "w", "--data", str(tmp_path / "nope.csv"), "--target", "y")
    expect_failure(capsys, code, "nope.csv: no such file or directory")


def test_a_prepare_failure_is_reported_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = small_frame(1000)
    frame.loc[:99, "amount"] = None
    write(frame, tmp_path / "d.csv")
    code = run(tmp_path / "w", "--data", str(tmp_path / "d.csv"))
    expect_failure(capsys, code, "prepare failed: column 'amount' has 10.0% missing values", "5.0%")


def test_a_foreign_non_empty_workdir_is_not_wiped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    expect_failure(capsys, run(tmp_path / "mine"), "not created by a local run")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--rows", "0"], "--rows 0 is not allowed"),
        (["--floor", "1.5"], "--floor 1.5 is not allowed"),
        (["--tolerance", "-0.1"], "--tolerance -0.1 is not allowed"),
        (["--min-positives", "0"], "--min-positives 0 is not allowed"),
        (["--schema-json", "{oops"], "--schema-json is not valid JSON"),
    ],
)
def test_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    expect_failure(capsys, run(tmp_path / "w", *argv), fragment)


def _configured_trainer(trainer: str) -> object:
    """dev's configuration with `pipeline.trainer` set, parsed by the configuration's rules."""
    import copy

    from mlops_config import parse_environment, read_cdk_json_context

    context = copy.deepcopy(read_cdk_json_context())
    context["environments"]["dev"].setdefault("pipeline", {})["trainer"] = trainer
    return parse_environment(context, "dev")


@pytest.mark.parametrize(
    ("argv", "configured", "fragment"),
    [
        (["--trainer", "sklearn"], None, "--trainer = 'sklearn' is not allowed with the scripts"),
        (["--trainer", "custom"], None, "--trainer = 'custom' is not allowed with the scripts"),
        ([], "sklearn", "cdk.json's pipeline.trainer = 'sklearn' is not allowed with the scripts"),
        (["--tune", "2"], "sklearn", "cdk.json's pipeline.trainer = 'sklearn' is not allowed"),
    ],
)
def test_the_scripts_runner_refuses_a_trainer_other_than_xgboost(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    configured: str | None,
    fragment: str,
) -> None:
    """`make local-run FAST=1 TRAINER=sklearn` (or a cdk.json with trainer sklearn) must not
    train and gate train.py's XGBoost model in its place: one line naming the pipeline runner,
    before any step (the workdir is not even created)."""
    from pipeline_code import local_settings

    if configured is not None:
        config = _configured_trainer(configured)
        monkeypatch.setattr(local_settings, "_project_config", lambda: config)
    expect_failure(capsys, run(tmp_path / "w", *argv), fragment, "use the pipeline runner")
    assert not (tmp_path / "w").exists()


def test_the_scripts_runner_takes_an_explicit_xgboost_trainer_over_a_configured_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--trainer xgboost is what the scripts run trains: accepted, so the next check speaks."""
    from pipeline_code import local_settings

    config = _configured_trainer("sklearn")
    monkeypatch.setattr(local_settings, "_project_config", lambda: config)
    code = run(tmp_path / "w", "--trainer", "xgboost", "--schema-json", "{oops")
    expect_failure(capsys, code, "--schema-json is not valid JSON")
