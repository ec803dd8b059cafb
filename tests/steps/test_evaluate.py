"""evaluate.py: metrics, paired bootstrap, a local champion, bad input. The registered champion
and models: test_evaluate_registry.py; score-one-model mode: test_evaluate_quality.py."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import (
    f1_score,
    log_loss,
    roc_auc_score,
)

from pipeline_code.steps import load
from tests.steps import FEATURES, SCHEMA_JSON, TARGET, small_frame, write

evaluate = load("evaluate")
prepare = load("prepare")
train = load("train")
comparison = load("evaluate", "comparison")
contract = load("evaluate", "evaluation_contract")
evaluation_plots = load("evaluate", "evaluation_plots")
step_failure = load("common", "failure")
model_files = load("common", "model_files")
paired_bootstrap = load("evaluate", "paired_bootstrap")
quality_metrics = load("evaluate", "quality_metrics")

SAMPLES = "200"
#: The workspace's test split has about 36 positives: the gate's default guard (100) would fire.
ENOUGH = ("--min-positives", "10")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """prepare + train on 6,000 sample rows: test/ split, model/ dir and model.tar.gz."""
    root = tmp_path_factory.mktemp("evaluate")
    write(small_frame(6000, seed=11), root / "in" / "data.csv")
    args = ["--input-dir", str(root / "in"), "--output-dir", str(root), "--schema", SCHEMA_JSON]
    assert prepare.main(args) == 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SM_CHANNEL_TRAIN", str(root / "train"))
        patch.setenv("SM_CHANNEL_VALIDATION", str(root / "validation"))
        patch.setenv("SM_MODEL_DIR", str(root / "model"))
        fast = ["--num_round", "40", "--early_stopping_rounds", "10", "--max_depth", "4"]
        assert train.main([*fast, "--checkpoint_dir", str(root / "checkpoints")]) == 0
    package(root / "model", root / "packaged" / "model.tar.gz")
    return root


def package(model_dir: Path, archive: Path) -> Path:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for item in model_dir.iterdir():
            tar.add(item, arcname=item.name)
    return archive


@pytest.fixture
def failure_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "message"
    monkeypatch.setenv(step_failure.FAILURE_FILE_ENV, str(path))
    return path


def run(
    workspace: Path, out: Path, *extra: str, model_dir: Path | None = None, **clients: Any
) -> int:
    argv = [
        "--model-dir", str(model_dir or workspace / "packaged"),
        "--test-dir", str(workspace / "test"),
        "--output-dir", str(out),
        "--bootstrap-samples", SAMPLES,
        *(ENOUGH if "--min-positives" not in extra else ()),
        *extra,
    ]  # fmt: skip
    return evaluate.main(argv, **clients)


def evaluation(out: Path) -> dict[str, Any]:
    return json.loads((out / contract.EVALUATION_FILE).read_text())


def load_test_split(workspace: Path) -> tuple[np.ndarray, np.ndarray]:
    test = pd.read_csv(workspace / "test" / "test.csv")
    return test[FEATURES].to_numpy(np.float32), test[TARGET].to_numpy()


def train_model(
    workspace: Path,
    directory: Path,
    names: list[str],
    shuffle: bool = False,
    record: bool = True,
) -> Path:
    """A booster on the train split with the given feature order (labels shuffled if asked);
    with `record` its metadata carries the train split's record (split rule, profile), as the
    train step writes it, so it counts as trained on these splits."""
    frame = pd.read_csv(workspace / "train" / "train.csv")
    labels = frame[TARGET].to_numpy()
    if shuffle:
        labels = np.random.default_rng(0).permutation(labels)
    columns = [frame[n] if n in frame else np.zeros(len(frame)) for n in names]
    data = xgb.DMatrix(np.column_stack(columns), label=labels, feature_names=names)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3}, data, 20)
    directory.mkdir(parents=True)
    booster.save_model(str(directory / "xgboost-model.json"))
    (directory / "xgboost-model.json").rename(directory / model_files.MODEL_FILE)
    if record:
        training_data = json.loads((workspace / "train" / "training_data.json").read_text())
        metadata = directory / model_files.METADATA_DIR / model_files.METADATA_FILE
        metadata.parent.mkdir()
        metadata.write_text(json.dumps({"feature_names": names, "training_data": training_data}))
    return directory


def model_metadata(workspace: Path) -> dict[str, Any]:
    path = workspace / "model" / model_files.METADATA_DIR / model_files.METADATA_FILE
    return dict(json.loads(path.read_text()))


def count_test_rows(workspace: Path) -> int:
    return len(pd.read_csv(workspace / "test" / "test.csv"))


# ---------------------------------------------------------------------------- no champion


def test_evaluation_has_the_model_quality_layout_and_a_gate(
    workspace: Path, tmp_path: Path
) -> None:
    assert run(workspace, tmp_path / "out") == 0
    report = evaluation(tmp_path / "out")
    metrics = report[contract.METRICS_KEY]
    assert set(metrics) >= {"accuracy", "precision", "recall", "f1", "auc", "log_loss"}
    for name in quality_metrics.SCALAR_METRICS:
        assert set(metrics[name]) == {"value", "standard_deviation"}
        assert metrics[name]["standard_deviation"] > 0
    roc = metrics["receiver_operating_characteristic_curve"]
    assert len(roc["false_positive_rates"]) == len(roc["true_positive_rates"]) <= 201
    matrix = metrics["confusion_matrix"]
    rows = count_test_rows(workspace)
    assert sum(matrix[a][p] for a in "01" for p in "01") == report["gate"]["test_rows"] == rows
    positives = int(load_test_split(workspace)[1].sum())
    gate = report[contract.GATE_KEY]
    assert gate == {
        "metric": "auc",
        "method": "delong",
        "floor": 0.8,
        "tolerance": 0.01,
        "min_positives": 10,
        "challenger": metrics["auc"]["value"],
        "champion": None,
        "has_champion": False,
        "champion_model_package_arn": None,
        "test_rows": rows,
        "test_positives": positives,
        "test_negatives": rows - positives,
        "comparison": {
            "compared": False,
            "challenger": None,
            "rows": None,
            "positives": None,
            "negatives": None,
            "method": None,
            "excluded": {},
            "reason": "no champion",
            "skipped": None,
        },
        "delta": None,
        "standard_error": None,
        "lower_97_5": None,
        "upper_97_5": None,
        "margin": None,
        "detectable_drop_80": None,
        "decision": "register",
        "reason": f"register: challenger auc {metrics['auc']['value']:.4f} >= floor 0.8000; no "
        "champion (first model): only the floor applies",
    }
    assert report[contract.REGISTRY_KEY]["data_shift"] == "skipped: no champion to compare with"
    assert report[contract.REGISTRY_KEY]["champion_comparison"] == "no champion"
    assert (tmp_path / "out" / evaluation_plots.ROC_PLOT).stat().st_size > 1000
    assert (tmp_path / "out" / evaluation_plots.CONFUSION_MATRIX_PLOT).stat().st_size > 1000
    assert (tmp_path / "out" / evaluation_plots.RELIABILITY_PLOT).stat().st_size > 1000


def test_metrics_agree_with_scikit_learn(workspace: Path, tmp_path: Path) -> None:
    assert run(workspace, tmp_path / "out") == 0
    metrics = evaluation(tmp_path / "out")[contract.METRICS_KEY]
    x, y = load_test_split(workspace)
    booster = xgb.Booster(model_file=str(workspace / "model" / train.MODEL_FILE))
    p = booster.predict(xgb.DMatrix(x, feature_names=FEATURES))
    threshold = model_metadata(workspace)["decision_threshold"]
    assert 0.0 < threshold < 0.5  # chosen on validation (max F1), not 0.5
    assert metrics["auc"]["value"] == pytest.approx(roc_auc_score(y, p))
    assert metrics["f1"]["value"] == pytest.approx(f1_score(y, p >= threshold))
    assert metrics["log_loss"]["value"] == pytest.approx(log_loss(y, p), rel=1e-6)
    assert metrics["confusion_matrix"]["1"]["1"] == int(((p >= threshold) & (y == 1)).sum())


def test_an_unpacked_model_directory_works(workspace: Path, tmp_path: Path) -> None:
    assert run(workspace, tmp_path / "a") == 0
    assert run(workspace, tmp_path / "b", model_dir=workspace / "model") == 0
    assert evaluation(tmp_path / "a")["gate"] == evaluation(tmp_path / "b")["gate"]


@pytest.mark.parametrize("metric", ["f1", "recall"])
def test_the_gate_metric_is_selectable(workspace: Path, tmp_path: Path, metric: str) -> None:
    assert run(workspace, tmp_path / "out", "--metric", metric) == 0
    report = evaluation(tmp_path / "out")
    assert report["gate"]["metric"] == metric
    assert report["gate"]["challenger"] == report[contract.METRICS_KEY][metric]["value"]


def test_plots_are_skipped_without_matplotlib(
    workspace: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert run(workspace, tmp_path / "out") == 0
    assert (tmp_path / "out" / contract.EVALUATION_FILE).exists()
    assert not (tmp_path / "out" / evaluation_plots.ROC_PLOT).exists()
    assert "matplotlib is not installed" in caplog.text


# ------------------------------------------------------------------------ local champion


def test_the_same_model_as_champion_has_zero_delta(workspace: Path, tmp_path: Path) -> None:
    champion = ["--champion-model-dir", str(workspace / "model")]
    assert run(workspace, tmp_path / "out", *champion) == 0
    gate = evaluation(tmp_path / "out")["gate"]
    assert gate["has_champion"] is True
    assert gate["champion"] == gate["challenger"]
    assert (gate["delta"], gate["standard_error"]) == (0.0, 0.0)
    assert (gate["lower_97_5"], gate["upper_97_5"]) == (0.0, 0.0)
    assert gate["comparison"]["excluded"] == {"champion_train": 0, "champion_validation": 0}
    assert gate["decision"] == "register"


def test_a_worse_champion_gives_a_positive_paired_interval(workspace: Path, tmp_path: Path) -> None:
    weak = train_model(workspace, tmp_path / "weak", FEATURES, shuffle=True)
    assert run(workspace, tmp_path / "out", "--champion-model-dir", str(weak)) == 0
    report = evaluation(tmp_path / "out")
    gate = report["gate"]
    assert gate["champion"] < 0.65 < gate["challenger"]
    assert gate["delta"] == pytest.approx(gate["challenger"] - gate["champion"])
    assert 0.0 < gate["lower_97_5"] < gate["delta"] < gate["upper_97_5"]
    low, high = gate["bootstrap_interval_95"]
    assert 0.0 < low < gate["delta"] < high
    assert report[contract.CHAMPION_METRICS_KEY]["auc"]["value"] == gate["champion"]


def test_the_paired_interval_is_reproducible_for_a_seed(workspace: Path, tmp_path: Path) -> None:
    weak = ["--champion-model-dir", str(train_model(workspace, tmp_path / "w", FEATURES, True))]
    assert run(workspace, tmp_path / "a", *weak, "--seed", "5") == 0
    assert run(workspace, tmp_path / "b", *weak, "--seed", "5") == 0
    assert run(workspace, tmp_path / "c", *weak, "--seed", "6") == 0
    ci = [evaluation(tmp_path / d)["gate"]["bootstrap_interval_95"] for d in "abc"]
    assert ci[0] == ci[1] != ci[2]
    lower = {evaluation(tmp_path / d)["gate"]["lower_97_5"] for d in "abc"}
    assert len(lower) == 1  # DeLong's bound does not depend on the bootstrap seed


def test_a_champion_with_another_feature_order_is_aligned_by_name(
    workspace: Path, tmp_path: Path
) -> None:
    reordered = list(reversed(FEATURES))
    champion = train_model(workspace, tmp_path / "reordered", reordered)
    assert run(workspace, tmp_path / "out", "--champion-model-dir", str(champion)) == 0
    test = pd.read_csv(workspace / "test" / "test.csv")
    booster = xgb.Booster(model_file=str(champion / model_files.MODEL_FILE))
    expected = roc_auc_score(
        test[TARGET], booster.predict(xgb.DMatrix(test[reordered], feature_names=reordered))
    )
    assert evaluation(tmp_path / "out")["gate"]["champion"] == pytest.approx(expected)


# ----------------------------------------------------------------------------- bad input


def test_missing_model(workspace: Path, tmp_path: Path, failure_file: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert run(workspace, tmp_path / "out", model_dir=tmp_path / "empty") == 1
    assert "challenger model: no xgboost-model" in failure_file.read_text()
    assert not (tmp_path / "out" / contract.EVALUATION_FILE).exists()


def test_a_corrupt_model_archive(workspace: Path, tmp_path: Path, failure_file: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.tar.gz").write_bytes(b"not a tarball")
    assert run(workspace, tmp_path / "out", model_dir=tmp_path / "bad") == 1
    assert "not a readable model archive" in failure_file.read_text()


def test_an_xgboost_error_is_reported_by_its_first_line_only(
    workspace: Path, tmp_path: Path, failure_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the native backtrace XGBoost appends, which would fill the 1 KB ExitMessage."""

    def fail(*args: object) -> None:
        raise xgb.core.XGBoostError(
            "[07:02:34] /workspace/src/data/data.cc:1173: Check failed: valid\n"
            "Stack trace:\n  [bt] (0) /opt/xgboost/lib/libxgboost.so(+0x1086be)\n"
        )

    monkeypatch.setattr(load("evaluate", "shard_predictions"), "predict", fail)
    assert run(workspace, tmp_path / "out") == 1
    assert failure_file.read_text() == "XGBoost error: Check failed: valid"
    assert not (tmp_path / "out" / contract.EVALUATION_FILE).exists()


def test_an_archive_escaping_its_folder_is_refused(
    workspace: Path, tmp_path: Path, failure_file: Path
) -> None:
    (tmp_path / "evil").mkdir()
    (tmp_path / "payload").write_text("x")
    with tarfile.open(tmp_path / "evil" / "model.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "payload", arcname="../../escaped")
    assert run(workspace, tmp_path / "out", model_dir=tmp_path / "evil") == 1
    assert "refusing to extract '../../escaped'" in failure_file.read_text()


def test_a_test_set_with_one_class(workspace: Path, tmp_path: Path, failure_file: Path) -> None:
    test = pd.read_csv(workspace / "test" / "test.csv")
    write(test[test[TARGET] == 0], tmp_path / "test" / "test.csv")
    argv = ["--model-dir", str(workspace / "model"), "--test-dir", str(tmp_path / "test")]
    assert evaluate.main([*argv, "--output-dir", str(tmp_path / "out")]) == 1
    reason = failure_file.read_text()
    assert "single class" in reason and "AUC is undefined" in reason


def test_a_test_set_without_the_target(workspace: Path, tmp_path: Path, failure_file: Path) -> None:
    assert run(workspace, tmp_path / "out", "--target", "label") == 1
    assert "no target column 'label'" in failure_file.read_text()


def test_an_unknown_gate_metric(workspace: Path, tmp_path: Path, failure_file: Path) -> None:
    assert run(workspace, tmp_path / "out", "--metric", "log_loss") == 1
    assert "--metric 'log_loss'" in failure_file.read_text()


# ----------------------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("decimals", [None, 2, 1])
def test_bootstrap_metrics_equal_scikit_learn_on_the_resampled_rows(decimals: int | None) -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(3000) < 0.08).astype(np.int8)
    p = np.clip(rng.random(3000) * 0.6 + y * 0.25, 0.0, 1.0)
    if decimals is not None:
        p = np.round(p, decimals)  # many tied scores
    weights = next(paired_bootstrap.bootstrap_weights(y.size, 3, seed=9))
    scores = paired_bootstrap.BootstrapScorer(y, p).score(weights)
    for sample in range(3):
        rows = np.repeat(np.arange(y.size), weights[sample].astype(int))
        assert scores["auc"][sample] == pytest.approx(roc_auc_score(y[rows], p[rows]), abs=1e-12)
        assert scores["f1"][sample] == pytest.approx(f1_score(y[rows], p[rows] >= 0.5))
        assert scores["log_loss"][sample] == pytest.approx(log_loss(y[rows], p[rows]), rel=1e-5)


def test_bootstrap_weights_are_resamples_of_every_row() -> None:
    chunks = list(paired_bootstrap.bootstrap_weights(1000, 9000, seed=1))
    weights = np.concatenate(chunks)
    assert weights.shape == (9000, 1000)
    assert len(chunks) > 1  # drawn in bounded chunks
    assert (weights.sum(axis=1) == 1000).all()
    # Each row is drawn Binomial(n, 1/n) times: mean 1, about 36.8 % of samples leave it out.
    assert weights.mean() == pytest.approx(1.0)
    assert (weights == 0).mean() == pytest.approx(np.exp(-1), abs=0.01)
