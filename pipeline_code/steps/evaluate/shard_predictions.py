"""Evaluate across processing instances: EvaluateShards (`evaluate.py --predictions-output`,
on every instance) predicts the test files its instance received (ShardedByS3Key) with the
challenger and the champion, and Evaluate (`--predictions-dir`, one instance) reads those
predictions back in the test split's row order instead of predicting.

One Parquet file per test file, named after it: `row` (the row's position in its file),
`label` (the target as read), the challenger's scores (`challenger`, or `challenger.<k>` per
class column) and, when a champion was scored, the champion's; the file's metadata records
each model's identity (artifact SHA-256 and package ARN, not where it is mounted) and the
test file's SHA-256 and row count, so predictions of other models, or of other rows (even
with the same labels), are refused rather than compared. The models
and the rows are read by the same functions as a single-instance Evaluate, so evaluation.json
is byte for byte the same."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from champion_choice import align_champion, load_champion
from common.training_data import METADATA_KEY
from comparison_rows import key_column_names
from model_loading import EvaluationError, LoadedModel, file_sha256, load_challenger
from scoring_data import category_names, feature_matrix, predict, read_test_set

LOG = logging.getLogger("evaluate")
ROW, LABEL = "row", "label"
CHALLENGER, CHAMPION = "challenger", "champion"
SUFFIX = ".predictions.parquet"
TEST_SHA256, TEST_ROWS = "test_sha256", "test_rows"
EMPTY = "_EMPTY"  # the output of an instance that received no test file


def predictions_name(test_dir: Path, file: Path) -> str:
    """The predictions file of the test file `file` (its path below `test_dir`, flattened)."""
    return file.relative_to(test_dir).as_posix().replace("/", "__") + SUFFIX


def _directory_sha256(directory: Path) -> str:
    """Every file's path below `directory` and bytes, in path order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(file.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(file_sha256(file).encode())
    return digest.hexdigest()


def identity(model: LoadedModel) -> str:
    """What the model is, wherever it is mounted: its artifact's SHA-256 and package ARN; an
    unpacked directory (no archive: local runs only) by the SHA-256 of its booster, or (no
    booster: a scikit-learn or custom model) of its directory's files, never by nothing (two
    such models would match each other's predictions)."""
    digest = model.artifact_sha256
    if digest is None and model.booster is not None:
        digest = "booster:" + hashlib.sha256(bytes(model.booster.save_raw("ubj"))).hexdigest()
    elif digest is None:
        directory = Path(model.source)
        if not directory.is_dir():
            raise EvaluationError(
                f"{model.source}: a model with no archive, no booster and no directory has no "
                "identity to match EvaluateShards' predictions by"
            )
        digest = "directory:" + _directory_sha256(directory)
    return json.dumps([digest, model.model_package_arn])


def _score_columns(role: str, scores: np.ndarray) -> dict[str, np.ndarray]:
    if scores.ndim == 1:
        return {role: scores}
    return {f"{role}.{k}": scores[:, k] for k in range(scores.shape[1])}


def write_shard(
    args: argparse.Namespace, scratch: Path, sagemaker_client: Any = None, s3_client: Any = None
) -> list[Path]:
    """Predict this instance's test files; returns the predictions files written (none, and
    only the `EMPTY` marker in the output, when ShardedByS3Key gave this instance no test
    file)."""
    test_dir, output = Path(args.test_dir), Path(args.predictions_output)
    output.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in test_dir.rglob("*.csv") if p.is_file()) if test_dir.is_dir() else []
    if not files:
        # An empty output folder is an instance whose upload nobody can tell from a lost one:
        # the marker says it ran and had nothing to predict (Evaluate reads predictions by
        # their test file's name, so it never reads this).
        (output / EMPTY).write_text(f"no test file in {test_dir}: nothing to predict\n")
        LOG.info("no test file on this instance: nothing to predict (%s written)", EMPTY)
        return []
    challenger = load_challenger(args.model_dir, scratch, args.trainer)
    champion = load_champion(args, scratch, sagemaker_client, s3_client)
    rule = (challenger.metadata.get(METADATA_KEY) or {}).get("split_rule")
    written = []
    for file in files:
        columns, labels = read_test_set(
            test_dir,
            args.target,
            keys=key_column_names(rule),
            categories=category_names(challenger),
            binary=False,
            files=[file],
        )
        data = {
            ROW: np.arange(labels.size, dtype=np.int64),
            LABEL: labels,
            **_score_columns(
                CHALLENGER, predict(challenger, feature_matrix(challenger, columns, CHALLENGER))
            ),
        }
        metadata = {
            CHALLENGER: identity(challenger),
            TEST_SHA256: file_sha256(file),
            TEST_ROWS: str(labels.size),
        }
        choice = align_champion(champion, columns, challenger)
        if choice.model is not None:
            data.update(_score_columns(CHAMPION, predict(choice.model, choice.matrix)))
            metadata[CHAMPION] = identity(choice.model)
        target = output / predictions_name(test_dir, file)
        pq.write_table(pa.table(data).replace_schema_metadata(metadata), target)
        written.append(target)
        LOG.info("%s: %d rows predicted", file.name, labels.size)
    return written


class Predictions:
    """EvaluateShards' predictions of the test split in `test_dir`, by model, in row order."""

    def __init__(self, predictions_dir: Path, test_dir: Path, files: list[Path]) -> None:
        self._tables = []
        for file in files:
            path = predictions_dir / predictions_name(test_dir, file)
            if not path.is_file():
                raise EvaluationError(
                    f"--predictions-dir {predictions_dir}: no {path.name} for the test file "
                    f"{file.name}: an EvaluateShards instance's output is missing (or, after a "
                    "cache hit, expired with the shard parts: run the pipeline again)"
                )
            table = pq.read_table(path)
            rows = table.column(ROW).to_numpy()
            if not np.array_equal(rows, np.arange(rows.size)):
                raise EvaluationError(f"{path.name}: rows are not 0..{rows.size - 1} in order")
            recorded = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
            ours = file_sha256(file)
            if recorded.get(TEST_SHA256) != ours or recorded.get(TEST_ROWS) != str(rows.size):
                raise EvaluationError(
                    f"{path.name}: predicted a test file with SHA-256 "
                    f"{recorded.get(TEST_SHA256)} and {recorded.get(TEST_ROWS)} rows, but "
                    f"{file.name} has SHA-256 {ours} and {rows.size} predicted rows: the "
                    "predictions are of other rows"
                )
            self._tables.append(table)

    def scores(self, role: str, model: LoadedModel, labels: np.ndarray) -> np.ndarray:
        """`model`'s scores as `role`; `labels`: the test labels Evaluate read, which must be
        the predicted rows' labels (else the predictions are of other rows)."""
        parts = []
        for table in self._tables:
            recorded = (table.schema.metadata or {}).get(role.encode())
            if recorded is None or recorded.decode() != identity(model):
                raise EvaluationError(
                    f"EvaluateShards' predictions hold no scores of this {role} "
                    f"({model.model_package_arn or model.source}): they are of another model"
                )
            names = [n for n in table.column_names if n == role or n.startswith(f"{role}.")]
            columns = [table.column(n).to_numpy() for n in names]
            parts.append(columns[0] if names == [role] else np.column_stack(columns))
        result = np.concatenate(parts)
        stored = np.concatenate([t.column(LABEL).to_numpy() for t in self._tables])
        if stored.shape != labels.shape or not np.array_equal(
            stored, np.asarray(labels, dtype=np.float64), equal_nan=True
        ):
            raise EvaluationError(
                f"EvaluateShards predicted {stored.size} rows whose labels are not the test "
                f"split's {labels.size}: the predictions are of other rows"
            )
        return result


def scored(
    args: argparse.Namespace,
    role: str,
    model: LoadedModel,
    matrix: np.ndarray,
    labels: np.ndarray,
) -> np.ndarray:
    """`model`'s scores on the test rows: EvaluateShards' (`args.predictions`) when Evaluate
    runs after it, else predicted here."""
    store = getattr(args, "predictions", None)
    if store is None:
        return predict(model, matrix)
    return store.scores(role, model, labels)
