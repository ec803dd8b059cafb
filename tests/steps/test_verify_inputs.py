"""The input check Prepare makes against its run's version manifest (pipeline_code/steps/
prepare/verify_inputs.py, input_checksums.py): CRCs against the CRC catalogue and independent
implementations (zlib, the bitwise definition, awscrt when installed), the check on manifests
built here, and prepare.py refusing to read an input that differs.
tests/lambdas/test_trigger_identity.py checks a manifest the trigger writes, end to end.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from pipeline_code.steps import load
from tests.lambda_loader import load_lambda_module
from tests.steps import SCHEMA_JSON, small_frame, write

verify = load("prepare", "verify_inputs")
checksums = load("prepare", "input_checksums")
prepare = load("prepare")
step_failure = load("common", "failure")

CHECK_INPUT = b"123456789"


def bitwise_crc(data: bytes, width: int, poly: int, init: int, xorout: int) -> int:
    """A reflected CRC one bit at a time: the textbook definition, nothing shared."""
    register = init
    for byte in data:
        register ^= byte
        for _ in range(8):
            register = (register >> 1) ^ poly if register & 1 else register >> 1
    return (register ^ xorout) & ((1 << width) - 1)


def reference_crc64nvme(data: bytes) -> int:
    return bitwise_crc(data, 64, 0x9A6C9329AC4BC9B5, (1 << 64) - 1, (1 << 64) - 1)


def reference_crc32c(data: bytes) -> int:
    return bitwise_crc(data, 32, 0x82F63B78, 0xFFFFFFFF, 0xFFFFFFFF)


# ---- CRCs ------------------------------------------------------------------------------------


def test_crcs_give_the_catalogue_check_values() -> None:
    assert checksums.crc64nvme().compute(CHECK_INPUT) == 0xAE8B14860A799888
    assert checksums.crc32c().compute(CHECK_INPUT) == 0xE3069283


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 4095, 4096, 4097, 65_537, 1_000_003])
def test_the_lane_parallel_engine_computes_zlibs_crc32(size: int) -> None:
    data = random.Random(size).randbytes(size)
    engine = checksums.Crc(32, 0xEDB88320, 0xFFFFFFFF, 0xFFFFFFFF)
    assert engine.compute(data) == zlib.crc32(data)


@pytest.mark.parametrize("size", [1, 4095, 4096, 6000, 8193, 20_000])
def test_crc64nvme_and_crc32c_match_the_bitwise_definition(size: int) -> None:
    data = random.Random(size).randbytes(size)
    assert checksums.crc64nvme().compute(data) == reference_crc64nvme(data)
    assert checksums.crc32c().compute(data) == reference_crc32c(data)


def test_a_crc_fed_in_pieces_equals_the_crc_of_the_whole() -> None:
    rng = random.Random(7)
    data = rng.randbytes(3 * 1024 * 1024 + 123)
    for crc in (checksums.crc64nvme(), checksums.crc32c()):
        state, position = crc.new(), 0
        while position < len(data):
            step = rng.choice([1, 100, 4096, 70_000, 1 << 20])
            state.update(data[position : position + step])
            position += step
        assert state.value() == crc.compute(data)
        assert crc.raw(data[:20_000]) ^ crc.shift(crc.init, 20_000) ^ crc.xorout == (
            bitwise_crc(data[:20_000], crc.width, crc.poly, crc.init, crc.xorout)
        )


def test_crcs_agree_with_the_aws_common_runtime_when_installed() -> None:
    checksums = pytest.importorskip("awscrt.checksums")
    data = random.Random(3).randbytes(5 * 1024 * 1024 + 9)
    assert checksums.crc32c().compute(data) == checksums.crc32c(data)
    assert checksums.crc64nvme().compute(data) == checksums.crc64nvme(data)


# ---- the check ---------------------------------------------------------------------------------


def hexed(value: int, width: int) -> str:
    return value.to_bytes(width // 8, "big").hex()


def version_dir(tmp_path: Path, files: dict[str, bytes]) -> Path:
    """A version prefix as SageMaker downloads it: data files plus the markers."""
    root = tmp_path / "input"
    for name, body in {**files, "_SUCCESS": b"", "manifest.json": b"{}"}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return root


def manifest_of(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A version manifest as the trigger writes it (its digest computed here, independently)."""
    lines = sorted(
        json.dumps(
            [e["key"], e["size"], e["identity"]["algorithm"], e["identity"]["value"],
             e["version_id"]],
            ensure_ascii=False, separators=(",", ":"),
        )
        for e in entries
    )  # fmt: skip
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return {"digest_format": 2, "data_digest": digest, "content_digest": "-", "files": entries}


def entry(key: str, body: bytes, algorithm: str, value: str, **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "version_id": f"v-{key}",
        "size": len(body),
        "identity": {"algorithm": algorithm, "value": value, "source": "s3-checksum"},
        **extra,
    }


FILES = {
    "part-0.csv": b"a,b\n1,2\n" * 1000,
    "2026/part 1+x.csv": bytes(range(256)) * 300,
    "été/part-2.csv": b"x" * 5,
}


def good_manifest() -> dict[str, Any]:
    a, b, c = FILES.values()
    return manifest_of(
        [
            entry("part-0.csv", a, "crc64nvme", hexed(reference_crc64nvme(a), 64)),
            entry("2026/part 1+x.csv", b, "crc32c", hexed(reference_crc32c(b), 32)),
            entry("été/part-2.csv", c, "sha256", hashlib.sha256(c).hexdigest(),
                  stated_sha256=hashlib.sha256(c).hexdigest()),
        ]
    )  # fmt: skip


def test_an_input_that_matches_its_manifest_is_reported(tmp_path: Path) -> None:
    manifest = good_manifest()
    report = verify.verify_inputs(
        manifest, version_dir(tmp_path, FILES), data_digest=manifest["data_digest"]
    )
    assert report.as_dict() | {"seconds": 0} == {
        "data_digest": manifest["data_digest"],
        "files": 3,
        "bytes": sum(map(len, FILES.values())),
        "seconds": 0,
        "checked_by": ["crc32c", "crc64nvme", "sha256"],
        "size_only": [],
    }


@pytest.mark.parametrize(
    ("change", "reason", "says"),
    [
        (lambda d: (d / "part-0.csv").write_bytes(b"A" + FILES["part-0.csv"][1:]), "checksum",
         "part-0.csv does not have the bytes its version manifest names (crc64nvme differ)"),
        (lambda d: (d / "2026/part 1+x.csv").write_bytes(b"changed"), "size",
         "2026/part 1+x.csv (manifest 76800, found 7)"),
        (lambda d: (d / "été/part-2.csv").unlink(), "file-set",
         "1 file(s) missing ('été/part-2.csv')"),
        (lambda d: (d / "late.csv").write_bytes(b"1"), "file-set",
         "1 not in the manifest ('late.csv')"),
    ],
    ids=["bytes", "size", "missing", "unlisted"],
)  # fmt: skip
def test_a_differing_input_is_refused_with_the_reason(
    tmp_path: Path, change: Any, reason: str, says: str
) -> None:
    root = version_dir(tmp_path, FILES)
    change(root)
    with pytest.raises(verify.InputMismatch) as raised:
        verify.verify_inputs(good_manifest(), root)
    assert (raised.value.reason, says in raised.value.message) == (reason, True), raised.value


def test_markers_and_metadata_files_are_not_inputs(tmp_path: Path) -> None:
    root = version_dir(tmp_path, FILES)
    (root / "_committed_1").write_bytes(b"x")
    (root / "2026" / ".part 1+x.csv.crc").write_bytes(b"x")
    assert len(verify.verify_inputs(good_manifest(), root).files) == 3


def test_the_data_file_rule_is_the_triggers() -> None:
    completion = load_lambda_module("start_training", "dataset_completion")
    for key in ["a.csv", "_SUCCESS", "manifest.json", "sub/manifest.json", "sub/_x", ".hidden",
                "sub/.crc", "a_b.csv", "sub/part-0.parquet"]:  # fmt: skip
        assert verify.is_data_file(key) == completion.is_data_key(key), key


def test_an_altered_manifest_is_refused(tmp_path: Path) -> None:
    manifest = good_manifest()
    manifest["files"][0]["size"] += 1
    with pytest.raises(verify.InputMismatch, match="it was altered") as raised:
        verify.verify_inputs(manifest, version_dir(tmp_path, FILES))
    assert raised.value.reason == "manifest-digest"
    with pytest.raises(verify.InputMismatch, match="the run's DataDigest is 0{64}"):
        verify.verify_inputs(good_manifest(), version_dir(tmp_path, FILES), data_digest="0" * 64)


def composite(body: bytes, part_size: int) -> dict[str, Any]:
    parts = [body[i : i + part_size] for i in range(0, len(body), part_size)]
    digests = [hashlib.sha256(p).digest() for p in parts]
    value = f"{hashlib.sha256(b''.join(digests)).hexdigest()}-{len(parts)}"
    listed = [{"size": len(p), "checksum": d.hex()} for p, d in zip(parts, digests, strict=True)]
    return {"identity": value, "parts": listed}


def test_composite_checksums_are_checked_part_by_part(tmp_path: Path) -> None:
    body = random.Random(5).randbytes(40 * 1024 * 1024 + 17)  # parts cross the read blocks
    made = composite(body, 8 * 1024 * 1024 + 5)
    manifest = manifest_of([entry("big.bin", body, "sha256-composite", made["identity"],
                                  parts=made["parts"])])  # fmt: skip
    root = version_dir(tmp_path, {"big.bin": body})
    report = verify.verify_inputs(manifest, root)
    assert [f.method for f in report.files] == ["sha256-composite (5 parts)"]

    flipped = bytearray(body)
    flipped[9 * 1024 * 1024] ^= 1
    (root / "big.bin").write_bytes(bytes(flipped))
    with pytest.raises(verify.InputMismatch, match=r"part 2, composite checksum differ"):
        verify.verify_inputs(manifest, root)


@pytest.mark.parametrize(
    ("identity", "why"),
    [
        (("sha256-composite", "ab-3"), "composite checksum without part sizes in the manifest"),
        (("etag", "5a1e2b3c4d5e6f708192a3b4c5d6e7f8-2"), "upload's ETag, which is no checksum"),
        (("xxhash64", "0123456789abcdef"), "xxhash64 cannot be computed here"),
    ],
)
def test_what_cannot_be_recomputed_is_checked_by_size_and_said(
    tmp_path: Path, identity: tuple[str, str], why: str
) -> None:
    body = b"payload"
    manifest = manifest_of([entry("a.bin", body, *identity)])
    report = verify.verify_inputs(manifest, version_dir(tmp_path, {"a.bin": body}))
    [size_only] = report.as_dict()["size_only"]
    assert size_only["key"] == "a.bin" and why in size_only["why"]


def test_a_sha256_stated_by_the_producer_is_checked_too(tmp_path: Path) -> None:
    body = b"payload"
    manifest = manifest_of([entry("a.bin", body, "etag", "x", stated_sha256="0" * 64)])
    with pytest.raises(verify.InputMismatch, match=r"a.bin .* \(sha256 differ\)"):
        verify.verify_inputs(manifest, version_dir(tmp_path, {"a.bin": body}))


# ---- prepare.py checks its input before reading it ------------------------------------------


@pytest.fixture
def landed(tmp_path: Path) -> tuple[Path, Path, str]:
    """A landed version (two CSV parts and the markers), its version manifest in a manifest
    folder as the pipeline mounts it, and the DataDigest."""
    frame = small_frame(1200, seed=5)
    root = tmp_path / "input"
    write(frame.iloc[:600], root / "part-0.csv")
    write(frame.iloc[600:], root / "day 2" / "part-1.csv")
    (root / "_SUCCESS").write_bytes(b"")
    entries = [
        entry(key, body, "sha256", hashlib.sha256(body).hexdigest())
        for key, body in (
            ("part-0.csv", (root / "part-0.csv").read_bytes()),
            ("day 2/part-1.csv", (root / "day 2" / "part-1.csv").read_bytes()),
        )
    ]
    manifest = manifest_of(entries)
    manifests = tmp_path / "manifest"
    manifests.mkdir()
    (manifests / f"{manifest['data_digest']}.json").write_text(json.dumps(manifest), "utf-8")
    return root, manifests, manifest["data_digest"]


def run_prepare(
    tmp_path: Path, root: Path, manifests: Path, digest: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    failure = tmp_path / "failure"
    monkeypatch.setenv(step_failure.FAILURE_FILE_ENV, str(failure))
    code = prepare.main(
        ["--input-dir", str(root), "--output-dir", str(tmp_path / "out"), "--schema",
         SCHEMA_JSON, "--data-digest", digest, "--manifest-dir", str(manifests)]
    )  # fmt: skip
    return code, failure.read_text("utf-8") if failure.exists() else ""


def test_prepare_reads_an_input_that_matches_its_manifest(
    tmp_path: Path, landed: tuple[Path, Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_prepare(tmp_path, *landed, monkeypatch) == (0, "")
    report = json.loads((tmp_path / "out" / "report" / "split_report.json").read_text())
    assert report["input"]["rows"] == 1200 and report["input"]["data_digest"] == landed[2]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda d: (d / "day 2" / "part-1.csv").write_bytes(
            (d / "day 2" / "part-1.csv").read_bytes().replace(b"1", b"2", 1)),
         "day 2/part-1.csv does not have the bytes its version manifest names (sha256 differ)"),
        (lambda d: (d / "part-0.csv").unlink(), "1 file(s) missing ('part-0.csv')"),
        (lambda d: (d / "late.csv").write_bytes(b"amount\n1\n"),
         "1 not in the manifest ('late.csv')"),
    ],
    ids=["bytes", "missing", "unlisted"],
)  # fmt: skip
def test_prepare_stops_before_reading_an_input_that_differs(
    tmp_path: Path,
    landed: tuple[Path, Path, str],
    monkeypatch: pytest.MonkeyPatch,
    change: Any,
    says: str,
) -> None:
    root, manifests, digest = landed
    change(root)
    code, reason = run_prepare(tmp_path, root, manifests, digest, monkeypatch)
    assert code == 1
    assert reason.startswith(
        f"input differs from its version manifest dataset-manifests/{digest}.json: "
    ), reason
    assert says in reason
    assert not (tmp_path / "out").exists()  # nothing was read or written


def test_prepare_without_the_runs_manifest_fails_naming_it(
    tmp_path: Path, landed: tuple[Path, Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, manifests, _ = landed
    other = "ab" * 32
    code, reason = run_prepare(tmp_path, root, manifests, other, monkeypatch)
    assert code == 1
    assert f"no version manifest dataset-manifests/{other}.json for DataDigest {other}" in reason


def test_prepare_refuses_a_manifest_that_is_not_one(
    tmp_path: Path, landed: tuple[Path, Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, manifests, digest = landed
    (manifests / f"{digest}.json").write_text('{"digest_format": 2, "files": [{}]}', "utf-8")
    code, reason = run_prepare(tmp_path, root, manifests, digest, monkeypatch)
    assert code == 1
    assert f"dataset-manifests/{digest}.json is not a version manifest: KeyError" in reason


def test_prepare_refuses_a_data_digest_that_names_no_manifest(
    tmp_path: Path, landed: tuple[Path, Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, manifests, _ = landed
    code, reason = run_prepare(tmp_path, root, manifests, "*", monkeypatch)
    assert code == 1
    assert "DataDigest '*' is not a data digest (64 lowercase hex digits)" in reason


def test_the_instances_union_is_checked_in_time_linear_in_the_files(tmp_path: Path) -> None:
    """40,000 files (a version of small objects on many instances): counting each key in the
    list of keys seen would take billions of comparisons; a count per key takes milliseconds."""
    files = [entry(f"2026/{i:05d}.csv", b"", "crc32c", "AAAAAA==") for i in range(40_000)]
    manifest = manifest_of(files)
    (tmp_path / f"{manifest['data_digest']}.json").write_text(json.dumps(manifest))
    seen = [f["key"] for f in files]
    started = time.perf_counter()
    assert verify.check_shard_union(tmp_path, manifest["data_digest"], seen) == len(files)
    assert time.perf_counter() - started < 3.0
    with pytest.raises(verify.InputMismatch, match="1 more than once"):
        verify.check_shard_union(tmp_path, manifest["data_digest"], [*seen, seen[7]])
