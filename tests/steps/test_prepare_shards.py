"""Prepare across processing instances (prepare.py --shard, then --parts-dir): the instances'
parts merged give byte for byte what the single-instance Prepare writes, however the files are
dealt out (ShardedByS3Key gives each instance whole objects, some instances none), and a row's
split never depends on which instance read it."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_code.steps import load
from tests.steps import SCHEMA, SCHEMA_JSON, small_frame, write
from tests.steps.test_verify_inputs import entry, hexed, manifest_of, reference_crc32c

prepare = load("prepare")
shard_parts = load("prepare", "shard_parts")
step_failure = load("common", "failure")

# Names whose order as text differs from their order part by part ('.' and '-' sort before
# '/'): `batch.csv`, `batch/x.csv`, `batch-2/y.csv` must be read in one order by both paths.
FILES = [
    "2026/01/a.csv",
    "2026/01/b.csv.gz",
    "2026/02/c.parquet",
    "2026/02/d.csv",
    "batch.csv",
    "batch/x.csv",
    "batch-2/y.parquet",
    "e.csv",
]


@pytest.fixture(autouse=True)
def failure_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "failure" / "message"
    monkeypatch.setenv(step_failure.FAILURE_FILE_ENV, str(path))
    return path


def version(root: Path, frame: pd.DataFrame, names: list[str] = FILES) -> Path:
    """The version as a producer lands it: the rows cut into files of every format."""
    for name, rows in zip(names, np.array_split(np.arange(len(frame)), len(names)), strict=True):
        write(frame.iloc[rows].reset_index(drop=True), root / name)
    (root / "_SUCCESS").write_text("")
    return root


def deal(files: list[str], instances: int) -> list[list[str]]:
    """Whole objects to instances as ShardedByS3Key may (any deal is allowed): in turn."""
    return [files[i::instances] for i in range(instances)]


def run_sharded(
    source: Path,
    work: Path,
    instances: int,
    monkeypatch: pytest.MonkeyPatch,
    *extra: str,
    files: list[str] = FILES,
    schema: str = SCHEMA_JSON,
) -> tuple[int, Path]:
    """Each instance's input copied apart, `--shard` run as that host, every instance's
    output uploaded to one prefix, then the merge; returns its exit code and output."""
    uploaded = work / "uploaded"
    uploaded.mkdir(parents=True)
    for number, share in enumerate(deal(files, instances), start=1):
        host = f"algo-{number}"
        config = work / host / "resourceconfig.json"
        config.parent.mkdir(parents=True)
        hosts = [f"algo-{n}" for n in range(1, instances + 1)]
        config.write_text(json.dumps({"current_host": host, "hosts": hosts}))
        monkeypatch.setattr(shard_parts, "RESOURCE_CONFIG", config)
        for name in share:
            (work / host / "in" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source / name, work / host / "in" / name)
        args = ["--input-dir", str(work / host / "in"), "--output-dir", str(work / host / "out")]
        assert prepare.main([*args, "--schema", schema, "--shard", *extra]) == 0
        shutil.copytree(work / host / "out", uploaded, dirs_exist_ok=True)
    merged = work / "merged"
    code = prepare.main(
        ["--parts-dir", str(uploaded), "--output-dir", str(merged), "--schema", schema, *extra]
    )
    return code, merged


def outputs(root: Path) -> dict[str, bytes]:
    """Every output file's bytes; the sharded Prepare's test split, one file per instance
    (`split_test_files`), joined back as test/test.csv: its header once, its rows in order."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return joined_test_split({str(p.relative_to(root)): p.read_bytes() for p in files})


def joined_test_split(found: dict[str, bytes]) -> dict[str, bytes]:
    """`found` (file bytes by output path) with test/test-NNNNN.csv joined as test/test.csv."""
    parts = sorted(name for name in found if re.fullmatch(r"test/test-\d{5}\.csv", name))
    if parts:
        texts = [found.pop(name) for name in parts]
        header = texts[0].split(b"\n", 1)[0] + b"\n"
        assert all(text.startswith(header) for text in texts)
        found["test/test.csv"] = header + b"".join(text[len(header) :] for text in texts)
    return found


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return version(tmp_path_factory.mktemp("version"), small_frame(3000, seed=7))


@pytest.mark.parametrize(
    ("instances", "extra"),
    [
        (2, ()),
        (3, ()),
        (10, ()),  # more instances than files: two receive nothing
        (2, ("--train-shards", "3")),
        (3, ("--train-shards", "4")),  # shards not aligned with files or instances
    ],
)
def test_merged_shards_are_byte_identical_to_the_single_instance_outputs(
    landed: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    instances: int,
    extra: tuple[str, ...],
) -> None:
    single = tmp_path / "single"
    assert (
        prepare.main(
            [
                "--input-dir",
                str(landed),
                "--output-dir",
                str(single),
                "--schema",
                SCHEMA_JSON,
                *extra,
            ]
        )
        == 0
    )
    code, merged = run_sharded(landed, tmp_path / "sharded", instances, monkeypatch, *extra)
    assert code == 0
    assert outputs(merged) == outputs(single)
    # the test split in one file per instance, for EvaluateShards' ShardedByS3Key input
    parts = sorted(p.name for p in (merged / "test").glob("*.csv"))
    assert parts == [f"test-{n:05d}.csv" for n in range(instances)]


def test_a_rows_split_is_the_same_whether_read_by_one_two_or_three_instances(
    landed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Membership by the rows themselves: every feature row, per split, from the parts."""
    memberships = []
    for instances in (1, 2, 3):
        run_sharded(landed, tmp_path / str(instances), instances, monkeypatch)
        parts = sorted((tmp_path / str(instances) / "uploaded" / "parts").glob("part-*.parquet"))
        assert len(parts) == len(FILES)
        frame = pd.concat(pd.read_parquet(p) for p in parts)
        features = [f["name"] for f in SCHEMA["features"]]
        memberships.append(
            {
                # NaN (missing) never equals itself: compare it as a marker text.
                code: sorted(map(tuple, rows[features].astype(str).to_numpy().tolist()))
                for code, rows in frame.groupby(shard_parts.SPLIT_COLUMN)
            }
        )
    assert memberships[0] == memberships[1] == memberships[2]
    assert sorted(memberships[0]) == [0, 1, 2]


def test_an_id_split_merges_to_the_single_instance_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = small_frame(2000, seed=11)
    frame.insert(0, "customer_id", [f"c{i % 1500}" for i in range(len(frame))])
    source = version(tmp_path / "version", frame)
    single = tmp_path / "single"
    extra = ("--id-column", "customer_id")
    assert (
        prepare.main(
            [
                "--input-dir",
                str(source),
                "--output-dir",
                str(single),
                "--schema",
                SCHEMA_JSON,
                *extra,
            ]
        )
        == 0
    )
    code, merged = run_sharded(source, tmp_path / "sharded", 3, monkeypatch, *extra)
    assert code == 0
    assert outputs(merged) == outputs(single)


def test_category_features_merge_to_the_single_instance_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text values (canonical text, "1" and "1.0" one category, some missing) survive the
    parts; the statistics count them over the whole version."""
    frame = small_frame(2000, seed=13)
    rng = np.random.default_rng(0)
    frame["channel"] = rng.choice(
        ["web", "store", "1", "1.0", ""], size=len(frame), p=[0.4, 0.3, 0.14, 0.14, 0.02]
    )
    schema = json.dumps(
        {**SCHEMA, "features": [*SCHEMA["features"], {"name": "channel", "type": "category"}]}
    )
    source = version(tmp_path / "version", frame)
    single = tmp_path / "single"
    assert (
        prepare.main(["--input-dir", str(source), "--output-dir", str(single), "--schema", schema])
        == 0
    )
    code, merged = run_sharded(source, tmp_path / "sharded", 3, monkeypatch, schema=schema)
    assert code == 0
    assert outputs(merged) == outputs(single)
    statistics = json.loads((merged / "baseline" / "statistics.json").read_text())
    assert statistics["features"]["channel"]["type"] == "category"


def version_manifest(source: Path, names: list[str]) -> dict[str, object]:
    entries = []
    for name in names:
        body = (source / name).read_bytes()
        entries.append(entry(name, body, "crc32c", hexed(reference_crc32c(body), 32)))
    return manifest_of(entries)


def test_the_instances_verify_their_files_and_the_merge_that_they_read_every_file(
    landed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure_file: Path
) -> None:
    manifest = version_manifest(landed, FILES)
    digest = str(manifest["data_digest"])
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / f"{digest}.json").write_text(json.dumps(manifest))
    extra = ("--manifest-dir", str(manifests), "--data-digest", digest)
    code, _ = run_sharded(landed, tmp_path / "all", 3, monkeypatch, *extra)
    assert code == 0
    # One object never reached an instance: every instance's own files still match.
    code, merged = run_sharded(landed, tmp_path / "lost", 3, monkeypatch, *extra, files=FILES[1:])
    assert code == 1
    reason = failure_file.read_text()
    assert "together read 1 file(s) fewer ('2026/01/a.csv')" in reason
    assert f"dataset-manifests/{digest}.json" in reason
    assert not (merged / "train" / "train.csv").exists()


def test_an_instance_refuses_a_file_its_manifest_does_not_name(
    landed: Path, tmp_path: Path, failure_file: Path
) -> None:
    manifest = version_manifest(landed, FILES[:-1])
    digest = str(manifest["data_digest"])
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / f"{digest}.json").write_text(json.dumps(manifest))
    shutil.copytree(landed, tmp_path / "in")
    args = ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")]
    extra = ["--manifest-dir", str(tmp_path / "m"), "--data-digest", digest, "--shard"]
    assert prepare.main([*args, "--schema", SCHEMA_JSON, *extra]) == 1
    assert "1 not in the manifest ('e.csv')" in failure_file.read_text()


def test_the_evaluation_only_prepare_is_refused_on_a_shard_naming_the_flag(
    landed: Path, tmp_path: Path, failure_file: Path
) -> None:
    args = ["--input-dir", str(landed), "--output-dir", str(tmp_path / "out"), "--shard"]
    assert prepare.main([*args, "--schema", SCHEMA_JSON, "--all-to-test"]) == 1
    assert "--all-to-test with --shard or --parts-dir" in failure_file.read_text()


def test_a_file_read_by_two_instances_stops_the_merge(
    landed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure_file: Path
) -> None:
    code, _ = run_sharded(landed, tmp_path / "twice", 2, monkeypatch, files=[FILES[0], *FILES])
    assert code == 1
    assert "1 input file(s) were read by more than one processing instance" in (
        failure_file.read_text()
    )


def test_part_names_are_unique_per_file_and_the_same_on_every_instance() -> None:
    names = {shard_parts.part_name(f) for f in FILES}
    assert len(names) == len(FILES)
    digest = hashlib.sha256(FILES[0].encode()).hexdigest()[:20]
    assert shard_parts.part_name(FILES[0]) == f"part-{digest}.parquet"


def _shards_only(source: Path, work: Path, instances: int, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The instances' uploaded parts, before the merge."""
    run_sharded(source, work, instances, monkeypatch)
    return work / "uploaded"


def _merge(uploaded: Path, out: Path) -> int:
    return prepare.main(
        ["--parts-dir", str(uploaded), "--output-dir", str(out), "--schema", SCHEMA_JSON]
    )


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"seed": 43}, "processing instance algo-1 split by {'method': 'hash-v1', 'seed': 43"),
        ({"test_fraction": 0.2}, "the instances ran other code or arguments than the merge"),
    ],
)
def test_an_instance_that_split_by_another_rule_stops_the_merge(
    landed: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failure_file: Path,
    change: dict[str, object],
    fragment: str,
) -> None:
    """Instances running other code or arguments than the merge (a half-finished deploy)."""
    uploaded = _shards_only(landed, tmp_path / "work", 2, monkeypatch)
    path = uploaded / "parts" / "summary-algo-1.json"
    summary = json.loads(path.read_text())
    summary["split_rule"] = {**summary["split_rule"], **change}
    path.write_text(json.dumps(summary))
    assert _merge(uploaded, tmp_path / "merged") == 1
    assert fragment in failure_file.read_text()
    assert not (tmp_path / "merged" / "train" / "train.csv").exists()


def test_a_part_whose_rows_disagree_with_its_summary_stops_the_merge(
    landed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure_file: Path
) -> None:
    """A row moved to another split in a part (parts of two runs mixed) is not merged."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    uploaded = _shards_only(landed, tmp_path / "work", 2, monkeypatch)
    part = sorted((uploaded / "parts").glob("part-*.parquet"))[0]
    table = pq.read_table(part)
    codes = table.column(shard_parts.SPLIT_COLUMN).to_numpy().copy()
    codes[0] = (codes[0] + 1) % 3
    index = table.column_names.index(shard_parts.SPLIT_COLUMN)
    pq.write_table(table.set_column(index, shard_parts.SPLIT_COLUMN, pa.array(codes)), part)
    assert _merge(uploaded, tmp_path / "merged") == 1
    assert "rows per split (train/validation/test) in its order, its instance's" in (
        failure_file.read_text()
    )
    assert not (tmp_path / "merged" / "train" / "train.csv").exists()


def test_a_part_that_was_not_uploaded_stops_the_merge_naming_the_file(
    landed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure_file: Path
) -> None:
    uploaded = _shards_only(landed, tmp_path / "work", 2, monkeypatch)
    (uploaded / "parts" / shard_parts.part_name(FILES[2])).unlink()
    assert _merge(uploaded, tmp_path / "merged") == 1
    message = failure_file.read_text()
    assert f"of input file {FILES[2]!r} is missing below" in message
    # The cause when every instance did upload it: a cache hit on an expired earlier run.
    written = sorted(
        json.loads(p.read_text())["written"] for p in (uploaded / "parts").glob("summary-*")
    )[0]
    assert f"the earlier execution's parts (written {written}) may have expired" in message
    assert "make PrepareShards run again" in message
    assert "\n" not in message.strip()


def test_the_summaries_say_when_they_were_written_in_utc(
    landed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    before = datetime.now(UTC).replace(microsecond=0)
    uploaded = _shards_only(landed, tmp_path / "work", 2, monkeypatch)
    for path in (uploaded / "parts").glob("summary-*.json"):
        text = json.loads(path.read_text())["written"]
        written = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert before <= written <= datetime.now(UTC) + timedelta(seconds=1)


def test_a_rule_mismatch_is_not_blamed_on_expired_parts(
    landed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure_file: Path
) -> None:
    uploaded = _shards_only(landed, tmp_path / "work", 2, monkeypatch)
    path = uploaded / "parts" / "summary-algo-1.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"train_shards": 5}))
    assert _merge(uploaded, tmp_path / "merged") == 1
    assert "may have expired" not in failure_file.read_text()


def test_a_merge_without_any_instance_summary_says_so(tmp_path: Path, failure_file: Path) -> None:
    (tmp_path / "parts").mkdir()
    assert _merge(tmp_path / "parts", tmp_path / "merged") == 1
    message = failure_file.read_text()
    assert "no instance summaries (summary-<instance>.json)" in message
    assert "if this execution's PrepareShards was a cache hit" in message


def test_an_instance_without_files_succeeds_and_says_it_read_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "resourceconfig.json"
    config.write_text(json.dumps({"current_host": "algo-4", "hosts": ["algo-4"]}))
    monkeypatch.setattr(shard_parts, "RESOURCE_CONFIG", config)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "_SUCCESS").write_text("")  # a marker is not data
    args = ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")]
    assert prepare.main([*args, "--schema", SCHEMA_JSON, "--shard"]) == 0
    summary = json.loads((tmp_path / "out" / "parts" / "summary-algo-4.json").read_text())
    assert summary["instance"] == "algo-4"
    assert summary["files"] == []
    assert summary["split_rule"]["method"] == "hash-v1"
