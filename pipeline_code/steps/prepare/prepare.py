"""Prepare step (SageMaker Processing job): validate the landed data, split it, compute a baseline.

Reads every `*.csv`, `*.csv.gz` and `*.parquet` file below `--input-dir` (recursively; the
dataset markers `_SUCCESS` and `manifest.json`, and like the trigger's digest every name that
starts with `_` or `.`, are metadata, not data), keeps only the schema's columns,
checks them against the schema, splits them and writes, below `--output-dir`:

    train/train.csv, validation/validation.csv, test/test.csv
        header; target column first, then the features in schema order; bools as 0/1;
        test.csv also holds the split's id or time column, if any (last); a category
        feature is its canonical text (common.categories), a text target its 0/1 by
        positive_class (common.labels)
    test/labels.json           what the target's 1 and 0 stand for (Evaluate checks each
                               model's own mapping against it)
    train/shards/part-NNNNN.csv   with `--train-shards N` (N > 1) instead of train/train.csv:
                               the train rows dealt out to N files (see train_shards)
    train/training_data.json   the split rule, counts and the training split's profile: Train
                               copies it into the model's metadata (see common.training_data)
    baseline/baseline.csv      the test split's features (<= 10,000 rows): the drift reference
    baseline/features.csv      the same rows and columns (schema order) without a header: the
                               Model Monitor baseline dataset (header-less CSV columns are
                               named _c0, _c1, ..., as in the endpoint's captured requests)
    baseline/statistics.json   per-feature statistics of the test split, and the training
                               split's profile (`reference`) later versions are compared with
    report/split_report.json   input files, the split rule, row counts, class balance, how far
                               validation and test moved from train, the label mapping and the
                               files' columns the schema does not use (`ignored_columns`)

A row's split depends on the row alone (`common.stable_split`): by default a stable hash of its
feature values (target excluded), with `--id-column` of that column's value, with
`--time-column` its time (oldest rows train, newest test). A row therefore keeps its split in
every later dataset version, and a champion is never scored on rows it trained on.

With `--all-to-test` (the evaluation-only pipeline: labelled data to score the production model
on) the same checks apply, there is no split and no baseline: every labelled row goes to
test/test.csv and report/split_report.json records the input and its class balance.

Blanks around a value are ignored in CSV and Parquet alike. Bad input (no files, no rows,
missing or mistyped columns, numbers too large for the later steps to hold, one class only,
too many missing values) stops the job with exit code 1 and a message naming the column, the
problem and the limit, written to stderr and to SageMaker's exit-message file
(`/opt/ml/output/message`, shown as the job's ExitMessage; override with the
FAILURE_REASON_FILE environment variable).

With `--manifest-dir` (always, in the pipelines) the input is first checked against the run's
version manifest (`verify_inputs`): a file missing, added, resized or with other bytes stops the
job before any data is read, naming the manifest, the file and what differs.

Across several processing instances (`pipeline.processing_instance_count` > 1) Prepare runs
twice: `--shard` on every instance checks, splits and writes its share of the files as parts
(`shard_parts`: each file's split CSV rows, its typed columns, counts), then `--parts-dir` on
one instance (`shard_merge`) checks the counts over the version, concatenates the CSV parts
and computes the statistics one feature column at a time, so the outputs are the
single-instance outputs and no step holds the version. Each instance verifies its own files
against the manifest; the merge that together they read every file once. What needs the whole
version is the merge's: a text target's label mapping or class list from every file's values
(`shard_targets`), a time split's cut-offs from every row's time; the instances leave those
rows unplaced and the merge places and writes them one file at a time (`shard_placing`).

Uploaded with its folder (`dataset_schema`, `dataset_reading`, `dataset_validation`,
`splitting`, `split_statistics`, `split_outputs`, `train_shards`, `verify_inputs`,
`input_checksums`, `shard_parts`, `shard_merge`, `shard_statistics`, `shard_checks`,
`shard_targets`, `shard_placing`, `split_test_files`) and the
shared `common` package as one source directory, to the SageMaker XGBoost 3.0-5 container
(Python 3.10, numpy, pandas, pyarrow, scikit-learn); no SageMaker SDK.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

# The step's modules and `common` are uploaded beside this script: import them from here,
# however Python was started.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from common.failure import PROCESSING_FAILURE_FILE
from common.labels import write_labels
from common.runner import configure_logging, run_step
from common.stable_split import SPLITS
from dataset_reading import Dataset, find_input_files, read_dataset
from dataset_schema import Schema, ValidationError, parse_schema
from dataset_validation import validate
from shard_merge import merge
from shard_parts import instance_hosts, prepare_shard
from split_outputs import schema_report, split_columns, write_csv, write_json, write_outputs
from splitting import SplitOptions, split_rows
from target_kinds import target_balance
from train_shards import ShardingError, check_shards
from verify_inputs import InputMismatch, check_shard_union, verify_run_inputs

LOG = logging.getLogger("prepare")

DEFAULT_INPUT_DIR = "/opt/ml/processing/input/data"
DEFAULT_OUTPUT_DIR = "/opt/ml/processing/output"


def _read_and_validate(
    args: argparse.Namespace, schema: Schema, split: bool, keys: list[str] | None = None
) -> tuple[Dataset, int, float]:
    """Read and check the input; returns the labelled rows, rows dropped and start time."""
    started = time.perf_counter()
    input_dir = Path(args.input_dir)
    dataset = read_dataset(
        find_input_files(input_dir), schema, input_dir, keys, one_class=not split
    )
    LOG.info(
        "read %d rows from %d file(s) in %.1f s",
        dataset.rows,
        len(dataset.files),
        time.perf_counter() - started,
    )
    keep = validate(dataset, schema, split=split)
    dropped = int((~keep).sum())
    if dropped:
        LOG.warning("dropping %d row(s) without a target value", dropped)
        dataset = dataset.subset(keep)
    return dataset, dropped, started


def _input_report(dataset: Dataset, dropped: int, data_digest: str | None) -> dict[str, Any]:
    report: dict[str, Any] = {
        "files": dataset.files,
        "rows": dataset.rows + dropped,
        "dropped_missing_target": dropped,
    }
    if data_digest:
        report["data_digest"] = data_digest
    return report


def run_all_to_test(args: argparse.Namespace, schema: Schema) -> dict[str, Any]:
    """Evaluation only: validate, write every labelled row to test/test.csv and a report."""
    dataset, dropped, started = _read_and_validate(args, schema, split=False)
    output_dir = Path(args.output_dir)
    everything = np.arange(dataset.rows)
    write_csv(output_dir / "test" / "test.csv", split_columns(dataset, schema, everything))
    write_labels(output_dir / "test", dataset.labels)
    y = dataset.columns[schema.target]
    report = {
        "mode": "all-to-test",
        "input": _input_report(dataset, dropped, args.data_digest),
        "schema": schema_report(schema),
        "labels": dataset.labels,
        "ignored_columns": dataset.ignored,
        "splits": {"test": target_balance(schema, y, dataset.labels)},
    }
    write_json(output_dir / "report" / "split_report.json", report)
    LOG.info(
        "wrote all %d labelled rows to test/ in %.1f s",
        dataset.rows,
        time.perf_counter() - started,
    )
    return report


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Validate, split (or, with `--all-to-test`, keep together) and write; returns the report."""
    schema = parse_schema(args.schema)
    if args.all_to_test:
        if args.shard or args.parts_dir:
            raise ValidationError(
                "--all-to-test with --shard or --parts-dir: the evaluation-only Prepare runs "
                "on one instance"
            )
        return run_all_to_test(args, schema)
    options = SplitOptions(
        validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        id_column=args.id_column,
        time_column=args.time_column,
    )
    options.check(schema)
    check_shards(args.train_shards)
    if args.shard or args.parts_dir:
        _check_shardable(args)
    if args.shard:
        return prepare_shard(
            Path(args.input_dir),
            Path(args.output_dir),
            schema,
            options,
            *instance_hosts(),
            getattr(args, "verified", None),
            args.train_shards,
        )
    fractions = {
        "train": 1.0 - args.validation_fraction - args.test_fraction,
        "validation": args.validation_fraction,
        "test": args.test_fraction,
    }
    if args.parts_dir:
        return _merge(args, schema, options, fractions)
    dataset, dropped, started = _read_and_validate(args, schema, True, options.key_columns)
    splits, rule, times = split_rows(dataset, schema, options)
    report = write_outputs(
        dataset,
        schema,
        splits,
        Path(args.output_dir),
        args.seed,
        {
            "input": _input_report(dataset, dropped, args.data_digest),
            "fractions": fractions,
        },
        rule,
        times,
        args.train_shards,
    )
    LOG.info(
        "wrote train/validation/test = %s rows in %.1f s",
        "/".join(str(report["splits"][s]["rows"]) for s in SPLITS),
        time.perf_counter() - started,
    )
    return report


def _check_shardable(args: argparse.Namespace) -> None:
    """An instance, or the merge: not both."""
    if args.shard and args.parts_dir:
        raise ValidationError("--shard and --parts-dir: give one (an instance, or the merge)")


def _merge(
    args: argparse.Namespace, schema: Schema, options: SplitOptions, fractions: dict[str, float]
) -> dict[str, Any]:
    """The merge of the instances' parts (`shard_merge`): the single-instance outputs."""
    started = time.perf_counter()

    def check_verified(verified: list[str]) -> None:
        if args.manifest_dir is not None:
            count = check_shard_union(args.manifest_dir, args.data_digest, verified)
            LOG.info("the instances together verified all %d file(s) of the manifest", count)

    report = merge(
        Path(args.parts_dir),
        Path(args.output_dir),
        schema,
        options,
        args.seed,
        args.train_shards,
        {
            "input": {"data_digest": args.data_digest} if args.data_digest else {},
            "fractions": fractions,
        },
        check_verified,
    )
    LOG.info(
        "merged %d file(s): train/validation/test = %s rows in %.1f s",
        len(report["input"]["files"]),
        "/".join(str(report["splits"][s]["rows"]) for s in SPLITS),
        time.perf_counter() - started,
    )
    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Validate and split the landed dataset.")
    parser.add_argument("--input-dir", default=DEFAULT_INPUT_DIR, help="data files, recursive")
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, help="split outputs")
    parser.add_argument("--schema", required=True, help="feature schema: JSON, or a JSON file")
    parser.add_argument("--validation-fraction", type=float, default=0.15, help="(0.15)")
    parser.add_argument("--test-fraction", type=float, default=0.15, help="(0.15)")
    parser.add_argument("--seed", type=int, default=42, help="split and sampling seed (42)")
    parser.add_argument(
        "--id-column",
        default=None,
        help="split by a stable hash of this column's values (default: of each row's feature "
        "values)",
    )
    parser.add_argument(
        "--time-column",
        default=None,
        help="split by time instead: the oldest rows train, the newest test (numbers or ISO "
        "8601 date-times)",
    )
    parser.add_argument(
        "--train-shards",
        type=int,
        default=1,
        help="write the train split as this many shard files under train/shards/ (1: one "
        "train/train.csv)",
    )
    parser.add_argument(
        "--shard",
        action="store_true",
        help="one of several processing instances: read this instance's files and write "
        "parts below --output-dir/parts for the merge (default: the whole version here)",
    )
    parser.add_argument(
        "--parts-dir",
        default=None,
        help="merge: read the instances' parts below this folder instead of --input-dir "
        "(default: not a merge)",
    )
    parser.add_argument(
        "--all-to-test",
        action="store_true",
        help="evaluation only: validate, then write every labelled row to test/ (no split, "
        "no baseline; the fractions and seed are not used)",
    )
    parser.add_argument(
        "--data-digest",
        default=None,
        help="digest of the dataset version, recorded in the report (default: none)",
    )
    parser.add_argument(
        "--manifest-dir",
        default=None,
        help="folder holding the run's version manifest <data digest>.json: the input is "
        "verified against it before any data is read (default: not verified)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the step; 0 on success, 1 on bad input (reason in the failure file and stderr)."""
    configure_logging(LOG)
    args = parse_args(argv)
    args.verified = None

    def work() -> None:
        if args.manifest_dir is not None:
            if not args.data_digest:
                raise ValidationError("--manifest-dir needs --data-digest: the manifest's name")
            if not args.parts_dir:
                checked = verify_run_inputs(
                    args.manifest_dir, args.input_dir, args.data_digest, shard=args.shard
                )
                LOG.info("input matches its version manifest: %s", json.dumps(checked.as_dict()))
                args.verified = [f.key for f in checked.files]
        run(args)

    return run_step(
        "prepare",
        LOG,
        work,
        failure_file=PROCESSING_FAILURE_FILE,
        expected=(ValidationError, InputMismatch, ShardingError),
    )


if __name__ == "__main__":
    sys.exit(main())
