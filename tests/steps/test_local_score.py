"""`make local-run SCORE=file`: a file of bundled sample data scored with a model the real
prepare and train steps trained, into the layout batch serving writes
(predictions/<dataset>/<version>/<model version>/<run id>/ + _SUCCESS), each output line the
input row with its probability appended, equal to what the serving container's booster
predicts; bad data fails with the Check step's reason and writes no _SUCCESS."""

from __future__ import annotations

import csv
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb

from pipeline_code import local_score
from pipeline_code.steps import load
from tests.steps import FEATURES, SCHEMA, SCHEMA_JSON, TARGET, small_frame, write

prepare = load("prepare")
train = load("train")
model_files = load("common", "model_files")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model as `make local-run RUNNER=scripts` trains it (prepare -> train, small)."""
    root = tmp_path_factory.mktemp("local-run")
    write(small_frame(3000), root / "in" / "data.csv")
    assert (
        prepare.main(
            ["--input-dir", str(root / "in"), "--output-dir", str(root), "--schema", SCHEMA_JSON]
        )
        == 0
    )
    env = {
        "SM_CHANNEL_TRAIN": str(root / "train"),
        "SM_CHANNEL_VALIDATION": str(root / "validation"),
        "SM_MODEL_DIR": str(root / "model"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        args = ["--num_round", "20", "--max_depth", "3", "--checkpoint_dir", str(root / "ckpt")]
        assert train.main(args) == 0
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return root / "model"


def scoring_file(tmp_path: Path, rows: int = 200) -> tuple[Path, list[str]]:
    frame = small_frame(rows, seed=11).drop(columns=[TARGET])
    frame.insert(0, "id", [f"row-{i}" for i in range(rows)])
    return write(frame, tmp_path / "new transactions.csv"), list(frame["id"])


def run(file: Path, model_dir: Path, out: Path, **kw: object) -> Path:
    return local_score.score_file(
        file,
        model_dir,
        out,
        schema=SCHEMA,
        id_column="id",
        dataset=str(kw.get("dataset", "transactions")),
        version=str(kw.get("version", "2026-12-07")),
        model_version=int(kw.get("model_version", 3)),  # type: ignore[call-overload]
        run_id=str(kw.get("run_id", "local-1")),
    )


def test_a_file_is_scored_into_the_batch_layout(tmp_path: Path, model_dir: Path) -> None:
    file, ids = scoring_file(tmp_path)
    target = run(file, model_dir, tmp_path / "out")
    assert target == (
        tmp_path / "out" / "predictions" / "transactions" / "2026-12-07" / "3" / "local-1"
    )
    assert sorted(p.name for p in target.iterdir()) == ["_SUCCESS", "part-00000.csv.out"]
    with (target / "part-00000.csv.out").open(newline="") as handle:
        lines = list(csv.reader(handle))
    assert [line[0] for line in lines] == ids  # every row keeps its id
    assert all(len(line) == 1 + len(FEATURES) + 1 for line in lines)

    # the probability is what the serving container's booster gives for that row's features
    booster = xgb.Booster()
    booster.load_model(model_dir / model_files.MODEL_FILE)
    features = np.array(
        [[float(v) if v else np.nan for v in line[1:-1]] for line in lines],
        dtype=np.float32,
    )
    expected = booster.predict(xgb.DMatrix(features), validate_features=False)
    written = np.array([float(line[-1]) for line in lines])
    assert written == pytest.approx(expected, rel=1e-6)
    assert ((written >= 0) & (written <= 1)).all()


def test_bad_data_fails_with_its_reason_and_publishes_nothing(
    tmp_path: Path, model_dir: Path
) -> None:
    frame = small_frame(50, seed=12).drop(columns=[TARGET, "amount"])
    frame.insert(0, "id", range(50))
    file = write(frame, tmp_path / "bad.csv")
    with pytest.raises(local_score.LocalScoreError, match=r"has no column\(s\) \['amount'\]"):
        run(file, model_dir, tmp_path / "out")
    assert not list((tmp_path / "out").rglob("_SUCCESS"))


def test_without_a_trained_model_it_says_how_to_get_one(tmp_path: Path) -> None:
    file, _ = scoring_file(tmp_path, 5)
    with pytest.raises(local_score.LocalScoreError, match="make local-run RUNNER=scripts"):
        run(file, tmp_path / "no-model", tmp_path / "out")


def test_the_command_line_scores_with_cdk_json_schema_and_id_column(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file, _ = scoring_file(tmp_path, 20)
    argv = ["--file", str(file), "--model-dir", str(model_dir), "--out", str(tmp_path / "o")]
    assert local_score.main(argv) == 0
    assert local_score.main(argv) == 0  # a second run of the same file and model
    runs = sorted((tmp_path / "o" / "predictions" / "new transactions" / "local" / "1").iterdir())
    assert len(runs) == 2  # each run in a prefix of its own, each with its _SUCCESS
    assert all(run.name.startswith("local-") and (run / "_SUCCESS").exists() for run in runs)
    assert "_SUCCESS written" in capsys.readouterr().out


def train_penguins(tmp_path: Path, frame: Any, schema: dict[str, Any]) -> Path:
    """Prepare and train (small) on `frame` with `schema`: the model directory."""
    (tmp_path / "in").mkdir()
    frame.to_csv(tmp_path / "in" / "d.csv", index=False)
    assert prepare.main(["--input-dir", str(tmp_path / "in"), "--output-dir",
                         str(tmp_path / "prep"), "--schema", json.dumps(schema)]) == 0  # fmt: skip
    channels = tmp_path / "prep"
    assert train.main(["--num_round", "10", "--target", schema["target"], "--train",
                       str(channels / "train"), "--validation", str(channels / "validation"),
                       "--model_dir", str(tmp_path / "model"),
                       "--checkpoint_dir", str(tmp_path / "ck")]) == 0  # fmt: skip
    return tmp_path / "model"


def test_a_multiclass_model_appends_each_rows_class_probabilities_as_the_container_does(
    tmp_path: Path,
) -> None:
    """The SageMaker XGBoost container in batch writes `str(row.tolist())` per row (its
    serve.py: "\\n".join(map(str, preds.tolist()))); JoinSource=Input appends it to the line."""
    from pipeline_code import penguin_data

    features = [{"name": n, "type": "float"} for n in ("bill_length_mm", "bill_depth_mm")]
    schema = {"target": "species", "problem_type": "multiclass", "features": features,
              "max_missing_fraction": 0.05}  # fmt: skip
    frame = penguin_data.generate(900, seed=2)
    train_penguins(tmp_path, frame, schema)
    scoring = frame[["bill_length_mm", "bill_depth_mm"]].head(30).copy()
    scoring.insert(0, "id", [f"p{i}" for i in range(30)])
    write(scoring, tmp_path / "score.csv")
    target = local_score.score_file(
        tmp_path / "score.csv", tmp_path / "model", tmp_path / "out", schema=schema,
        id_column="id", dataset="penguins", version="v1", model_version=1, run_id="local-1",
    )  # fmt: skip
    lines = "".join(p.read_text() for p in sorted(target.glob("*.out"))).splitlines()
    assert len(lines) == 30
    first = lines[0]
    assert first.startswith('"p0",') and first.endswith("]")  # the id as the Check step wrote it
    probabilities = json.loads(first[first.index("[") :])
    assert len(probabilities) == 3 and abs(sum(probabilities) - 1) < 1e-5


def test_a_category_model_is_batch_scored_through_its_inference_script_with_its_encoding(
    tmp_path: Path,
) -> None:
    """Batch serving with a category feature: score.py writes island as text, the model's
    own code/inference.py (script mode, as the transform job runs it) maps it with the encoding
    fitted on the training split, and each probability equals Evaluate's for the same row (one
    encoding artifact: no training/serving skew); an unseen island scores as a missing one."""
    from pipeline_code import penguin_data

    loading = load("evaluate", "model_loading")
    scoring_data = load("evaluate", "scoring_data")
    numbers = ["bill_length_mm", "flipper_length_mm"]
    features = [{"name": "island", "type": "category"}] + [
        {"name": n, "type": "float"} for n in numbers
    ]
    schema = {"target": "sex", "positive_class": "female", "features": features,
              "max_missing_fraction": 0.05}  # fmt: skip
    train_penguins(tmp_path, penguin_data.generate(1500, seed=4), schema)
    assert (tmp_path / "model" / "code" / "inference.py").is_file()
    scoring = penguin_data.generate(40, seed=5)[["island", *numbers]].copy()
    scoring.loc[0, "island"] = "Atlantis"  # never seen in training
    scoring.loc[1, "island"] = None  # missing
    scoring.insert(0, "id", [f"p{i}" for i in range(40)])
    write(scoring, tmp_path / "score.csv")
    target = local_score.score_file(
        tmp_path / "score.csv", tmp_path / "model", tmp_path / "out", schema=schema,
        id_column="id", dataset="penguins", version="v1", model_version=1, run_id="local-1",
    )  # fmt: skip
    lines = "".join(p.read_text() for p in sorted(target.glob("*.out"))).splitlines()
    assert len(lines) == 40 and (target / "_SUCCESS").is_file()
    rows = list(csv.reader(lines))
    assert rows[2][:2] == ["p2", scoring.loc[2, "island"]]  # the category travels as text
    served = np.array([float(row[-1]) for row in rows])

    model = loading.load_model_dir(
        tmp_path / "model", tmp_path / "scratch", "model", verified=True, trainer="xgboost"
    )
    columns = {
        "island": scoring["island"].to_numpy(object),
        **{n: scoring[n].to_numpy(np.float64) for n in numbers},
    }
    expected = scoring_data.predict(
        model, scoring_data.model_matrix(model, columns, list(model.feature_names))
    )
    np.testing.assert_allclose(served, expected, rtol=1e-5)
    assert served[0] == pytest.approx(
        float(
            scoring_data.predict(
                model,
                scoring_data.model_matrix(
                    model,
                    {**{k: v[:1] for k, v in columns.items()}, "island": np.array([None])},
                    list(model.feature_names),
                ),
            )[0]
        )
    )


def test_a_category_value_the_transform_would_cut_is_refused_naming_it(tmp_path: Path) -> None:
    score = load("score")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "s.csv").write_text('id,island,bill\na,"Bis,coe",1.5\n')
    schema = {"target": "sex", "features": [{"name": "island", "type": "category"},
                                            {"name": "bill", "type": "float"}]}  # fmt: skip
    with pytest.raises(score.ScoringDataError) as error:
        score.prepare_scoring(
            tmp_path / "in", tmp_path / "out", schema, "id", "s3://b/score/d/v/",
            "arn:aws:sagemaker:eu-west-1:111111111111:model-package/g/7", "run1",
        )  # fmt: skip
    assert str(error.value) == (
        "scoring data: s.csv has the category value 'Bis,coe' in 'island': batch serving's "
        "category values must not hold a comma, a double quote or a line break (the transform "
        "job splits rows by line and fields by comma)"
    )


def _archive(source: Path, archive: Path) -> Path:
    """`source`'s files at the top level of a gzipped tar, as SageMaker packs SM_MODEL_DIR."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(source.iterdir()):
            tar.add(path, arcname=path.name)
    return archive


def test_an_archive_holding_another_model_archive_is_refused_not_unpacked_again(
    tmp_path: Path, model_dir: Path
) -> None:
    """The container unpacks model.tar.gz once: an archive that only wraps another would be
    served without a model, so the local run says so instead of unpacking recursively (a
    self-similar archive would otherwise never end)."""
    file, _ = scoring_file(tmp_path, 20)
    (tmp_path / "inner").mkdir()
    inner = _archive(model_dir, tmp_path / "inner" / model_files.MODEL_ARCHIVE)
    (tmp_path / "outer").mkdir()
    shutil.copy(inner, tmp_path / "outer" / model_files.MODEL_ARCHIVE)
    (tmp_path / "outer" / "README").write_text("wrapped\n")
    outer = _archive(tmp_path / "outer", tmp_path / "wrapped.tar.gz")
    with pytest.raises(
        local_score.LocalScoreError, match=r"wrapped\.tar\.gz holds another model\.tar\.gz"
    ):
        run(file, outer, tmp_path / "out")
    assert not list((tmp_path / "out").rglob("_SUCCESS"))
    # the inner archive itself is scored as the model directory is
    assert run(file, inner, tmp_path / "out2").joinpath("_SUCCESS").is_file()
