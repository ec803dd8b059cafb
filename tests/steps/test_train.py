"""train.py: a model the serving container loads, hyperparameters, checkpoints, bad input."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from pipeline_code.steps import load
from tests.steps import FEATURES, SCHEMA_JSON, TARGET, small_frame, write

prepare = load("prepare")
train = load("train")
checkpointing = load("train", "checkpoints")
step_failure = load("common", "failure")

FAST = ["--num_round", "30", "--early_stopping_rounds", "5", "--max_depth", "3"]


@pytest.fixture(scope="module")
def channels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """prepare.py's output for 3,000 sample rows: train/ and validation/ channels."""
    root = tmp_path_factory.mktemp("channels")
    write(small_frame(3000), root / "in" / "data.csv")
    code = prepare.main(
        ["--input-dir", str(root / "in"), "--output-dir", str(root), "--schema", SCHEMA_JSON]
    )
    assert code == 0
    return root


@pytest.fixture
def sm_env(channels: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The script-mode environment of a training job; returns the model directory."""
    for name in list(os.environ):
        if name.startswith("SM_HP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(channels / "train"))
    monkeypatch.setenv("SM_CHANNEL_VALIDATION", str(channels / "validation"))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv(step_failure.FAILURE_FILE_ENV, str(tmp_path / "output" / "failure"))
    return tmp_path / "model"


def run(tmp_path: Path, *extra: str) -> int:
    return train.main([*FAST, "--checkpoint_dir", str(tmp_path / "checkpoints"), *extra])


def load_like_the_serving_container(model_dir: Path) -> list[xgb.Booster]:
    """What sagemaker-xgboost-container's get_loaded_booster does: every regular file at the
    top of the model directory is a model; each is tried as a pickle, then with load_model."""
    boosters = []
    for path in sorted(p for p in model_dir.iterdir() if p.is_file()):
        try:
            with path.open("rb") as handle:
                boosters.append(pickle.load(handle))
        except Exception:
            booster = xgb.Booster()
            booster.load_model(str(path))
            boosters.append(booster)
    return boosters


def test_model_loads_in_the_serving_container_and_scores_headerless_csv(
    sm_env: Path, tmp_path: Path, channels: Path
) -> None:
    assert run(tmp_path) == 0
    boosters = load_like_the_serving_container(sm_env)
    assert len(boosters) == 1, "only xgboost-model may sit at the top of the model directory"
    test = pd.read_csv(channels / "test" / "test.csv")
    # The serving contract: CSV rows of the features in schema order, no header.
    matrix = test[FEATURES].to_numpy(dtype=np.float32)
    scores = boosters[0].predict(xgb.DMatrix(matrix), validate_features=False)
    assert scores.shape == (len(test),)
    assert ((scores > 0) & (scores < 1)).all()
    assert scores[test[TARGET] == 1].mean() > scores[test[TARGET] == 0].mean()


def test_metadata_records_feature_order_version_and_best_iteration(
    sm_env: Path, tmp_path: Path
) -> None:
    assert run(tmp_path) == 0
    metadata = json.loads((sm_env / train.METADATA_DIR / train.METADATA_FILE).read_text())
    booster = xgb.Booster(model_file=str(sm_env / train.MODEL_FILE))
    assert metadata["feature_names"] == FEATURES == booster.feature_names
    assert metadata["xgboost_version"] == xgb.__version__
    # The saved model holds exactly the trees up to the best iteration.
    assert booster.num_boosted_rounds() == metadata["best_iteration"] + 1
    assert metadata["rounds_trained"] >= metadata["best_iteration"] + 1
    assert 0.5 < metadata["best_validation_auc"] <= 1.0
    assert 0.0 < metadata["best_validation_logloss"] < 0.3


def read_channel(channels: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_csv(channels / name / f"{name}.csv")
    return frame[FEATURES].to_numpy(np.float32), frame[TARGET].to_numpy()


def test_by_default_no_class_weight_and_calibrated_probabilities(
    sm_env: Path, tmp_path: Path, channels: Path
) -> None:
    assert train.main(["--checkpoint_dir", str(tmp_path / "checkpoints")]) == 0
    metadata = json.loads((sm_env / train.METADATA_DIR / train.METADATA_FILE).read_text())
    assert (metadata["scale_pos_weight"], metadata["calibration"]) == (1.0, None)
    booster = xgb.Booster(model_file=str(sm_env / train.MODEL_FILE))
    x, y = read_channel(channels, "validation")
    p = booster.predict(xgb.DMatrix(x, feature_names=FEATURES))
    # Early stopping on log loss: the trees kept minimise it (recomputed independently).
    assert metadata["best_validation_logloss"] == pytest.approx(log_loss(y, p), rel=1e-5)
    assert metadata["best_validation_auc"] == pytest.approx(roc_auc_score(y, p))
    assert p.mean() == pytest.approx(y.mean(), abs=0.015)
    # the threshold metrics a tuning job may rank trials by, as the gate computes them
    predicted = (p >= metadata["decision_threshold"]).astype(int)
    assert metadata["best_validation_accuracy"] == pytest.approx(accuracy_score(y, predicted))
    for name, score in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
        expected = score(y, predicted, zero_division=0)
        assert metadata[f"best_validation_{name}"] == pytest.approx(expected), name


def test_the_threshold_maximises_validation_f1(
    sm_env: Path, tmp_path: Path, channels: Path
) -> None:
    assert run(tmp_path) == 0
    metadata = json.loads((sm_env / train.METADATA_DIR / train.METADATA_FILE).read_text())
    booster = xgb.Booster(model_file=str(sm_env / train.MODEL_FILE))
    x, y = read_channel(channels, "validation")
    p = booster.predict(xgb.DMatrix(x, feature_names=FEATURES))
    best = max(f1_score(y, p >= t) for t in np.unique(p))
    assert metadata["decision_threshold_rule"] == "max-f1"
    assert f1_score(y, p >= metadata["decision_threshold"]) == pytest.approx(best)
    assert metadata["training_data"]["split_rule"]["method"] == "hash-v1"


@pytest.mark.parametrize(
    ("setting", "expected"), [("0.3", 0.3), ("max-accuracy", None)], ids=["fixed", "accuracy"]
)
def test_the_threshold_can_be_fixed_or_maximise_accuracy(
    sm_env: Path, tmp_path: Path, channels: Path, setting: str, expected: float | None
) -> None:
    assert run(tmp_path, "--decision_threshold", setting) == 0
    metadata = json.loads((sm_env / train.METADATA_DIR / train.METADATA_FILE).read_text())
    if expected is not None:
        assert metadata["decision_threshold"] == expected
        return
    booster = xgb.Booster(model_file=str(sm_env / train.MODEL_FILE))
    x, y = read_channel(channels, "validation")
    p = booster.predict(xgb.DMatrix(x, feature_names=FEATURES))
    best = max(accuracy_score(y, p >= t) for t in np.unique(p))
    assert accuracy_score(y, p >= metadata["decision_threshold"]) == pytest.approx(best)


def test_a_class_weight_is_undone_by_platt_scaling_baked_into_the_booster(
    sm_env: Path, tmp_path: Path, channels: Path
) -> None:
    assert run(tmp_path, "--scale_pos_weight", "balanced") == 0
    metadata = json.loads((sm_env / train.METADATA_DIR / train.METADATA_FILE).read_text())
    x_train, y_train = read_channel(channels, "train")
    assert metadata["scale_pos_weight"] == pytest.approx((y_train == 0).sum() / y_train.sum())
    calibration = metadata["calibration"]
    assert calibration["method"] == "platt" and calibration["a"] > 0
    x, y = read_channel(channels, "validation")
    p = xgb.Booster(model_file=str(sm_env / train.MODEL_FILE)).predict(
        xgb.DMatrix(x, feature_names=FEATURES)
    )
    assert p.mean() == pytest.approx(y.mean(), abs=0.01)  # the weight alone gives ~0.3


def test_platt_scaling_matches_an_unregularised_logistic_fit_and_bakes_exactly() -> None:
    calibration = load("train", "calibration")
    frame = small_frame(4000, seed=8)
    x, y = frame[FEATURES].to_numpy(np.float32), frame[TARGET].to_numpy()
    weighted = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "scale_pos_weight": 20, "seed": 1},
        xgb.DMatrix(x[:3000], label=y[:3000]),
        30,
    )
    data = xgb.DMatrix(x[3000:])
    margin = weighted.predict(data, output_margin=True).astype(np.float64)
    a, b = calibration.fit_platt(y[3000:], margin)
    reference = LogisticRegression(penalty=None, tol=1e-12, max_iter=1000)
    reference.fit(margin[:, None], y[3000:])
    assert (a, b) == pytest.approx((reference.coef_[0, 0], reference.intercept_[0]), rel=1e-5)
    baked = calibration.bake_platt(weighted, a, b)
    expected = 1 / (1 + np.exp(-(a * margin + b)))
    np.testing.assert_allclose(baked.predict(data), expected, atol=1e-6)
    again = xgb.Booster()
    again.load_model(bytearray(baked.save_raw(raw_format="ubj")))
    np.testing.assert_array_equal(again.predict(data), baked.predict(data))


@pytest.mark.parametrize(
    ("argument", "fragment"),
    [
        (["--scale_pos_weight", "-2"], "scale_pos_weight = '-2': a number above 0 or 'balanced'"),
        (["--decision_threshold", "1.5"], "decision_threshold = '1.5': max-f1, max-accuracy"),
    ],
)
def test_bad_calibration_settings_fail_clearly(
    sm_env: Path, tmp_path: Path, argument: list[str], fragment: str
) -> None:
    assert run(tmp_path, *argument) == 1
    assert fragment in failure(tmp_path)


def test_hyperparameters_fall_back_to_sm_hp_variables(
    sm_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SM_HP_MAX_DEPTH", "2")
    monkeypatch.setenv("SM_HP_ETA", "0.3")
    assert train.main(["--num_round", "5", "--checkpoint_dir", str(tmp_path / "c")]) == 0
    metadata = json.loads((sm_env / train.METADATA_DIR / train.METADATA_FILE).read_text())
    assert metadata["hyperparameters"]["max_depth"] == 2
    assert metadata["hyperparameters"]["eta"] == pytest.approx(0.3)
    booster = xgb.Booster(model_file=str(sm_env / train.MODEL_FILE))
    assert max(_depth(json.loads(tree)) for tree in booster.get_dump(dump_format="json")) <= 2


def _depth(node: dict) -> int:
    children = node.get("children", [])
    return 1 + max(_depth(child) for child in children) if children else 0


def test_command_line_wins_over_sm_hp(
    sm_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SM_HP_MAX_DEPTH", "2")
    assert run(tmp_path, "--max_depth", "4") == 0
    metadata = json.loads((sm_env / train.METADATA_DIR / train.METADATA_FILE).read_text())
    assert metadata["hyperparameters"]["max_depth"] == 4


def test_checkpoints_are_kept_and_training_resumes_from_the_latest(
    sm_env: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoints = tmp_path / "checkpoints"
    common = ["--early_stopping_rounds", "100", "--checkpoint_every", "5"]
    common += ["--checkpoint_dir", str(checkpoints)]
    assert train.main(["--num_round", "15", *common]) == 0
    assert [p.name for p in checkpointing.list_checkpoints(checkpoints)] == [
        "xgboost-checkpoint.000010",
        "xgboost-checkpoint.000015",
    ]
    interrupted = xgb.Booster()
    interrupted.load_model(bytearray((checkpoints / "xgboost-checkpoint.000015").read_bytes()))

    # A restarted job (spot interruption) continues where the last checkpoint left off.
    assert train.main(["--num_round", "25", *common]) == 0
    assert "resuming from the checkpoint after round 15" in caplog.text
    metadata = json.loads((sm_env / train.METADATA_DIR / train.METADATA_FILE).read_text())
    assert (metadata["resumed_from_round"], metadata["rounds_trained"]) == (15, 25)
    latest = xgb.Booster()
    latest.load_model(bytearray(checkpointing.list_checkpoints(checkpoints)[-1].read_bytes()))
    assert latest.num_boosted_rounds() == 25
    assert latest.get_dump()[:15] == interrupted.get_dump()


def test_resume_keeps_the_best_score_seen_before_the_interruption() -> None:
    rng = np.random.default_rng(0)
    data = xgb.DMatrix(rng.random((200, 3)), label=rng.integers(0, 2, 200))
    booster = xgb.train({"objective": "binary:logistic"}, data, num_boost_round=6)
    booster.set_attr(best_score="0.93", best_iteration="3")  # as checkpointed after round 6

    stopper = train.ResumableEarlyStopping(
        rounds=5, metric_name="auc", data_name="validation", maximize=True
    )  # the callback is metric-agnostic: AUC (maximised) shows it as well as log loss
    stopper.before_training(booster)
    assert stopper.current_rounds == 2  # rounds 4 and 5 did not improve
    # A worse score after the resume is not a new best (the stock callback would take it).
    assert not stopper.after_iteration(booster, 0, {"validation": {"auc": [0.92]}})
    assert (booster.attr("best_iteration"), stopper.current_rounds) == ("3", 3)
    assert not stopper.after_iteration(booster, 1, {"validation": {"auc": [0.92, 0.95]}})
    assert (booster.attr("best_iteration"), stopper.current_rounds) == ("7", 0)


# ----------------------------------------------------------------------------- bad input


def failure(tmp_path: Path) -> str:
    return (tmp_path / "output" / "failure").read_text()


def test_missing_channel(sm_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SM_CHANNEL_VALIDATION")
    assert run(tmp_path) == 1
    assert "channel 'validation' is missing: SM_CHANNEL_VALIDATION is not set" in failure(tmp_path)
    assert not (sm_env / train.MODEL_FILE).exists()


def test_channel_without_csv(sm_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(tmp_path / "empty"))
    assert run(tmp_path) == 1
    assert "channel 'train' has no CSV files" in failure(tmp_path)


def test_channel_without_the_target(sm_env: Path, tmp_path: Path) -> None:
    assert run(tmp_path, "--target", "label") == 1
    assert "no target column 'label'" in failure(tmp_path)


def test_single_class_training_data(
    sm_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = small_frame(300)
    frame[TARGET] = 0
    write(frame, tmp_path / "one-class" / "train.csv")
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(tmp_path / "one-class"))
    assert run(tmp_path) == 1
    assert "single class" in failure(tmp_path)


@pytest.mark.parametrize(
    ("argument", "fragment"),
    [
        (["--eta", "0"], "hyperparameter eta = 0.0"),
        (["--num_round", "0"], "hyperparameter num_round = 0"),
        (["--max_depth", "deep"], "invalid int value: 'deep'"),
    ],
)
def test_bad_hyperparameters(
    sm_env: Path, tmp_path: Path, argument: list[str], fragment: str
) -> None:
    assert run(tmp_path, *argument) == 1
    assert fragment in failure(tmp_path)


def test_bad_sm_hp_variable(sm_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_HP_SUBSAMPLE", "most")
    assert train.main([]) == 1
    assert "most" in failure(tmp_path)


def test_an_unwritable_checkpoint_dir_does_not_stop_training(
    sm_env: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("not a directory")
    assert train.main([*FAST, "--checkpoint_dir", str(tmp_path / "file" / "checkpoints")]) == 0
    assert "cannot write checkpoints" in caplog.text
    assert (sm_env / train.MODEL_FILE).exists()


NATIVE_ERROR = (
    "[07:02:34] /workspace/src/learner.cc:1001: Check failed: valid: something native\n"
    "Stack trace:\n  [bt] (0) /opt/xgboost/lib/libxgboost.so(+0x1086be) [0x7f5f129086be]\n"
)


def test_an_xgboost_error_is_reported_by_its_first_line_only(
    sm_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """XGBoostError is a ValueError: it must not reach the reason with its native backtrace."""

    def fail(*args: object, **kwargs: object) -> None:
        raise xgb.core.XGBoostError(NATIVE_ERROR)

    monkeypatch.setattr(train.xgb, "train", fail)
    assert run(tmp_path) == 1
    assert failure(tmp_path) == "XGBoost error: Check failed: valid: something native"
    assert not (sm_env / train.MODEL_FILE).exists()


def test_large_int_features_train(
    sm_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prepare.py writes ints up to 2**53 - 1; float32 rounds those above 2**24, as XGBoost
    itself does, instead of refusing them."""
    for split in ("train", "validation"):
        frame = pd.read_csv(Path(os.environ[f"SM_CHANNEL_{split.upper()}"]) / f"{split}.csv")
        frame["txn_count_24h"] += 2**53 - 1 - int(frame["txn_count_24h"].max())
        write(frame, tmp_path / split / f"{split}.csv")
        monkeypatch.setenv(f"SM_CHANNEL_{split.upper()}", str(tmp_path / split))
    assert run(tmp_path) == 0
    assert (sm_env / train.MODEL_FILE).exists()


# --- GPU instances: the device comes from the training toolkit's SM_NUM_GPUS, so a GPU
# instance type (configured, or a run's TrainingInstanceType) trains on its GPUs, and the model
# still loads and predicts on the CPUs of endpoints and Evaluate.


@pytest.mark.parametrize(
    ("environ", "device"),
    [
        ({}, "cpu"),
        ({"SM_NUM_GPUS": "0"}, "cpu"),
        ({"SM_NUM_GPUS": "1"}, "cuda"),
        ({"SM_NUM_GPUS": "8"}, "cuda"),
    ],
)
def test_the_device_follows_the_gpus_sagemaker_reports(
    environ: dict[str, str], device: str
) -> None:
    assert train.training_device(environ) == device


def test_a_garbled_gpu_count_is_a_clear_failure() -> None:
    with pytest.raises(train.TrainingError, match=r"SM_NUM_GPUS = 'two' is not a number of GPUs"):
        train.training_device({"SM_NUM_GPUS": "two"})


def test_on_a_gpu_instance_xgboost_is_asked_for_cuda(
    sm_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No GPU here: the booster parameters xgboost.train receives are what is checked."""
    seen: list[dict[str, Any]] = []

    def no_gpu_here(params: dict[str, Any], *args: Any, **kwargs: Any) -> xgb.Booster:
        seen.append(params)
        raise train.TrainingError("stopped before training: no GPU on this machine")

    monkeypatch.setenv("SM_NUM_GPUS", "1")
    monkeypatch.setattr(train.xgb, "train", no_gpu_here)
    assert run(tmp_path) != 0
    assert seen and seen[0]["device"] == "cuda" and seen[0]["tree_method"] == "hist"


def test_the_model_records_the_device_it_trained_on(sm_env: Path, tmp_path: Path) -> None:
    # The model file holds trees and objective only, no device (XGBoost keeps that in the
    # configuration): a GPU-trained model loads and predicts on CPUs like any other.
    assert run(tmp_path) == 0
    metadata = json.loads((sm_env / train.METADATA_DIR / train.METADATA_FILE).read_text())
    assert metadata["training_device"] == "cpu"
