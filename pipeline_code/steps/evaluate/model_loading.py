"""Loading a model: a directory holding the training job's `model.tar.gz` (unpacked safely) or
the booster file itself, as the XGBoost booster and the feature names it was trained on."""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

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
    metadata_file = root / METADATA_PATH
    if names is None and metadata_file.is_file():
        names = json.loads(metadata_file.read_text(encoding="utf-8")).get("feature_names")
    return LoadedModel(booster=booster, feature_names=names, source=str(directory))


def _load_booster(path: Path, role: str) -> xgb.Booster:
    """XGBoost's own format only: unpickling a model file would run whatever code it holds."""
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(path.read_bytes()))
    except xgb.core.XGBoostError as error:
        raise EvaluationError(
            f"{role} model file {path.name} is not a valid XGBoost model: {xgboost_message(error)}"
        ) from error
    return booster
