"""Loading a model: a directory holding the training job's `model.tar.gz` (unpacked safely) or
the booster file itself, as the XGBoost booster and the feature names it was trained on."""

from __future__ import annotations

import json
import pickle
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xgboost as xgb

from common.failure import xgboost_message
from common.model_files import METADATA_DIR, METADATA_FILE, MODEL_ARCHIVE, MODEL_FILE

METADATA_PATH = f"{METADATA_DIR}/{METADATA_FILE}"


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
    #: metadata/model-metadata.json as the train step wrote it (empty if the model has none).
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The package's CustomerMetadataProperties (registered models only).
    registry_metadata: dict[str, str] = field(default_factory=dict)


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
    if (directory / MODEL_ARCHIVE).is_file() or len(archives) == 1:
        archive = (
            directory / MODEL_ARCHIVE if (directory / MODEL_ARCHIVE).is_file() else archives[0]
        )
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
    return LoadedModel(
        booster=booster, feature_names=names, source=str(directory), metadata=metadata
    )


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
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(path.read_bytes()))
        return booster
    except xgb.core.XGBoostError as native_error:
        # Models registered from the built-in algorithm may be pickled boosters.
        try:
            with path.open("rb") as handle:
                loaded = pickle.load(handle)
        except Exception as pickle_error:
            raise EvaluationError(
                f"{role} model file {path.name} is not a valid XGBoost model: "
                f"{xgboost_message(native_error)} (nor a pickled booster: "
                f"{xgboost_message(pickle_error)})"
            ) from native_error
    if isinstance(loaded, xgb.XGBModel):
        loaded = loaded.get_booster()
    if not isinstance(loaded, xgb.Booster):
        raise EvaluationError(f"{role} model {path.name} is a pickled {type(loaded).__name__}")
    return loaded
