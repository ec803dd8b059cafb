"""Text labels (schema.positive_class) and category features through Prepare and Train, on
real-shaped data (the penguin example's columns) in CSV and Parquet."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline_code import penguin_data
from pipeline_code.steps import load

prepare = load("prepare")
train = load("train")
categories = load("common", "categories")
feature_shift = load("common", "feature_shift")
feature_profile = load("common", "feature_profile")

FEATURES = [
    {"name": "species", "type": "category"},
    {"name": "island", "type": "category"},
    {"name": "bill_length_mm", "type": "float"},
    {"name": "body_mass_g", "type": "int"},
]


def schema(**changes: Any) -> str:
    base = {"target": "sex", "features": FEATURES, "max_missing_fraction": 0.05}
    base["positive_class"] = "female"
    base.update(changes)
    return json.dumps({k: v for k, v in base.items() if v is not None})


def run_prepare(tmp_path: Path, frame: pd.DataFrame, schema_json: str, name: str = "d.csv") -> int:
    (tmp_path / "in").mkdir(parents=True, exist_ok=True)
    path = tmp_path / "in" / name
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    args = ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")]
    return prepare.main([*args, "--schema", schema_json])


@pytest.fixture()
def failure_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "failure" / "message"
    monkeypatch.setenv("FAILURE_REASON_FILE", str(path))
    return path


def penguins(rows: int = 800) -> pd.DataFrame:
    return penguin_data.generate(rows, seed=11)


def test_a_text_label_is_mapped_with_its_positive_class_and_recorded(tmp_path: Path) -> None:
    frame = penguins()
    assert run_prepare(tmp_path, frame, schema()) == 0
    out = tmp_path / "out"
    written = pd.read_csv(out / "train" / "train.csv")
    assert set(written["sex"]) == {0, 1}
    # Rows keep their label: female is 1 wherever the row went.
    by_mass = frame.set_index(["body_mass_g", "bill_length_mm", "species", "island"])["sex"]
    sample = written.head(50).set_index(["body_mass_g", "bill_length_mm", "species", "island"])
    for key, label in sample["sex"].items():
        if key in by_mass.index and by_mass.loc[[key]].nunique() == 1:
            assert label == int(by_mass.loc[[key]].iloc[0] == "female")
    report = json.loads((out / "report" / "split_report.json").read_text())
    assert report["labels"] == {
        "positive_class": "female",
        "negative_class": "male",
        "source": "schema.positive_class",
    }
    record = json.loads((out / "train" / "training_data.json").read_text())
    assert record["labels"]["positive_class"] == "female"
    assert record["feature_types"]["species"] == "category"
    # Columns the schema does not use are listed with the reason, never dropped silently.
    assert set(report["ignored_columns"]) == {
        "bill_depth_mm",
        "flipper_length_mm",
        "year",
        "comment",
    }


def test_category_values_are_written_as_text_and_profiled_as_categories(tmp_path: Path) -> None:
    assert run_prepare(tmp_path, penguins(), schema()) == 0
    out = tmp_path / "out"
    with (out / "test" / "test.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["species"] for r in rows} <= {"Adelie", "Chinstrap", "Gentoo"}
    statistics = json.loads((out / "baseline" / "statistics.json").read_text())
    assert statistics["features"]["island"]["type"] == "category"
    assert sum(statistics["features"]["island"]["categories"].values()) == len(rows)
    reference = statistics["reference"]["features"]["species"]
    assert reference["kind"] == "categorical" and "Gentoo" in reference["categories"]
    baseline = pd.read_csv(out / "baseline" / "baseline.csv")
    assert baseline["species"].dtype == object


@pytest.mark.parametrize(
    ("labels", "positive", "fragments"),
    [
        (["female", "male"], None, ["values ['female', 'male']", "set schema.positive_class"]),
        (["female", "male"], "Female", ["positive_class = 'Female'", "['female', 'male']"]),
        (["female", "male", "unknown"], "female", ["has 3 values", "'unknown'"]),
    ],
)
def test_a_label_problem_names_the_key_and_lists_the_values_seen(
    tmp_path: Path,
    failure_file: Path,
    labels: list[str],
    positive: str | None,
    fragments: list[str],
) -> None:
    frame = penguins(300)
    frame["sex"] = [labels[i % len(labels)] for i in range(len(frame))]
    assert run_prepare(tmp_path, frame, schema(positive_class=positive)) == 1
    reason = failure_file.read_text(encoding="utf-8")
    for fragment in fragments:
        assert fragment in reason, reason
    assert not (tmp_path / "out" / "train").exists()


def test_integer_codes_and_numeric_labels_read_alike_from_parquet_and_csv(tmp_path: Path) -> None:
    frame = penguins(600)
    frame["species"] = frame["species"].map({"Adelie": 1, "Chinstrap": 2, "Gentoo": 3})
    frame["sex"] = frame["sex"].map({"female": 2, "male": 4})
    parquet, text = tmp_path / "parquet", tmp_path / "csv"
    assert run_prepare(parquet, frame, schema(positive_class="2"), "d.parquet") == 0
    frame["species"] = frame["species"].astype(str) + ".0"  # "1.0": the same category as 1
    assert run_prepare(text, frame, schema(positive_class="2"), "d.csv") == 0
    for split in ("train", "validation", "test"):
        a = pd.read_csv(parquet / "out" / split / f"{split}.csv")
        b = pd.read_csv(text / "out" / split / f"{split}.csv")
        pd.testing.assert_frame_equal(a, b)
    written = pd.read_csv(parquet / "out" / "train" / "train.csv")
    assert set(written["species"]) == {1, 2, 3} and set(written["sex"]) == {0, 1}


def test_train_fits_the_encoding_on_the_train_channel_only(tmp_path: Path) -> None:
    frame = penguins(900)
    assert run_prepare(tmp_path, frame, schema()) == 0
    out = tmp_path / "out"
    # A species only the validation split has: never part of the encoding.
    validation = pd.read_csv(out / "validation" / "validation.csv")
    validation.loc[:4, "species"] = "Emperor"
    validation.to_csv(out / "validation" / "validation.csv", index=False)
    args = ["--train", str(out / "train"), "--validation", str(out / "validation")]
    args += ["--model_dir", str(tmp_path / "model"), "--checkpoint_dir", str(tmp_path / "ck")]
    assert train.main([*args, "--target", "sex", "--num_round", "30"]) == 0
    encoding = categories.read_encoding(tmp_path / "model" / "metadata")
    assert encoding["species"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert (tmp_path / "model" / "code" / "inference.py").is_file()


def test_a_model_without_categories_keeps_the_algorithm_mode_archive(tmp_path: Path) -> None:
    frame = penguins(900)
    numeric = [f for f in FEATURES if f["type"] != "category"]
    assert run_prepare(tmp_path, frame, schema(features=numeric)) == 0
    out = tmp_path / "out"
    args = ["--train", str(out / "train"), "--validation", str(out / "validation")]
    args += ["--model_dir", str(tmp_path / "model"), "--checkpoint_dir", str(tmp_path / "ck")]
    assert train.main([*args, "--target", "sex", "--num_round", "20"]) == 0
    top = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert top == ["metadata", "xgboost-model"]  # algorithm mode: no code, one model file


def test_canonical_text_is_one_rule_for_every_reader() -> None:
    values = [" Adelie ", "3", "3.0", 3, 3.0, "3e0", "NA", "", None, float("nan"), "1.5", True]
    assert [categories.canonical(v) for v in values] == [
        "Adelie", "3", "3", "3", "3", "3", None, None, None, None, "1.5", "1",
    ]  # fmt: skip
    codes = categories.encode(
        np.array(["b", None, "z", "a"], dtype=object), ["a", "b"]
    )  # z: unseen
    assert codes[0] == 1 and codes[3] == 0 and np.isnan(codes[1]) and np.isnan(codes[2])


def test_the_data_shift_of_a_category_feature_counts_unseen_values() -> None:
    reference = feature_profile.profile(np.array(["a"] * 50 + ["b"] * 50, dtype=object), "category")
    same = feature_shift.compare_feature(reference, np.array(["a", "b"] * 50, dtype=object))
    moved = feature_shift.compare_feature(reference, np.array(["c"] * 100, dtype=object))
    assert same["level"] == "none" and moved["level"] == "large"


def test_labelled_ground_truth_is_mapped_the_same_way_for_the_evaluation_pipeline(
    tmp_path: Path,
) -> None:
    """The eval-only pipeline's Prepare (--all-to-test) maps text labels with the same key."""
    (tmp_path / "in").mkdir()
    penguins(400).to_csv(tmp_path / "in" / "labelled.csv", index=False)
    args = ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")]
    assert prepare.main([*args, "--schema", schema(), "--all-to-test"]) == 0
    test = pd.read_csv(tmp_path / "out" / "test" / "test.csv")
    truth = penguins(400)["sex"].eq("female").astype(int)
    assert test["sex"].tolist() == truth.tolist()
    assert test["species"].iloc[0] in {"Adelie", "Chinstrap", "Gentoo"}


def test_a_model_is_never_scored_on_labels_whose_class_1_is_another_value(tmp_path: Path) -> None:
    """The eval-only pipeline's Evaluate scores the production model on labels Prepare mapped
    with today's positive_class: a model trained with another class 1 is refused, not scored
    upside down."""
    import xgboost as xgb

    scoring_data = load("evaluate", "scoring_data")
    model_loading = load("evaluate", "model_loading")
    assert run_prepare(tmp_path, penguins(300), schema(), "labelled.csv") == 0
    test_dir = tmp_path / "out" / "test"
    assert json.loads((test_dir / "labels.json").read_text())["positive_class"] == "female"

    def model(positive: str | None) -> Any:
        labels = {"positive_class": positive} if positive else None
        return model_loading.LoadedModel(
            booster=xgb.Booster(), feature_names=None, source="m", metadata={"labels": labels}
        )

    scoring_data.check_labels(model("female"), test_dir, "evaluated")
    scoring_data.check_labels(model(None), test_dir, "evaluated")  # recorded by no mapping
    with pytest.raises(model_loading.EvaluationError, match="class 1 = 'male'.*'female'"):
        scoring_data.check_labels(model("male"), test_dir, "evaluated")


def test_a_key_feature_that_became_a_category_is_hashed_as_the_champion_hashed_it() -> None:
    """A champion trained when `code` was an int hashed its float bits; this run holds it as
    category text. Its rows are placed with the champion's bits, never taken as clean."""
    stable_split = load("common", "stable_split")
    comparison_rows = load("evaluate", "comparison_rows")
    rng = np.random.default_rng(4)
    numbers = rng.integers(0, 40, 2000).astype(np.float64)
    mass = rng.normal(4000, 300, 2000).round()
    rule = stable_split.hash_rule(42, 0.15, 0.15, key_columns=["code", "mass"])
    as_champion = stable_split.apply_rule(rule, {"code": numbers, "mass": mass})
    text = categories.canonical_array(numbers.tolist())
    now = {"code": text, "mass": mass}
    rows = comparison_rows.champion_rows(
        rule, rule, now, {}, 2000, ["code", "mass"], {"code": "int", "mass": "int"}
    )
    assert rows.keep is not None and (rows.keep == (as_champion == 2)).all()
    assert rows.excluded["champion_train"] > 1000  # not "same rule: every row clean"
    # Text that is no number cannot be placed: the comparison is skipped, the floor decides.
    now["code"] = np.array(["Adelie"] * 2000, dtype=object)
    rows = comparison_rows.champion_rows(rule, rule, now, {}, 2000, ["code", "mass"], {})
    assert rows.keep is None and "cannot be applied" in rows.reason


def test_the_data_shift_of_a_feature_whose_type_changed_compares_what_it_can() -> None:
    codes = feature_profile.profile(np.arange(1000, dtype=np.float64) % 7, "int")
    as_text = np.array([str(i % 7) for i in range(500)], dtype=object)
    assert feature_shift.compare_feature(codes, as_text)["level"] == "none"
    measured = feature_profile.profile(np.random.default_rng(1).normal(size=1000), "float")
    words = np.array(["Adelie"] * 500, dtype=object)
    result = feature_shift.compare_feature(measured, words)
    assert result["missing_new"] == 1.0 and result["level"] == "large"


def test_an_evaluation_batch_of_one_class_0_value_is_not_taken_for_a_misspelt_class_1(
    tmp_path: Path, failure_file: Path
) -> None:
    """Labelled data to evaluate on (--all-to-test) may hold negatives only: positive_class
    need not be seen there. Training data must still show it (a misspelt positive_class)."""
    labels = load("common", "labels")
    males = np.array(["male"] * 5, dtype=object)
    assert labels.binary_labels(males, "sex", "female", one_class=True).tolist() == [0.0] * 5
    assert labels.label_mapping(males, "female")["negative_class"] == "male"
    with pytest.raises(labels.LabelError, match="positive_class = 'female' is not a value"):
        labels.binary_labels(males, "sex", "female")
    # Two values neither of which is class 1: a typo, refused in both modes.
    pair = np.array(["male", "femal"], dtype=object)
    with pytest.raises(labels.LabelError, match="positive_class = 'female' is not a value"):
        labels.binary_labels(pair, "sex", "female", one_class=True)

    frame = penguins(300).assign(sex="male")
    (tmp_path / "in").mkdir()
    frame.to_csv(tmp_path / "in" / "labelled.csv", index=False)
    args = ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")]
    assert prepare.main([*args, "--schema", schema(), "--all-to-test"]) == 1
    reason = failure_file.read_text(encoding="utf-8")
    # The label is read; what stops this batch is that AUC needs both classes, said as such.
    assert "single class" in reason and "is not a value" not in reason, reason


def test_a_model_is_never_scored_on_labels_outside_its_class_pair(tmp_path: Path) -> None:
    """Evaluate checks the test labels' class 0 against the model's recorded pair."""
    import xgboost as xgb

    scoring_data = load("evaluate", "scoring_data")
    model_loading = load("evaluate", "model_loading")
    test_dir = tmp_path / "test"
    labels = load("common", "labels")
    labels.write_labels(test_dir, {"positive_class": "female", "negative_class": "Male"})

    def model(negative: str | None) -> Any:
        recorded = {"positive_class": "female", "negative_class": negative}
        return model_loading.LoadedModel(
            booster=xgb.Booster(), feature_names=None, source="m", metadata={"labels": recorded}
        )

    scoring_data.check_labels(model("Male"), test_dir, "evaluated")
    scoring_data.check_labels(model(None), test_dir, "evaluated")  # not recorded
    with pytest.raises(model_loading.EvaluationError, match="class 0 is 'Male'.*class 0 = 'male'"):
        scoring_data.check_labels(model("male"), test_dir, "evaluated")
