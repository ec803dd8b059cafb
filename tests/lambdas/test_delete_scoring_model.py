"""Scoring-model cleanup: a scoring transform job that finished (Completed, Failed or Stopped)
-> DeleteModel of the model it ran; a running job, another model and a malformed event delete
nothing; a model already gone (a re-delivered event) is success.

Events are EventBridge's envelope around DescribeTransformJob's answer, validated against
botocore's service model (the helpers of test_mark_predictions); DeleteModel goes through
botocore's Stubber (request validated, nothing else may be called).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.lambda_loader import emf_documents, handler_with, lambda_context, load_lambda_module
from tests.lambdas import test_mark_predictions as transform_events

pytestmark = pytest.mark.usefixtures("aws_credentials")

cleanup = load_lambda_module("delete_scoring_model", "scoring_model_cleanup")
MODEL = transform_events.transform_detail()["ModelName"]


@pytest.fixture()
def sagemaker() -> Iterator[Any]:
    client = boto3.client("sagemaker", region_name=transform_events.REGION)
    with Stubber(client) as stubber:
        client.stubber = stubber  # type: ignore[attr-defined]
        yield client
        stubber.assert_no_pending_responses()


def finished(status: str, **changes: Any) -> dict[str, Any]:
    detail = {**transform_events.transform_detail(status=status), **changes}
    if status == "Failed":
        detail["FailureReason"] = "ClientError: see the logs"
    if status in ("InProgress", "Stopping"):
        del detail["TransformEndTime"]
    return transform_events.event(detail)


@pytest.mark.parametrize("status", ["Completed", "Failed", "Stopped"])
def test_a_finished_scoring_job_deletes_its_model(sagemaker: Any, status: str) -> None:
    sagemaker.stubber.add_response("delete_model", {}, {"ModelName": MODEL})

    outcome = cleanup.delete_model(sagemaker, cleanup.parse_event(finished(status)))

    assert outcome.metric == "ModelsDeleted"
    assert MODEL in outcome.message


@pytest.mark.parametrize("status", ["InProgress", "Stopping"])
def test_a_running_job_keeps_its_model(sagemaker: Any, status: str) -> None:
    outcome = cleanup.delete_model(sagemaker, cleanup.parse_event(finished(status)))
    assert outcome.metric == "NotFinished"


def test_a_model_that_is_not_a_scoring_runs_is_left_alone(sagemaker: Any) -> None:
    event = finished("Completed", ModelName="my-hand-made-model")
    outcome = cleanup.delete_model(sagemaker, cleanup.parse_event(event))
    assert outcome.metric == "Skipped"


def test_a_model_already_deleted_is_success(sagemaker: Any) -> None:
    sagemaker.stubber.add_client_error(
        "delete_model",
        service_error_code="ValidationException",
        service_message=f'Could not find model "arn:aws:sagemaker:eu-west-1:1:model/{MODEL}".',
        expected_params={"ModelName": MODEL},
    )
    outcome = cleanup.delete_model(sagemaker, cleanup.parse_event(finished("Completed")))
    assert outcome.metric == "AlreadyDeleted"


def test_a_model_that_is_not_ours_is_a_counted_skip(
    sagemaker: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """IAM denies DeleteModel on a `pipelines-*` model not tagged with our scoring pipeline:
    someone else's job, not a failure to retry into the dead-letter queue."""
    handler = handler_with("delete_scoring_model", monkeypatch, {}, sagemaker=sagemaker)
    sagemaker.stubber.add_client_error(
        "delete_model",
        service_error_code="AccessDeniedException",
        service_message="User: arn:aws:sts::111111111111:assumed-role/cleanup/fn is not "
        "authorized to perform: sagemaker:DeleteModel on resource: "
        f"arn:aws:sagemaker:eu-west-1:111111111111:model/{MODEL} because no identity-based "
        "policy allows the sagemaker:DeleteModel action",
        http_status_code=400,
        expected_params={"ModelName": MODEL},
    )
    context = lambda_context(
        "delete-scoring-model", transform_events.REGION, transform_events.ACCOUNT
    )

    result = handler.lambda_handler(finished("Completed"), context)

    assert result["outcome"] == "NotOurs"
    assert [d.get("NotOurs") for d in emf_documents(capsys.readouterr().out)] == [[1.0]]


def test_other_failures_raise_for_the_retries_and_dead_letters(sagemaker: Any) -> None:
    sagemaker.stubber.add_client_error(
        "delete_model", service_error_code="ThrottlingException", http_status_code=400
    )
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        cleanup.delete_model(sagemaker, cleanup.parse_event(finished("Completed")))


SCORING_ARN = (
    f"arn:aws:sagemaker:{transform_events.REGION}:{transform_events.ACCOUNT}"
    ":pipeline/mlops-loop-dev-scoring"
)
EXECUTION_ARN = f"{SCORING_ARN}/execution/k2x9q1w7e3r5"
EXECUTION_MODEL = "pipelines-k2x9q1w7e3r5-Model-CreateModel-7Qx2pLm9Ab"


def ended(status: str, **changes: Any) -> dict[str, Any]:
    """EventBridge's "SageMaker Model Building Pipeline Execution Status Change" (the fields
    the SageMaker developer guide's automating-with-EventBridge page lists)."""
    detail = {
        "pipelineArn": SCORING_ARN,
        "pipelineExecutionArn": EXECUTION_ARN,
        "pipelineExecutionDisplayName": "score-churn-v7",
        "currentPipelineExecutionStatus": status,
        "previousPipelineExecutionStatus": "Executing",
        "executionStartTime": "2026-12-07T10:00:00Z",
        "executionEndTime": "2026-12-07T10:04:00Z",
        **changes,
    }
    return {
        "version": "0",
        "id": "4c2b0f0e-6f7e-2b7f-1c1a-9a7f4f5e1d2c",
        "detail-type": "SageMaker Model Building Pipeline Execution Status Change",
        "source": "aws.sagemaker",
        "account": transform_events.ACCOUNT,
        "time": "2026-12-07T10:04:00Z",
        "region": transform_events.REGION,
        "resources": [SCORING_ARN, EXECUTION_ARN],
        "detail": detail,
    }


def steps(*, model_step: bool) -> dict[str, Any]:
    """ListPipelineExecutionSteps (newest first): the Model step's metadata names its model;
    the Score step failed before its transform job existed (CreateTransformJob refused)."""
    listed: list[dict[str, Any]] = [
        {
            "StepName": "Score",
            "StepStatus": "Failed",
            "FailureReason": "ClientError: AccessDeniedException: CreateTransformJob",
            "Metadata": {},
        },
        {"StepName": "Check", "StepStatus": "Succeeded", "Metadata": {}},
    ]
    if model_step:
        model_arn = (
            f"arn:aws:sagemaker:{transform_events.REGION}:{transform_events.ACCOUNT}"
            f":model/{EXECUTION_MODEL.lower()}"
        )
        listed.insert(
            1,
            {
                "StepName": "Model-CreateModel",
                "StepStatus": "Succeeded",
                "Metadata": {"Model": {"Arn": model_arn}},
            },
        )
    return {"PipelineExecutionSteps": listed}


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_an_ended_run_whose_transform_never_ran_deletes_its_model(
    sagemaker: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], status: str
) -> None:
    handler = handler_with("delete_scoring_model", monkeypatch, {}, sagemaker=sagemaker)
    sagemaker.stubber.add_response(
        "list_pipeline_execution_steps",
        steps(model_step=True),
        {"PipelineExecutionArn": EXECUTION_ARN},
    )
    sagemaker.stubber.add_response("delete_model", {}, {"ModelName": EXECUTION_MODEL.lower()})
    context = lambda_context(
        "delete-scoring-model", transform_events.REGION, transform_events.ACCOUNT
    )

    result = handler.lambda_handler(ended(status), context)

    assert result["outcome"] == "ModelsDeleted"
    assert [d.get("ModelsDeleted") for d in emf_documents(capsys.readouterr().out)] == [[1.0]]


def test_an_ended_run_whose_model_the_transform_event_deleted_is_success(sagemaker: Any) -> None:
    sagemaker.stubber.add_response("list_pipeline_execution_steps", steps(model_step=True))
    sagemaker.stubber.add_client_error(
        "delete_model",
        service_error_code="ValidationException",
        service_message=f'Could not find model "{EXECUTION_MODEL.lower()}".',
    )
    outcome = cleanup.clean_up(sagemaker, cleanup.parse_event(ended("Failed")))
    assert outcome.metric == "AlreadyDeleted"


def test_an_ended_run_that_created_no_model_deletes_nothing(sagemaker: Any) -> None:
    sagemaker.stubber.add_response("list_pipeline_execution_steps", steps(model_step=False))
    outcome = cleanup.clean_up(sagemaker, cleanup.parse_event(ended("Stopped")))
    assert outcome.metric == "NoModel"


def test_a_succeeded_run_is_left_to_its_transform_event(sagemaker: Any) -> None:
    outcome = cleanup.clean_up(sagemaker, cleanup.parse_event(ended("Succeeded")))
    assert outcome.metric == "NotFinished"


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        ({**finished("Completed"), "source": "my.app"}, "not from aws.sagemaker"),
        ({**finished("Completed"), "detail-type": "Other"}, "not a"),
        ({**finished("Completed"), "detail": "x"}, "no detail"),
        (finished("Completed", ModelName=""), "lacks model_name"),
        ([], "not a"),
        (ended("Failed", pipelineExecutionArn=None), "lacks execution arn"),
    ],
)
def test_malformed_events_are_rejected(event: Any, needle: str) -> None:
    with pytest.raises(cleanup.InvalidEventError, match=needle):
        cleanup.parse_event(event)


def test_the_handler_deletes_and_counts(
    sagemaker: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = handler_with("delete_scoring_model", monkeypatch, {}, sagemaker=sagemaker)
    sagemaker.stubber.add_response("delete_model", {}, {"ModelName": MODEL})
    context = lambda_context(
        "delete-scoring-model", transform_events.REGION, transform_events.ACCOUNT
    )

    result = handler.lambda_handler(finished("Failed"), context)

    assert result["outcome"] == "ModelsDeleted"
    assert [d.get("ModelsDeleted") for d in emf_documents(capsys.readouterr().out)] == [[1.0]]


def test_the_handler_rejects_a_malformed_event_without_calling_aws(
    sagemaker: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = handler_with("delete_scoring_model", monkeypatch, {}, sagemaker=sagemaker)
    context = lambda_context(
        "delete-scoring-model", transform_events.REGION, transform_events.ACCOUNT
    )

    result = handler.lambda_handler({"detail-type": "nope"}, context)

    assert result["outcome"] == "InvalidEvents"
    assert [d.get("InvalidEvents") for d in emf_documents(capsys.readouterr().out)] == [[1.0]]
