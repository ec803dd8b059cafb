"""The merge after a sharded Prepare (`prepare.py --parts-dir`): from the parts every
instance wrote (`shard_parts`), on one instance, the outputs the single-instance Prepare
writes, byte for byte (but the test split's rows in one file per instance), without ever
holding the version in one frame.

    1. the summaries: every instance's, every file read once, every instance applied the
       merge's split rule (and train shard count), every part present; the version-wide
       checks of the values from the files' findings (rows, missing fractions, infinite or
       out-of-range values, both classes; then a time split's times: `shard_checks`,
       `shard_targets`), as the single instance makes them; with a time split or a
       multi-class target the rows placed here (`shard_placing`); then the splits' own
       checks (`splitting.check_splits`) on the splits' targets read from the parts
    2. the split CSV files (and train shards): the header, then each file's CSV part in the
       order the single-instance Prepare reads the files (sorted by path), streamed; the
       test split then cut into one file per instance, rows in order (`split_test_files`)
    3. the statistics that need every value of a feature (the test split's quantiles, the
       training split's profile, how far validation and test moved from it): one feature at a
       time, read from the Parquet parts as that one column (`shard_statistics`)
    4. the drift baseline: the single-instance sample of the test rows, picked part by part
       as the rows' positions in the test split (`shard_statistics`)

Its memory is up to one number feature column of the version per thread (threads bounded by
the CPUs and the available memory, `shard_statistics.merge_workers`), or one category column
alone, never the version. A file two instances both read, a part that was not uploaded, or an
instance that split by another rule stops the merge.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from common.labels import write_labels
from common.problem_types import BINARY
from common.stable_split import SPLITS
from common.training_data import TRAINING_DATA_FILE, record
from dataset_reading import file_order
from dataset_schema import Schema, ValidationError
from shard_checks import check_version
from shard_parts import PLACED_DIR, SUMMARY_PREFIX, csv_part_name, find_parts, split_rule
from shard_placing import place_rows
from shard_statistics import baseline_rows, check_parts, feature_reports, split_values
from shard_targets import MissingParts, check_times, deferred, target_check, version_labels
from split_outputs import (
    MODEL_MONITOR_BASELINE_FILE,
    schema_report,
    split_columns,
    write_csv,
    write_json,
)
from split_test_files import split_test_file
from splitting import SplitOptions, check_splits
from target_kinds import target_balance, target_profile
from train_shards import shard_file

IGNORED_REASON = "not in the schema (neither the target nor a feature)"


def read_summaries(parts_dir: Path) -> list[dict[str, Any]]:
    """Every instance's summary below `parts_dir` (wherever the download put them)."""
    paths = sorted(parts_dir.rglob(f"{SUMMARY_PREFIX}*.json"))
    if not paths:
        raise MissingParts(
            f"no instance summaries ({SUMMARY_PREFIX}<instance>.json) below {parts_dir}: "
            "the sharded Prepare wrote none"
        )
    return [json.loads(path.read_text("utf-8")) for path in paths]


def check_hosts(summaries: list[dict[str, Any]]) -> None:
    """Exactly one summary from each of the job's instances (as their resource config names
    them), so the merge never succeeds on part of the version."""
    hosts = {tuple(summary.get("hosts") or ()) for summary in summaries}
    if len(hosts) != 1 or not next(iter(hosts)):
        raise ValidationError(
            f"the {len(summaries)} instance summaries name different or no hosts "
            f"{sorted(hosts)}: they are not from one processing job"
        )
    expected = sorted(next(iter(hosts)))
    found = sorted(str(summary.get("instance")) for summary in summaries)
    if found != expected:
        raise (MissingParts if set(found) < set(expected) else ValidationError)(
            f"instance summaries from {found} but the processing job ran on {expected}: "
            "every instance must write exactly one"
        )


def file_entries(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every instance's files in the single instance's `file_order`; a file read twice stops
    the merge."""
    entries = sorted(
        (entry for summary in summaries for entry in summary["files"]),
        key=lambda e: file_order(e["file"]),
    )
    counts = Counter(e["file"] for e in entries)
    doubled = sorted(name for name, count in counts.items() if count > 1)
    if doubled:
        raise ValidationError(
            f"{len(doubled)} input file(s) were read by more than one processing instance, "
            f"e.g. {doubled[0]!r}: the input must be distributed ShardedByS3Key"
        )
    return entries


def check_rules(summaries: list[dict[str, Any]], rule: dict[str, Any], train_shards: int) -> None:
    """Every instance split by the merge's rule into as many train shards."""
    for summary in summaries:
        theirs = (summary.get("split_rule"), summary.get("train_shards"))
        if theirs != (rule, train_shards):
            raise ValidationError(
                f"processing instance {summary['instance']} split by {theirs[0]} into "
                f"{theirs[1]} train shard(s), the merge by {rule} into {train_shards}: the "
                "instances ran other code or arguments than the merge"
            )


def part_paths(
    parts_dir: Path, entries: list[dict[str, Any]], train_shards: int
) -> dict[str, Path]:
    """Every part the entries name, by file name; a missing one stops the merge."""
    found = find_parts(parts_dir)
    for entry in entries:
        part = entry["part"]
        names = [part, csv_part_name(part, "validation"), csv_part_name(part, "test")]
        if train_shards > 1:
            names += [csv_part_name(part, "train", k) for k in range(train_shards)]
        else:
            names.append(csv_part_name(part, "train"))
        for name in names:
            if name not in found:
                raise MissingParts(
                    f"part {name} of input file {entry['file']!r} is missing below "
                    f"{parts_dir}: an instance's output was not uploaded"
                )
    return found


def _concatenate(path: Path, header: list[str], parts: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as sink:
        sink.write((",".join(header) + "\n").encode())
        for part in parts:
            with part.open("rb") as source:
                shutil.copyfileobj(source, sink, 1 << 20)


def write_splits(
    entries: list[dict[str, Any]],
    found: dict[str, Path],
    schema: Schema,
    rule: dict[str, Any],
    output_dir: Path,
    train_shards: int,
) -> list[int] | None:
    """The split CSV files from the parts; with train shards, each shard's rows in turn over
    the version (a file's local shard k is the version's (k + train rows before it) mod N)."""
    header = [schema.target, *schema.feature_names]
    for name in ("validation", "test"):
        key = rule.get("id_column") or rule.get("time_column")
        columns = [*header, key] if name == "test" and key else header
        parts = [found[csv_part_name(e["part"], name)] for e in entries]
        _concatenate(output_dir / name / f"{name}.csv", columns, parts)
    if train_shards == 1:
        parts = [found[csv_part_name(e["part"], "train")] for e in entries]
        _concatenate(output_dir / "train" / "train.csv", header, parts)
        return None
    train = [e["splits"]["train"]["rows"] for e in entries]
    if sum(train) < train_shards:
        from train_shards import shard_rows

        shard_rows(np.arange(sum(train)), train_shards)  # its error, as on one instance
    offsets = np.concatenate([[0], np.cumsum(train)[:-1]]).astype(int)
    for shard in range(train_shards):
        parts = [
            found[csv_part_name(e["part"], "train", (shard - int(before)) % train_shards)]
            for e, before in zip(entries, offsets, strict=True)
        ]
        _concatenate(shard_file(output_dir, shard), header, parts)
    return [len(range(shard, sum(train), train_shards)) for shard in range(train_shards)]


def expired_hint(summaries: list[dict[str, Any]]) -> str:
    """Why parts may be missing although every instance uploaded them: a PrepareShards cache
    hit hands Prepare an earlier execution's parts, which the artifact bucket expires."""
    written = sorted(str(s["written"]) for s in summaries if s.get("written"))
    age = f" (written {written[0]})" if written else ""
    return (
        f"; if this execution's PrepareShards was a cache hit, the earlier execution's parts"
        f"{age} may have expired (the artifact bucket's expire-shard-parts rule): make "
        "PrepareShards run again (a cache miss: land the version again, or deploy a "
        "pipeline.cache_expire_after shorter than the parts' age) and start the pipeline again"
    )


@contextmanager
def _missing_parts_explained(summaries: list[dict[str, Any]]) -> Iterator[None]:
    """A missing summary or part refused with its likely cause (`expired_hint`)."""
    try:
        yield
    except MissingParts as error:
        raise ValidationError(f"{error}{expired_hint(summaries)}") from error


def merge(
    parts_dir: Path,
    output_dir: Path,
    schema: Schema,
    options: SplitOptions,
    seed: int,
    train_shards: int,
    extra_report: dict[str, Any],
    check_verified: Callable[[list[str]], None] | None = None,
) -> dict[str, Any]:
    """Check the summaries (`check_verified`: the files the instances verified against the
    manifest), write every output of the single-instance Prepare; returns its report.
    `extra_report["input"]` gets the input's files, rows and rows without a target."""
    summaries: list[dict[str, Any]] = []
    with _missing_parts_explained(summaries):
        summaries += read_summaries(parts_dir)
        check_hosts(summaries)
        entries = file_entries(summaries)
        if not entries:
            raise ValidationError(
                f"no input files: none of the {len(summaries)} processing instance(s) received a "
                "*.csv, *.csv.gz or *.parquet file"
            )
        rule = split_rule(options, schema)
        check_rules(summaries, rule, train_shards)
        if check_verified is not None:
            check_verified([key for summary in summaries for key in summary.get("verified", [])])
        labels = version_labels(entries, schema)
        parquet = find_parts(parts_dir, "part-*.parquet")
        check_version(entries, schema, target_check(entries, parquet, schema, labels))
        if options.time_column:  # after the values, as the single instance parses them
            check_times(entries, options.time_column)
        if deferred(schema, options):  # placed inside the download, the instances' parts untouched
            placed = parts_dir / PLACED_DIR
            rule = place_rows(entries, parts_dir, schema, options, labels, train_shards, placed)
            parts_dir = placed
        found = part_paths(parts_dir, entries, train_shards)
        check_parts(entries, found)
        targets = dict(zip(SPLITS, split_values(entries, found, schema.target, False), strict=True))
        check_splits(schema, rule, targets, labels)
        test_statistics, profiles, distances = feature_reports(entries, found, schema)
        shard_counts = write_splits(entries, found, schema, rule, output_dir, train_shards)
        # one test file per instance: EvaluateShards predicts them ShardedByS3Key
        split_test_file(output_dir / "test" / "test.csv", int(targets["test"].size), len(summaries))
        write_labels(output_dir / "test", labels)
        baseline = baseline_rows(entries, found, schema, seed)
        baseline_columns = split_columns(
            baseline, schema, np.arange(len(baseline.columns[schema.feature_names[0]])), False
        )
        write_csv(output_dir / "baseline" / "baseline.csv", baseline_columns)
        write_csv(
            output_dir / "baseline" / MODEL_MONITOR_BASELINE_FILE, baseline_columns, header=False
        )
        train = targets["train"]
        reference = {
            "source": "train split",
            "rows": int(train.size),
            **(
                {"positives": int(train.sum())}
                if schema.problem_type == BINARY
                else {
                    "target": target_balance(schema, train, labels),
                    "target_profile": target_profile(schema, train, labels),
                }
            ),
            "features": profiles,
        }
        statistics = {
            "source": "test split",
            "rows": int(targets["test"].size),
            "features": test_statistics,
            "reference": reference,
        }
        write_json(output_dir / "baseline" / "statistics.json", statistics)
        balances = {name: target_balance(schema, y, labels) for name, y in targets.items()}
        labelled = sum(y.size for y in targets.values())
        write_json(
            output_dir / "train" / TRAINING_DATA_FILE,
            record(rule, labelled, balances, reference, labels, dict(schema.features)),
        )
        ignored: list[str] = []
        for entry in entries:
            ignored += [c for c in entry["ignored_columns"] if c not in ignored]
        dropped = sum(e["dropped_missing_target"] for e in entries)
        extra_report["input"] = {
            "files": [{"file": e["file"], "rows": e["rows"]} for e in entries],
            "rows": labelled + dropped,
            "dropped_missing_target": dropped,
            **extra_report["input"],
        }
        report = {
            **extra_report,
            "schema": schema_report(schema),
            "labels": labels,
            "ignored_columns": {name: IGNORED_REASON for name in ignored},
            "seed": seed,
            "split_rule": rule,
            "splits": balances,
            "baseline_rows": len(baseline.columns[schema.feature_names[0]]),
            "feature_distance": distances,
        }
        if shard_counts is not None:
            report["train_shards"] = shard_counts
        write_json(output_dir / "report" / "split_report.json", report)
        return report
