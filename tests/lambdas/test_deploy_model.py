"""Deploy handler: approval/promotion/rollback events → Serving stack UpdateStack.

Every AWS call goes through botocore's Stubber (see deploy_world), which validates each request
against the real SageMaker / CloudFormation / S3 / EventBridge service models; an activated
Stubber with nothing queued fails on any call, which is how "no call" is proven. Throttling is
exercised below the Stubber (a `before-send` hook) so botocore's real retry logic runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from botocore.stub import ANY, Stubber

from tests.lambda_loader import emf_documents, handler_with, lambda_context
from tests.lambdas.deploy_world import (
    ACCOUNT,
    CREATED,
    DEPLOY_ROLE,
    DEV,
    EVENT_ID,
    GROUP,
    OTHER_GROUP,
    PROD,
    PROMOTED,
    REGION,
    STACK_ID,
    STACK_NAME,
    VALID_ENV,
    Aws,
    arn,
    aws,
    deployer,
    package,
    rollback_event,
    stack,
    state_change,
    update_request,
)

pytestmark = pytest.mark.usefixtures("aws_credentials")
BUS = "mlops-loop-dev-operator-requests"
__all__ = ["aws"]  # the fixture, imported for the tests below


# --- approval → deploy ---------------------------------------------------------------------


def test_approved_package_updates_stack_parameter_and_keeps_the_others(aws: Aws) -> None:
    aws.describe_package(package(3))
    aws.describe_stack(stack(current=""))
    aws.update_stack(update_request(arn(3)))

    outcome = aws.handle(state_change(3))

    assert outcome.action == "deployment_started"
    assert outcome.model_package_arn == arn(3)
    assert outcome.previous_model_package_arn is None
    assert outcome.message == f"updating stack {STACK_NAME} to {arn(3)} (was no model)"


def test_newer_approved_package_replaces_the_serving_one(aws: Aws) -> None:
    aws.describe_package(package(3))
    aws.describe_stack(stack(current=arn(2)))
    aws.describe_package(package(2))
    aws.update_stack(update_request(arn(3)))

    outcome = aws.handle(state_change(3))

    assert outcome.action == "deployment_started"
    assert outcome.previous_model_package_arn == arn(2)


def test_every_update_goes_through_the_deploy_role_with_a_token_naming_the_version(
    aws: Aws,
) -> None:
    request = update_request(arn(3))
    assert request["RoleARN"] == DEPLOY_ROLE
    assert request["ClientRequestToken"] == f"deploy-v3-{EVENT_ID}"
    aws.describe_package(package(3))
    aws.describe_stack(stack())
    aws.update_stack(request)

    assert aws.handle(state_change(3)).action == "deployment_started"


def test_event_without_id_gets_a_fresh_token_that_still_names_the_version(aws: Aws) -> None:
    event = state_change(3)
    del event["id"]
    aws.describe_package(package(3))
    aws.describe_stack(stack())
    aws.update_stack(update_request(arn(3), ClientRequestToken=ANY))

    assert aws.handle(event).action == "deployment_started"
    first, second = deployer.deploy_token(3, None), deployer.deploy_token(3, None)
    assert first != second
    assert first.startswith("deploy-v3-") and len(first) <= 128


def test_token_is_sanitized_and_bounded() -> None:
    assert deployer.deploy_token(12, "a b/c:d") == "deploy-v12-a-b-c-d"
    assert len(deployer.deploy_token(7, "x" * 300)) == 128


# --- engine model-monitor: the package's baselines go with it ----------------------------------

STATS = "s3://artifacts/training/exec3/baseline/results/statistics.json"
CONSTRAINTS = "s3://artifacts/training/exec3/baseline/results/constraints.json"


def monitored_stack(current: str = "", statistics: str = "", constraints: str = "") -> Any:
    """The Serving stack built with the model-monitor engine (two baseline parameters)."""
    response = stack(current)
    response["Stacks"][0]["Parameters"] += [
        {"ParameterKey": "DataQualityConstraintsUri", "ParameterValue": constraints},
        {"ParameterKey": "DataQualityStatisticsUri", "ParameterValue": statistics},
    ]
    return response


def with_baselines(response: dict[str, Any], field: str = "DriftCheckBaselines") -> Any:
    response[field] = {
        "ModelDataQuality": {
            "Statistics": {"ContentType": "application/json", "S3Uri": STATS},
            "Constraints": {"ContentType": "application/json", "S3Uri": CONSTRAINTS},
        }
    }
    return response


def monitored_update(model_package_arn: str, statistics: str, constraints: str) -> Any:
    return {
        **update_request(model_package_arn),
        "Parameters": [
            {"ParameterKey": "ModelPackageArn", "ParameterValue": model_package_arn},
            {"ParameterKey": "DataQualityStatisticsUri", "ParameterValue": statistics},
            {"ParameterKey": "DataQualityConstraintsUri", "ParameterValue": constraints},
            {"ParameterKey": "BootstrapVersion", "UsePreviousValue": True},
        ],
    }


@pytest.mark.parametrize("field", ["DriftCheckBaselines", "ModelMetrics"])
def test_deploy_sets_the_packages_model_monitor_baselines(aws: Aws, field: str) -> None:
    aws.describe_package(with_baselines(package(3), field))
    aws.describe_stack(monitored_stack())
    aws.update_stack(monitored_update(arn(3), STATS, CONSTRAINTS))
    assert aws.handle(state_change(3)).action == "deployment_started"


def test_a_package_without_baselines_clears_the_previous_ones(aws: Aws) -> None:
    # the schedule's condition turns false: a model is never checked against another's baseline
    aws.describe_package(package(3))
    aws.describe_stack(monitored_stack(arn(2), STATS, CONSTRAINTS))
    aws.describe_package(package(2))
    aws.update_stack(monitored_update(arn(3), "", ""))
    assert aws.handle(state_change(3)).action == "deployment_started"


def test_rollback_brings_back_the_targets_own_baselines(aws: Aws) -> None:
    aws.describe_stack(
        monitored_stack(arn(3), "s3://artifacts/v3/s.json", "s3://artifacts/v3/c.json")
    )
    aws.describe_package(with_baselines(package(2)))
    aws.update_stack(monitored_update(arn(2), STATS, CONSTRAINTS))
    assert aws.handle(rollback_event(target=arn(2))).action == "deployment_started"


# --- promotion (production) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "life_cycle",
    [
        None,
        {"Stage": "Staging", "StageStatus": "Approved"},
        {"Stage": "Production", "StageStatus": "PendingApproval"},
    ],
    ids=["no-life-cycle", "staging-stage", "production-not-approved"],
)
def test_promotion_mode_ignores_approved_but_unpromoted_package(
    aws: Aws, life_cycle: dict[str, str] | None
) -> None:
    aws.describe_package(package(3, life_cycle=life_cycle))

    outcome = aws.handle(state_change(3), PROD)

    assert (outcome.action, outcome.reason) == ("ignored", "NotPromoted")
    assert "not promoted" in outcome.message


def test_promotion_mode_deploys_promoted_package(aws: Aws) -> None:
    aws.describe_package(package(3, life_cycle=PROMOTED))
    aws.describe_stack(stack())
    aws.update_stack(update_request(arn(3)))

    assert aws.handle(state_change(3, ModelLifeCycle=PROMOTED), PROD).action == (
        "deployment_started"
    )


def test_promotion_mode_trusts_the_registry_not_the_event_life_cycle(aws: Aws) -> None:
    aws.describe_package(package(3, life_cycle={"Stage": "Staging", "StageStatus": "Approved"}))

    outcome = aws.handle(state_change(3, ModelLifeCycle=PROMOTED), PROD)

    assert outcome.reason == "NotPromoted"


# --- idempotency and ordering --------------------------------------------------------------


def test_duplicate_event_for_deployed_package_does_not_update(aws: Aws) -> None:
    aws.describe_package(package(3))
    aws.describe_stack(stack(current=arn(3)))

    outcome = aws.handle(state_change(3))

    assert (outcome.action, outcome.reason) == ("ignored", "AlreadyDeployed")


def test_duplicate_event_during_its_own_deploy_is_not_retried(aws: Aws) -> None:
    aws.describe_package(package(3))
    aws.describe_stack(stack(current=arn(3), status="UPDATE_IN_PROGRESS"))

    assert aws.handle(state_change(3)).reason == "AlreadyDeployed"


@pytest.mark.parametrize(
    "status",
    ["UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"],
)
def test_busy_stack_raises_retryable_error_without_update(aws: Aws, status: str) -> None:
    aws.describe_package(package(3))
    aws.describe_stack(stack(current="", status=status))

    with pytest.raises(deployer.StackBusyError, match=status):
        aws.handle(state_change(3))


@pytest.mark.parametrize("status", ["UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS"])
def test_stack_turning_busy_before_update_stack_is_a_busy_stack(aws: Aws, status: str) -> None:
    aws.describe_package(package(3))
    aws.describe_stack(stack(current=""))
    aws.artifact(3)
    aws.cfn.add_client_error(
        "update_stack",
        service_error_code="ValidationError",
        service_message=f"Stack:{STACK_ID} is in {status} state and can not be updated.",
        http_status_code=400,
        expected_params=update_request(arn(3)),
    )

    with pytest.raises(deployer.StackBusyError, match=f"turned {status}"):
        aws.handle(state_change(3))


def test_stack_whose_creation_rolled_back_is_not_a_busy_stack(aws: Aws) -> None:
    """Same sentence as a busy stack, but waiting won't help: a DeployError with the AWS
    message (ROLLBACK_COMPLETE serves nothing, so the deploy is tried and refused by AWS)."""
    message = f"Stack:{STACK_ID} is in ROLLBACK_COMPLETE state and can not be updated."
    aws.describe_package(package(3))
    aws.describe_stack(stack(current="", status="ROLLBACK_COMPLETE"))
    aws.artifact(3)
    aws.cfn.add_client_error(
        "update_stack",
        service_error_code="ValidationError",
        service_message=message,
        http_status_code=400,
        expected_params=update_request(arn(3)),
    )

    with pytest.raises(deployer.DeployError) as raised:
        aws.handle(state_change(3))

    assert not isinstance(raised.value, deployer.StackBusyError)
    assert str(raised.value) == f"UpdateStack failed: ValidationError: {message}"


@pytest.mark.parametrize("status", ["UPDATE_ROLLBACK_FAILED", "DELETE_FAILED"])
def test_failed_stack_waits_for_an_operator_without_update(aws: Aws, status: str) -> None:
    aws.describe_package(package(3))
    aws.describe_stack(stack(current=arn(2), status=status))

    with pytest.raises(deployer.StackNeedsOperatorError, match=status) as raised:
        aws.handle(state_change(3))

    assert "continue-update-rollback" in str(raised.value)
    assert deployer.failure_kind(raised.value) == "StackNeedsOperator"


def test_no_updates_to_perform_is_a_no_op(aws: Aws) -> None:
    aws.describe_package(package(3))
    aws.describe_stack(stack(current=""))
    aws.artifact(3)
    aws.cfn.add_client_error(
        "update_stack",
        service_error_code="ValidationError",
        service_message="No updates are to be performed.",
        http_status_code=400,
        expected_params=update_request(arn(3)),
    )

    outcome = aws.handle(state_change(3))

    assert (outcome.action, outcome.reason) == ("ignored", "NoUpdatesToPerform")


def test_late_approval_of_older_version_does_not_replace_newer_serving_one(aws: Aws) -> None:
    aws.describe_package(package(3))
    aws.describe_stack(stack(current=arn(4)))
    aws.describe_package(package(4))

    outcome = aws.handle(state_change(3))

    assert outcome.reason == "Superseded"
    assert "rollback" in outcome.message


def test_older_version_deploys_when_the_serving_one_was_rejected(aws: Aws) -> None:
    aws.describe_package(package(3))
    aws.describe_stack(stack(current=arn(4)))
    aws.describe_package(package(4, status="Rejected"))
    aws.update_stack(update_request(arn(3)))

    assert aws.handle(state_change(3)).action == "deployment_started"


@pytest.mark.parametrize(
    "code",
    [
        # SageMaker's (JSON protocol) spelling, and what moto answers for a missing package.
        pytest.param("ValidationException", id="sagemaker-ValidationException"),
        # The Query-protocol spelling, accepted defensively (botocore's SageMaker model has none).
        pytest.param("ValidationError", id="query-ValidationError"),
    ],
)
def test_deleted_serving_package_does_not_block_a_new_approval(aws: Aws, code: str) -> None:
    aws.describe_package(package(3))
    aws.describe_stack(stack(current=arn(4)))
    aws.sm.add_client_error(
        "describe_model_package",
        service_error_code=code,
        service_message=f"Model package {arn(4)} not found",
        expected_params={"ModelPackageName": arn(4)},
    )
    aws.update_stack(update_request(arn(3)))

    assert aws.handle(state_change(3)).action == "deployment_started"


def test_serving_package_that_cannot_be_read_blocks_the_approval(aws: Aws) -> None:
    """Only a missing package is 'nothing to protect': access denied is an error, no update."""
    aws.describe_package(package(3))
    aws.describe_stack(stack(current=arn(4)))
    aws.sm.add_client_error(
        "describe_model_package",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform: sagemaker:DescribeModelPackage",
        expected_params={"ModelPackageName": arn(4)},
    )

    with pytest.raises(deployer.DeployError, match="DescribeModelPackage failed: AccessDenied"):
        aws.handle(state_change(3))


# --- events that must do nothing -----------------------------------------------------------


@pytest.mark.parametrize("status", ["Rejected", "PendingManualApproval"])
def test_not_approved_event_makes_no_call(aws: Aws, status: str) -> None:
    outcome = aws.handle(state_change(3, status=status))

    assert (outcome.action, outcome.reason) == ("ignored", "NotApproved")
    assert status in outcome.message


def test_foreign_group_event_makes_no_call(aws: Aws) -> None:
    outcome = aws.handle(state_change(3, group=OTHER_GROUP))

    assert (outcome.action, outcome.reason) == ("ignored", "ForeignGroup")
    assert OTHER_GROUP in outcome.message


def _without_detail() -> dict[str, Any]:
    event = state_change()
    del event["detail"]
    return event


def _detail(**changes: Any) -> dict[str, Any]:
    event = state_change()
    for key, value in changes.items():
        if value is ...:
            del event["detail"][key]
        else:
            event["detail"][key] = value
    return event


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        (None, "not an object"),
        ("Approved", "not an object"),
        (_without_detail(), "detail is missing"),
        ({**state_change(), "detail": ["ModelPackageArn"]}, "detail is missing"),
        (_detail(ModelPackageArn=...), "detail.ModelPackageArn"),
        (_detail(ModelPackageArn=42), "detail.ModelPackageArn"),
        (_detail(ModelPackageArn="model-package/x/1"), "detail.ModelPackageArn"),
        (_detail(ModelPackageGroupName=None), "detail.ModelPackageGroupName"),
        (_detail(ModelPackageGroupName="bad group!"), "detail.ModelPackageGroupName"),
        (_detail(ModelApprovalStatus=True), "detail.ModelApprovalStatus"),
        (_detail(ModelApprovalStatus=""), "detail.ModelApprovalStatus"),
        ({**rollback_event(), "detail": {"model_package_group_name": GROUP}}, "detail.reason"),
        (rollback_event(target="not-an-arn"), "detail.model_package_arn"),
    ],
    ids=[
        "none",
        "string",
        "no-detail",
        "detail-list",
        "no-arn",
        "arn-int",
        "arn-not-arn",
        "group-none",
        "group-invalid",
        "status-bool",
        "status-empty",
        "rollback-no-reason",
        "rollback-bad-target",
    ],
)
def test_malformed_event_is_ignored_without_call(aws: Aws, event: Any, needle: str) -> None:
    outcome = aws.handle(event)

    assert (outcome.action, outcome.reason) == ("ignored", "MalformedEvent")
    assert needle in outcome.message


@pytest.mark.parametrize(
    ("source", "detail_type"),
    [
        ("aws.sagemaker", "SageMaker Endpoint State Change"),
        ("aws.s3", "SageMaker Model Package State Change"),
        (None, None),
        (["aws.sagemaker"], ["SageMaker Model Package State Change"]),
    ],
)
def test_unsupported_event_is_ignored_without_call(aws: Aws, source: Any, detail_type: Any) -> None:
    event = {**state_change(), "source": source, "detail-type": detail_type}

    assert aws.handle(event).reason == "UnsupportedEvent"


def test_stale_event_for_package_no_longer_approved_does_nothing(aws: Aws) -> None:
    aws.describe_package(package(3, status="Rejected"))

    outcome = aws.handle(state_change(3))

    assert (outcome.action, outcome.reason) == ("ignored", "StaleEvent")
    assert "Rejected" in outcome.message


def test_registry_group_wins_over_the_event_group(aws: Aws) -> None:
    aws.sm.add_response(
        "describe_model_package",
        {**package(3, group=OTHER_GROUP), "ModelPackageArn": arn(3)},
        {"ModelPackageName": arn(3)},
    )

    assert aws.handle(state_change(3)).reason == "ForeignGroup"


def test_package_still_being_created_is_not_deployed(aws: Aws) -> None:
    aws.describe_package(package(3, package_status="InProgress"))

    assert aws.handle(state_change(3)).reason == "PackageNotCompleted"


# --- rollback ------------------------------------------------------------------------------


def test_rollback_to_explicit_target(aws: Aws) -> None:
    aws.describe_stack(stack(current=arn(3)))
    aws.describe_package(package(1))
    aws.update_stack(update_request(arn(1)))

    outcome = aws.handle(rollback_event(target=arn(1)))

    assert outcome.action == "deployment_started"
    assert (outcome.model_package_arn, outcome.previous_model_package_arn) == (arn(1), arn(3))


def _list_request(**extra: Any) -> dict[str, Any]:
    return {
        "ModelPackageGroupName": GROUP,
        "ModelApprovalStatus": "Approved",
        "ModelPackageType": "VERSIONED",
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        **extra,
    }


def _summary(version: int, life_cycle: dict[str, str] | None = None) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "ModelPackageName": GROUP,
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": version,
        "ModelPackageArn": arn(version),
        "CreationTime": CREATED,
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": "Approved",
    }
    if life_cycle is not None:
        summary["ModelLifeCycle"] = life_cycle
    return summary


def test_rollback_without_target_deploys_previous_approved_package(aws: Aws) -> None:
    aws.describe_stack(stack(current=arn(4)))
    aws.describe_package(package(4, status="Rejected"))
    aws.sm.add_response(
        "list_model_packages",
        {"ModelPackageSummaryList": [_summary(5), _summary(2), _summary(1)]},
        _list_request(),
    )
    aws.describe_package(package(2))
    aws.update_stack(update_request(arn(2)))

    outcome = aws.handle(rollback_event())

    assert (outcome.model_package_arn, outcome.previous_model_package_arn) == (arn(2), arn(4))


def test_rollback_in_production_only_goes_back_to_a_promoted_package(aws: Aws) -> None:
    aws.describe_stack(stack(current=arn(4)))
    aws.describe_package(package(4, life_cycle=PROMOTED))
    aws.sm.add_response(
        "list_model_packages",
        {"ModelPackageSummaryList": [_summary(3), _summary(2, PROMOTED)]},
        _list_request(),
    )
    aws.describe_package(package(2, life_cycle=PROMOTED))
    aws.update_stack(update_request(arn(2)))

    assert aws.handle(rollback_event(), PROD).model_package_arn == arn(2)


def test_rollback_with_nothing_deployed_does_nothing(aws: Aws) -> None:
    aws.describe_stack(stack(current=""))

    assert aws.handle(rollback_event()).reason == "NothingDeployed"


def test_rollback_without_older_approved_package_does_nothing(aws: Aws) -> None:
    aws.describe_stack(stack(current=arn(1)))
    aws.describe_package(package(1))
    aws.sm.add_response(
        "list_model_packages", {"ModelPackageSummaryList": [_summary(1)]}, _list_request()
    )

    outcome = aws.handle(rollback_event())

    assert outcome.reason == "NoPreviousApprovedPackage"
    assert arn(1) in outcome.message


def test_rollback_to_unapproved_target_does_nothing(aws: Aws) -> None:
    aws.describe_stack(stack(current=arn(3)))
    aws.describe_package(package(1, status="Rejected"))

    outcome = aws.handle(rollback_event(target=arn(1)))

    assert (outcome.action, outcome.reason) == ("ignored", "NotApproved")


def test_rollback_for_another_environment_makes_no_call(aws: Aws) -> None:
    assert aws.handle(rollback_event(group=OTHER_GROUP)).reason == "ForeignGroup"


def test_rollback_to_package_of_another_group_does_nothing(aws: Aws) -> None:
    aws.describe_stack(stack(current=arn(3)))
    aws.describe_package(package(1, group=OTHER_GROUP))

    assert aws.handle(rollback_event(target=arn(1, OTHER_GROUP))).reason == "ForeignGroup"


@pytest.mark.parametrize(("target", "waiting"), [(arn(1), arn(1)), (None, "a rollback")])
def test_rollback_on_busy_stack_is_retryable(aws: Aws, target: str | None, waiting: str) -> None:
    aws.describe_stack(stack(current=arn(3), status="UPDATE_ROLLBACK_IN_PROGRESS"))

    with pytest.raises(deployer.StackBusyError) as raised:
        aws.handle(rollback_event(target=target))
    # the message names what waits: the requested package, or the rollback without a target
    assert f"; deploying {waiting} must wait until it settles" in str(raised.value)


def test_rollback_skips_a_package_whose_deployment_rolled_back(aws: Aws) -> None:
    aws.describe_stack(stack(current=arn(4)))
    aws.describe_package(package(4))
    aws.sm.add_response(
        "list_model_packages",
        {"ModelPackageSummaryList": [_summary(3), _summary(2)]},
        _list_request(),
    )
    # v3 was re-approved without a new reason: its ApprovalDescription is still the mark
    aws.describe_package(package(3, description="rolled back at 2025-11-20T10:40:00+00:00: x"))
    aws.describe_package(package(2))
    aws.update_stack(update_request(arn(2)))

    assert aws.handle(rollback_event()).model_package_arn == arn(2)


def test_rollback_to_an_explicit_rolled_back_target_is_refused(aws: Aws) -> None:
    aws.describe_stack(stack(current=arn(4)))
    aws.describe_package(package(3, description="rolled back at 2025-11-20T10:40:00+00:00: x"))

    outcome = aws.handle(rollback_event(target=arn(3)))

    assert (outcome.action, outcome.reason) == ("ignored", "RolledBack")
    assert "re-approve" in outcome.message


# --- AWS errors ----------------------------------------------------------------------------


def test_access_denied_on_update_stack_raises_with_aws_message(aws: Aws) -> None:
    message = (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/deploy/fn is not authorized to perform: "
        f"cloudformation:UpdateStack on resource: {STACK_ID}"
    )
    aws.describe_package(package(3))
    aws.describe_stack(stack())
    aws.artifact(3)
    aws.cfn.add_client_error(
        "update_stack",
        service_error_code="AccessDenied",
        service_message=message,
        http_status_code=403,
        expected_params=update_request(arn(3)),
    )

    with pytest.raises(deployer.DeployError) as raised:
        aws.handle(state_change(3))

    assert not isinstance(raised.value, deployer.StackBusyError)
    assert str(raised.value) == f"UpdateStack failed: AccessDenied: {message}"


def test_missing_stack_raises_with_aws_message(aws: Aws) -> None:
    aws.describe_package(package(3))
    aws.cfn.add_client_error(
        "describe_stacks",
        service_error_code="ValidationError",
        service_message=f"Stack with id {STACK_NAME} does not exist",
        expected_params={"StackName": STACK_NAME},
    )

    with pytest.raises(deployer.DeployError, match=f"Stack with id {STACK_NAME} does not exist"):
        aws.handle(state_change(3))


def test_stack_without_model_package_parameter_is_a_clear_error(aws: Aws) -> None:
    response = stack()
    response["Stacks"][0]["Parameters"] = response["Stacks"][0]["Parameters"][:1]
    aws.describe_package(package(3))
    aws.describe_stack(response)

    with pytest.raises(deployer.DeployError, match="no ModelPackageArn parameter"):
        aws.handle(state_change(3))


def test_throttled_describe_is_retried_by_botocore(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(botocore.endpoint.time, "sleep", sleeps.append)
    sagemaker = boto3.client("sagemaker", region_name=REGION, config=deployer.CLIENT_CONFIG)
    bodies = [
        (400, {"__type": "ThrottlingException", "message": "Rate exceeded"}),
        (
            200,
            {
                **package(3),
                "CreationTime": CREATED.timestamp(),
                "LastModifiedTime": CREATED.timestamp(),
            },
        ),
    ]
    sent: list[dict[str, Any]] = []

    def respond(request: Any, **_: Any) -> AWSResponse:
        sent.append(json.loads(request.body))
        status, body = bodies.pop(0)
        return AWSResponse(request.url, status, {}, _Raw(json.dumps(body).encode()))

    sagemaker.meta.events.register("before-send.sagemaker.DescribeModelPackage", respond)
    aws.describe_stack(stack())
    aws.update_stack(update_request(arn(3)))

    outcome = deployer.handle_event(
        state_change(3),
        sagemaker=sagemaker,
        cloudformation=aws.cloudformation,
        s3=aws.s3,
        config=DEV,
    )

    assert outcome.action == "deployment_started"
    assert sent == [{"ModelPackageName": arn(3)}] * 2
    assert len(sleeps) == 1


class _Raw:
    """The raw HTTP body botocore reads a response from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data

    def read(self, *_: Any) -> bytes:
        data, self._data = self._data, b""
        return data


# --- find_previous_deployable ----------------------------------------------------------------


def test_find_previous_deployable_reads_every_page(aws: Aws) -> None:
    aws.describe_package(package(9))
    aws.sm.add_response(
        "list_model_packages",
        {"ModelPackageSummaryList": [_summary(9)], "NextToken": "page-2"},
        _list_request(),
    )
    aws.sm.add_response(
        "list_model_packages",
        {"ModelPackageSummaryList": [_summary(6), _summary(7)]},
        _list_request(NextToken="page-2"),
    )
    aws.describe_package(package(7))

    assert deployer.find_previous_deployable(aws.sagemaker, GROUP, arn(9)) == arn(7)


def test_find_previous_deployable_returns_none_without_older_package(aws: Aws) -> None:
    aws.describe_package(package(2))
    aws.sm.add_response(
        "list_model_packages",
        {"ModelPackageSummaryList": [_summary(3), _summary(2)]},
        _list_request(),
    )

    assert deployer.find_previous_deployable(aws.sagemaker, GROUP, arn(2)) is None


def test_find_previous_deployable_passes_over_rolled_back_and_unfinished_packages(
    aws: Aws,
) -> None:
    aws.describe_package(package(9))
    aws.sm.add_response(
        "list_model_packages",
        {"ModelPackageSummaryList": [_summary(8), _summary(7), _summary(6)]},
        _list_request(),
    )
    aws.describe_package(package(8, description="rolled back at 2025-11-20T10:40:00+00:00: 5xx"))
    aws.describe_package(package(7, package_status="InProgress"))
    aws.describe_package(package(6))

    assert deployer.find_previous_deployable(aws.sagemaker, GROUP, arn(9)) == arn(6)


def test_find_previous_deployable_rejects_package_of_another_group(aws: Aws) -> None:
    aws.describe_package(package(2, group=OTHER_GROUP))

    with pytest.raises(ValueError, match=OTHER_GROUP):
        deployer.find_previous_deployable(aws.sagemaker, GROUP, arn(2, OTHER_GROUP))


# --- request_rollback ----------------------------------------------------------------------


@pytest.fixture()
def events() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("events", region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _delivered(entry: dict[str, Any]) -> dict[str, Any]:
    """The event EventBridge delivers to a rule target for a PutEvents entry."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": ACCOUNT,
        "time": "2025-11-20T10:00:00Z",
        "region": REGION,
        "resources": entry.get("Resources", []),
        "detail": json.loads(entry["Detail"]),
    }


@pytest.mark.parametrize("target", [None, arn(1)], ids=["previous", "explicit"])
def test_request_rollback_puts_the_event_the_handler_understands(
    events: tuple[Any, Stubber], target: str | None
) -> None:
    client, stubber = events
    detail = {"reason": "p99 latency doubled", "model_package_group_name": GROUP}
    entry: dict[str, Any] = {
        "Source": "mlops.serving",
        "DetailType": "Rollback Requested",
        "EventBusName": BUS,
    }
    if target:
        detail["model_package_arn"] = target
        entry["Resources"] = [target]
    entry["Detail"] = json.dumps(detail)
    stubber.add_response(
        "put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]}, {"Entries": [entry]}
    )

    event_id = deployer.request_rollback(
        client, " p99 latency doubled ", target, event_bus=BUS, model_package_group_name=GROUP
    )

    assert event_id == "e-1"
    request = deployer.parse_event(_delivered(entry))
    assert request == deployer.RollbackRequest(
        group=GROUP, reason="p99 latency doubled", target_arn=target, event_id=request.event_id
    )


def test_request_rollback_reports_rejected_entry(events: tuple[Any, Stubber]) -> None:
    client, stubber = events
    stubber.add_response(
        "put_events",
        {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "AccessDeniedException", "ErrorMessage": "not allowed"}],
        },
    )

    with pytest.raises(deployer.DeployError, match="AccessDeniedException: not allowed"):
        deployer.request_rollback(
            client, "bad model", event_bus=BUS, model_package_group_name=GROUP
        )


def test_request_rollback_reports_unreachable_eventbridge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda _: None)
    client = boto3.client("events", region_name=REGION, config=deployer.CLIENT_CONFIG)
    attempts: list[str] = []

    def unreachable(request: Any, **_: Any) -> None:
        attempts.append(request.url)
        raise EndpointConnectionError(endpoint_url=request.url)

    client.meta.events.register("before-send.events.PutEvents", unreachable)

    with pytest.raises(deployer.DeployError) as raised:
        deployer.request_rollback(
            client, "bad model", event_bus=BUS, model_package_group_name=GROUP
        )

    assert str(raised.value).startswith("PutEvents failed: EndpointConnectionError: ")
    assert f"events.{REGION}.amazonaws.com" in str(raised.value)
    assert len(attempts) == 5  # botocore's retries ran first (CLIENT_CONFIG)


@pytest.mark.parametrize(
    ("reason", "target", "group", "bus", "needle"),
    [
        ("", None, GROUP, BUS, "reason"),
        ("   ", None, GROUP, BUS, "reason"),
        ("bad", "model-package/x/1", GROUP, BUS, "model_package_arn"),
        ("bad", None, "", BUS, "model_package_group_name"),
        ("bad", None, "bad group!", BUS, "model_package_group_name"),
        ("bad", None, GROUP, "default", "operator event bus"),
        ("bad", None, GROUP, " ", "operator event bus"),
    ],
)
def test_request_rollback_rejects_bad_arguments_without_call(
    events: tuple[Any, Stubber], reason: str, target: str | None, group: str, bus: str, needle: str
) -> None:
    client, _ = events

    with pytest.raises(ValueError, match=needle):
        deployer.request_rollback(
            client, reason, target, event_bus=bus, model_package_group_name=group
        )


# --- configuration -------------------------------------------------------------------------


def test_config_from_env() -> None:
    assert deployer.DeployerConfig.from_env({**VALID_ENV, "DEPLOY_ON": "promotion"}) == PROD
    assert deployer.DeployerConfig.from_env(VALID_ENV) == DEV


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"SERVING_STACK_NAME": None}, "SERVING_STACK_NAME=''"),
        ({"MODEL_PACKAGE_GROUP_NAME": "has space"}, "MODEL_PACKAGE_GROUP_NAME='has space'"),
        ({"DEPLOY_ON": "always"}, "DEPLOY_ON='always' is not allowed: use one of"),
        ({"DEPLOY_ON": None}, "DEPLOY_ON=''"),
        ({"CFN_SERVICE_ROLE_ARN": "cfn-exec-role"}, "CFN_SERVICE_ROLE_ARN='cfn-exec-role'"),
        ({"CFN_SERVICE_ROLE_ARN": None}, "CFN_SERVICE_ROLE_ARN=''"),
        ({"ARTIFACT_BUCKET": "Bad_Bucket"}, "ARTIFACT_BUCKET='Bad_Bucket'"),
        ({"MODEL_ARTIFACT_PREFIX": "models"}, "MODEL_ARTIFACT_PREFIX='models'"),
        ({"MODEL_ARTIFACT_PREFIX": None}, "MODEL_ARTIFACT_PREFIX=''"),
    ],
)
def test_config_errors_name_the_variable(changes: dict[str, str | None], needle: str) -> None:
    env = {**VALID_ENV, **changes}
    env = {key: value for key, value in env.items() if value is not None}

    with pytest.raises(deployer.ConfigError) as raised:
        deployer.DeployerConfig.from_env(env)

    assert needle in str(raised.value)


# --- handler: metrics, SQS batches ---------------------------------------------------------


@pytest.fixture()
def handler(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Any:
    return handler_with(
        "deploy_model",
        monkeypatch,
        {**VALID_ENV, "DEPLOY_ON": "approval"},
        sagemaker=aws.sagemaker,
        cloudformation=aws.cloudformation,
        s3=aws.s3,
    )


CONTEXT = lambda_context("deploy-model", REGION, ACCOUNT)


def test_handler_counts_ignored_event_by_reason(
    handler: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    result = handler.lambda_handler(state_change(3, status="Rejected"), CONTEXT)

    assert (result["action"], result["reason"], result["failure"]) == (
        "ignored",
        "NotApproved",
        None,
    )
    ignored = [doc for doc in emf_documents(capsys.readouterr().out) if "IgnoredEvents" in doc]
    assert [(doc["Reason"], doc["IgnoredEvents"]) for doc in ignored] == [("NotApproved", [1.0])]


def test_handler_counts_started_deployment(
    handler: Any, aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.describe_package(package(3))
    aws.describe_stack(stack())
    aws.update_stack(update_request(arn(3)))

    result = handler.lambda_handler(state_change(3), CONTEXT)

    assert (result["action"], result["reason"], result["failure"]) == (
        "deployment_started",
        None,
        None,
    )
    started = [doc for doc in emf_documents(capsys.readouterr().out) if "DeploymentsStarted" in doc]
    assert started and started[0]["DeploymentsStarted"] == [1.0]


def _sqs(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{index}",
                "receiptHandle": "handle",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:deploy-model",
                "awsRegion": REGION,
            }
            for index, body in enumerate(bodies)
        ]
    }


def test_sqs_batch_reports_busy_stack_for_retry_and_drops_malformed_body(
    handler: Any, aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.describe_package(package(3))
    aws.describe_stack(stack(status="UPDATE_IN_PROGRESS"))

    result = handler.lambda_handler(_sqs(json.dumps(state_change(3)), "{not json"), CONTEXT)

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    documents = emf_documents(capsys.readouterr().out)
    assert [doc["Error"] for doc in documents if "DeployFailures" in doc] == ["StackBusy"]
    assert [doc["Reason"] for doc in documents if "IgnoredEvents" in doc] == ["MalformedEvent"]


def test_handler_raises_on_aws_error_so_the_event_is_retried(handler: Any, aws: Aws) -> None:
    aws.describe_package(package(3))
    aws.cfn.add_client_error(
        "describe_stacks", service_error_code="AccessDenied", service_message="denied"
    )

    with pytest.raises(deployer.DeployError, match="DescribeStacks failed: AccessDenied: denied"):
        handler.lambda_handler(state_change(3), CONTEXT)
