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


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        ({**finished("Completed"), "source": "my.app"}, "not from aws.sagemaker"),
        ({**finished("Completed"), "detail-type": "Other"}, "not a"),
        ({**finished("Completed"), "detail": "x"}, "no detail"),
        (finished("Completed", ModelName=""), "lacks model_name"),
        ([], "not a"),
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
