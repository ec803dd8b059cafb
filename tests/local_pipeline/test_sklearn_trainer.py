"""`make local-run DATA=examples/penguins.csv TARGET=species TRAINER=sklearn`: the generated
definition of the scikit-learn trainer runs end to end through the SageMaker-shaped steps (the
training job's drivers start train_sklearn.py from its code channel), registers a package
served by the scikit-learn inference image in script mode, and its archive holds the pickled
estimator with the serving code. `make local-run TRAINER=custom` does the same for the worked
example of a custom trainer (examples/custom_trainer)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from pipeline_code.local_pipeline import cli
from tests.local_pipeline.test_own_data import PENGUINS, _strings


def _registered(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> Any:
    """Run the local pipeline with `argv`; (its stdout, the one package's CreateModelPackage
    request, valid for botocore, and the path of the model.tar.gz it registers)."""
    from tests.pipeline.generated import validate_request

    assert cli.main(["--workdir", str(tmp_path), "run", *argv]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    [package] = list((tmp_path / "registry").rglob("request.json"))
    request = json.loads(package.read_text())
    validate_request("CreateModelPackage", request)
    paths = json.loads((package.parent / "local-paths.json").read_text())
    archive = next(Path(p) for p in _strings(paths) if p.endswith("model.tar.gz"))
    return out, request, archive


@pytest.mark.parametrize(("target", "problem"), [("species", "multiclass")])
def test_a_scikit_learn_run_registers_a_scikit_learn_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str, problem: str
) -> None:
    argv = ["--data", str(PENGUINS), "--target", target, "--problem", problem]
    _, request, archive = _registered(tmp_path, capsys, [*argv, "--trainer", "sklearn"])
    [container] = request["InferenceSpecification"]["Containers"]
    assert "/sagemaker-scikit-learn:" in container["Image"]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert request["CustomerMetadataProperties"]["trainer"] == "sklearn"
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        metadata = json.load(tar.extractfile("metadata/model-metadata.json"))  # type: ignore[arg-type]
    assert {"model.joblib", "code/inference.py", "code/common/sklearn_predictions.py"} <= names
    assert "xgboost-model" not in names
    assert metadata["estimator"] == "sklearn.ensemble.HistGradientBoostingClassifier"
    assert metadata["labels"]["classes"] == ["Adelie", "Chinstrap", "Gentoo"]


def test_the_custom_trainer_example_runs_under_the_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make local-run TRAINER=custom`: examples/custom_trainer/train.py, started by the
    training job's drivers from its own code channel, trains on the bundled sample; Evaluate
    scores its booster (with the threshold its metadata records) and the package registers."""
    argv = ["--rows", "6000", "--trainer", "custom", "--min-positives", "20"]
    out, request, archive = _registered(tmp_path, capsys, argv)
    assert "(the model's metadata)" in out  # the example's own decision threshold
    assert request["CustomerMetadataProperties"]["trainer"] == "custom"
    with tarfile.open(archive) as tar:
        assert {"xgboost-model", "metadata/model-metadata.json"} <= set(tar.getnames())


def test_the_custom_trainer_example_serves_category_features_through_the_loops_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make local-run TRAINER=custom DATA=examples/penguins.csv TARGET=sex POSITIVE=female`:
    `species` and `island` are inferred as category features; the example, started from its
    code channel (its folder plus the loop's mlops_loop/), writes the encoding and the serving
    code; Evaluate checks them; the package is served in script mode by that code."""
    from pipeline_code.steps import STEPS_DIR

    argv = ["--data", str(PENGUINS), "--target", "sex", "--positive-class", "female"]
    out, request, archive = _registered(tmp_path, capsys, [*argv, "--trainer", "custom"])
    assert "species (category), island (category)" in out
    [container] = request["InferenceSpecification"]["Containers"]
    assert "/sagemaker-xgboost:" in container["Image"]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert request["CustomerMetadataProperties"]["trainer"] == "custom"
    with tarfile.open(archive) as tar:
        script = tar.extractfile("code/inference.py").read()  # type: ignore[union-attr]
        encoding = json.load(tar.extractfile("metadata/categories.json"))  # type: ignore[arg-type]
    assert script == (STEPS_DIR / "train" / "inference.py").read_bytes()
    assert sorted(encoding["features"]) == ["island", "species"]
    assert encoding["features"]["island"] == ["Biscoe", "Dream", "Torgersen"]
