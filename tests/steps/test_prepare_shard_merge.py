"""How the merge after a sharded Prepare computes (`shard_statistics`): features at once by
CPUs and memory, one column read at a time, category features alone on its own thread, and the
drift baseline's sample of a test split above BASELINE_MAX_ROWS, byte for byte the single
instance's."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline_code.steps import load
from tests.steps import SCHEMA, SCHEMA_JSON, small_frame
from tests.steps.test_prepare_shards import (
    FILES,
    _merge,
    _shards_only,
    failure_file,
    landed,
    outputs,
    prepare,
    run_sharded,
    shard_parts,
    version,
)

__all__ = ["failure_file", "landed"]  # the fixtures, shared


def test_a_test_split_above_the_baseline_limit_is_sampled_as_on_one_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """90,000 rows: about 13,500 test rows, more than BASELINE_MAX_ROWS (10,000), so the
    baseline is the single instance's seeded sample, taken part by part in the merge."""
    source = version(tmp_path / "version", small_frame(90_000, seed=3))
    single = tmp_path / "single"
    args = ["--input-dir", str(source), "--output-dir", str(single), "--schema", SCHEMA_JSON]
    assert prepare.main(args) == 0
    report = json.loads((single / "report" / "split_report.json").read_text())
    assert report["baseline_rows"] == 10_000
    code, merged = run_sharded(source, tmp_path / "sharded", 3, monkeypatch)
    assert code == 0
    assert outputs(merged) == outputs(single)


def test_the_merge_computes_as_many_features_at_once_as_cpus_and_memory_allow(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shard_statistics = load("prepare", "shard_statistics")
    per_row = shard_statistics.BYTES_PER_ROW_AND_WORKER
    monkeypatch.setattr(shard_statistics.os, "cpu_count", lambda: 4)
    assert shard_statistics.merge_workers(10, 10**6, memory=100 * 10**6 * per_row) == 4
    assert shard_statistics.merge_workers(2, 10**6, memory=100 * 10**6 * per_row) == 2
    # Memory for two columns' work: two at once, not four.
    assert shard_statistics.merge_workers(10, 10**6, memory=2 * 10**6 * per_row + 1) == 2
    assert shard_statistics.merge_workers(10, 10**9, memory=10**6) == 1
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemAvailable:    8000000 kB\n")
    assert shard_statistics.available_memory(meminfo) == 8000000 * 1024
    assert shard_statistics.available_memory(tmp_path / "absent") is None


def test_the_merge_reads_one_feature_column_at_a_time_and_the_baseline_rows_only(
    landed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What makes the merge scale: no read of a part's every column except for the sampled
    baseline rows, and per feature (and for the splits' targets) one column (the parts' rows
    already in split order)."""
    shard_statistics = load("prepare", "shard_statistics")
    uploaded = _shards_only(landed, tmp_path / "work", 3, monkeypatch)
    reads: list[list[str]] = []
    read_columns = shard_statistics.read_columns

    def recording(path: Path, columns: list[str]) -> object:
        reads.append(columns)
        return read_columns(path, columns)

    monkeypatch.setattr(shard_statistics, "read_columns", recording)
    assert _merge(uploaded, tmp_path / "merged") == 0
    features = [f["name"] for f in SCHEMA["features"]]
    single = [columns for columns in reads if len(columns) == 1]
    assert sorted(c[0] for c in single) == sorted(
        [shard_parts.SPLIT_COLUMN, SCHEMA["target"], *features] * len(FILES)
    )
    # The baseline's rows: every feature, but only where the sample took test rows.
    assert all(columns == features for columns in reads if len(columns) > 1)


def test_the_merge_computes_category_features_alone_on_its_own_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A column of Python strings costs far more than the numbers' budget a row: category
    features are never computed beside another feature, and on the merge's own thread."""
    shard_statistics = load("prepare", "shard_statistics")
    frame = small_frame(600, seed=13)
    frame["channel"] = np.random.default_rng(0).choice(["web", "store"], size=len(frame))
    schema = {**SCHEMA, "features": [*SCHEMA["features"], {"name": "channel", "type": "category"}]}
    monkeypatch.setattr(shard_statistics.os, "cpu_count", lambda: 4)
    report = shard_statistics._feature_report
    running: set[str] = set()
    seen: dict[str, tuple[int, set[str]]] = {}
    lock = threading.Lock()

    def watched(entries: object, found: object, schema: object, name: str, kind: str) -> object:
        with lock:
            running.add(name)
            seen[name] = (threading.get_ident(), set(running))
        try:
            time.sleep(0.01)
            return report(entries, found, schema, name, kind)
        finally:
            with lock:
                running.discard(name)

    monkeypatch.setattr(shard_statistics, "_feature_report", watched)
    source = version(tmp_path / "version", frame)
    code, _ = run_sharded(source, tmp_path / "w", 2, monkeypatch, schema=json.dumps(schema))
    assert code == 0
    assert seen["channel"] == (threading.get_ident(), {"channel"})
    assert any(len(others) > 1 for _, others in seen.values())  # numbers ran at once
