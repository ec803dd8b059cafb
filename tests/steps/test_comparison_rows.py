"""Evaluate compares on rows neither model trained on: the champion's recorded split rule is
applied to the test rows, and what was left out, and why, is in evaluation.json.

Expected exclusions are computed independently: Prepare itself is run with the champion's rule
on this version's data, and the test rows are matched by content against the train and
validation splits it writes.
"""

from __future__ import annotations

import json
import math
import os
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline_code import sample_data
from pipeline_code.gate import gate_decision
from pipeline_code.steps import load
from tests.steps import FEATURES, SCHEMA_JSON, TARGET, small_frame, write

prepare = load("prepare")
train = load("train")
evaluate = load("evaluate")
model_files = load("common", "model_files")
comparison_rows = load("evaluate", "comparison_rows")
stable_split = load("common", "stable_split")

FAST = ["--num_round", "40", "--early_stopping_rounds", "10", "--max_depth", "4"]
FEW = ["--min-positives", "10", "--bootstrap-samples", "100"]


def prepare_and_train(root: Path, frame: pd.DataFrame, *split: str) -> Path:
    """Prepare `frame` (extra split arguments) and train on it; returns the output root."""
    write(frame, root / "in" / "data.csv")
    args = ["--input-dir", str(root / "in"), "--output-dir", str(root), "--schema", SCHEMA_JSON]
    assert prepare.main([*args, *split]) == 0
    environment = {
        "SM_CHANNEL_TRAIN": str(root / "train"),
        "SM_CHANNEL_VALIDATION": str(root / "validation"),
        "SM_MODEL_DIR": str(root / "model"),
    }
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        assert train.main([*FAST, "--checkpoint_dir", str(root / "checkpoints")]) == 0
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)
    return root


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """v1 split under an older rule (seed 7, 20 % validation and test) with its champion; v2 =
    v1 + new rows under today's rule with its challenger."""
    root = tmp_path_factory.mktemp("versions")
    v1 = small_frame(6000, seed=41)
    v2 = pd.concat([v1, small_frame(4000, seed=42)], ignore_index=True)
    old_rule = ["--seed", "7", "--validation-fraction", "0.2", "--test-fraction", "0.2"]
    return {
        "v1": prepare_and_train(root / "v1", v1, *old_rule),
        "v2": prepare_and_train(root / "v2", v2),
    }


def evaluate_against(
    challenger: Path, champion_dir: Path, out: Path, *extra: str
) -> dict[str, Any]:
    argv = ["--model-dir", str(challenger / "model"), "--test-dir", str(challenger / "test")]
    argv += ["--output-dir", str(out), "--champion-model-dir", str(champion_dir), *FEW, *extra]
    assert evaluate.main(argv) == 0
    text = (out / "evaluation.json").read_text()
    # Strict JSON: no NaN or Infinity anywhere (JsonGet and the CLI refuse them).
    return dict(json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON")))


def rows_in(root: Path, *splits: str) -> pd.DataFrame:
    return pd.concat(pd.read_csv(root / s / f"{s}.csv")[[TARGET, *FEATURES]] for s in splits)


def test_a_champion_split_under_another_rule_is_compared_only_on_rows_it_never_saw(
    versions: dict[str, Path], tmp_path: Path
) -> None:
    report = evaluate_against(versions["v2"], versions["v1"] / "model", tmp_path / "out")
    gate = report["gate"]
    test = pd.read_csv(versions["v2"] / "test" / "test.csv")
    keys = test[FEATURES].round(9).fillna(-1).apply(tuple, axis=1)
    # This version's rows split by the champion's rule, by Prepare itself.
    args = ["--input-dir", str(versions["v2"] / "in"), "--output-dir", str(tmp_path / "old")]
    old_rule = ["--seed", "7", "--validation-fraction", "0.2", "--test-fraction", "0.2"]
    assert prepare.main([*args, "--schema", SCHEMA_JSON, *old_rule]) == 0

    def seen_in(*splits: str) -> int:
        champion = rows_in(tmp_path / "old", *splits)[FEATURES].round(9).fillna(-1)
        return int(keys.isin(set(champion.apply(tuple, axis=1))).sum())

    excluded = gate["comparison"]["excluded"]
    assert excluded == {
        "champion_train": seen_in("train"),
        "champion_validation": seen_in("validation"),
    }
    assert excluded["champion_train"] > 200  # the old rule put many of today's test rows there
    assert gate["comparison"]["rows"] == len(test) - sum(excluded.values())
    assert "differs from this run's" in gate["comparison"]["reason"]
    assert "seed=7 validation=0.2 test=0.2" in gate["comparison"]["reason"]
    assert report["registry_metadata"]["champion_comparison"] == (
        f"compared rows={gate['comparison']['rows']} positives={gate['comparison']['positives']} "
        f"excluded_train={excluded['champion_train']} "
        f"excluded_validation={excluded['champion_validation']}"
    )
    # v2's challenger (trained on more rows) is not worse than v1's champion: it passes.
    assert gate["decision"] == "register", gate["reason"]
    assert gate_decision(report).passed
    assert gate["comparison"]["challenger"] != gate["challenger"]  # fewer rows compared


def test_the_champions_metrics_are_those_of_the_compared_rows(
    versions: dict[str, Path], tmp_path: Path
) -> None:
    from sklearn.metrics import roc_auc_score

    report = evaluate_against(versions["v2"], versions["v1"] / "model", tmp_path / "out")
    test = pd.read_csv(versions["v2"] / "test" / "test.csv")
    champion = versions["v1"] / "model" / model_files.MODEL_FILE
    import xgboost as xgb

    p = xgb.Booster(model_file=str(champion)).predict(
        xgb.DMatrix(test[FEATURES].to_numpy(np.float32), feature_names=FEATURES)
    )
    rule = json.loads((versions["v1"] / "train" / "training_data.json").read_text())["split_rule"]
    keep = stable_split.apply_rule(rule, {c: test[c].to_numpy(np.float64) for c in FEATURES}) == 2
    expected = roc_auc_score(test[TARGET][keep], p[keep])
    assert report["gate"]["champion"] == pytest.approx(expected)
    assert report["champion_binary_classification_metrics"]["auc"]["value"] == pytest.approx(
        expected
    )


def test_a_champion_without_a_split_rule_is_not_compared_and_the_floor_decides(
    versions: dict[str, Path], tmp_path: Path
) -> None:
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / model_files.MODEL_FILE).write_bytes(
        (versions["v1"] / "model" / model_files.MODEL_FILE).read_bytes()
    )
    report = evaluate_against(versions["v2"], legacy, tmp_path / "out")
    gate = report["gate"]
    assert gate["has_champion"] is True and gate["champion"] is None
    assert gate["comparison"]["compared"] is False
    assert "records no split rule" in gate["comparison"]["skipped"]
    assert gate["reason"].endswith("only the floor applies")
    assert "champion comparison skipped: the champion records no split rule" in gate["reason"]
    assert report["registry_metadata"]["champion_comparison"].startswith(
        "skipped: the champion records no split rule"
    )
    assert report["decision_threshold"]["champion_source"] == "none recorded: 0.5 assumed"
    assert report["data_shift"]["summary"] == (
        "skipped: the champion records no profile of its training data"
    )


def test_the_registry_metadata_rule_stands_in_for_a_model_without_a_record() -> None:
    model = load("evaluate", "model_loading").LoadedModel(
        booster=None,  # type: ignore[arg-type]
        feature_names=FEATURES,
        source="s3://bucket/model.tar.gz",
        registry_metadata={"split_rule": "hash-v1 key=content seed=7 validation=0.2 test=0.2"},
    )
    rule = load("evaluate", "comparison").champion_split_rule(model)
    assert rule == stable_split.hash_rule(7, 0.2, 0.2, key_columns=FEATURES)


def id_keyed(frame: pd.DataFrame) -> pd.DataFrame:
    keyed = frame.copy()
    keyed.insert(0, "txn_id", [f"T-{i:06d}" for i in range(len(keyed))])
    return keyed


def test_an_id_keyed_champion_is_reproduced_from_the_test_rows_ids(tmp_path: Path) -> None:
    frame = id_keyed(small_frame(5000, seed=43))
    champion = prepare_and_train(tmp_path / "old", frame, "--id-column", "txn_id", "--seed", "3")
    challenger = prepare_and_train(tmp_path / "new", frame, "--id-column", "txn_id")
    report = evaluate_against(challenger, champion / "model", tmp_path / "out")
    test_ids = set(pd.read_csv(challenger / "test" / "test.csv", dtype=str)["txn_id"])
    old = {
        s: set(pd.read_csv(champion / s / f"{s}.csv").merge(frame)["txn_id"])
        for s in ("train", "validation")
    }
    assert report["gate"]["comparison"]["excluded"] == {
        "champion_train": len(test_ids & old["train"]),
        "champion_validation": len(test_ids & old["validation"]),
    }


def test_a_time_split_champion_excludes_the_rows_before_its_test_cut_off(tmp_path: Path) -> None:
    frame = small_frame(5000, seed=44)
    frame.insert(0, "t", np.arange(len(frame)) * 60.0)
    champion = prepare_and_train(tmp_path / "old", frame.head(4000), "--time-column", "t")
    challenger = prepare_and_train(tmp_path / "new", frame, "--time-column", "t")
    report = evaluate_against(challenger, champion / "model", tmp_path / "out")
    rule = json.loads((champion / "report" / "split_report.json").read_text())["split_rule"]
    times = pd.read_csv(challenger / "test" / "test.csv")["t"]
    assert report["gate"]["comparison"]["excluded"] == {
        "champion_train": int((times < rule["validation_from"]).sum()),
        "champion_validation": int(
            ((times >= rule["validation_from"]) & (times < rule["test_from"])).sum()
        ),
    }


def test_a_small_imbalanced_test_set_still_writes_finite_strict_json(
    versions: dict[str, Path], tmp_path: Path
) -> None:
    """One positive among 60 rows: most bootstrap samples have no AUC, DeLong has no variance;
    evaluation.json must still be strict JSON and the gate must fail clearly."""
    test = pd.read_csv(versions["v2"] / "test" / "test.csv")
    small = pd.concat([test[test[TARGET] == 1].head(1), test[test[TARGET] == 0].head(59)])
    write(small, tmp_path / "small" / "test.csv")
    argv = ["--model-dir", str(versions["v2"] / "model"), "--test-dir", str(tmp_path / "small")]
    argv += ["--output-dir", str(tmp_path / "out"), "--champion-model-dir"]
    argv += [str(versions["v2"] / "model"), "--min-positives", "1", "--bootstrap-samples", "300"]
    assert evaluate.main(argv) == 0
    text = (tmp_path / "out" / "evaluation.json").read_text()
    report = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    gate = report["gate"]
    assert gate["bootstrap_samples_without_a_value"] > 0
    assert gate["standard_error"] is None  # DeLong needs 2 of each class: undefined, not NaN
    assert gate["decision"] == "do-not-register"
    assert "is not defined: the comparison cannot decide" in gate["reason"]
    assert not gate_decision(report).passed

    def numbers(value: Any) -> list[float]:
        if isinstance(value, dict):
            return [n for item in value.values() for n in numbers(item)]
        if isinstance(value, list):
            return [n for item in value for n in numbers(item)]
        return [value] if isinstance(value, float) else []

    assert all(math.isfinite(n) for n in numbers(report))


def test_a_packaged_champion_carries_its_record_too(
    versions: dict[str, Path], tmp_path: Path
) -> None:
    archive = tmp_path / "packaged" / model_files.MODEL_ARCHIVE
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for item in (versions["v1"] / "model").iterdir():
            tar.add(item, arcname=item.name)
    report = evaluate_against(versions["v2"], archive.parent, tmp_path / "out")
    assert report["gate"]["comparison"]["excluded"]["champion_train"] > 200


def registry_pattern() -> Any:
    """CustomerMetadataProperties' value pattern from botocore's SageMaker model (a Java regex:
    the `regex` package reads its \\p{L} classes)."""
    import botocore.session
    import regex

    shape = botocore.session.get_session().get_service_model("sagemaker")
    value = shape.shape_for("CustomerMetadataMap").value.metadata
    return regex.compile(value["pattern"]), value["max"]


def test_every_registry_value_is_one_the_api_accepts(
    versions: dict[str, Path], tmp_path: Path
) -> None:
    pattern, longest = registry_pattern()
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / model_files.MODEL_FILE).write_bytes(
        (versions["v1"] / "model" / model_files.MODEL_FILE).read_bytes()
    )
    for name, champion in (("compared", versions["v1"] / "model"), ("skipped", legacy)):
        registry = evaluate_against(versions["v2"], champion, tmp_path / name)["registry_metadata"]
        for key, value in registry.items():
            assert 1 <= len(value) <= longest and pattern.fullmatch(value), (key, value)


def test_registry_text_keeps_only_what_the_api_accepts() -> None:
    registry_text = load("evaluate", "evaluation_report").registry_text
    pattern, _ = registry_pattern()
    for text in ("skipped: the champion's rule (seed=7, 20 %) differs; see it", "", "x" * 300, "é"):
        value = registry_text(text)
        assert pattern.fullmatch(value) and 1 <= len(value) <= 256, value
    assert registry_text("a (b), c") == "a b c"


def test_the_registry_split_rule_is_the_challengers_own(
    versions: dict[str, Path], tmp_path: Path
) -> None:
    report = evaluate_against(versions["v2"], versions["v1"] / "model", tmp_path / "out")
    registry = report["registry_metadata"]
    assert registry["split_rule"] == "hash-v1 key=content seed=42 validation=0.15 test=0.15"
    metadata = json.loads(
        (versions["v2"] / "model" / "metadata" / "model-metadata.json").read_text()
    )
    assert float(registry["decision_threshold"]) == metadata["decision_threshold"]
    assert all(isinstance(v, str) and len(v) <= 256 for v in registry.values())
    _ = sample_data  # the sample's schema is the tests' schema
