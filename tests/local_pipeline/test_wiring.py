"""A copy of the generated definition with its wiring broken fails with the right step named and
a clear message: before anything runs where the definition alone shows it, else when the step
runs (the baseline's jobs are cache hits, so only the broken part runs)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from pipeline_code.local_pipeline import DefinitionError, runner
from pipeline_code.local_pipeline.definition import BRANCHES
from tests.local_pipeline.conftest import (
    Baseline,
    copy_world,
    definition,
    execute,
    gate_forced,
)

pytestmark = pytest.mark.xdist_group("local_pipeline")


def steps_of(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every step of a definition document by name, branch steps included."""
    found: dict[str, dict[str, Any]] = {}

    def visit(items: list[dict[str, Any]]) -> None:
        for item in items:
            found[item["Name"]] = item
            for branch in BRANCHES:
                visit(item.get("Arguments", {}).get(branch, []))

    visit(document["Steps"])
    return found


def problems_of(baseline: Baseline, folder: Path, change: Any) -> list[str]:
    source = definition(baseline.generated, folder, change=change)
    with pytest.raises(DefinitionError) as raised:
        runner.load(source, baseline.names)
    return raised.value.problems


def _input(step: dict[str, Any], name: str) -> dict[str, Any]:
    return next(i for i in step["Arguments"]["ProcessingInputs"] if i["InputName"] == name)


# ---- found before anything runs ------------------------------------------------------------


def test_a_reference_to_a_missing_step_names_the_reader(baseline: Baseline, tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        train = steps_of(document)["Train"]
        channel = train["Arguments"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]
        channel["S3Uri"]["Get"] = channel["S3Uri"]["Get"].replace("Steps.Prepare.", "Steps.Prep.")

    assert problems_of(baseline, tmp_path, change) == [
        "Train: Get Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri: "
        "there is no step 'Prep'"
    ]


def test_a_dropped_property_file_names_every_step_that_reads_it(
    baseline: Baseline, tmp_path: Path
) -> None:
    problems = problems_of(
        baseline, tmp_path, lambda d: steps_of(d)["Evaluate"].pop("PropertyFiles")
    )
    assert problems
    assert {p.split(":")[0] for p in problems} >= {"Gate"}
    assert all("Evaluate declares no property file 'EvaluationReport'" in p for p in problems)


def test_a_misspelt_output_name_lists_the_outputs(baseline: Baseline, tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        source = _input(steps_of(document)["Evaluate"], "test")["S3Input"]
        source["S3Uri"]["Get"] = source["S3Uri"]["Get"].replace("['test']", "['tset']")

    (problem,) = problems_of(baseline, tmp_path, change)
    assert problem.startswith("Evaluate: Get Steps.Prepare.ProcessingOutputConfig.Outputs['tset']")
    assert "Prepare has no ProcessingOutputConfig.Outputs['tset']" in problem
    assert "train, validation, test" in problem


def test_a_property_that_the_job_does_not_have_is_named(baseline: Baseline, tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        _input(steps_of(document)["Evaluate"], "model")["S3Input"]["S3Uri"] = {
            "Get": "Steps.Train.ModelArtifacts.S3ModelArtifact"
        }

    (problem,) = problems_of(baseline, tmp_path, change)
    assert problem == (
        "Evaluate: Get Steps.Train.ModelArtifacts.S3ModelArtifact: ModelArtifacts."
        "S3ModelArtifact is not a property of DescribeTrainingJob's response"
    )


def test_a_cycle_and_an_unknown_parameter_are_reported_together(
    baseline: Baseline, tmp_path: Path
) -> None:
    def change(document: dict[str, Any]) -> None:
        steps = steps_of(document)
        steps["Prepare"]["DependsOn"] = ["Evaluate"]
        steps["Train"]["Arguments"]["HyperParameters"]["eta"] = {"Get": "Parameters.Eat"}

    problems = problems_of(baseline, tmp_path, change)
    assert "Train: Get Parameters.Eat: no parameter 'Eat'" in problems
    assert any("depend on each other (a cycle)" in p and "Prepare" in p for p in problems)


def test_an_unsupported_step_type_is_named_not_skipped(baseline: Baseline, tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        baseline_step = copy.deepcopy(steps_of(document)["Prepare"])
        baseline_step.update(Name="Baseline", Type="QualityCheck", CheckType="DATA_QUALITY")
        document["Steps"].insert(1, baseline_step)

    (problem,) = problems_of(baseline, tmp_path, change)
    assert problem.startswith("Baseline: step type QualityCheck is not supported by the local run")
    assert "Model Monitor analyzer image" in problem


def test_a_placeholder_without_a_local_value_is_named(baseline: Baseline, tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        steps_of(document)["Train"]["Arguments"]["RoleArn"] = "${DeployRoleArn}"

    problems = problems_of(baseline, tmp_path, change)
    assert problems[0].startswith("placeholders with no local value: ${DeployRoleArn}")


# ---- found when the step runs --------------------------------------------------------------


def run_broken(baseline: Baseline, tmp_path: Path, change: Any, **parameters: str) -> runner.Run:
    work = copy_world(baseline.workdir, tmp_path / "work")
    source = definition(baseline.generated, tmp_path / "definition", change=change)
    return execute(source, baseline.names, work, **parameters)


def test_a_condition_on_a_missing_metric_fails_the_gate(baseline: Baseline, tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        condition = steps_of(document)["Gate"]["Arguments"]["Conditions"][0]
        condition["LeftValue"]["Std:JsonGet"]["Path"] = "gate.no_such_metric"

    done = run_broken(baseline, tmp_path, change)
    assert done.result.failed_step == "Gate"
    assert done.result.record("Gate").reason == (
        "Std:JsonGet 'gate.no_such_metric' of property file EvaluationReport (step Evaluate): "
        "gate.no_such_metric is not in the file"
    )
    assert done.result.record("Register").status == "NotStarted"


def test_swapped_inputs_fail_the_step_that_reads_them(baseline: Baseline, tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        evaluate = steps_of(document)["Evaluate"]
        model, test = _input(evaluate, "model")["S3Input"], _input(evaluate, "test")["S3Input"]
        model["S3Uri"], test["S3Uri"] = test["S3Uri"], model["S3Uri"]

    done = run_broken(baseline, tmp_path, change)
    assert done.result.failed_step == "Evaluate"
    reason = done.result.record("Evaluate").reason
    assert reason.startswith("AlgorithmError: See job logs for more information (exit code 1;")
    # The reason is the job's ExitMessage, with container paths as the container saw them.
    container = done.run_dir / "steps" / "Evaluate" / "container"
    message = (container / "opt" / "ml" / "output" / "message").read_text()
    shown = message.replace(str(container / "opt" / "ml"), "/opt/ml").strip()
    assert f"ExitMessage: {shown})" in reason
    assert shown and str(container) not in reason


def test_a_property_file_the_job_does_not_write_fails_its_step(
    baseline: Baseline, tmp_path: Path
) -> None:
    def change(document: dict[str, Any]) -> None:
        steps_of(document)["Evaluate"]["PropertyFiles"][0]["FilePath"] = "metrics.json"

    done = run_broken(baseline, tmp_path, change)
    assert done.result.failed_step == "Evaluate"
    reason = done.result.record("Evaluate").reason
    assert reason.startswith("property file EvaluationReport: s3://")
    assert reason.endswith(
        "/evaluation/metrics.json does not exist (output 'evaluation', "
        "FilePath 'metrics.json'); the job did not write it"
    )


def test_an_input_no_step_wrote_names_the_input_and_uri(baseline: Baseline, tmp_path: Path) -> None:
    missing = f"s3://{baseline.names.artifact_bucket}/pipeline-code/{'0' * 64}/schema.json"

    def change(document: dict[str, Any]) -> None:
        _input(steps_of(document)["Prepare"], "schema")["S3Input"]["S3Uri"] = missing

    done = run_broken(baseline, tmp_path, change)
    assert done.result.failed_step == "Prepare"
    assert done.result.record("Prepare").reason.startswith(
        f"input schema: ClientError: no S3 objects found under {missing}"
    )


def test_registered_metrics_must_point_at_what_a_step_wrote(
    baseline: Baseline, tmp_path: Path
) -> None:
    def change(document: dict[str, Any]) -> None:
        gate_forced(True)(document)
        metrics = steps_of(document)["Register"]["Arguments"]["ModelMetrics"]
        metrics["ModelQuality"]["Statistics"]["S3Uri"]["Std:Join"]["Values"][1] = "eval.json"

    done = run_broken(baseline, tmp_path, change)
    assert done.result.failed_step == "Register"
    reason = done.result.record("Register").reason
    assert reason.startswith("ModelMetrics.ModelQuality.Statistics.S3Uri = s3://")
    assert reason.endswith("/eval.json: no such object in the local bucket (no step wrote it)")
