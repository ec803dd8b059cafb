"""Evaluate for multi-class and regression models: SageMaker's model-quality layouts checked
against scikit-learn, the gate with each metric's direction (an equal champion passes, a worse
challenger fails, at the rates the rule promises), and the champion of another type skipped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
)

from pipeline_code import gate, penguin_data
from pipeline_code.steps import load

prepare = load("prepare")
train = load("train")
evaluate = load("evaluate")
multiclass = load("evaluate", "metrics_multiclass")
regression = load("evaluate", "metrics_regression")
gate_rule = load("evaluate", "gate_rule")
problem_types = load("common", "problem_types")

FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
TARGETS = {"multiclass": "species", "regression": "body_mass_g"}
FAST = ["--num_round", "30", "--early_stopping_rounds", "5", "--max_depth", "3"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Penguins prepared and trained per type (a good model and a shallow, worse one)."""
    root = tmp_path_factory.mktemp("typed-evaluate")
    (root / "in").mkdir()
    penguin_data.generate(2400, seed=21).to_csv(root / "in" / "data.csv", index=False)
    out = {}
    for problem, target in TARGETS.items():
        base = root / problem
        schema = {"target": target, "problem_type": problem, "max_missing_fraction": 0.05,
                  "features": [{"name": n, "type": "float"} for n in FEATURES]}  # fmt: skip
        arguments = ["--input-dir", str(root / "in"), "--output-dir", str(base / "data")]
        assert prepare.main([*arguments, "--schema", json.dumps(schema)]) == 0
        for name, extra in (("good", []), ("worse", ["--num_round", "1", "--max_depth", "1"])):
            assert train.main(
                [*FAST, *extra, "--target", target, "--train", str(base / "data" / "train"),
                 "--validation", str(base / "data" / "validation"), "--model_dir",
                 str(base / name), "--checkpoint_dir", str(base / f"ck-{name}")]
            ) == 0  # fmt: skip
        out[problem] = base
    return out


def run(base: Path, out: Path, problem: str, *extra: str) -> dict[str, Any]:
    argv = ["--model-dir", str(base / "good"), "--test-dir", str(base / "data" / "test"),
            "--output-dir", str(out), "--target", TARGETS[problem], "--bootstrap-samples", "200",
            "--min-positives", "20", *extra]  # fmt: skip
    assert evaluate.main(argv) == 0
    return json.loads((out / "evaluation.json").read_text())


def test_multiclass_metrics_are_sagemakers_layout_and_agree_with_scikit_learn(
    models: dict[str, Path], tmp_path: Path
) -> None:
    report = run(models["multiclass"], tmp_path, "multiclass", "--metric", "macro_f1",
                 "--floor", "0.5")  # fmt: skip
    section = report["multiclass_classification_metrics"]
    assert report["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    for key in ("accuracy", "weighted_recall", "weighted_precision", "weighted_f0_5",
                "weighted_f1", "weighted_f2", "accuracy_best_constant_classifier"):  # fmt: skip
        assert set(section[key]) == {"value", "standard_deviation"}, key
    import xgboost as xgb

    test = pd.read_csv(models["multiclass"] / "data" / "test" / "test.csv")
    booster = xgb.Booster(model_file=str(models["multiclass"] / "good" / "xgboost-model"))
    p = booster.predict(xgb.DMatrix(test[FEATURES].to_numpy(np.float32)), validate_features=False)
    y, guess = test["species"].to_numpy(), p.argmax(axis=1)
    labels = [0, 1, 2]
    assert section["accuracy"]["value"] == pytest.approx(accuracy_score(y, guess))
    assert section["macro_f1"]["value"] == pytest.approx(
        f1_score(y, guess, average="macro", labels=labels)
    )
    assert section["weighted_f1"]["value"] == pytest.approx(f1_score(y, guess, average="weighted"))
    assert section["weighted_precision"]["value"] == pytest.approx(
        precision_score(y, guess, average="weighted", zero_division=0)
    )
    assert section["log_loss"]["value"] == pytest.approx(log_loss(y, p, labels=labels), rel=1e-4)
    per_class = recall_score(y, guess, average=None, labels=labels)
    assert list(section["recall_per_class"].values()) == pytest.approx(list(per_class))
    matrix = section["confusion_matrix"]
    assert matrix["Adelie"]["Adelie"] == int(((y == 0) & (guess == 0)).sum())
    assert sum(sum(row.values()) for row in matrix.values()) == len(test)
    assert 0 < section["accuracy"]["standard_deviation"] < 0.05
    assert report["gate"]["decision"] == "register"
    assert gate.gate_decision(report).passed


def test_regression_metrics_are_sagemakers_layout_with_plots(
    models: dict[str, Path], tmp_path: Path
) -> None:
    report = run(models["regression"], tmp_path, "regression", "--metric", "rmse",
                 "--floor", "1000")  # fmt: skip
    section = report["regression_metrics"]
    assert set(section) == {"mae", "mse", "rmse", "r2"}
    import xgboost as xgb

    test = pd.read_csv(models["regression"] / "data" / "test" / "test.csv")
    booster = xgb.Booster(model_file=str(models["regression"] / "good" / "xgboost-model"))
    p = booster.predict(xgb.DMatrix(test[FEATURES].to_numpy(np.float32)), validate_features=False)
    y = test["body_mass_g"].to_numpy(np.float64)
    assert section["mse"]["value"] == pytest.approx(mean_squared_error(y, p), rel=1e-6)
    assert section["rmse"]["value"] == pytest.approx(np.sqrt(mean_squared_error(y, p)), rel=1e-6)
    assert section["mae"]["value"] == pytest.approx(mean_absolute_error(y, p), rel=1e-6)
    assert section["r2"]["value"] == pytest.approx(r2_score(y, p), rel=1e-6)
    assert (tmp_path / "residuals.png").is_file() and (
        tmp_path / "predicted_vs_actual.png"
    ).is_file()
    gate_section = report["gate"]
    assert gate_section["direction"] == "lower is better"
    assert "<= ceiling 1000.0000" in gate_section["reason"]
    assert gate.gate_decision(report).passed


@pytest.mark.parametrize(
    ("problem", "metric", "floor"), [("multiclass", "log_loss", 5.0), ("regression", "mae", 5e3)]
)
def test_a_worse_challenger_fails_against_its_champion_in_the_metrics_direction(
    models: dict[str, Path], tmp_path: Path, problem: str, metric: str, floor: float
) -> None:
    base = models[problem]
    worse = ["--model-dir", str(base / "worse"), "--champion-model-dir", str(base / "good")]
    report = run(base, tmp_path, problem, "--metric", metric, "--floor", str(floor), *worse)
    section = report["gate"]
    assert section["comparison"]["compared"]
    # the method recorded is the one used (the paired bootstrap), not the default delong
    assert (section["method"], section["comparison"]["method"]) == (
        "bootstrap",
        "paired bootstrap",
    )
    assert section["delta"] < 0, "the challenger is worse: a negative improvement"
    assert section["decision"] == "do-not-register", section["reason"]
    assert gate.gate_decision(report).passed is False
    # and the other way round: the better challenger passes
    better = ["--champion-model-dir", str(base / "worse")]
    report = run(
        base, tmp_path / "better", problem, "--metric", metric, "--floor", str(floor), *better
    )
    assert report["gate"]["delta"] > 0 and report["gate"]["decision"] == "register"


def test_an_equal_champion_has_zero_improvement(models: dict[str, Path], tmp_path: Path) -> None:
    base = models["regression"]
    report = run(base, tmp_path, "regression", "--metric", "r2", "--floor", "0.1",
                 "--champion-model-dir", str(base / "good"))  # fmt: skip
    assert report["gate"]["delta"] == pytest.approx(0.0)
    assert report["gate"]["decision"] == "register"


def test_a_champion_of_another_problem_type_is_not_compared(
    models: dict[str, Path], tmp_path: Path
) -> None:
    report = run(models["regression"], tmp_path, "regression", "--metric", "rmse", "--floor",
                 "1000", "--champion-model-dir", str(models["multiclass"] / "good"))  # fmt: skip
    skipped = report["gate"]["comparison"]["skipped"]
    assert "the champion predicts multiclass" in skipped and "not comparable" in skipped
    assert report["gate"]["decision"] == "register"


def test_a_metric_of_another_problem_type_fails_naming_the_allowed(
    models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failure = tmp_path / "failure"
    monkeypatch.setenv("FAILURE_REASON_FILE", str(failure))
    base = models["regression"]
    argv = ["--model-dir", str(base / "good"), "--test-dir", str(base / "data" / "test"),
            "--output-dir", str(tmp_path / "out"), "--target", "body_mass_g",
            "--metric", "auc"]  # fmt: skip
    assert evaluate.main(argv) == 1
    assert "a regression model: one of rmse, mae, mse, r2" in failure.read_text()


# ---- the gate's size and power per type (statistics over many evaluations) ------------------

TRIALS = 120


def _multiclass_scores(
    rng: np.random.Generator, n: int, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), y] += 1.5
    return y, logits


def _probabilities(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _decide(problem: str, metric: str, y: np.ndarray, pair: list[np.ndarray], seed: int) -> bool:
    module = multiclass if problem == "multiclass" else regression
    classes = ("a", "b", "c")
    points = [
        module.point_metrics(y, p, classes)
        if problem == "multiclass"
        else module.point_metrics(y, p)
        for p in pair
    ]
    samples = module.bootstrap(y, pair, 200, seed)
    deltas = problem_types.improvement(metric, samples[0][metric], samples[1][metric])
    comparison = gate_rule.Comparison(
        challenger=points[0][metric], champion=points[1][metric],
        delta=problem_types.improvement(metric, points[0][metric], points[1][metric]),
        se=float(np.std(deltas, ddof=1)), method="paired bootstrap",
        counts=gate_rule.TypedCounts(y.size),
    )  # fmt: skip
    low, high = problem_types.floor_range(metric)
    floor = low if problem_types.higher_is_better(metric) else high if high < np.inf else 1e9
    floor = -1e9 if floor == -np.inf else floor
    rule = gate_rule.GateRule(metric, floor, 0.0, 1, "bootstrap")
    evidence = gate_rule.Evidence(points[0][metric], gate_rule.TypedCounts(y.size), comparison)
    return gate_rule.decide(rule, evidence).passed


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1", "log_loss"])
def test_multiclass_gate_passes_an_equal_model_and_fails_a_worse_one(metric: str) -> None:
    rng = np.random.default_rng(7)
    equal = worse = 0
    for trial in range(TRIALS):
        y, logits = _multiclass_scores(rng, 400, 0.0)
        other = logits + rng.normal(0, 1.0, logits.shape)  # as good, different errors
        same = logits + rng.normal(0, 1.0, logits.shape)
        equal += _decide(
            "multiclass", metric, y, [_probabilities(same), _probabilities(other)], trial
        )
        degraded = logits * 0.3 + rng.normal(0, 1.2, logits.shape)
        worse += _decide(
            "multiclass", metric, y, [_probabilities(degraded), _probabilities(other)], trial
        )
    # the rule fails an equal model only when the champion is better with 97.5 % confidence
    assert equal / TRIALS >= 0.94, equal
    assert worse / TRIALS <= 0.10, worse


@pytest.mark.parametrize("metric", ["rmse", "mae", "mse", "r2"])
def test_regression_gate_passes_an_equal_model_and_fails_a_worse_one(metric: str) -> None:
    rng = np.random.default_rng(11)
    equal = worse = 0
    for trial in range(TRIALS):
        x = rng.normal(0, 1, 400)
        y = 3 * x + rng.normal(0, 1, 400)
        first, second = 3 * x + rng.normal(0, 0.5, 400), 3 * x + rng.normal(0, 0.5, 400)
        equal += _decide("regression", metric, y, [first, second], trial)
        degraded = 3 * x + rng.normal(0, 1.5, 400)
        worse += _decide("regression", metric, y, [degraded, second], trial)
    assert equal / TRIALS >= 0.94, equal
    assert worse / TRIALS <= 0.10, worse


def test_a_typed_targets_balance_is_skipped_with_its_reason() -> None:
    """Not silently None: the report says the target was not compared and why."""
    data_shift = load("evaluate", "data_shift")
    reference = {"rows": 100, "features": {}}  # a typed profile: no positive count
    section = data_shift.data_shift_section(
        {"reference": reference}, None, {}, np.array([0, 1, 2, 2]), True
    )
    assert section["class_balance"]["level"] == "none"
    assert section["class_balance"]["skipped"].startswith("the champion's training profile")
    assert "class_balance" not in section["large"]


# ---- the target's shift against the champion's training target (multi-class, regression) -----

SHIFT_TRIALS = 300


def _reference(problem: str, rng: np.random.Generator) -> dict[str, Any]:
    """The training reference Prepare records for a typed target (target_kinds), 5,000 rows."""
    from types import SimpleNamespace

    target_kinds = load("prepare", "target_kinds")
    if problem == "multiclass":
        y = rng.choice(3, 5000, p=[0.44, 0.2, 0.36]).astype(np.float64)
        labels = {"classes": ["Adelie", "Chinstrap", "Gentoo"]}
    else:
        y, labels = rng.normal(4200.0, 800.0, 5000), {}
    schema = SimpleNamespace(problem_type=problem)
    return {"rows": 5000, "features": {}, "target_profile": target_kinds.target_profile(
        schema, y, labels)}  # fmt: skip


def _new_target(problem: str, rng: np.random.Generator, shifted: bool) -> np.ndarray:
    """1,500 rows of a later version: the same distribution, or one that really moved (a
    class share from 0.44 to 0.30; the mean by 0.3 standard deviations)."""
    if problem == "multiclass":
        shares = [0.30, 0.2, 0.50] if shifted else [0.44, 0.2, 0.36]
        classes = np.array(["Adelie", "Chinstrap", "Gentoo"], dtype=object)
        return classes[rng.choice(3, 1500, p=shares)]
    return rng.normal(4200.0 + (240.0 if shifted else 0.0), 800.0, 1500)


@pytest.mark.parametrize("problem", ["multiclass", "regression"])
def test_a_typed_targets_shift_is_found_when_real_and_rarely_otherwise(problem: str) -> None:
    """Size and power of the target check over many versions: an unchanged target is flagged
    (moderate or large) in at most 1 % of versions (the tests' p < 0.001 gate), a really
    shifted one flagged large in at least 95 % (measured: 0 % and 99.5 % / 98 %; smaller moves
    are found less often, e.g. a share from 0.44 to 0.34 in 35 % of versions: README)."""
    data_shift = load("evaluate", "data_shift")
    rng = np.random.default_rng(2026)
    false_alarms = found = 0
    for _ in range(SHIFT_TRIALS):
        reference = _reference(problem, rng)
        for shifted in (False, True):
            y = _new_target(problem, rng, shifted)
            section = data_shift.data_shift_section({"reference": reference}, None, {}, y, True)
            flagged = "target" in section["large"] + section["moderate"]
            if shifted:
                found += "target" in section["large"]
            else:
                false_alarms += flagged
    assert false_alarms / SHIFT_TRIALS <= 0.01, false_alarms
    assert found / SHIFT_TRIALS >= 0.95, found


def test_prepare_records_the_typed_target_and_evaluate_flags_its_shift(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """Through the step scripts: Prepare's training reference holds the class counts, and a
    later test split with most Adelie rows gone is flagged against the champion."""
    base = models["multiclass"]
    record = json.loads((base / "data" / "train" / "training_data.json").read_text())
    profile = record["reference"]["target_profile"]
    train_y = pd.read_csv(base / "data" / "train" / "train.csv")["species"]
    assert profile["kind"] == "categorical"
    assert profile["categories"]["Adelie"] == int((train_y == 0).sum())

    same = run(base, tmp_path / "same", "multiclass", "--metric", "macro_f1", "--floor", "0.5",
               "--champion-model-dir", str(base / "good"))  # fmt: skip
    assert same["data_shift"]["class_balance"]["level"] == "none"
    assert "target" not in same["data_shift"]["large"]

    shifted_dir = tmp_path / "shifted"
    shutil.copytree(base / "data" / "test", shifted_dir)
    test = pd.read_csv(shifted_dir / "test.csv")
    adelie = test.index[test["species"] == 0]
    test.drop(adelie[: int(len(adelie) * 0.8)]).to_csv(shifted_dir / "test.csv", index=False)
    argv = ["--model-dir", str(base / "good"), "--test-dir", str(shifted_dir), "--output-dir",
            str(tmp_path / "out"), "--target", "species", "--bootstrap-samples", "200",
            "--min-positives", "20", "--metric", "macro_f1", "--floor", "0.5",
            "--champion-model-dir", str(base / "good")]  # fmt: skip
    assert evaluate.main(argv) == 0
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert report["data_shift"]["class_balance"]["level"] == "large"
    assert "target" in report["data_shift"]["large"]
    assert "target" in report["registry_metadata"]["data_shift"]
