"""prepare.py for multi-class and regression targets: the trainer's numbers, what they stand for,
and a clear refusal of a target that cannot be one (the binary path: test_prepare.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_code import penguin_data
from pipeline_code.steps import load

prepare = load("prepare")
step_failure = load("common", "failure")
labels = load("common", "labels")

FEATURES = [
    {"name": "island", "type": "category"},
    {"name": "bill_length_mm", "type": "float"},
    {"name": "bill_depth_mm", "type": "float"},
    {"name": "flipper_length_mm", "type": "float"},
]


def schema(target: str, problem_type: str, features: list[dict[str, str]] = FEATURES) -> str:
    return json.dumps(
        {"target": target, "problem_type": problem_type, "features": features,
         "max_missing_fraction": 0.05}
    )  # fmt: skip


@pytest.fixture
def failure_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "failure" / "message"
    monkeypatch.setenv(step_failure.FAILURE_FILE_ENV, str(path))
    return path


def run(frame: pd.DataFrame, root: Path, schema_json: str) -> int:
    (root / "in").mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "in" / "part-0.csv", index=False)
    return prepare.main(
        ["--input-dir", str(root / "in"), "--output-dir", str(root / "out"), "--schema",
         schema_json]
    )  # fmt: skip


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return penguin_data.generate(1500, seed=5)


def test_a_text_multiclass_target_becomes_class_codes_of_its_sorted_labels(
    penguins: pd.DataFrame, tmp_path: Path
) -> None:
    assert run(penguins, tmp_path, schema("species", "multiclass")) == 0
    out = tmp_path / "out"
    mapping = json.loads((out / "test" / "labels.json").read_text())
    assert mapping["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert mapping["problem_type"] == "multiclass"
    record = json.loads((out / "train" / "training_data.json").read_text())
    assert record["labels"]["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    # every row's code reads back to its own label (rows matched by their measurements)
    written = pd.concat(pd.read_csv(out / s / f"{s}.csv") for s in ("train", "validation", "test"))
    assert set(written["species"].unique()) == {0, 1, 2}
    keys = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
    joined = written.merge(penguins.dropna(subset=keys), on=keys, suffixes=("", "_raw"))
    decoded = np.array(mapping["classes"])[joined["species"].to_numpy()]
    assert (decoded == joined["species_raw"].to_numpy()).all()
    report = json.loads((out / "report" / "split_report.json").read_text())
    train_counts = report["splits"]["train"]["classes"]
    assert set(train_counts) == {"Adelie", "Chinstrap", "Gentoo"} and min(train_counts.values()) > 0


def test_integer_class_labels_are_ordered_as_numbers(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=600), "grade": rng.choice([2, 10, 1], 600)})
    features = [{"name": "x", "type": "float"}]
    assert run(frame, tmp_path, schema("grade", "multiclass", features)) == 0
    mapping = json.loads((tmp_path / "out" / "test" / "labels.json").read_text())
    assert mapping["classes"] == ["1", "2", "10"]
    test = pd.read_csv(tmp_path / "out" / "test" / "test.csv")
    assert set(test["grade"].unique()) <= {0, 1, 2}


def test_a_regression_target_is_written_as_numbers_with_its_spread(
    penguins: pd.DataFrame, tmp_path: Path
) -> None:
    assert run(penguins, tmp_path, schema("body_mass_g", "regression")) == 0
    out = tmp_path / "out"
    test = pd.read_csv(out / "test" / "test.csv")
    assert test["body_mass_g"].between(2000, 7000).all()
    assert not (out / "test" / "labels.json").exists() or "classes" not in json.loads(
        (out / "test" / "labels.json").read_text()
    )
    report = json.loads((out / "report" / "split_report.json").read_text())
    assert report["splits"]["train"]["min"] >= penguins["body_mass_g"].min()
    assert report["labels"]["problem_type"] == "regression"


@pytest.mark.parametrize(
    ("values", "fragment"),
    [(["heavy", "light", "3000"], "column 'y' (target) must contain numbers"),
     (["inf", "3100", "3000"], "200 infinite value(s), e.g. inf: a regression target must be"),
     (["5", "5", "5"], "has a single value (5) in all 600 labelled rows")],
)  # fmt: skip
def test_a_regression_target_that_is_not_finite_numbers_is_refused(
    tmp_path: Path, failure_file: Path, values: list[str], fragment: str
) -> None:
    frame = pd.DataFrame({"x": np.arange(600) / 600, "y": values * 200})
    assert run(frame, tmp_path, schema("y", "regression", [{"name": "x", "type": "float"}])) == 1
    reason = failure_file.read_text()
    assert fragment in reason, reason
    assert not (tmp_path / "out" / "train" / "train.csv").exists()


@pytest.mark.parametrize(
    ("column", "fragment"),
    [(["a"] * 600, "has a single value ['a']: a multi-class model needs at least two classes"),
     (["a"] + ["b"] * 599, "only 1 row(s) of class 'a'; at least 3 are needed"),
     ([f"c{i % 150}" for i in range(600)], "has 150 values"),
     ],
)  # fmt: skip
def test_a_multiclass_target_without_enough_classes_or_rows_is_refused(
    tmp_path: Path, failure_file: Path, column: list[str], fragment: str
) -> None:
    frame = pd.DataFrame({"x": np.arange(600) / 600, "y": column})
    assert run(frame, tmp_path, schema("y", "multiclass", [{"name": "x", "type": "float"}])) == 1
    reason = failure_file.read_text()
    assert fragment in reason, reason


def test_a_positive_class_with_another_problem_type_is_refused(
    penguins: pd.DataFrame, tmp_path: Path, failure_file: Path
) -> None:
    raw = json.loads(schema("species", "multiclass")) | {"positive_class": "Adelie"}
    assert run(penguins, tmp_path, json.dumps(raw)) == 1
    assert "positive_class = 'Adelie' is not allowed with problem_type 'multiclass'" in (
        failure_file.read_text()
    )


def test_class_codes_of_a_models_classes_refuse_an_unknown_label() -> None:
    text = np.array(["b", "a", None, "b"], dtype=object)
    codes, classes = labels.multiclass_labels(text, "y", ["a", "b", "c"])
    assert classes == ["a", "b", "c"]
    assert codes[0] == 1 and codes[1] == 0 and np.isnan(codes[2])
    with pytest.raises(labels.LabelError, match=r"values \['d'\] that are not among the classes"):
        labels.multiclass_labels(np.array(["d"], dtype=object), "y", ["a", "b"])
