"""Which instance wrote what: `--shard` names itself from SageMaker's resource config or refuses
to run, and the merge needs exactly one summary from every host of the job, so instances
overwriting each other's summary or a summary not uploaded never yield part of the version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.steps import SCHEMA_JSON
from tests.steps.test_prepare_shards import (
    failure_file,
    landed,
    prepare,
    run_sharded,
    shard_parts,
)

__all__ = ["failure_file", "landed"]  # the fixtures, shared


def _merge(parts: Path, out: Path) -> int:
    return prepare.main(
        ["--parts-dir", str(parts), "--output-dir", str(out), "--schema", SCHEMA_JSON]
    )


@pytest.mark.parametrize(
    "config",
    [None, "not json", {"hosts": ["algo-1"]}, {"current_host": "algo-3", "hosts": ["algo-1"]}],
)
def test_an_instance_without_a_readable_resource_config_refuses_to_run(
    landed: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failure_file: Path,
    config: object,
) -> None:
    path = tmp_path / "resourceconfig.json"
    if config is not None:
        path.write_text(config if isinstance(config, str) else json.dumps(config))
    monkeypatch.setattr(shard_parts, "RESOURCE_CONFIG", path)
    args = ["--input-dir", str(landed), "--output-dir", str(tmp_path / "out"), "--shard"]
    assert prepare.main([*args, "--schema", SCHEMA_JSON]) == 1
    assert "resource config" in failure_file.read_text()
    assert not list((tmp_path / "out").rglob("summary-*.json"))


def test_each_summary_records_the_jobs_hosts(
    landed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _ = run_sharded(landed, tmp_path / "w", 3, monkeypatch)
    assert code == 0
    for path in sorted((tmp_path / "w" / "uploaded" / "parts").glob("summary-*.json")):
        summary = json.loads(path.read_text())
        assert summary["hosts"] == ["algo-1", "algo-2", "algo-3"]
        assert path.name == f"summary-{summary['instance']}.json"


def test_the_merge_refuses_when_a_hosts_summary_is_missing(
    landed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure_file: Path
) -> None:
    code, _ = run_sharded(landed, tmp_path / "w", 3, monkeypatch)
    assert code == 0
    parts = tmp_path / "w" / "uploaded"
    (parts / "parts" / "summary-algo-2.json").unlink()
    assert _merge(parts, tmp_path / "merged") == 1
    message = failure_file.read_text()
    assert "['algo-1', 'algo-3']" in message
    assert "['algo-1', 'algo-2', 'algo-3']" in message
    assert "may have expired" in message
    assert not (tmp_path / "merged" / "train").exists()


def test_the_merge_refuses_summaries_from_different_jobs(
    landed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure_file: Path
) -> None:
    code, _ = run_sharded(landed, tmp_path / "w", 2, monkeypatch)
    assert code == 0
    path = tmp_path / "w" / "uploaded" / "parts" / "summary-algo-2.json"
    summary = json.loads(path.read_text())
    path.write_text(json.dumps(summary | {"hosts": ["algo-1", "algo-2", "algo-3"]}))
    assert _merge(tmp_path / "w" / "uploaded", tmp_path / "merged") == 1
    assert "not from one processing job" in failure_file.read_text()
    assert "may have expired" not in failure_file.read_text()
