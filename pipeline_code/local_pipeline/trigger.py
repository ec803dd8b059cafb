"""The start of a run, as the data-landing trigger makes it: the dataset version lands in the
data bucket, its version manifest goes to the artifact bucket, and the execution starts with
InputDataUri, DatasetVersion, DataDigest and the champion (ChampionModelPackageArn: the newest
Approved package, `none` without one; the evaluation pipeline's ModelPackageArn likewise, when
there is one).

The digest and the manifest are the trigger's own (`lambdas/start_training/version_manifest`,
digest format 2) over the local files, each identified by its SHA-256 as S3 stores it for an
upload that sends one. The data is the bundled sample (`pipeline_code.sample_data`) unless a
file or folder is given; its version is named by its digest, so unchanged data is the same
version (and the same cache keys).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from pipeline_code import sample_data
from pipeline_code.definition.contract import (
    PARAM_CHAMPION_MODEL_PACKAGE_ARN,
    PARAM_DATA_DIGEST,
    PARAM_DATASET_VERSION,
    PARAM_INPUT_DATA_URI,
    PARAM_MODEL_PACKAGE_ARN,
)
from pipeline_code.local_pipeline.bucket import LocalS3
from pipeline_code.local_pipeline.errors import LocalPipelineError
from pipeline_code.local_pipeline.registry import newest_approved

TRIGGER_DIR = Path(__file__).resolve().parents[2] / "lambdas" / "start_training"
NO_CHAMPION = "none"
SAMPLE_DATASET = "sample"
SAMPLE_FILE = "transactions.csv"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


@dataclass(frozen=True)
class DataSource:
    """Where the run's data comes from: a file or folder, else `rows` sample rows."""

    path: Path | None = None
    rows: int = 20_000
    seed: int = 42


@dataclass
class Start:
    """What the trigger passes to the execution, and what it did."""

    parameters: dict[str, str]
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _trigger_modules() -> Iterator[tuple[ModuleType, ModuleType]]:
    """The trigger's modules, imported by bare name as its Lambda runtime imports them."""
    added = str(TRIGGER_DIR) not in sys.path
    if added:
        sys.path.insert(0, str(TRIGGER_DIR))
    try:
        yield (
            importlib.import_module("version_manifest"),
            importlib.import_module("content_identity"),
        )
    finally:
        if added:
            sys.path.remove(str(TRIGGER_DIR))


def _data_files(source: DataSource, scratch: Path) -> tuple[str, list[tuple[str, Path]]]:
    """(dataset name, [(relative key, file)])."""
    if source.path is None:
        file = scratch / SAMPLE_FILE
        sample_data.write(sample_data.generate(source.rows, source.seed), file)
        return SAMPLE_DATASET, [(SAMPLE_FILE, file)]
    path = source.path
    if path.is_file():
        return _UNSAFE.sub("-", path.stem) or "data", [(path.name, path)]
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file())
        if not files:
            raise LocalPipelineError(f"--data {path}: the folder has no files")
        return _UNSAFE.sub("-", path.name) or "data", [
            (f.relative_to(path).as_posix(), f) for f in files
        ]
    raise LocalPipelineError(f"--data {path}: no such file or directory")


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def land(
    source: DataSource,
    s3: LocalS3,
    data_bucket: str,
    artifact_bucket: str,
    registry: Path,
    group: str,
) -> Start:
    """Put the data version and its manifest in the local buckets; the trigger's parameters."""
    with tempfile.TemporaryDirectory(prefix="local-run-data-") as scratch:
        dataset, files = _data_files(source, Path(scratch))
        with _trigger_modules() as (version_manifest, content_identity):
            records = [
                version_manifest.FileRecord(
                    key=key,
                    version_id="null",
                    size=file.stat().st_size,
                    identity=content_identity.Identity(
                        "sha256", _sha256(file), content_identity.SOURCE_S3
                    ),
                )
                for key, file in files
            ]
            document: dict[str, Any] = version_manifest.document(records)
            manifest = version_manifest.canonical(document)
            manifest_key = version_manifest.manifest_key(
                _manifest_prefix(), document["data_digest"]
            )
        digest = document["data_digest"]
        version = f"v-{digest[:12]}"
        input_uri = f"s3://{data_bucket}/landing/{dataset}/{version}/"
        for key, file in files:
            s3.put_file(file, input_uri + key)
    s3.put_bytes(manifest, f"s3://{artifact_bucket}/{manifest_key}")
    champion = newest_approved(registry, group)
    parameters = {
        PARAM_INPUT_DATA_URI: input_uri,
        PARAM_DATASET_VERSION: f"{dataset}/{version}",
        PARAM_DATA_DIGEST: digest,
        PARAM_CHAMPION_MODEL_PACKAGE_ARN: champion or NO_CHAMPION,
    }
    if champion:
        parameters[PARAM_MODEL_PACKAGE_ARN] = champion
    what = (
        f"{source.rows:,} sample rows (seed {source.seed})"
        if source.path is None
        else str(source.path)
    )
    notes = [
        f"data: {what} -> {input_uri} ({len(files)} file(s), DataDigest {digest[:12]}...)",
        f"champion: {champion or 'none (no Approved package in the local registry)'}",
    ]
    return Start(parameters, notes)


def _manifest_prefix() -> str:
    with _trigger_modules():
        return str(importlib.import_module("trigger_config").DEFAULT_MANIFEST_PREFIX)
