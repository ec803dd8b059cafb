"""Check that a run's input directory holds exactly the objects its version manifest names.

The data-landing trigger writes, before it starts a run, the version manifest
`s3://<artifact bucket>/dataset-manifests/<DataDigest>.json` (format: the Lambda's
version_manifest.py): every data object of the dataset version with its size and the
identity of its bytes (a checksum algorithm and value). The pipeline hands it to prepare.py
as the `manifest` input (Prepare, and Validate in the eval-only pipeline), whose main calls
`verify_run_inputs` before it reads any data. `verify_inputs(manifest, input_dir)` compares
the manifest with the prefix as SageMaker downloaded it and returns a report, or raises
InputMismatch naming what differs: the manifest's own digest, the set of data files, a size
or a checksum.

Checksums are recomputed with `input_checksums`. A composite checksum (multipart upload) is
checked part by part when the manifest records the part sizes, else the file is checked by
size only and the report says so; likewise for identities that are not a checksum of the
bytes (an upload's ETag) or that cannot be computed here (XXHASH). A SHA-256 stated by the
producer's manifest.json is checked too.

Runs inside the SageMaker XGBoost container, network-isolated: Python 3.10, numpy and the
standard library only. Files are read once, in blocks, whatever their size.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from input_checksums import DIGESTERS, READ_BLOCK

MANIFEST_PREFIX = "dataset-manifests/"
DIGEST_FORMAT = 2
MANIFEST_NAME = "manifest.json"  # the producer's manifest at the version root: not data
_REPORTED = 5


def manifest_key(data_digest: str) -> str:
    """Key of a run's version manifest in the artifact bucket."""
    return f"{MANIFEST_PREFIX}{data_digest}.json"


class InputMismatch(Exception):
    """The input directory is not what the run's version manifest names."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


COMPOSITE = "-composite"


@dataclass
class FileCheck:
    """What was checked for one file: `method` names it, `note` says why a check was less."""

    key: str
    size: int
    method: str
    note: str = ""


@dataclass
class Report:
    """The verified input: files, bytes, seconds, and which files were checked by size only."""

    data_digest: str
    files: list[FileCheck] = field(default_factory=list)
    bytes_read: int = 0
    seconds: float = 0.0

    @property
    def size_only(self) -> list[FileCheck]:
        return [f for f in self.files if f.method == "size"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "data_digest": self.data_digest,
            "files": len(self.files),
            "bytes": self.bytes_read,
            "seconds": round(self.seconds, 3),
            "checked_by": sorted({f.method for f in self.files}),
            "size_only": [{"key": f.key, "why": f.note} for f in self.size_only],
        }


# ---- the check -----------------------------------------------------------------------------


def is_data_file(relative: str) -> bool:
    """The trigger's rule (dataset_completion.is_data_key): a file, not the producer's
    manifest.json at the version root, no name starting with `_` or `.`."""
    name = relative.rsplit("/", 1)[-1]
    return bool(name) and relative != MANIFEST_NAME and not name.startswith(("_", "."))


def _digest(lines: list[list[Any]]) -> str:
    text = "\n".join(
        json.dumps(line, ensure_ascii=False, separators=(",", ":"))
        for line in sorted(lines, key=lambda line: str(line[0]))
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_manifest(manifest: dict[str, Any], data_digest: str | None) -> str:
    """The manifest's data digest, after checking it describes its own files (format 2)."""
    if manifest.get("digest_format") != DIGEST_FORMAT or not isinstance(
        manifest.get("files"), list
    ):
        raise InputMismatch(
            "manifest-format",
            f"not a version manifest of digest format {DIGEST_FORMAT} "
            f"(digest_format={manifest.get('digest_format')!r})",
        )
    files = manifest["files"]
    described = _digest(
        [
            [f["key"], f["size"], f["identity"]["algorithm"], f["identity"]["value"],
             f["version_id"]]
            for f in files
        ]
    )  # fmt: skip
    stated = manifest.get("data_digest")
    if described != stated or (data_digest is not None and described != data_digest):
        raise InputMismatch(
            "manifest-digest",
            f"the version manifest describes data digest {described}, but it is named "
            f"{stated} and the run's DataDigest is {data_digest or stated}: it was altered",
        )
    return described


def local_files(input_dir: Path) -> dict[str, Path]:
    """Data files under `input_dir` by path relative to it (`/`-separated)."""
    found: dict[str, Path] = {}
    for root, _dirs, names in os.walk(input_dir):
        for name in names:
            path = Path(root, name)
            relative = path.relative_to(input_dir).as_posix()
            if is_data_file(relative):
                found[relative] = path
    return found


def _short(keys: list[str]) -> str:
    more = len(keys) - _REPORTED
    return ", ".join(repr(k) for k in keys[:_REPORTED]) + (f" and {more} more" if more > 0 else "")


def _check_file_set(
    files: list[dict[str, Any]], present: dict[str, Path], shard: bool = False
) -> None:
    listed = {f["key"] for f in files}
    # One instance of several holds only its shard: what it lacks, another instance holds
    # (check_shard_union proves the shards add up to the manifest).
    missing = [] if shard else sorted(listed - set(present))
    unexpected = sorted(set(present) - listed)
    if missing or unexpected:
        raise InputMismatch(
            "file-set",
            f"the input differs from the version manifest: {len(missing)} file(s) missing "
            f"({_short(missing)}), {len(unexpected)} not in the manifest ({_short(unexpected)})",
        )
    wrong = [
        f"{f['key']} (manifest {f['size']}, found {present[f['key']].stat().st_size})"
        for f in files
        if f["key"] in present and present[f["key"]].stat().st_size != f["size"]
    ]
    if wrong:
        raise InputMismatch(
            "size", f"{len(wrong)} file(s) differ in size: {', '.join(wrong[:_REPORTED])}"
        )


@dataclass
class _Plan:
    """What to compute over one file: whole-file digesters and, for a composite checksum,
    one digester per part."""

    whole: dict[str, Any]
    expected: dict[str, str]
    parts: list[dict[str, Any]]
    part_algorithm: str
    method: str
    note: str = ""


def _plan(entry: dict[str, Any]) -> _Plan:
    algorithm, value = entry["identity"]["algorithm"], entry["identity"]["value"]
    plan = _Plan(whole={}, expected={}, parts=[], part_algorithm="", method="size")
    if algorithm in DIGESTERS:
        plan.whole[algorithm], plan.expected[algorithm] = DIGESTERS[algorithm](), value
        plan.method = algorithm
    elif algorithm.endswith(COMPOSITE) and algorithm[: -len(COMPOSITE)] in DIGESTERS:
        if entry.get("parts"):
            plan.parts, plan.part_algorithm = entry["parts"], algorithm[: -len(COMPOSITE)]
            plan.method = f"{algorithm} ({len(plan.parts)} parts)"
        else:
            plan.note = "composite checksum without part sizes in the manifest"
    elif algorithm == "etag":
        plan.note = "identified by its upload's ETag, which is no checksum of the bytes"
    else:
        plan.note = f"{algorithm} cannot be computed here"
    stated = entry.get("stated_sha256")
    if stated and "sha256" not in plan.whole:
        plan.whole["sha256"], plan.expected["sha256"] = hashlib.sha256(), stated
        plan.method = "sha256" if plan.method == "size" else f"{plan.method} + stated sha256"
        plan.note = ""
    return plan


def _blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while block := stream.read(READ_BLOCK):
            yield block


def _check_file(path: Path, entry: dict[str, Any]) -> FileCheck:
    plan = _plan(entry)
    check = FileCheck(entry["key"], entry["size"], plan.method, plan.note)
    if not plan.whole and not plan.parts:
        return check
    part_digests: list[bytes] = []
    part_index, part_left = 0, plan.parts[0]["size"] if plan.parts else 0
    part: Any = DIGESTERS[plan.part_algorithm]() if plan.parts else None
    for block in _blocks(path):
        for digester in plan.whole.values():
            digester.update(block)
        view = memoryview(block)
        while plan.parts and len(view):
            if part_index >= len(plan.parts):
                raise InputMismatch(
                    "checksum", f"{entry['key']} is longer than its {len(plan.parts)} parts"
                )
            take = min(part_left, len(view))
            part.update(view[:take])
            view, part_left = view[take:], part_left - take
            if part_left == 0:
                part_digests.append(part.digest())
                part_index += 1
                if part_index < len(plan.parts):
                    part = DIGESTERS[plan.part_algorithm]()
                    part_left = plan.parts[part_index]["size"]
    wrong = [
        name
        for name, digester in plan.whole.items()
        if digester.digest().hex() != plan.expected[name]
    ]
    if plan.parts:
        wrong += _composite_mismatches(entry, plan, part_digests)
    if wrong:
        raise InputMismatch(
            "checksum",
            f"{entry['key']} does not have the bytes its version manifest names "
            f"({', '.join(wrong)} differ): it changed after the version completed",
        )
    return check


def _composite_mismatches(
    entry: dict[str, Any], plan: _Plan, part_digests: list[bytes]
) -> list[str]:
    """Parts whose checksum differs, and the composite itself (checksum of the checksums)."""
    if len(part_digests) != len(plan.parts):
        return [f"part count ({len(part_digests)} of {len(plan.parts)} parts read)"]
    wrong = [
        f"part {number}"
        for number, (digest, part) in enumerate(zip(part_digests, plan.parts, strict=True), start=1)
        if digest.hex() != part["checksum"]
    ]
    composite = DIGESTERS[plan.part_algorithm]()
    composite.update(b"".join(part_digests))
    value, _, count = entry["identity"]["value"].partition("-")
    if composite.digest().hex() != value or (count and int(count) != len(plan.parts)):
        wrong.append("composite checksum")
    return wrong


def verify_inputs(
    manifest: dict[str, Any],
    input_dir: str | Path,
    *,
    data_digest: str | None = None,
    shard: bool = False,
) -> Report:
    """Check `input_dir` (the version prefix as downloaded) against a version manifest.

    `data_digest`: the run's DataDigest, if known (the manifest must describe it). `shard`
    (default False): `input_dir` is one processing instance's share of the objects
    (ShardedByS3Key), so files of the manifest may be absent, but every file present must be
    one of the manifest's with its bytes. Returns a Report; raises InputMismatch (`reason`:
    manifest-format, manifest-digest, file-set, size, checksum) with a message naming the files.
    """
    started = time.perf_counter()
    report = Report(_check_manifest(manifest, data_digest))
    present = local_files(Path(input_dir))
    files = sorted(manifest["files"], key=lambda f: f["key"])
    _check_file_set(files, present, shard)
    if shard:
        files = [f for f in files if f["key"] in present]
    for entry in files:
        report.files.append(_check_file(present[entry["key"]], entry))
        report.bytes_read += entry["size"]
    report.seconds = time.perf_counter() - started
    return report


def verify_run_inputs(
    manifest_dir: str | Path, input_dir: str | Path, data_digest: str, shard: bool = False
) -> Report:
    """Check a run's downloaded input against its version manifest, `<data_digest>.json` in
    `manifest_dir` (the pipeline's `manifest` input); `shard` as for `verify_inputs`.

    Raises InputMismatch (`reason` as for `verify_inputs`, or manifest-missing /
    manifest-format when the manifest is absent or not JSON) with a message that starts with
    the manifest's key, so the step's failure reason says which run's record disagreed.
    """
    where, manifest = _run_manifest(manifest_dir, data_digest)
    try:
        return verify_inputs(manifest, input_dir, data_digest=data_digest, shard=shard)
    except (KeyError, TypeError, AttributeError) as error:
        raise InputMismatch(
            "manifest-format", f"{where} is not a version manifest: {type(error).__name__} {error}"
        ) from error
    except InputMismatch as mismatch:
        raise InputMismatch(
            mismatch.reason, f"input differs from its version manifest {where}: {mismatch}"
        ) from mismatch


def check_shard_union(manifest_dir: str | Path, data_digest: str, seen: list[str]) -> int:
    """After every instance verified its shard (`shard=True`): the files the instances saw,
    `seen`, are exactly the manifest's, each once. Returns the number of files; raises
    InputMismatch (file-set) naming what is missing or doubled."""
    where, manifest = _run_manifest(manifest_dir, data_digest)
    try:
        _check_manifest(manifest, data_digest)
    except (KeyError, TypeError, AttributeError) as error:
        raise InputMismatch(
            "manifest-format", f"{where} is not a version manifest: {type(error).__name__} {error}"
        ) from error
    listed = sorted(f["key"] for f in manifest["files"])
    doubled = sorted(key for key, count in Counter(seen).items() if count > 1)
    missing = sorted(set(listed) - set(seen))
    unexpected = sorted(set(seen) - set(listed))
    if missing or unexpected or doubled:
        raise InputMismatch(
            "file-set",
            f"input differs from its version manifest {where}: the processing instances "
            f"together read {len(missing)} file(s) fewer ({_short(missing)}), "
            f"{len(unexpected)} not in the manifest ({_short(unexpected)}) and "
            f"{len(doubled)} more than once ({_short(doubled)})",
        )
    return len(listed)


def _run_manifest(manifest_dir: str | Path, data_digest: str) -> tuple[str, dict[str, Any]]:
    """The manifest's key and the version manifest `<data_digest>.json` below `manifest_dir`."""
    if not re.fullmatch(r"[0-9a-f]{64}", data_digest):
        raise InputMismatch(
            "manifest-missing",
            f"DataDigest {data_digest[:80]!r} is not a data digest (64 lowercase hex digits), "
            "so it names no version manifest: start runs through the trigger (`mlops start`)",
        )
    where = manifest_key(data_digest)
    # The input is the manifest's key as an S3 prefix: look for the file by name, wherever
    # the download put it.
    found = sorted(Path(manifest_dir).rglob(f"{data_digest}.json"))
    path = found[0] if found else Path(manifest_dir) / f"{data_digest}.json"
    if not path.is_file():
        raise InputMismatch(
            "manifest-missing",
            f"no version manifest {where} for DataDigest {data_digest}: the trigger writes it "
            "before every run; start runs through the trigger (`mlops start`), which writes it",
        )
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputMismatch("manifest-format", f"{where} is not JSON: {error}") from error
    if not isinstance(manifest, dict):
        raise InputMismatch("manifest-format", f"{where} is not a JSON object")
    return where, manifest
