"""What prepare.py writes below `--output-dir`: the split CSV files (target first, then the
features in schema order, bools as 0/1), the drift baseline (baseline.csv, its header-less copy
for Model Monitor, statistics.json) and report/split_report.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from dataset_reading import Dataset
from dataset_schema import Schema
from split_statistics import class_balance, feature_statistics, ks_statistic, psi

BASELINE_MAX_ROWS = 10_000
#: The header-less copy of baseline.csv that the pipeline's Model Monitor Baseline step reads.
MODEL_MONITOR_BASELINE_FILE = "features.csv"


def _arrow_column(values: np.ndarray, kind: str) -> pa.Array:
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
    """The rows `index` as Arrow columns: the target (0/1) first unless `with_target` is
    False, then the features in schema order (bools and ints as integers)."""
    columns: dict[str, pa.Array] = {}
    if with_target:
        columns[schema.target] = _arrow_column(dataset.columns[schema.target][index], "bool")
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
) -> dict[str, Any]:
    """Write the splits, the drift baseline and the report; return the report."""
    for name, index in splits.items():
        write_csv(output_dir / name / f"{name}.csv", split_columns(dataset, schema, index))

    test = splits["test"]
    baseline = test
    if baseline.size > BASELINE_MAX_ROWS:
        rng = np.random.default_rng(seed)
        baseline = np.sort(rng.choice(test, BASELINE_MAX_ROWS, replace=False))
    baseline_columns = split_columns(dataset, schema, baseline, with_target=False)
    write_csv(output_dir / "baseline" / "baseline.csv", baseline_columns)
    write_csv(output_dir / "baseline" / MODEL_MONITOR_BASELINE_FILE, baseline_columns, header=False)
    statistics = {
        "source": "test split",
        "rows": int(test.size),
        "features": {
            name: feature_statistics(dataset.columns[name][test], kind)
            for name, kind in schema.features
        },
    }
    write_json(output_dir / "baseline" / "statistics.json", statistics)

    y = dataset.columns[schema.target]
    distances: dict[str, Any] = {}
    for name, _ in schema.features:
        values = dataset.columns[name]
        reference = values[splits["train"]]
        reference = np.sort(reference[~np.isnan(reference)])
        distances[name] = {
            f"train_vs_{other}": {
                "ks": ks_statistic(reference, values[splits[other]]),
                "psi": psi(reference, values[splits[other]]),
            }
            for other in ("validation", "test")
        }
    report = {
        **extra_report,
        "schema": schema_report(schema),
        "seed": seed,
        "splits": {name: class_balance(y[index]) for name, index in splits.items()},
        "baseline_rows": int(baseline.size),
        "feature_distance": distances,
    }
    write_json(output_dir / "report" / "split_report.json", report)
    return report


def schema_report(schema: Schema) -> dict[str, Any]:
    """The schema as the report records it."""
    return {
        "target": schema.target,
        "features": [{"name": n, "type": t} for n, t in schema.features],
        "max_missing_fraction": schema.max_missing_fraction,
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """`payload` as indented JSON at `path` (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
