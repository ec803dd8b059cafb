"""Batch serving's scoring pipeline, as generated for the batch variant: Check (score.py, not
cached) -> Model (CreateModel of the served package, network isolated, only after the data
passed) -> Score (a transform job SageMaker accepts: botocore's CreateTransformJob model, KMS on
volume and output, the input joined to each prediction, output where Check says). The other
modes generate no scoring pipeline and publish no scoring code."""

from __future__ import annotations

import json
import re
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from pipeline_code.definition.contract import PARAM_MODEL_PACKAGE_ARN
from pipeline_code.steps import load
from stacks.pipeline_definitions import generate_pipelines
from tests.conftest import BATCH, variant_config

CONFIGURED = json.loads(BATCH)["serving"]["batch"]
KEY = "arn:aws:kms:eu-west-1:111111111111:key/"
SAMPLE = {
    "${ScoringModelRoleArn}": "arn:aws:iam::111111111111:role/scoring-model",
    "${DataKmsKeyArn}": KEY + "11111111-2222-3333-4444-555555555555",
    "${KmsKeyArn}": KEY + "66666666-2222-3333-4444-555555555555",
}
SAMPLE_VALUES = {
    "Parameters.ModelPackageArn": (
        "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlops-loop-dev-models/7"
    ),
    "Steps.Model.ModelName": "pipelines-abc123-Model-1a2b3c",
    "Steps.Check.ProcessingOutputConfig.Outputs['rows'].S3Output.S3Uri": (
        "s3://artifacts/pipelines/mlops-loop-dev-scoring/executions/abc/Check/rows"
    ),
}


def _resolved(value: Any) -> Any:
    """The request as SageMaker sends it at run time: expressions and placeholders filled in."""
    if isinstance(value, dict):
        if set(value) == {"Get"}:
            return SAMPLE_VALUES[value["Get"]]
        if set(value) == {"Std:JsonGet"}:
            return "s3://data/predictions/transactions/2026-12-07/7/"
        return {k: _resolved(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v) for v in value]
    if isinstance(value, str) and value in SAMPLE:
        return SAMPLE[value]
    return value


def _validate(operation: str, request: dict[str, Any]) -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    report = ParamValidator().validate(request, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


@pytest.fixture(scope="module")
def steps() -> dict[str, dict[str, Any]]:
    generated = generate_pipelines(variant_config("dev", BATCH))
    definition = json.loads(generated.definition_file("scoring").read_text())
    return {step["Name"]: step for step in definition["Steps"]}


def test_check_then_model_then_score(steps: dict[str, dict[str, Any]]) -> None:
    assert list(steps) == ["Check", "Model", "Score"]
    assert [s["Type"] for s in steps.values()] == ["Processing", "Model", "Transform"]
    assert steps["Model"]["DependsOn"] == ["Check"]  # no model before the data passed
    # not cached: a newly served package must score the same data again
    assert "CacheConfig" not in steps["Check"]


def test_the_check_step_runs_score_py_isolated_on_the_version(
    steps: dict[str, dict[str, Any]],
) -> None:
    args = steps["Check"]["Arguments"]
    assert args["NetworkConfig"]["EnableNetworkIsolation"] is True
    container = args["AppSpecification"]["ContainerArguments"]
    assert container[container.index("--id-column") + 1] == CONFIGURED["id_column"]
    assert container[container.index("--model-package-arn") + 1] == {
        "Get": f"Parameters.{PARAM_MODEL_PACKAGE_ARN}"
    }
    # each run writes under a prefix of its own: a stale _SUCCESS never vouches for it
    assert container[container.index("--run-id") + 1] == {"Get": "Execution.PipelineExecutionId"}
    entry = args["AppSpecification"]["ContainerEntrypoint"]
    assert entry[-1].endswith("/score.py")
    score = load("score")
    (report,) = steps["Check"]["PropertyFiles"]
    assert (report["OutputName"], report["FilePath"]) == (score.REPORT_OUTPUT, score.SCORING_FILE)


def test_the_model_is_the_served_package_network_isolated(
    steps: dict[str, dict[str, Any]],
) -> None:
    request = steps["Model"]["Arguments"]
    assert request["EnableNetworkIsolation"] is True
    assert request["PrimaryContainer"] == {
        "ModelPackageName": {"Get": f"Parameters.{PARAM_MODEL_PACKAGE_ARN}"}
    }
    assert request["ExecutionRoleArn"] == "${ScoringModelRoleArn}"
    _validate("CreateModel", {"ModelName": "scoring-model", **_resolved(request)})


def test_the_transform_request_is_one_sagemaker_accepts(steps: dict[str, dict[str, Any]]) -> None:
    request = _resolved(steps["Score"]["Arguments"])
    _validate("CreateTransformJob", {"TransformJobName": "scoring-job", **request})


def test_the_transform_encrypts_joins_and_writes_where_check_says(
    steps: dict[str, dict[str, Any]],
) -> None:
    args = steps["Score"]["Arguments"]
    assert args["TransformResources"] == {
        "InstanceCount": CONFIGURED["instance_count"],
        "InstanceType": CONFIGURED["instance_type"],
        "VolumeKmsKeyId": "${KmsKeyArn}",
    }
    output = args["TransformOutput"]
    assert output["KmsKeyId"] == "${DataKmsKeyArn}"  # the data bucket's key
    assert output["S3OutputPath"] == {
        "Std:JsonGet": {
            "Path": "output_uri",
            "PropertyFile": {"Get": "Steps.Check.PropertyFiles.ScoringReport"},
        }
    }
    # the id (column 0) is not a feature; every output line is the input row + its prediction
    assert args["DataProcessing"] == {
        "InputFilter": "$[1:]",
        "JoinSource": "Input",
        "OutputFilter": "$",
    }
    assert args["TransformInput"]["SplitType"] == "Line"
    assert args["TransformInput"]["ContentType"] == output["Accept"] == "text/csv"
    assert args["ModelName"] == {"Get": "Steps.Model.ModelName"}
    assert args["MaxPayloadInMB"] == CONFIGURED["max_payload_mb"]
    assert args["MaxConcurrentTransforms"] == CONFIGURED["max_concurrent_transforms"]


def test_the_endpoint_modes_have_no_scoring_pipeline_and_no_scoring_code() -> None:
    generated = generate_pipelines(variant_config("dev"))
    assert set(generated.manifest["pipelines"]) == {"training", "evaluation"}
    assert "ScoringModelRoleArn" not in generated.placeholders
    code = {p.name for p in generated.code_dir.rglob("*.py")}
    assert "score.py" not in code and "prepare.py" in code


def test_only_the_batch_settings_add_placeholders() -> None:
    generated = generate_pipelines(variant_config("dev", BATCH))
    assert {"DataKmsKeyArn", "ScoringModelRoleArn"} <= set(generated.placeholders)
    text = generated.definition_file("scoring").read_text()
    assert set(re.findall(r"\$\{([^}]*)\}", text)) <= set(generated.placeholders)


CUSTOM_BATCH = json.dumps(
    {
        "pipeline": {
            "trainer": "custom",
            "custom": {
                "image_uri": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/my-trainer@sha256:"
                + "ab" * 32,
                "source_dir": "examples/custom_trainer",
            },
        },
        "serving": json.loads(BATCH)["serving"],
    }
)


def test_a_custom_trainers_scoring_definition_scores_the_served_package() -> None:
    """pipeline.trainer = custom in batch mode: the same Check -> Model -> Score, whose model
    is the served package (registered in the SageMaker XGBoost image), and requests SageMaker
    accepts (botocore's CreateModel and CreateTransformJob models)."""
    generated = generate_pipelines(variant_config("dev", CUSTOM_BATCH))
    definition = json.loads(generated.definition_file("scoring").read_text())
    custom = {step["Name"]: step for step in definition["Steps"]}
    assert [(name, s["Type"]) for name, s in custom.items()] == [
        ("Check", "Processing"),
        ("Model", "Model"),
        ("Score", "Transform"),
    ]
    model = custom["Model"]["Arguments"]
    assert model["PrimaryContainer"] == {
        "ModelPackageName": {"Get": f"Parameters.{PARAM_MODEL_PACKAGE_ARN}"}
    }
    assert model["EnableNetworkIsolation"] is True
    _validate("CreateModel", {"ModelName": "scoring-model", **_resolved(model)})
    score = _resolved(custom["Score"]["Arguments"])
    _validate("CreateTransformJob", {"TransformJobName": "scoring-job", **score})
    assert score["TransformInput"]["ContentType"] == "text/csv"
