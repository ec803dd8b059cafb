"""Evaluate unpickles a model only when the deployed configuration's trainer is sklearn: a
custom or XGBoost training script (network-isolated) that writes scikit-learn metadata and a
crafted `model.joblib` must not get its code run in Evaluate (network access, processing role).

The archive is built here with a payload whose `__reduce__` creates a marker directory; the
control case (trainer sklearn) shows the payload does run when unpickled, so the refusals are
not vacuous."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path
from typing import Any

import joblib
import pytest
import sklearn

from pipeline_code.steps import load

evaluate = load("evaluate")
model_loading = load("evaluate", "model_loading")


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def _malicious_archive(root: Path, marker: Path) -> Path:
    """What a training script of another trainer could write into SM_MODEL_DIR, packed."""
    model = root / "model"
    (model / "metadata").mkdir(parents=True)
    joblib.dump(_Payload(marker), model / "model.joblib")
    (model / "metadata" / "model-metadata.json").write_text(
        json.dumps(
            {"trainer": "sklearn", "sklearn_version": sklearn.__version__, "feature_names": ["x"]}
        )
    )
    artifact = root / "artifact"
    artifact.mkdir()
    with tarfile.open(artifact / "model.tar.gz", "w:gz") as tar:
        for path in sorted(model.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(model)), recursive=False)
    return artifact


def _test_dir(root: Path) -> Path:
    test = root / "test"
    test.mkdir()
    (test / "test.csv").write_text("label,x\n0,1.0\n1,2.0\n")
    return test


@pytest.mark.parametrize("trainer", ["custom", "xgboost", None])
def test_evaluate_refuses_scikit_learn_metadata_of_another_trainer(
    trainer: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "escaped"
    artifact = _malicious_archive(tmp_path, marker)
    failure = tmp_path / "failure"
    monkeypatch.setenv("FAILURE_REASON_FILE", str(failure))
    # None: the argument omitted, as the XGBoost definition omits it (Evaluate's default).
    chosen = ["--trainer", trainer] if trainer else []
    code = evaluate.main(["--model-dir", str(artifact), "--test-dir", str(_test_dir(tmp_path)),
                          "--output-dir", str(tmp_path / "ev"), "--target", "label",
                          "--floor", "0.5", *chosen])  # fmt: skip
    assert code == 1
    assert not marker.exists()
    reason = failure.read_text().strip()
    assert f"pipeline.trainer is '{trainer or 'xgboost'}'" in reason
    assert "loaded only when the configured trainer is sklearn" in reason
    assert "\n" not in reason


@pytest.mark.parametrize("trainer", ["custom", "xgboost"])
def test_a_registry_verified_archive_of_another_trainer_is_not_unpickled(
    trainer: str, tmp_path: Path
) -> None:
    """A registered package's archive can pass the SHA-256 check (it is what the training job
    wrote): verified or not, its pickle is not loaded under another trainer."""
    marker = tmp_path / "escaped"
    artifact = _malicious_archive(tmp_path, marker)
    with pytest.raises(model_loading.EvaluationError, match="pipeline.trainer is"):
        model_loading.load_model_dir(
            artifact, tmp_path / "scratch", "champion", verified=True, trainer=trainer
        )
    assert not marker.exists()


def test_the_payload_runs_when_unpickled_under_the_sklearn_trainer(tmp_path: Path) -> None:
    """The control: under trainer sklearn the same archive is unpickled (the documented
    exception), and the payload runs; the refusals above are what stop it."""
    marker = tmp_path / "escaped"
    artifact = _malicious_archive(tmp_path, marker)
    model_loading.load_model_dir(
        artifact, tmp_path / "scratch", "champion", verified=True, trainer="sklearn"
    )
    assert marker.is_dir()


def test_verified_and_trainer_have_no_default(tmp_path: Path) -> None:
    """Fail closed: a caller must say whether the archive is verified and which trainer."""
    with pytest.raises(TypeError):
        model_loading.load_model_dir(tmp_path, tmp_path, "champion")  # type: ignore[call-arg]


def test_a_file_beside_the_booster_is_refused(tmp_path: Path) -> None:
    """The XGBoost image's algorithm mode (which serves custom models) loads one top-level file
    of the model in os.listdir order, trying pickle.load first (aws/sagemaker-xgboost-container
    algorithm_mode/serve_utils.py get_loaded_booster): a pickle beside a valid booster could be
    what the endpoint runs. Evaluate refuses such an archive before anything is loaded."""
    import xgboost as xgb

    model = tmp_path / "model"
    model.mkdir()
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix([[0.0], [1.0]], [0, 1]), 1)
    booster.save_model(model / "xgboost-model")
    joblib.dump(_Payload(tmp_path / "escaped"), model / "a-model")
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    with tarfile.open(artifact / "model.tar.gz", "w:gz") as tar:
        for path in sorted(model.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(model)), recursive=False)
    with pytest.raises(
        model_loading.EvaluationError, match=r"files beside xgboost-model .*a-model"
    ):
        model_loading.load_model_dir(
            artifact, tmp_path / "scratch", "challenger", verified=True, trainer="custom"
        )
    assert not (tmp_path / "escaped").exists()
