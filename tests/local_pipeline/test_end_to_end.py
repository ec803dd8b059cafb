"""The training and eval-only pipelines run end to end on the bundled sample, outputs flow to
inputs as the definition wires them, a second run is all cache hits, a registered package is
the request the definition states, an approved package is the next run's champion, and a gate
that says no ends at the Fail step with its rendered message.

The sample is small (the suite must stay fast), so whether the real gate passes is the evaluate
step's business: tests of what follows the gate force its outcome in a copy of the definition.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from pipeline_code.local_pipeline import cli, registry
from pipeline_code.local_pipeline.bucket import LocalS3
from tests.local_pipeline.conftest import (
    ROWS,
    Baseline,
    copy_world,
    definition,
    execute,
    gate_forced,
    step,
)

pytestmark = pytest.mark.xdist_group("local_pipeline")

JOBS = ("Prepare", "Train", "Evaluate")


def _evaluation(workdir: Path, properties: dict[str, Any]) -> dict[str, Any]:
    """Evaluate's evaluation.json, read from the local bucket of `workdir`."""
    (output,) = properties["ProcessingOutputConfig"]["Outputs"]
    s3 = LocalS3(workdir / "s3")
    return json.loads(s3.path(output["S3Output"]["S3Uri"] + "/evaluation.json").read_text())


def test_the_training_pipeline_runs_end_to_end_on_the_sample(baseline: Baseline) -> None:
    result = baseline.run.result
    assert [step(baseline.run, name).status for name in JOBS] == ["Succeeded"] * 3
    assert [step(baseline.run, name).cache for name in JOBS] == ["miss"] * 3
    # The branch the gate took ran, the other did not.
    passed = result.decisions["Gate"].outcome
    assert step(baseline.run, "Register").status == ("Succeeded" if passed else "NotExecuted")
    assert step(baseline.run, "Fail").status == ("NotExecuted" if passed else "Failed")
    assert result.status == ("Succeeded" if passed else "Failed")
    assert any("Train (Training) started" in line for line in baseline.lines)
    assert any(line.startswith("Evaluate succeeded in") for line in baseline.lines)


def test_outputs_flow_to_inputs_as_the_definition_wires_them(baseline: Baseline) -> None:
    result, s3 = baseline.run.result, LocalS3(baseline.workdir / "s3")
    steps = baseline.run.run_dir / "steps"
    prepared = {
        o["OutputName"]: o["S3Output"]["S3Uri"]
        for o in result.properties["Prepare"]["ProcessingOutputConfig"]["Outputs"]
    }
    for channel in ("train", "validation"):
        delivered = steps / "Train" / "container" / "opt" / "ml" / "input" / "data" / channel
        for relative, file in s3.objects(prepared[channel]):
            assert (delivered / relative).read_bytes() == file.read_bytes()
    model_uri = result.properties["Train"]["ModelArtifacts"]["S3ModelArtifacts"]
    assert model_uri.endswith("/output/model.tar.gz")
    archive = steps / "Evaluate" / "container" / "opt" / "ml" / "processing" / "model"
    assert (archive / "model.tar.gz").read_bytes() == s3.path(model_uri).read_bytes()
    with tarfile.open(archive / "model.tar.gz") as tar:
        assert "xgboost-model" in tar.getnames()


def test_hyperparameters_reach_the_entry_script_as_strings(baseline: Baseline) -> None:
    ml = baseline.run.run_dir / "steps" / "Train" / "container" / "opt" / "ml"
    hyperparameters = json.loads((ml / "input" / "config" / "hyperparameters.json").read_text())
    assert hyperparameters["num_round"] == "20"
    assert all(isinstance(v, str) for v in hyperparameters.values())
    log = (baseline.run.run_dir / "steps" / "Train" / "log.txt").read_text()
    assert "train.py --colsample_bytree 0.8" in log and "--num_round 20" in log


def test_the_registered_package_is_the_request_the_definition_states(
    registered: Baseline,
) -> None:
    result, baseline = registered.run.result, registered
    assert result.record("Register").status == "Succeeded"
    version = str(result.properties["Register"]["ModelPackageVersion"])
    folder = baseline.workdir / "registry" / baseline.names.model_package_group / version
    request = json.loads((folder / registry.REQUEST_FILE).read_text())
    package = json.loads((folder / "package.json").read_text())
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("CreateModelPackage").input_shape
    assert not ParamValidator().validate(request, shape).has_errors()
    assert request["ModelPackageGroupName"] == baseline.names.model_package_group
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    container = request["InferenceSpecification"]["Containers"][0]
    assert (
        container["ModelDataUrl"]
        == result.properties["Train"]["ModelArtifacts"]["S3ModelArtifacts"]
    )
    statistics = request["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    local = json.loads((folder / registry.LOCAL_PATHS_FILE).read_text())
    local_report = local["ModelMetrics.ModelQuality.Statistics.S3Uri"]
    assert json.loads(Path(local_report).read_text()) == _evaluation(
        baseline.workdir, result.properties["Evaluate"]
    )
    assert statistics.endswith("/evaluation.json")
    metadata = request["CustomerMetadataProperties"]
    assert metadata["pipeline_execution_id"] == result.execution_id
    assert all(isinstance(value, str) for value in metadata.values())


def test_a_second_run_reports_cache_hits(baseline: Baseline, tmp_path: Path) -> None:
    work = copy_world(baseline.workdir, tmp_path / "work")
    again = execute(definition(baseline.generated, tmp_path / "d"), baseline.names, work)
    first = baseline.run.result.execution_id
    assert [step(again, name).cache for name in JOBS] == [f"hit ({first})"] * 3
    assert [step(again, name).seconds < 1 for name in JOBS] == [True] * 3
    assert again.result.decisions["Gate"] == baseline.run.result.decisions["Gate"]


@pytest.fixture(scope="module")
def approved(registered: Baseline, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The registered package approved, as a reviewer would."""
    work = copy_world(registered.workdir, tmp_path_factory.mktemp("approved") / "work")
    registry.approve(work / "registry", registered.names.model_package_group)
    return work


def _approved_arn(registered: Baseline) -> str:
    return str(registered.run.result.properties["Register"]["ModelPackageArn"])


def test_the_eval_only_pipeline_scores_the_approved_package(
    baseline: Baseline, registered: Baseline, approved: Path, tmp_path: Path
) -> None:
    source = definition(baseline.generated, tmp_path / "d", pipeline="evaluation")
    done = execute(source, baseline.names, approved)
    assert done.result.status == "Succeeded", done.result.record("Evaluate").reason
    assert [r.status for r in done.result.steps] == ["Succeeded", "Succeeded"]
    assert done.result.parameters["ModelPackageArn"] == _approved_arn(registered)
    notes = " ".join(step(done, "Evaluate").notes)
    assert "sagemaker:DescribeModelPackage" in notes and "cloudwatch:PutMetricData" in notes
    metrics = done.run_dir / "steps" / "Evaluate" / "cloudwatch-metrics.jsonl"
    published = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert {"AUC", "RowsEvaluated"} <= {m["MetricName"] for m in published}
    rows = next(m["Value"] for m in published if m["MetricName"] == "RowsEvaluated")
    assert rows == ROWS


def test_an_approved_package_is_the_next_runs_champion(
    baseline: Baseline, registered: Baseline, approved: Path, tmp_path: Path
) -> None:
    done = execute(definition(baseline.generated, tmp_path / "d"), baseline.names, approved)
    assert done.result.parameters["ChampionModelPackageArn"] == _approved_arn(registered)
    first = baseline.run.result.execution_id
    # The champion is an argument of Evaluate: its cache key changed, the others' did not.
    assert [step(done, name).cache for name in JOBS] == [f"hit ({first})"] * 2 + ["miss"]
    report = _evaluation(approved, done.result.properties["Evaluate"])
    assert report["gate"]["has_champion"] is True


def _rendered(message: Any, evaluation: dict[str, Any], parameters: dict[str, Any]) -> str:
    """The Fail step's ErrorMessage resolved independently of the interpreter."""

    def value(item: Any) -> Any:
        if isinstance(item, str):
            return item
        if "Get" in item:
            return parameters[item["Get"].split(".", 1)[1]]
        found: Any = evaluation
        for key in item["Std:JsonGet"]["Path"].split("."):
            found = found[key]
        return found

    join = message["Std:Join"]
    texts = [v if isinstance(v, str) else json.dumps(v) for v in map(value, join["Values"])]
    return str(join["On"].join(texts))


def test_a_gate_that_says_no_ends_at_the_fail_step_with_its_message(
    baseline: Baseline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = copy_world(baseline.workdir, tmp_path / "work")
    source = definition(baseline.generated, tmp_path / "d", change=gate_forced(False))
    argv = ["--workdir", str(work), "run", "--rows", str(ROWS), "--param", "NumRound=20"]
    code = cli.main([*argv, "--definition", str(source.file), "--code-dir", str(source.code_dir)])
    out = capsys.readouterr().out
    assert code == cli.EXIT_FAIL_STEP
    assert "Gate: false -> ElseSteps (Fail)" in out
    document = json.loads(source.file.read_text())
    gate = next(s for s in document["Steps"] if s["Name"] == "Gate")
    fail = next(s for s in gate["Arguments"]["ElseSteps"] if s["Type"] == "Fail")
    evaluation = _evaluation(baseline.workdir, baseline.run.result.properties["Evaluate"])
    message = _rendered(
        fail["Arguments"]["ErrorMessage"], evaluation, baseline.run.result.parameters
    )
    assert f"Fail (Fail) FailureReason: {message}\n" in out
    assert "Failed (Step failure: One or multiple steps failed.)" in out
    # The jobs were not run again: a progress line and a table row say so for each.
    assert out.count(f"hit ({baseline.run.result.execution_id})") == 2 * len(JOBS)
    # What Evaluate found is printed beside the step table, from its own evaluation.json.
    baseline_accuracy = evaluation["baseline"]["always_majority_accuracy"]
    assert f"{baseline_accuracy:.4f} (the baseline accuracy must beat)" in out
    brier = evaluation["calibration"]["brier_score"]
    assert f"calibration (challenger): Brier {brier:.4f}" in out
    assert f"gate decision: {evaluation['gate']['reason']}\n" in out
