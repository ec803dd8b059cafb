"""Step code as the definitions reference it: one content-addressed directory per step (its
folder with the shared common/ inside), so a change to one step's code leaves the other steps'
code URIs, and so their cache keys, as they were. In-process, without the SageMaker SDK."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline_code import offline
from pipeline_code.definition import CodeLocations, PipelineSettings, publish_step_code
from tests.pipeline.generated import SETTINGS, STEPS_DIR, step_code_files, stored_files

SETTINGS_OBJECT = PipelineSettings.from_dict(SETTINGS)


@pytest.fixture()
def steps_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "steps"
    shutil.copytree(STEPS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def publish(steps_dir: Path, store_dir: Path) -> CodeLocations:
    return publish_step_code(SETTINGS_OBJECT, steps_dir, offline.CodeStore(store_dir))


def code_uris(code: CodeLocations) -> dict[str, str]:
    return {
        "prepare": code.prepare_script,
        "train": code.train_source_dir,
        "evaluate": code.evaluate_script,
    }


def append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(f"\n# {line}\n")


def test_each_step_ships_its_folder_with_common(tmp_path: Path) -> None:
    code = publish(STEPS_DIR, tmp_path / "code")
    for step, uri in code_uris(code).items():
        prefix, _, script = uri.rpartition("/")
        assert script == ("" if step == "train" else f"{step}.py")
        digest = prefix.rsplit("/", 1)[-1]
        assert stored_files(tmp_path / "code" / digest) == step_code_files(step), step


def test_changing_one_steps_module_changes_only_that_steps_code(
    steps_copy: Path, tmp_path: Path
) -> None:
    before = code_uris(publish(steps_copy, tmp_path / "before"))
    append(steps_copy / "evaluate" / "paired_bootstrap.py", "a change to evaluate only")
    after = code_uris(publish(steps_copy, tmp_path / "after"))
    assert after["prepare"] == before["prepare"]
    assert after["train"] == before["train"]
    assert after["evaluate"] != before["evaluate"]


def test_changing_common_changes_every_steps_code(steps_copy: Path, tmp_path: Path) -> None:
    before = code_uris(publish(steps_copy, tmp_path / "before"))
    append(steps_copy / "common" / "columns.py", "a change every step ships")
    after = code_uris(publish(steps_copy, tmp_path / "after"))
    assert all(after[step] != before[step] for step in before)


def test_caches_and_unchanged_republishing_keep_the_addresses(
    steps_copy: Path, tmp_path: Path
) -> None:
    before = code_uris(publish(steps_copy, tmp_path / "before"))
    (steps_copy / "prepare" / "__pycache__").mkdir()
    (steps_copy / "prepare" / "__pycache__" / "prepare.cpython-310.pyc").write_bytes(b"\0")
    assert code_uris(publish(steps_copy, tmp_path / "after")) == before


def test_a_step_without_its_entry_script_or_common_is_refused(
    steps_copy: Path, tmp_path: Path
) -> None:
    (steps_copy / "train" / "train.py").unlink()
    shutil.rmtree(steps_copy / "common")
    with pytest.raises(FileNotFoundError, match="step scripts not found") as error:
        publish(steps_copy, tmp_path / "code")
    assert str(steps_copy / "train" / "train.py") in str(error.value)
    assert str(steps_copy / "common" / "__init__.py") in str(error.value)


def test_a_tree_whose_folders_provide_the_same_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "step" / "common").mkdir(parents=True)
    (tmp_path / "step" / "common" / "columns.py").write_text("A = 1\n")
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "columns.py").write_text("A = 2\n")
    store = offline.CodeStore(tmp_path / "code")
    with pytest.raises(ValueError, match="common/columns.py comes from both"):
        store.put_tree({"": tmp_path / "step", "common": tmp_path / "common"})
