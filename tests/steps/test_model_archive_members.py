"""Evaluate unpacks a model archive only if every member is a regular file or a folder, inside
the archive, and no path comes twice: a FIFO (or device, link) is refused instead of silently
skipped, and a second member with a path already checked (which tar would extract over the
first) is refused, named in one line. The archives our own trainers write still load: their
tests (test_train_sklearn.py, test_custom_trainer_categories.py, test_evaluate.py) go through
the same function."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import xgboost as xgb

from pipeline_code.steps import load

model_loading = load("evaluate", "model_loading")


def _booster_bytes(tmp_path: Path) -> bytes:
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix([[0.0], [1.0]], [0, 1]), 1)
    path = tmp_path / "booster.json"
    booster.save_model(path)
    return path.read_bytes()


def _archive(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    with tarfile.open(artifact / "model.tar.gz", "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return artifact


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _special(name: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, None


def _load(artifact: Path, tmp_path: Path) -> object:
    return model_loading.load_model_dir(
        artifact, tmp_path / "scratch", "challenger", verified=True, trainer="xgboost"
    )


def test_a_plain_archive_loads(tmp_path: Path) -> None:
    artifact = _archive(tmp_path, [_file("xgboost-model", _booster_bytes(tmp_path))])
    assert _load(artifact, tmp_path).booster is not None


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (_special("metadata-fifo", tarfile.FIFOTYPE), "not a regular file or folder"),
        (_special("a-char-device", tarfile.CHRTYPE), "not a regular file or folder"),
    ],
)
def test_a_member_neither_file_nor_folder_is_refused_not_skipped(
    tmp_path: Path, member: tuple[tarfile.TarInfo, None], why: str
) -> None:
    artifact = _archive(tmp_path, [_file("xgboost-model", _booster_bytes(tmp_path)), member])
    with pytest.raises(model_loading.EvaluationError) as error:
        _load(artifact, tmp_path)
    message = str(error.value)
    assert f"refusing to extract {member[0].name!r} ({why}" in message
    assert "\n" not in message
    assert not (tmp_path / "scratch" / "challenger-model" / "xgboost-model").exists()


@pytest.mark.parametrize("second", ["xgboost-model", "./xgboost-model"])
def test_a_second_member_with_a_path_already_in_the_archive_is_refused(
    tmp_path: Path, second: str
) -> None:
    """Tar extracts the later member over the earlier one: what was checked is not what
    would be on disk."""
    good = _booster_bytes(tmp_path)
    artifact = _archive(tmp_path, [_file("xgboost-model", good), _file(second, b"{}")])
    with pytest.raises(model_loading.EvaluationError) as error:
        _load(artifact, tmp_path)
    assert f"refusing to extract {second!r} (a second member with that path)" in str(error.value)
