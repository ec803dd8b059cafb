"""Loading a model: a directory holding the training job's `model.tar.gz` (unpacked safely) or
the booster file itself, as the XGBoost booster, the feature names it was trained on and the
SHA-256 of the archive it came from.

Only XGBoost's own formats are loaded (JSON, UBJSON: `Booster.load_model`). A pickled model is
refused, never unpickled: unpickling runs whatever code the file names, and a model file is
data that passed through S3.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xgboost as xgb

from common.categories import EncodingError, read_encoding
from common.failure import xgboost_message
from common.model_files import METADATA_DIR, METADATA_FILE, MODEL_ARCHIVE, MODEL_FILE

METADATA_PATH = f"{METADATA_DIR}/{METADATA_FILE}"
HASH_BLOCK = 1024 * 1024
# Every pickle protocol since 2 starts with the PROTO opcode; protocols 0-1 start with an
# opcode such as "(" or "}" and a booster's JSON with "{".
PICKLE_PROTO = 0x80


class EvaluationError(Exception):
    """The model, the test set or the champion is not usable; the message says why."""


@dataclass
class LoadedModel:
    booster: xgb.Booster
    feature_names: list[str] | None
    source: str
    model_package_arn: str | None = None
    model_package_group: str | None = None
    model_package_version: int | None = None
    approval_status: str | None = None
    #: SHA-256 of the `model.tar.gz` the booster came from (None for an unpacked directory).
    artifact_sha256: str | None = None
    #: How the artifact was checked against the registry: "verified" or "unverified: <why>".
    integrity: str | None = None
    #: metadata/model-metadata.json as the train step wrote it (empty if the model has none).
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The package's CustomerMetadataProperties (registered models only).
    registry_metadata: dict[str, str] = field(default_factory=dict)
    #: The category encoding fitted on its training split (metadata/categories.json; {} when
    #: the model has no category feature).
    encoding: dict[str, list[str]] = field(default_factory=dict)

    @property
    def positive_class(self) -> str | None:
        """What the model's class 1 stands for (None: recorded by no label mapping)."""
        labels = self.metadata.get("labels") or {}
        return labels.get("positive_class") if isinstance(labels, dict) else None

    @property
    def negative_class(self) -> str | None:
        """What the model's class 0 stands for (None: not recorded)."""
        labels = self.metadata.get("labels") or {}
        return labels.get("negative_class") if isinstance(labels, dict) else None


def _extract(archive_path: Path, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    try:
        with tarfile.open(archive_path, "r:*") as archive:
            members = archive.getmembers()
            for member in members:
                target = (root / member.name).resolve()
                unsafe = member.issym() or member.islnk() or member.isdev()
                if unsafe or not (target == root or root in target.parents):
                    raise EvaluationError(
                        f"{archive_path.name}: refusing to extract {member.name!r} "
                        "(link or path outside the archive)"
                    )
            regular = [m for m in members if m.isfile() or m.isdir()]
            if hasattr(tarfile, "data_filter"):
                # Checked above already; the "data" filter repeats it where Python has it.
                archive.extractall(root, members=regular, filter="data")
            else:
                archive.extractall(root, members=regular)
    except (tarfile.TarError, OSError, EOFError) as error:
        # tarfile lists what it tried on separate lines; the reason is kept to one line.
        detail = " ".join(line.strip() for line in str(error).splitlines())
        raise EvaluationError(f"{archive_path}: not a readable model archive: {detail}") from error


def load_model_dir(directory: Path, scratch: Path, role: str) -> LoadedModel:
    """Load the booster from `directory`: `model.tar.gz` (unpacked) or `xgboost-model`."""
    if not directory.is_dir():
        raise EvaluationError(f"{role} model: directory {directory} does not exist")
    archives = sorted(directory.glob("*.tar.gz"))
    root = directory
    digest = None
    if (directory / MODEL_ARCHIVE).is_file() or len(archives) == 1:
        archive = (
            directory / MODEL_ARCHIVE if (directory / MODEL_ARCHIVE).is_file() else archives[0]
        )
        digest = file_sha256(archive)
        root = scratch / f"{role}-model"
        _extract(archive, root)
    model_file = root / MODEL_FILE
    if not model_file.is_file():
        files = sorted(p.name for p in root.iterdir() if p.is_file())
        if len(files) != 1:
            raise EvaluationError(
                f"{role} model: no {MODEL_FILE} in {directory} (expected {MODEL_ARCHIVE} or "
                f"{MODEL_FILE}; found {files or 'nothing'})"
            )
        model_file = root / files[0]
    booster = _load_booster(model_file, role)
    names = list(booster.feature_names) if booster.feature_names else None
    metadata = _read_metadata(root / METADATA_PATH, role)
    if names is None:
        names = metadata.get("feature_names")
    try:
        encoding = read_encoding(root / METADATA_DIR)
    except EncodingError as error:
        raise EvaluationError(f"{role} model: {error}") from error
    return LoadedModel(
        booster=booster,
        feature_names=names,
        source=str(directory),
        artifact_sha256=digest,
        metadata=metadata,
        encoding=encoding,
    )


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _read_metadata(path: Path, role: str) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EvaluationError(
            f"{role} model: {METADATA_PATH} is not readable JSON: {error}"
        ) from error
    if not isinstance(content, dict):
        raise EvaluationError(f"{role} model: {METADATA_PATH} is not a JSON object")
    return content


def _load_booster(path: Path, role: str) -> xgb.Booster:
    """XGBoost's own format only: unpickling a model file would run whatever code it holds."""
    data = path.read_bytes()
    if data[:1] == bytes([PICKLE_PROTO]):
        raise EvaluationError(
            f"{role} model file {path.name} is a pickle: only XGBoost's JSON and UBJSON model "
            "formats are loaded (unpickling would run code from the file); save the model with "
            "Booster.save_model"
        )
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(data))
    except xgb.core.XGBoostError as error:
        raise EvaluationError(
            f"{role} model file {path.name} is not an XGBoost model in JSON or UBJSON format: "
            f"{xgboost_message(error)}"
        ) from error
    return booster
