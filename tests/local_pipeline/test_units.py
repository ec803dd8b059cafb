"""The interpreter's parts on their own: placeholders, parameters, expressions, property paths,
the local bucket's prefix semantics, cache keys and expiry, conditions, the command line and
the Makefile's wiring of it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipeline_code import offline
from pipeline_code.local_pipeline import caching, cli, control, definition, sources
from pipeline_code.local_pipeline.bucket import LocalS3, S3UriError, split_uri
from pipeline_code.local_pipeline.errors import LocalPipelineError, StepError
from pipeline_code.local_pipeline.expressions import Scope, json_path, resolve
from pipeline_code.local_pipeline.parameters import parameter_values, parse_assignments
from pipeline_code.local_pipeline.properties import (
    Named,
    PropertyPathError,
    check_against_shape,
    parse_path,
)
from stacks.pipeline_definitions import GeneratedPipelines
from tests.lambda_loader import load_lambda_module

ROOT = Path(__file__).resolve().parents[2]


# ---- placeholders ----------------------------------------------------------------------------


def test_placeholders_are_filled_as_the_pipeline_custom_resource_fills_them(
    generated: GeneratedPipelines, names: sources.LocalNames
) -> None:
    resource = load_lambda_module("pipeline_resource", "pipeline_resource.definition")
    values = names.placeholders()
    assert set(values) == set(offline.PLACEHOLDERS)
    for pipeline in sources.PIPELINES:
        text = generated.definition_file(pipeline).read_text()
        assert definition.substitute(text, values) == resource.render_definition(text, values)
        assert "${" not in definition.substitute(text, values)
    assert definition.substitute('"${!Literal}"', values) == '"${Literal}"'


# ---- parameters ------------------------------------------------------------------------------

DECLARED = [
    {"Name": "InputDataUri", "Type": "String"},
    {"Name": "NumRound", "Type": "Integer", "DefaultValue": 300},
    {"Name": "Eta", "Type": "Float", "DefaultValue": 0.1},
    {"Name": "Debug", "Type": "Boolean", "DefaultValue": False},
    {"Name": "Status", "Type": "String", "DefaultValue": "A", "EnumValues": ["A", "B"]},
]


def test_parameters_take_the_start_values_then_the_users_each_typed() -> None:
    values = parameter_values(
        DECLARED, {"InputDataUri": "s3://b/k/", "Unused": "x"}, {"Eta": "0.5", "Debug": "TRUE"}
    )
    assert values == {
        "InputDataUri": "s3://b/k/",
        "NumRound": 300,
        "Eta": 0.5,
        "Debug": True,
        "Status": "A",
    }


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"NumRund": "3"},
            "--param NumRund: the definition has no such parameter (did you mean NumRound?)",
        ),
        ({"NumRound": "3.5"}, "parameter NumRound = '3.5' is not allowed: a Integer value"),
        ({"Debug": "yes"}, "parameter Debug = 'yes' is not allowed: a Boolean value"),
        ({"Status": "C"}, "parameter Status = 'C' is not allowed: one of A, B"),
    ],
)
def test_bad_parameter_values_are_named(given: dict[str, str], message: str) -> None:
    with pytest.raises(LocalPipelineError) as raised:
        parameter_values(DECLARED, {"InputDataUri": "s3://b/k/"}, given)
    assert str(raised.value).startswith(message)


def test_a_parameter_without_a_value_says_how_to_give_one() -> None:
    with pytest.raises(
        LocalPipelineError,
        match=r"InputDataUri has no default value .* "
        r"PARAM_InputDataUri=value \(make\) or --param InputDataUri=value",
    ):
        parameter_values(DECLARED, {}, {})
    assert parse_assignments(["A=b=c", "Empty="]) == {"A": "b=c", "Empty": ""}
    with pytest.raises(LocalPipelineError, match="write Name=value"):
        parse_assignments(["novalue"])


# ---- expressions and properties --------------------------------------------------------------


def _scope() -> Scope:
    report = {"gate": {"challenger": 0.91, "has_champion": False}, "runs": [{"auc": 0.5}]}
    return Scope(
        {"MetricFloor": 0.8, "NumRound": 300},
        {"PipelineExecutionId": "abc123"},
        {
            "Prepare": {
                "ProcessingOutputConfig": {
                    "Outputs": [{"OutputName": "train", "S3Output": {"S3Uri": "s3://b/train"}}]
                }
            }
        },
        lambda step, name: report,
    )


def test_join_spells_values_as_json_and_get_reads_named_outputs() -> None:
    expression = {
        "Std:Join": {
            "On": " ",
            "Values": [
                "floor",
                {"Get": "Parameters.MetricFloor"},
                {"Get": "Parameters.NumRound"},
                {
                    "Std:JsonGet": {
                        "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.R"},
                        "Path": "gate.has_champion",
                    }
                },
                {"Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"},
                {"Get": "Execution.PipelineExecutionId"},
            ],
        }
    }
    assert resolve(expression, _scope(), "Gate") == "floor 0.8 300 false s3://b/train abc123"
    assert json_path({"a": [{"b": 1}]}, "$.a[0].b") == 1


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            {"Get": "Steps.Train.ModelArtifacts"},
            "Gate: Get Steps.Train.ModelArtifacts: step Train has not run "
            "(it failed, was skipped or is later)",
        ),
        (
            {"Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"},
            "Gate: Get Steps.Prepare.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri: "
            "ProcessingOutputConfig.Outputs['test'] does not exist (names: train)",
        ),
        (
            {
                "Std:JsonGet": {
                    "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.R"},
                    "Path": "runs[1].auc",
                }
            },
            "Gate: Std:JsonGet 'runs[1].auc' of property file R (step Evaluate): runs[1] is not in "
            "the file",
        ),
    ],
)
def test_unresolvable_expressions_name_the_step(expression: Any, message: str) -> None:
    with pytest.raises(StepError) as raised:
        resolve(expression, _scope(), "Gate")
    assert str(raised.value) == message


def test_property_paths_are_checked_against_the_describe_responses() -> None:
    assert parse_path("Outputs['a b'].S3Output[0]") == ["Outputs", Named("a b"), "S3Output", 0]
    check_against_shape("Training", parse_path("ModelArtifacts.S3ModelArtifacts"))
    check_against_shape("Training", parse_path("FinalMetricDataList['auc'].Value"))
    check_against_shape("RegisterModel", parse_path("ModelPackageArn"))
    check_against_shape("Condition", parse_path("Outcome"))
    with pytest.raises(PropertyPathError, match="is not a property of DescribeProcessingJob"):
        check_against_shape("Processing", parse_path("ModelArtifacts"))
    with pytest.raises(PropertyPathError, match="TrainingJobName is not a list"):
        check_against_shape("Training", parse_path("TrainingJobName[0]"))
    with pytest.raises(PropertyPathError, match="cannot parse"):
        parse_path("Outputs[train]")


# ---- local bucket and cache ------------------------------------------------------------------


def test_the_local_bucket_follows_s3_prefix_semantics(tmp_path: Path) -> None:
    s3 = LocalS3(tmp_path)
    for key in ("x/train/part-1.csv", "x/train2/part-1.csv", "x/schema.json"):
        s3.put_bytes(key.encode(), f"s3://bucket/{key}")
    assert [r for r, _ in s3.objects("s3://bucket/x/train/")] == ["part-1.csv"]
    assert [r for r, _ in s3.objects("s3://bucket/x/train")] == ["part-1.csv", "2/part-1.csv"]
    # a prefix that begins file names: each keeps its name, as in SageMaker's jobs
    # (aws/sagemaker-python-sdk#3612: only the SDK's local mode cuts the prefix off)
    assert [r for r, _ in s3.objects("s3://bucket/x/sch")] == ["schema.json"]
    assert s3.download("s3://bucket/x/schema.json", tmp_path / "in") == 1
    assert (tmp_path / "in" / "schema.json").read_bytes() == b"x/schema.json"
    with pytest.raises(FileNotFoundError):
        s3.download("s3://bucket/y/", tmp_path / "in")
    for bad in ("https://bucket/x", "s3://Bucket/x", "s3://bucket/a/../b", "s3://bucket/a//b"):
        with pytest.raises(S3UriError):
            split_uri(bad)


def test_cache_keys_cover_the_documented_attributes_only() -> None:
    request = {
        "AppSpecification": {"ContainerArguments": ["--seed", "42"]},
        "ProcessingInputs": [{"S3Input": {"S3Uri": "s3://b/pipeline-code/aaa/"}}],
        "ProcessingOutputConfig": {"Outputs": [{"S3Output": {"S3Uri": "s3://b/exec-1/"}}]},
    }
    key = caching.cache_key("p", "Prepare", "Processing", request)
    other_output = {**request, "ProcessingOutputConfig": {"Outputs": []}}
    assert caching.cache_key("p", "Prepare", "Processing", other_output) == key
    other_code = {
        **request,
        "ProcessingInputs": [{"S3Input": {"S3Uri": "s3://b/pipeline-code/b/"}}],
    }
    assert caching.cache_key("p", "Prepare", "Processing", other_code) != key
    assert caching.expire_after_seconds("P30D") == 30 * 86400
    assert caching.expire_after_seconds("PT1H30M") == 5400
    assert caching.expire_after_seconds("30dT5h") == 30 * 86400 + 5 * 3600
    with pytest.raises(ValueError, match="not an ISO 8601 duration"):
        caching.expire_after_seconds("30 days")


# ---- conditions ------------------------------------------------------------------------------


def test_conditions_cover_the_service_operators() -> None:
    scope = _scope()
    floor = {"Get": "Parameters.MetricFloor"}
    decision = control.run_condition(
        {
            "Conditions": [
                {"Type": "GreaterThanOrEqualTo", "LeftValue": 0.8, "RightValue": floor},
                {
                    "Type": "Or",
                    "Conditions": [
                        {"Type": "LessThan", "LeftValue": 1, "RightValue": 0},
                        {"Type": "In", "QueryValue": "b", "Values": ["a", "b"]},
                    ],
                },
                {
                    "Type": "Not",
                    "Expression": {"Type": "Equals", "LeftValue": "x", "RightValue": "y"},
                },
            ]
        },
        scope,
        "Gate",
    )
    assert decision.outcome is True
    assert decision.lines[0] == "0.8 (0.8) >= Parameters.MetricFloor (0.8): true"
    with pytest.raises(StepError, match="cannot compare 'x' \\(str\\) with 0.8 \\(float\\)"):
        control.run_condition(
            {"Conditions": [{"Type": "GreaterThan", "LeftValue": "x", "RightValue": floor}]},
            scope,
            "Gate",
        )


# ---- command line and Makefile ---------------------------------------------------------------


def test_a_broken_definition_stops_the_command_before_any_step(
    generated: GeneratedPipelines, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(generated.definition_file("training").read_text())
    document["Steps"][1]["DependsOn"] = ["Nowhere"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document))
    argv = ["--workdir", str(tmp_path / "w"), "--definition", str(broken)]
    code = cli.main([*argv, "--code-dir", str(generated.code_dir)])
    assert code == cli.EXIT_CANNOT_START
    err = capsys.readouterr().err
    assert (
        "the definition has problems:\n  Train: DependsOn names 'Nowhere', which is not a step"
        in err
    )
    assert not (tmp_path / "w" / "runs").exists()


def test_make_passes_param_variables_and_keeps_the_script_runner() -> None:
    def dry_run(*variables: str) -> str:
        return subprocess.run(
            [
                "make",
                "-n",
                "-o",
                ".venv/.dev",
                "-o",
                ".venv/.runtime",
                "-o",
                "node_modules/.installed",
                "local-run",
                *variables,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    command = dry_run("PARAM_NumRound=50", "PIPELINE=evaluation", "ROWS=1000")
    assert "-m pipeline_code.local_pipeline --env dev run --pipeline evaluation" in command
    assert "--rows 1000" in command and '--param "NumRound=50"' in command
    assert "-m pipeline_code.local_run --workdir" in dry_run("RUNNER=scripts")
    assert "-m pipeline_code.local_run --workdir" in dry_run("FAST=1")
    # the scripts runner is told the trainer, so it can refuse one it does not run
    assert "--trainer sklearn" in dry_run("FAST=1", "TRAINER=sklearn")
    assert "--trainer custom" in dry_run("RUNNER=scripts", "TRAINER=custom")


def test_job_constructs_without_a_local_stand_in_are_refused_by_name() -> None:
    from pipeline_code.local_pipeline import processing, training

    with pytest.raises(StepError, match="Prepare: InstanceCount 11 is not supported by the local"):
        processing._check_supported(
            "Prepare", {"ProcessingResources": {"ClusterConfig": {"InstanceCount": 11}}}
        )
    pipe = {
        "AlgorithmSpecification": {"ContainerEntrypoint": ["python3"], "TrainingInputMode": "Pipe"},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {}}}],
    }
    with pytest.raises(StepError, match="Train: channel train: Pipe mode is not supported"):
        training._check_supported("Train", pipe)
    built_in = {
        "AlgorithmSpecification": {"TrainingImage": "xgboost:1", "TrainingInputMode": "File"}
    }
    with pytest.raises(StepError, match="a training image's own entrypoint is not supported"):
        training._check_supported("Train", built_in)


# ---- the local run's overrides go through the configuration's rules ---------------------------


@pytest.mark.parametrize(
    ("schema_change", "processors", "fragment"),
    [
        (
            {"problem_type": "regression", "positive_class": "yes"},
            3,
            "schema.positive_class = 'yes' is not allowed with problem_type 'regression'",
        ),
        ({}, 11, "processing_instance_count"),  # beyond the allowed 1-10
    ],
)
def test_local_run_overrides_are_refused_as_the_configuration_refuses_them(
    capfd: pytest.CaptureFixture[str],
    schema_change: dict[str, Any],
    processors: int,
    fragment: str,
) -> None:
    """`make local-run PROBLEM=regression POSITIVE=x` (or PROCESSORS=11) must not bypass the
    configuration's refusals."""
    from tests.steps import SCHEMA

    with pytest.raises(LocalPipelineError, match="cannot generate the pipeline definitions"):
        sources.generated("dev", "training", {**SCHEMA, **schema_change}, processors=processors)
    assert fragment in capfd.readouterr().err


def _with_cdk_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **pipeline_defaults: Any
) -> None:
    """Make the generator's process read a cdk.json whose defaults.pipeline adds
    `pipeline_defaults` (a sitecustomize on its PYTHONPATH points the loader's default path
    there), leaving the repository's cdk.json alone."""
    from mlops_config import read_cdk_json_context

    context = read_cdk_json_context()
    context["defaults"]["pipeline"].update(pipeline_defaults)
    (tmp_path / "cdk.json").write_text(json.dumps({"context": context}), encoding="utf-8")
    (tmp_path / "sitecustomize.py").write_text(
        "import pathlib\nimport mlops_config.loading as loading\n"
        f"loading.read_cdk_json_context.__defaults__ = (pathlib.Path({str(tmp_path)!r}) / "
        "'cdk.json',)\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{ROOT}")


@pytest.mark.parametrize(
    ("configured", "trainer"),
    [
        ({"trainer": "sklearn", "sklearn": {"estimator": "sklearn.svm.SVC"}}, "xgboost"),
        ({"trainer": "sklearn", "sklearn": {"estimator": "sklearn.svm.SVC"}}, "custom"),
        ({"trainer": "xgboost", "scale_pos_weight": "balanced"}, "sklearn"),
    ],
)
def test_a_trainer_override_drops_the_configured_trainers_settings(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    configured: dict[str, Any],
    trainer: str,
) -> None:
    """`make local-run TRAINER=xgboost` over a cdk.json with trainer sklearn and its block (or
    TRAINER=sklearn over a class weight only train.py applies) runs that trainer, instead of the
    configuration refusing the other trainer's settings."""
    _with_cdk_json(tmp_path, monkeypatch, **configured)
    source = sources.generated("dev", "training", trainer=trainer)
    steps = json.loads(source.file.read_text(encoding="utf-8"))["Steps"]
    images = [
        step["Arguments"]["AlgorithmSpecification"]["TrainingImage"]
        for step in steps
        if step["Type"] == "Training"
    ]
    expected = {"xgboost": "sagemaker-xgboost", "custom": "custom-trainer-example"}
    assert images and all(expected.get(trainer, "sagemaker-scikit-learn") in i for i in images)
    assert ("scale_pos_weight 1: the configured 'balanced'" in capfd.readouterr().err) == (
        "scale_pos_weight" in configured
    )


@pytest.mark.parametrize("problem", ["multiclass", "regression"])
def test_a_local_problem_type_resets_the_binary_only_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, problem: str
) -> None:
    """A multiclass or regression file over a binary cdk.json that sets decision_threshold and
    scale_pos_weight: the run is generated (they would be refused for that problem type)."""
    from tests.steps import SCHEMA

    _with_cdk_json(tmp_path, monkeypatch, decision_threshold=0.3, scale_pos_weight="balanced")
    schema = {**SCHEMA, "problem_type": problem}
    schema.pop("positive_class", None)
    source = sources.generated("dev", "training", schema)
    steps = json.loads(source.file.read_text(encoding="utf-8"))["Steps"]
    train = next(step for step in steps if step["Type"] == "Training")
    hyperparameters = train["Arguments"]["HyperParameters"]
    assert hyperparameters.get("scale_pos_weight", "1") == "1"
    assert hyperparameters.get("decision_threshold", "max-f1") == "max-f1"
