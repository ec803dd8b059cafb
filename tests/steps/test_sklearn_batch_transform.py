"""Batch scoring of a scikit-learn model (#15), per problem type, as the scoring pipeline runs it:
the real Check (score.py) writes a scoring version header-less, id first; the transform job
(SplitType Line, BatchStrategy MultiRecord, InputFilter `$[1:]`, JoinSource Input, AssembleWith
Line) sends mini-batches of many lines to the container's /invocations, here a Flask
re-creation of the sagemaker-containers 2.8.6 worker (tests/serving; not the container itself),
which runs the archive's own inference.py; every answer line is appended to its input line.
`make local-run SCORE=file` (pipeline_code.local_score) must write the same bytes.

Expected predictions come from scikit-learn itself: the estimator loaded with joblib, its
`predict_proba`/`predict` on a matrix built with pandas from the original file (category text
mapped with pandas.Categorical on the fitted categories, an unseen one as missing), never from
the serving code."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from pipeline_code import local_score, penguin_data
from pipeline_code.steps import load
from tests.serving.test_category_serving import _import_user_module, respond
from tests.steps.test_train_sklearn import CASES, NUMBERS, _schema

prepare = load("prepare")
train_sklearn = load("train_sklearn")
score = load("score")

ARN = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlops-loop-dev-models/7"
ROWS = 240


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Per problem type, the model directory as the transform container sees it: the training
    job's model.tar.gz unpacked into /opt/ml/model."""
    root = tmp_path_factory.mktemp("sklearn-batch")
    (root / "in").mkdir()
    penguin_data.generate(1200, seed=21).dropna(subset=NUMBERS).to_csv(
        root / "in" / "penguins.csv", index=False
    )
    out = {}
    for problem, (target, _, estimator, params, *_) in CASES.items():
        base = root / problem
        assert prepare.main(["--input-dir", str(root / "in"), "--output-dir", str(base / "data"),
                             "--schema", json.dumps(_schema(problem))]) == 0  # fmt: skip
        assert train_sklearn.main(["--train", str(base / "data" / "train"), "--validation",
                                   str(base / "data" / "validation"), "--model_dir",
                                   str(base / "model"), "--target", target, "--estimator",
                                   estimator, "--estimator_params", json.dumps(params),
                                   ]) == 0  # fmt: skip
        archive = base / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted((base / "model").rglob("*")):
                tar.add(path, arcname=str(path.relative_to(base / "model")))
        served = base / "opt" / "ml" / "model"
        served.mkdir(parents=True)
        with tarfile.open(archive) as tar:
            tar.extractall(served, filter="data")
        out[problem] = served
    return out


def _scoring_frame(problem: str) -> pd.DataFrame:
    """A producer's file: an id column, the features in another order, a column the schema
    does not name; for the category model an unseen species and a missing one."""
    _, features, *_ = CASES[problem]
    frame = penguin_data.generate(ROWS, seed=33)
    if problem == "regression":  # Ridge takes no missing value
        frame = frame.dropna(subset=NUMBERS)
    frame = frame[[*reversed(features), "comment"]].reset_index(drop=True)
    frame.insert(0, "penguin_id", [f"nest-{i}" for i in range(len(frame))])
    if "species" in features:
        frame.loc[3, "species"] = "Emperor"
        frame.loc[5, "species"] = None
    return frame


def _checked(frame: pd.DataFrame, problem: str, work: Path) -> list[Path]:
    """The Check step's rows files for `frame` (score.py, as the scoring pipeline runs it)."""
    (work / "in").mkdir(parents=True)
    frame.to_csv(work / "in" / "part-0.csv", index=False)
    summary = score.prepare_scoring(work / "in", work / "checked", _schema(problem),
                                    "penguin_id", "s3://data/score/penguins/v1/", ARN,
                                    "run-1")  # fmt: skip
    assert summary["rows"] == len(frame)
    return sorted((work / "checked" / score.ROWS_OUTPUT).glob("*.csv"))


def _transform(rows: Path, served: dict[str, Any], max_payload: int, requote: bool) -> str:
    """What the transform job writes for one input file: `$[1:]` of each line (Check refuses a
    comma in an id), lines gathered into requests of at most `max_payload` bytes
    (MultiRecord), each answer line appended to its input line with a comma. `requote`: the
    record re-written by a CSV writer (quotes dropped where not needed), as a filter that parses
    and re-serializes the record may send it; the model must answer the same either way."""
    lines = rows.read_text(encoding="utf-8").splitlines()
    records = [line.split(",", 1)[1] for line in lines]
    if requote:
        records = [_csv_line(next(csv.reader([record]))) for record in records]
    answers: list[str] = []
    batch: list[str] = []

    def send() -> None:
        body = "".join(f"{record}\n" for record in batch)
        response = respond(served, body, accept="text/csv")
        assert response.status_code == 200, response.get_data(as_text=True)
        got = response.get_data(as_text=True).splitlines()
        assert len(got) == len(batch)  # one answer line per record, or the join shifts
        answers.extend(got)
        batch.clear()

    for record in records:
        if batch and sum(len(r) + 1 for r in batch) + len(record) + 1 > max_payload:
            send()
        batch.append(record)
    send()
    return "".join(f"{line},{answer}\n" for line, answer in zip(lines, answers, strict=True))


def _csv_line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


def _expected(model_dir: Path, frame: pd.DataFrame, problem: str) -> np.ndarray:
    _, features, *_ = CASES[problem]
    estimator = joblib.load(model_dir / "model.joblib")
    matrix = frame[features].copy()
    if "species" in features:
        encoding = json.loads((model_dir / "metadata" / "categories.json").read_text())
        codes = pd.Categorical(
            frame["species"], categories=encoding["features"]["species"]
        ).codes.astype(float)
        matrix["species"] = np.where(codes < 0, np.nan, codes)
    x = matrix.to_numpy(np.float64)
    if problem == "regression":
        return estimator.predict(x)
    p = estimator.predict_proba(x)
    return p[:, 1] if problem == "binary" else p


@pytest.mark.parametrize("problem", list(CASES))
def test_the_transform_job_joins_each_row_to_the_estimators_prediction(
    models: dict[str, Path], tmp_path: Path, problem: str
) -> None:
    model_dir = models[problem]
    inference = _import_user_module(model_dir / "code", "inference")
    served = {"inference": inference, "model": inference.model_fn(str(model_dir))}
    frame = _scoring_frame(problem)
    (rows,) = _checked(frame, problem, tmp_path)
    output = _transform(rows, served, max_payload=1024, requote=False)  # many requests
    # the batching and the record's quoting change nothing
    assert output == _transform(rows, served, max_payload=6 * 1024 * 1024, requote=True)

    joined = list(csv.reader(io.StringIO(output)))
    _, features, *_ = CASES[problem]
    width = 3 if problem == "multiclass" else 1
    assert [row[0] for row in joined] == list(frame["penguin_id"])
    assert all(len(row) == 1 + len(features) + width for row in joined)
    # the row as Check wrote it: the features in schema order, not the file's
    for name, written in zip(features, joined[0][1 : 1 + len(features)], strict=True):
        value = frame.loc[0, name]
        assert written == value if name == "species" else float(written) == value
    got = np.array([[float(v) for v in row[1 + len(features) :]] for row in joined]).squeeze()
    assert got == pytest.approx(_expected(model_dir, frame, problem), rel=1e-9, abs=1e-12)
    if problem == "multiclass":
        assert np.allclose(got.sum(axis=1), 1.0)


@pytest.mark.parametrize("problem", list(CASES))
def test_local_scoring_writes_what_the_transform_job_writes(
    models: dict[str, Path], tmp_path: Path, problem: str
) -> None:
    model_dir = models[problem]
    frame = _scoring_frame(problem)
    file = tmp_path / "penguins.csv"
    frame.to_csv(file, index=False)
    argv = ["--file", str(file), "--model-dir", str(model_dir), "--out", str(tmp_path / "out"),
            "--schema-json", json.dumps(_schema(problem)), "--id-column", "penguin_id",
            "--version", "v1", "--model-version", "7", "--run-id", "local-1"]  # fmt: skip
    assert local_score.main(argv) == 0
    target = tmp_path / "out" / "predictions" / "penguins" / "v1" / "7" / "local-1"
    assert sorted(p.name for p in target.iterdir()) == ["_SUCCESS", "part-00000.csv.out"]
    assert json.loads((target / "_SUCCESS").read_text()) == {"rows": len(frame)}

    inference = _import_user_module(model_dir / "code", "inference")
    served = {"inference": inference, "model": inference.model_fn(str(model_dir))}
    (rows,) = _checked(frame, problem, tmp_path / "aws")
    assert (target / "part-00000.csv.out").read_text() == _transform(
        rows, served, max_payload=2048, requote=False
    )


def test_local_scoring_takes_the_training_jobs_archive(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """MODEL=<model.tar.gz, or its folder>, as `make local-run TRAINER=sklearn` leaves it in
    its local bucket: unpacked as the container unpacks it, scored the same."""
    model_dir = models["multiclass"]
    archive = model_dir.parents[2] / "model.tar.gz"
    frame = _scoring_frame("multiclass")
    file = tmp_path / "penguins.csv"
    frame.to_csv(file, index=False)
    kw: dict[str, Any] = {"schema": _schema("multiclass"), "id_column": "penguin_id",
                          "dataset": "penguins", "version": "v1", "model_version": 7}  # fmt: skip
    outputs = [
        (
            local_score.score_file(file, model, tmp_path / "out", run_id=run, **kw)
            / "part-00000.csv.out"
        ).read_text()
        for run, model in (("dir", model_dir), ("tar", archive), ("folder", archive.parent))
    ]
    assert outputs[0] == outputs[1] == outputs[2]
    (tmp_path / "broken.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(local_score.LocalScoreError, match="cannot unpack the model .*broken"):
        local_score.score_file(file, tmp_path / "broken.tar.gz", tmp_path / "o", run_id="x", **kw)
