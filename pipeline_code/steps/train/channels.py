"""The train step's input: the `train` and `validation` channels (CSV with a header, the target
column first, as prepare.py writes them), checked and read as a feature matrix and labels.
Category features (text) become their codes in the encoding fitted on the train channel
(`common.categories`); the validation channel is encoded with that same encoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from common.categories import EncodingError, canonical_array, encode, fit_encoding
from common.columns import Source, finite_feature, numbers, read_csv_tables


class TrainingError(Exception):
    """The inputs or hyperparameters are not usable; the message says what and where."""


def read_channel(
    name: str,
    directory: str | None,
    target: str,
    category_features: tuple[str, ...] = (),
    encoding: dict[str, list[str]] | None = None,
    allow_empty: bool = False,
    binary: bool = True,
) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, list[str]]]:
    """Features (float32), labels, feature names and the category encoding of every CSV file
    in a channel: `encoding` when given, else fitted on this channel's `category_features`.
    With `allow_empty`, a channel without CSV files (a host that ShardedByS3Key gave no shard)
    is no rows and no feature names instead of an error. The labels of a `binary` channel must
    be 0/1 (the other problem types' are checked by `objectives.check_labels`)."""
    if not directory:
        raise TrainingError(
            f"channel {name!r} is missing: SM_CHANNEL_{name.upper()} is not set and "
            f"--{name} was not given"
        )
    path = Path(directory)
    files = sorted(
        p for p in path.rglob("*") if p.is_file() and p.name.endswith((".csv", ".csv.gz"))
    )
    if not files and allow_empty:
        return np.empty((0, 0), dtype=np.float32), np.empty(0), [], dict(encoding or {})
    if not files:
        raise TrainingError(f"channel {name!r} has no CSV files in {directory}")
    source = Source(f"channel {name!r}", TrainingError)
    tables, columns = read_csv_tables(files, source, tuple(category_features))
    if target not in columns:
        raise TrainingError(f"channel {name!r}: no target column {target!r} in {columns}")
    features = [c for c in columns if c != target]
    if not features:
        raise TrainingError(
            f"channel {name!r} has no feature columns: {files[0].name} holds only the target "
            f"{target!r}"
        )
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    if table.num_rows == 0:
        raise TrainingError(f"channel {name!r} has no rows")
    labels = numbers(table, target, pa.float64(), source)
    if binary and (np.isnan(labels).any() or not np.isin(labels, (0.0, 1.0)).all()):
        raise TrainingError(f"channel {name!r}: target {target!r} must be 0 or 1 in every row")
    absent = [c for c in category_features if c not in features]
    if absent:
        raise TrainingError(f"channel {name!r}: no category feature column(s) {absent}")
    text = {c: canonical_array(table.column(c)) for c in category_features}
    try:
        encoding = fit_encoding(text) if encoding is None else encoding
    except EncodingError as error:
        raise TrainingError(f"channel {name!r}: {error}") from error
    matrix = np.column_stack(
        [
            encode(text[c], encoding[c]) if c in text else finite_feature(table, c, source)
            for c in features
        ]
    )
    return matrix, labels, features, encoding
