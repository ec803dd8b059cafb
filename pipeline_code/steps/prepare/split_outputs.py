"""What prepare.py writes below `--output-dir`: the split CSV files (target first, then the
features in schema order, bools as 0/1; test also the split's id or time column), the training
data record beside train.csv, the drift baseline (baseline.csv, its header-less copy for Model
Monitor, statistics.json with the training split's reference profile) and
report/split_report.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from common.feature_profile import profiles
from common.feature_shift import compare
from common.labels import write_labels
from common.problem_types import BINARY
from common.training_data import TRAINING_DATA_FILE, record
from dataset_reading import Dataset
from dataset_schema import Schema
from split_statistics import feature_statistics
from target_kinds import TARGET_COLUMN_KIND, target_balance, target_profile
from train_shards import write_shards

BASELINE_MAX_ROWS = 10_000
#: The header-less copy of baseline.csv that the pipeline's Model Monitor Baseline step reads.
MODEL_MONITOR_BASELINE_FILE = "features.csv"


def _arrow_column(values: np.ndarray, kind: str) -> pa.Array:
    if kind == "category":
        return pa.array(values, type=pa.string())
    missing = np.isnan(values)
    if kind == "float":
        return pa.array(values, mask=missing if missing.any() else None)
    dtype = np.int8 if kind == "bool" else np.int64
    whole = np.where(missing, 0, values).astype(dtype)
    return pa.array(whole, mask=missing if missing.any() else None)


def write_csv(path: Path, columns: dict[str, pa.Array], header: bool = True) -> None:
    """CSV with a plain header line (pyarrow would quote the names), or none; missing values
    empty."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(columns)
    with pa.OSFile(str(path), "wb") as sink:
        if header:
            sink.write((",".join(columns) + "\n").encode())
        pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))


def split_columns(
    dataset: Dataset, schema: Schema, index: np.ndarray, with_target: bool = True
) -> dict[str, pa.Array]:
    """The rows `index` as Arrow columns: the target (0/1, class code or number) first unless
    `with_target` is False, then the features in schema order (bools and ints as integers)."""
    columns: dict[str, pa.Array] = {}
    if with_target:
        kind = TARGET_COLUMN_KIND[schema.problem_type]
        columns[schema.target] = _arrow_column(dataset.columns[schema.target][index], kind)
    for name, kind in schema.features:
        columns[name] = _arrow_column(dataset.columns[name][index], kind)
    return columns


def write_outputs(
    dataset: Dataset,
    schema: Schema,
    splits: dict[str, np.ndarray],
    output_dir: Path,
    seed: int,
    extra_report: dict[str, Any],
    split_rule: dict[str, Any],
    times: np.ndarray | None = None,
    train_shards: int = 1,
) -> dict[str, Any]:
    """Write the splits (test with the split's key column; train as `train_shards` shards if
    more than one, see `train_shards`), the drift baseline, the training data record and the
    report; return the report."""
    y = dataset.columns[schema.target]
    shard_rows = None
    for name, index in splits.items():
        if name == "train" and train_shards > 1:
            shard_rows = write_shards(
                output_dir,
                index,
                train_shards,
                lambda rows: split_columns(dataset, schema, rows),
                write_csv,
            )
            continue
        columns = split_columns(dataset, schema, index)
        if name == "test":
            columns.update(_key_columns(dataset, index, split_rule, times))
            write_labels(output_dir / name, dataset.labels)
        write_csv(output_dir / name / f"{name}.csv", columns)

    test = splits["test"]
    baseline = test
    if baseline.size > BASELINE_MAX_ROWS:
        rng = np.random.default_rng(seed)
        baseline = np.sort(rng.choice(test, BASELINE_MAX_ROWS, replace=False))
    baseline_columns = split_columns(dataset, schema, baseline, with_target=False)
    write_csv(output_dir / "baseline" / "baseline.csv", baseline_columns)
    write_csv(output_dir / "baseline" / MODEL_MONITOR_BASELINE_FILE, baseline_columns, header=False)
    train = splits["train"]
    reference = {
        "source": "train split",
        "rows": int(train.size),
        **(
            {"positives": int(y[train].sum())}
            if schema.problem_type == BINARY
            else {
                "target": target_balance(schema, y[train], dataset.labels),
                "target_profile": target_profile(schema, y[train], dataset.labels),
            }
        ),
        "features": profiles(dataset.columns, list(schema.features), train),
    }
    statistics = {
        "source": "test split",
        "rows": int(test.size),
        "features": {
            name: feature_statistics(dataset.columns[name][test], kind)
            for name, kind in schema.features
        },
        # What a later version is compared with (Evaluate's data-shift report).
        "reference": reference,
    }
    write_json(output_dir / "baseline" / "statistics.json", statistics)
    balance = {
        name: target_balance(schema, y[index], dataset.labels) for name, index in splits.items()
    }
    write_json(
        output_dir / "train" / TRAINING_DATA_FILE,
        record(split_rule, dataset.rows, balance, reference, dataset.labels, dict(schema.features)),
    )
    report = {
        **extra_report,
        "schema": schema_report(schema),
        "labels": dataset.labels,
        "ignored_columns": dataset.ignored,
        "seed": seed,
        "split_rule": split_rule,
        "splits": balance,
        "baseline_rows": int(baseline.size),
        "feature_distance": _distances(dataset, splits, reference),
    }
    if shard_rows is not None:
        report["train_shards"] = shard_rows
    write_json(output_dir / "report" / "split_report.json", report)
    return report


def _key_columns(
    dataset: Dataset, index: np.ndarray, rule: dict[str, Any], times: np.ndarray | None
) -> dict[str, pa.Array]:
    """The split's id (as text) or time (as the number the rule compares) for `index`, so
    Evaluate can place these rows against another model's rule."""
    if "id_column" in rule:
        column = rule["id_column"]
        return {column: pa.array(dataset.keys[column][index].astype(str), type=pa.string())}
    if times is not None:
        return {rule["time_column"]: pa.array(times[index], type=pa.float64())}
    return {}


def _distances(
    dataset: Dataset, splits: dict[str, np.ndarray], reference: dict[str, Any]
) -> dict[str, Any]:
    """How far validation and test moved from train (by construction nothing for a hash
    split; the future against the past for a time split), per feature."""
    distances: dict[str, Any] = {name: {} for name in reference["features"]}
    for other in ("validation", "test"):
        columns = {name: dataset.columns[name][splits[other]] for name in distances}
        for name, stats in compare(reference["features"], columns).items():
            distances[name][f"train_vs_{other}"] = stats
    return distances


def schema_report(schema: Schema) -> dict[str, Any]:
    """The schema as the report records it."""
    return {
        "target": schema.target,
        "features": [{"name": n, "type": t} for n, t in schema.features],
        "max_missing_fraction": schema.max_missing_fraction,
        "positive_class": schema.positive_class,
        **({"problem_type": schema.problem_type} if schema.problem_type != BINARY else {}),
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """`payload` as indented JSON at `path` (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
