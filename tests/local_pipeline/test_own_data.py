"""`make local-run DATA=examples/penguins.csv TARGET=sex POSITIVE=female`: the definition
generated for the inferred schema (text label, category features) runs end to end through the
SageMaker-shaped steps, and the registered package is served in script mode from its archive."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from pipeline_code.local_pipeline import cli

PENGUINS = Path(__file__).resolve().parents[2] / "examples" / "penguins.csv"


def test_the_penguins_run_through_the_generated_definition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--workdir", str(tmp_path), "run", "--data", str(PENGUINS), "--target", "sex"]
    argv += ["--positive-class", "female", "--param", "NumRound=40"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "target 'sex' (class 1: 'female')" in out and "species (category)" in out
    assert "ignored: comment (" in out
    [package] = list((tmp_path / "registry").rglob("request.json"))
    request = json.loads(package.read_text())
    [container] = request["InferenceSpecification"]["Containers"]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert request["CustomerMetadataProperties"]["positive_class"] == "female"
    paths = json.loads((package.parent / "local-paths.json").read_text())
    archive = next(Path(p) for p in _strings(paths) if p.endswith("model.tar.gz"))
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"code/inference.py", "metadata/categories.json", "xgboost-model"} <= names


def test_a_text_label_without_its_positive_class_cannot_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--workdir", str(tmp_path), "run", "--data", str(PENGUINS), "--target", "sex"]
    assert cli.main(argv) == cli.EXIT_CANNOT_START
    err = capsys.readouterr().err
    assert "['female', 'male']" in err and "POSITIVE=value" in err


def _strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return []


def test_a_regression_run_registers_a_regression_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typed config through the generated definition: the Register request the runner
    records is valid for CreateModelPackage and says REGRESSION."""
    from tests.pipeline.generated import validate_request

    argv = ["--workdir", str(tmp_path), "run", "--data", str(PENGUINS)]
    argv += ["--target", "body_mass_g", "--problem", "regression", "--param", "NumRound=40"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    [package] = list((tmp_path / "registry").rglob("request.json"))
    request = json.loads(package.read_text())
    assert request["Task"] == "REGRESSION"
    validate_request("CreateModelPackage", request)
