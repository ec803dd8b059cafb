"""Loading a model: a directory holding the training job's `model.tar.gz` (unpacked safely) or
the booster file itself, as the XGBoost booster (or scikit-learn estimator), the feature names
it was trained on and the SHA-256 of the archive it came from.

An XGBoost model is loaded from XGBoost's own formats only (JSON, UBJSON: `Booster.load_model`);
a pickled booster is refused: unpickling runs whatever code the file names. A scikit-learn model
(`pipeline.trainer = sklearn`, metadata `trainer` "sklearn") has no other format than joblib's
pickle: it is loaded only when the deployed configuration's trainer (`--trainer`, from the
definition) is sklearn, never because the archive's own metadata says "sklearn" (a custom or
XGBoost training script, network-isolated, could write that metadata and a pickle that runs
code in Evaluate, which has network access); only from a `model.tar.gz` (the training job's
output, or a package whose archive's SHA-256 the registry check compares); only with the
scikit-learn version it was trained with (Evaluate runs in the same scikit-learn image for
that reason); and xgboost is imported only for an XGBoost model (the scikit-learn image has none).
A custom trainer's challenger (`--trainer custom`) must carry the loop's own serving code, if
any, and an encoding of exactly its booster's categorical features (`custom_serving`).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.categories import EncodingError, read_encoding
from common.failure import xgboost_message
from common.model_files import (
    METADATA_DIR,
    METADATA_FILE,
    MODEL_ARCHIVE,
    MODEL_FILE,
    SKLEARN_MODEL_FILE,
    SKLEARN_TRAINER,
)
from custom_serving import CUSTOM_TRAINER, ServingFilesError, check_custom_serving_files

METADATA_PATH = f"{METADATA_DIR}/{METADATA_FILE}"
HASH_BLOCK = 1024 * 1024
DEFAULT_MODEL_DIR = "/opt/ml/processing/model"
# Every pickle protocol since 2 starts with the PROTO opcode; protocols 0-1 start with an
# opcode such as "(" or "}" and a booster's JSON with "{".
PICKLE_PROTO = 0x80


class EvaluationError(Exception):
    """The model, the test set or the champion is not usable; the message says why."""


@dataclass
class LoadedModel:
    #: The XGBoost booster (None for a scikit-learn model).
    booster: Any
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
    #: The fitted scikit-learn estimator (None for an XGBoost model).
    estimator: Any = None

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
            seen: set[Path] = set()
            for member in members:
                target = (root / member.name).resolve()
                # only regular files and folders: no link, device or FIFO, nothing skipped
                if not (member.isfile() or member.isdir()):
                    why = "not a regular file or folder: a link, device or FIFO"
                elif not (target == root or root in target.parents):
                    why = "path outside the archive"
                elif target in seen:  # a later member would replace what was checked first
                    why = "a second member with that path"
                else:
                    seen.add(target)
                    continue
                raise EvaluationError(
                    f"{archive_path.name}: refusing to extract {member.name!r} ({why})"
                )
            if hasattr(tarfile, "data_filter"):
                # Checked above already; the "data" filter repeats it where Python has it.
                archive.extractall(root, members=members, filter="data")
            else:
                archive.extractall(root, members=members)
    except (tarfile.TarError, OSError, EOFError) as error:
        # tarfile lists what it tried on separate lines; the reason is kept to one line.
        detail = " ".join(line.strip() for line in str(error).splitlines())
        raise EvaluationError(f"{archive_path}: not a readable model archive: {detail}") from error


def load_model_dir(
    directory: Path, scratch: Path, role: str, *, verified: bool, trainer: str
) -> LoadedModel:
    """Load the booster from `directory`: `model.tar.gz` (unpacked) or `xgboost-model`; a
    scikit-learn model only when `trainer` (the configured pipeline.trainer) is sklearn, from an
    archive that is this run's training output or `verified` against the registry's recorded
    SHA-256."""
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
    metadata = _read_metadata(root / METADATA_PATH, role)
    if metadata.get("trainer") == SKLEARN_TRAINER:
        if trainer != SKLEARN_TRAINER:
            raise EvaluationError(
                f"{role} model in {directory}: its metadata says a scikit-learn model (a "
                f"pickle), but pipeline.trainer is {trainer!r}: a pickle is loaded only when "
                "the configured trainer is sklearn (unpickling runs code from the file)"
            )
        return _sklearn_model(root, directory, digest if verified else None, metadata, role)
    model_file = root / MODEL_FILE
    others = sorted(p.name for p in root.iterdir() if p.is_file() and p != model_file)
    if model_file.is_file() and others:
        # The XGBoost image's algorithm mode loads one top-level file in os.listdir order and
        # tries pickle.load first: an extra file could be what the endpoint runs, unscored.
        raise EvaluationError(
            f"{role} model in {directory}: files beside {MODEL_FILE} in the model's top level "
            f"({', '.join(others)}): the serving container would load one of them in "
            "arbitrary order, so nothing else may be there (README: Trainers)"
        )
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
    if names is None:
        names = metadata.get("feature_names")
    try:
        encoding = read_encoding(root / METADATA_DIR)
        if trainer == CUSTOM_TRAINER and role == "challenger":  # the user's script wrote it
            check_custom_serving_files(root, booster, encoding, metadata)
    except (EncodingError, ServingFilesError) as error:
        raise EvaluationError(f"{role} model: {error}") from error
    return LoadedModel(
        booster=booster,
        feature_names=names,
        source=str(directory),
        artifact_sha256=digest,
        metadata=metadata,
        encoding=encoding,
    )


def _sklearn_model(
    root: Path, directory: Path, digest: str | None, metadata: dict[str, Any], role: str
) -> LoadedModel:
    """The estimator of a scikit-learn model's archive (see the module docstring)."""
    if digest is None:
        raise EvaluationError(
            f"{role} model in {directory}: a scikit-learn model (a pickle) is loaded only from "
            f"a {MODEL_ARCHIVE} the training job wrote or the registry's SHA-256 verifies"
        )
    try:
        import joblib
        import sklearn
    except ImportError as error:
        raise EvaluationError(
            f"{role} model is a scikit-learn model; this image has no scikit-learn ({error})"
        ) from error
    trained_with = metadata.get("sklearn_version")
    if trained_with != sklearn.__version__:
        raise EvaluationError(
            f"{role} model was trained with scikit-learn {trained_with}; this Evaluate runs "
            f"{sklearn.__version__} (a pickle is loaded only by the version that wrote it: "
            "compare models of one pipeline.trainer, see the README's Trainers section)"
        )
    try:
        estimator = joblib.load(root / SKLEARN_MODEL_FILE)
    except (OSError, EOFError, ValueError, AttributeError, ImportError) as error:
        raise EvaluationError(
            f"{role} model: {SKLEARN_MODEL_FILE} is not a readable joblib file: {error}"
        ) from error
    try:
        encoding = read_encoding(root / METADATA_DIR)
    except EncodingError as error:
        raise EvaluationError(f"{role} model: {error}") from error
    return LoadedModel(
        booster=None,
        estimator=estimator,
        feature_names=metadata.get("feature_names"),
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


def _load_booster(path: Path, role: str) -> Any:
    """XGBoost's own format only: unpickling a model file would run whatever code it holds."""
    try:
        import xgboost as xgb
    except ImportError as error:
        raise EvaluationError(
            f"{role} model is an XGBoost model; this Evaluate runs in the scikit-learn image, "
            f"which has no xgboost ({error}): compare models of one pipeline.trainer"
        ) from error
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


def load_challenger(model_dir: str | None, scratch: Path, trainer: str) -> LoadedModel:
    """The challenger: this run's training output in `model_dir` (default DEFAULT_MODEL_DIR),
    verified as such (the archive is what the job wrote)."""
    return load_model_dir(
        Path(model_dir or DEFAULT_MODEL_DIR), scratch, "challenger", verified=True, trainer=trainer
    )
