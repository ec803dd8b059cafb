"""The input check a run can make against its version manifest (pipeline_code/steps/
verify_inputs.py): CRCs against the CRC catalogue and independent implementations (zlib,
the bitwise definition, awscrt when installed), and the check on manifests built here.
tests/lambdas/test_trigger_identity.py checks a manifest the trigger writes, end to end.
"""

from __future__ import annotations

import hashlib
import json
import random
import zlib
from pathlib import Path
from typing import Any

import pytest

from pipeline_code.steps import verify_inputs as verify
from tests.lambda_loader import load_lambda_module

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
    assert verify.crc64nvme().compute(CHECK_INPUT) == 0xAE8B14860A799888
    assert verify.crc32c().compute(CHECK_INPUT) == 0xE3069283


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 4095, 4096, 4097, 65_537, 1_000_003])
def test_the_lane_parallel_engine_computes_zlibs_crc32(size: int) -> None:
    data = random.Random(size).randbytes(size)
    engine = verify.Crc(32, 0xEDB88320, 0xFFFFFFFF, 0xFFFFFFFF)
    assert engine.compute(data) == zlib.crc32(data)


@pytest.mark.parametrize("size", [1, 4095, 4096, 6000, 8193, 20_000])
def test_crc64nvme_and_crc32c_match_the_bitwise_definition(size: int) -> None:
    data = random.Random(size).randbytes(size)
    assert verify.crc64nvme().compute(data) == reference_crc64nvme(data)
    assert verify.crc32c().compute(data) == reference_crc32c(data)


def test_a_crc_fed_in_pieces_equals_the_crc_of_the_whole() -> None:
    rng = random.Random(7)
    data = rng.randbytes(3 * 1024 * 1024 + 123)
    for crc in (verify.crc64nvme(), verify.crc32c()):
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
    assert verify.crc32c().compute(data) == checksums.crc32c(data)
    assert verify.crc64nvme().compute(data) == checksums.crc64nvme(data)


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


def test_the_command_line_exits_1_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest_file = tmp_path / "m.json"
    manifest_file.write_text(json.dumps(good_manifest()), "utf-8")
    root = version_dir(tmp_path, FILES)
    assert verify.main(["--manifest", str(manifest_file), "--input-dir", str(root)]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 3
    (root / "part-0.csv").write_bytes(b"?" * len(FILES["part-0.csv"]))
    assert verify.main(["--manifest", str(manifest_file), "--input-dir", str(root)]) == 1
    assert capsys.readouterr().err.startswith("inputs differ (checksum): part-0.csv")
