"""Score a file with a locally trained model, writing what batch serving writes: no AWS.

`make local-run SCORE=file.csv` (after a local run trained a model) checks the file with the
scoring pipeline's own Check script (score.py: id column, every feature, types) and scores it
the way the transform job does (the model gets the features in schema order, the output line is
the input line with the prediction appended: `JoinSource=Input`; the probability of class 1, a
regression value, or a multi-class row's bracketed class probabilities), into
`<out>/predictions/<dataset>/<version>/<model version>/<run id>/<part>.csv.out` with `_SUCCESS`
written last, only when every row was scored. The run id (`local-<UTC time>` unless --run-id
gives one) stands for the pipeline execution's id: each run gets a prefix of its own, as in AWS.
Bad data fails with score.py's reason and writes no `_SUCCESS`.

    python -m pipeline_code.local_score --file new.csv
    python -m pipeline_code.local_score --file new.csv --model-dir <model dir> \
        --dataset transactions --version 2026-12-07 --model-version 3

A model with category features, and every scikit-learn model (`TRAINER=sklearn`: its
`model.joblib`), is served as in AWS, by the inference script Train put in its directory
(`code/inference.py`, script mode): it gets each file's rows without the id, as text/csv, and
answers one line per row (a multi-class row's class probabilities comma-separated), category
text mapped with the encoding fitted on the training split.

The model is the one `make local-run RUNNER=scripts` trains (its train step's model directory)
unless --model-dir names another: a model directory, or a training job's `model.tar.gz` (or a
folder holding one, e.g. what `make local-run TRAINER=sklearn` wrote under `.build/local-run/s3/`),
unpacked as the serving container unpacks it.

The schema and the id column come from cdk.json (environment dev) unless given here.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import shutil
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_config import parse_environment, read_cdk_json_context
from pipeline_code.steps import load

DEFAULT_MODEL_DIR = ".build/local-run-scripts/train/opt/ml/model"
DEFAULT_OUT = ".build/local-score"
MARKER = "_SUCCESS"


class LocalScoreError(RuntimeError):
    """The file cannot be scored; the message says why."""


def score_file(
    file: Path,
    model_dir: Path,
    out: Path,
    *,
    schema: dict[str, Any],
    id_column: str,
    dataset: str,
    version: str,
    model_version: int,
    run_id: str,
) -> Path:
    """Score `file` as the run `run_id`; return the predictions folder (with `_SUCCESS`).
    `model_dir`: a model directory, or a training job's model.tar.gz (or a folder holding one),
    unpacked as the container unpacks it into /opt/ml/model."""
    import xgboost as xgb

    score = load("score")
    model_files = load("common", "model_files")
    archive = model_dir if model_dir.is_file() else model_dir / model_files.MODEL_ARCHIVE
    if archive.is_file():
        with tempfile.TemporaryDirectory(prefix="local-model-") as unpacked:
            _unpack(archive, Path(unpacked), model_files.MODEL_ARCHIVE)
            return score_file(
                file,
                Path(unpacked),
                out,
                schema=schema,
                id_column=id_column,
                dataset=dataset,
                version=version,
                model_version=model_version,
                run_id=run_id,
            )
    booster_file = model_dir / model_files.MODEL_FILE
    served = _inference_script(model_dir)
    if served is None and not booster_file.is_file():
        raise LocalScoreError(
            f"no trained model at {booster_file} (nor a served model's code/inference.py in "
            f"{model_dir}): run `make local-run RUNNER=scripts` first or give MODEL=<model dir>"
        )
    with tempfile.TemporaryDirectory(prefix="local-score-") as work_name:
        work = Path(work_name)
        (work / "input").mkdir()
        shutil.copy(file, work / "input" / file.name)
        arn = f"arn:aws:sagemaker:local:000000000000:model-package/local/{model_version}"
        try:
            summary = score.prepare_scoring(
                work / "input",
                work / "checked",
                schema,
                id_column,
                f"s3://local/score/{dataset}/{version}/",
                arn,
                run_id,
            )
        except score.ScoringDataError as error:
            raise LocalScoreError(str(error)) from error
        target = out / "predictions" / dataset / version / str(model_version) / run_id
        target.mkdir(parents=True)  # a run id is never reused: fails if it was
        if served is not None:
            answer = functools.partial(_served_output, served, model_dir)
        else:  # algorithm mode: the booster alone, as the XGBoost container loads it
            booster = xgb.Booster()
            booster.load_model(booster_file)
            answer = functools.partial(_algorithm_output, booster)
        for rows in sorted((work / "checked" / score.ROWS_OUTPUT).glob("*.csv")):
            lines = rows.read_text(encoding="utf-8").splitlines()
            (target / f"{rows.name}.out").write_text(answer(lines), encoding="utf-8")
    (target / MARKER).write_text(json.dumps({"rows": summary["rows"]}) + "\n", encoding="utf-8")
    return target


def _unpack(archive: Path, into: Path, archive_name: str) -> None:
    """Unpack `archive` as the container unpacks model.tar.gz into /opt/ml/model: once. An
    archive holding another `archive_name` is refused, not unpacked again (the container would
    serve the inner archive's folder without a model in it)."""
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise LocalScoreError(f"cannot unpack the model {archive}: {error}") from error
    if (into / archive_name).exists():
        raise LocalScoreError(
            f"the model {archive} holds another {archive_name}: give the training job's "
            f"{archive_name} itself (its model files at the top level)"
        )


def _algorithm_output(booster: Any, lines: list[str]) -> str:
    """What the transform job writes for one rows file in algorithm mode: the booster's
    prediction for `$[1:]` of each line (the features, positions as in training), joined to the
    line."""
    import numpy as np
    import xgboost as xgb

    # the id may be quoted (and hold commas): read the fields as CSV
    fields = list(csv.reader(lines))
    features = np.array(
        [[float(v) if v else np.nan for v in row[1:]] for row in fields], dtype=np.float32
    )
    predictions = booster.predict(xgb.DMatrix(features), validate_features=False)
    return "".join(f"{line},{_output(p)}\n" for line, p in zip(lines, predictions, strict=True))


def _inference_script(model_dir: Path) -> Any:
    """The model's own inference module (script mode: a model with category features or a
    scikit-learn model), or None (algorithm mode)."""
    import importlib.util

    script = model_dir / "code" / "inference.py"
    if not script.is_file():
        return None
    spec = importlib.util.spec_from_file_location("served_inference", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _served_output(served: Any, model_dir: Path, lines: list[str]) -> str:
    """What the transform job writes for one rows file in script mode: `$[1:]` of each line
    (the id and category values hold no comma: score.py refuses them) sent as one text/csv
    request, each answer line joined to its input line (`JoinSource=Input`)."""
    body = "\n".join(line.split(",", 1)[1] for line in lines) + "\n"
    answer = served.transform_fn(served.model_fn(str(model_dir)), body, "text/csv", "text/csv")
    if not isinstance(answer, tuple):  # a refusal: flask.Response with the reason
        raise LocalScoreError(answer.get_data(as_text=True).strip())
    predictions = answer[0].splitlines()
    return "".join(f"{line},{p}\n" for line, p in zip(lines, predictions, strict=True))


def _output(prediction: Any) -> str:
    """The transform job's output for one row: a number (the probability of class 1, or a
    regression value), or for a multi-class model the class probabilities as the SageMaker
    XGBoost container writes a batch row, `str` of the row's list (`[0.01, 0.97, 0.02]`, in the
    class order recorded with the model)."""
    import numpy as np

    if np.ndim(prediction) == 0:
        return f"{float(prediction):.9g}"
    return str([float(p) for p in prediction])


def local_run_id() -> str:
    """`local-<UTC time to the microsecond>`: sorts by time, like the newest-prefix rule."""
    return "local-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, required=True, help="CSV (header) or Parquet")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=Path(DEFAULT_MODEL_DIR),
        help="a model directory, or a model.tar.gz (or a folder holding one)",
    )
    parser.add_argument("--out", type=Path, default=Path(DEFAULT_OUT))
    parser.add_argument("--dataset", default=None, help="(default: the file's name)")
    parser.add_argument("--version", default="local")
    parser.add_argument("--model-version", type=int, default=1)
    parser.add_argument("--run-id", default=None, help="(default: local-<UTC time>)")
    parser.add_argument("--id-column", default=None, help="(default: serving.batch.id_column)")
    parser.add_argument("--schema-json", default=None, help="(default: cdk.json's schema)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = parse_environment(read_cdk_json_context(), "dev")
    schema = json.loads(args.schema_json or config.schema.to_json())
    try:
        target = score_file(
            args.file,
            args.model_dir,
            args.out,
            schema=schema,
            id_column=args.id_column or config.serving.batch.id_column,
            dataset=args.dataset or args.file.name.split(".")[0],
            version=args.version,
            model_version=args.model_version,
            run_id=args.run_id or local_run_id(),
        )
    except (LocalScoreError, OSError) as error:
        print(f"local scoring failed: {error}", file=sys.stderr)
        return 1
    print(f"scored {args.file} -> {target}/ ({MARKER} written)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
