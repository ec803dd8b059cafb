"""Deployments that rolled back: the package is found from the stack events, marked Rejected
with the reason, never redeployed by a late approval, and deployable again only after an
approver re-approves it. Also: a redelivered event whose token CloudFormation already took.

Stack events follow DescribeStackEvents' model (newest first, the operation's token on each);
the status event follows AWS's documented "CloudFormation Stack Status Change" example.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.lambda_loader import emf_documents, handler_with, lambda_context
from tests.lambdas.deploy_world import (
    ACCOUNT,
    ENDPOINT_FAILURE,
    REGION,
    ROLLED_BACK_AT,
    STACK_ID,
    VALID_ENV,
    Aws,
    arn,
    aws,
    deployer,
    failed_deploy_events,
    package,
    stack,
    stack_event,
    stack_status_event,
    state_change,
    token,
    update_request,
)

pytestmark = pytest.mark.usefixtures("aws_credentials")
__all__ = ["aws"]

MARK = f"rolled back at {ROLLED_BACK_AT.isoformat()}: Endpoint8024A810: {ENDPOINT_FAILURE}"
GROUP_V3 = "mlops-loop-dev-models/3"


# --- the rollback event marks the failed package ---------------------------------------------


@pytest.mark.parametrize("with_token", [True, False], ids=["event-token", "token-from-events"])
def test_rolled_back_deployment_marks_its_package_rejected_with_the_reason(
    aws: Aws, with_token: bool
) -> None:
    aws.stack_events(failed_deploy_events(3))
    aws.describe_package(package(3), name=GROUP_V3)
    aws.reject(3, MARK)

    event = stack_status_event(client_token=token(3) if with_token else None)
    outcome = aws.handle(event)

    assert (outcome.action, outcome.model_package_arn) == ("marked_rolled_back", arn(3))
    assert ENDPOINT_FAILURE in outcome.message


def test_a_rolled_back_package_deleted_since_is_a_stale_event(aws: Aws) -> None:
    """DescribeModelPackage of a deleted package answers ValidationException: nothing to mark."""
    aws.stack_events(failed_deploy_events(3))
    aws.sm.add_client_error(
        "describe_model_package",
        service_error_code="ValidationException",
        service_message=f"ModelPackage {arn(3)} does not exist.",
        http_status_code=400,
        expected_params={"ModelPackageName": GROUP_V3},
    )

    outcome = aws.handle(stack_status_event(client_token=token(3)))

    assert (outcome.action, outcome.reason) == ("ignored", "StaleEvent")
    assert outcome.message == f"{GROUP_V3} no longer exists"


def test_the_mark_blames_the_failed_operation_not_an_earlier_one(aws: Aws) -> None:
    # Without the failed deploy's own resource failure only its stack-level reason is left; the
    # earlier operation's failure (older than the failed deploy's start) must not be used.
    events = [
        event
        for event in failed_deploy_events(3)
        if not (
            event["ResourceStatus"] == "UPDATE_FAILED" and event["ClientRequestToken"] == token(3)
        )
    ]
    aws.stack_events(events)
    aws.describe_package(package(3), name=GROUP_V3)
    reason = "The following resource(s) failed to update: [Endpoint8024A810]."
    aws.reject(3, f"rolled back at {ROLLED_BACK_AT.isoformat()}: {reason}")

    assert aws.handle(stack_status_event(client_token=token(3))).action == "marked_rolled_back"


def test_a_rolled_back_update_by_someone_else_marks_nothing(aws: Aws) -> None:
    cdk = "exec-2f9d1c3a-8b7e-4c6d-9e0f-1a2b3c4d5e6f"

    outcome = aws.handle(stack_status_event(client_token=cdk))  # no AWS call at all

    assert (outcome.action, outcome.reason) == ("ignored", "NotAModelDeploy")


def test_without_a_token_the_stack_events_decide_whose_update_rolled_back(aws: Aws) -> None:
    cdk = "Console-UpdateStack-7f59c3cf-00d2-40c7-b2ff-e75db0987002"
    aws.stack_events(
        [
            stack_event("UPDATE_ROLLBACK_COMPLETE", cdk, 40),
            stack_event("UPDATE_IN_PROGRESS", cdk, 0),
        ]
    )

    assert aws.handle(stack_status_event()).reason == "NotAModelDeploy"


@pytest.mark.parametrize(
    ("status", "description"),
    [("Rejected", MARK), ("Rejected", "bias found in review")],
    ids=["already-marked", "rejected-by-a-person"],
)
def test_an_already_rejected_package_is_left_as_it_is(
    aws: Aws, status: str, description: str
) -> None:
    aws.stack_events(failed_deploy_events(3))
    aws.describe_package(package(3, status, description=description), name=GROUP_V3)

    assert aws.handle(stack_status_event(client_token=token(3))).reason == "AlreadyMarked"


def test_a_package_last_changed_at_the_rollback_instant_is_marked(aws: Aws) -> None:
    """Only an approval strictly after the rollback is a re-approval (as for a late approval:
    `rollback_refusal` refuses a package modified at or before the rollback)."""
    aws.stack_events(failed_deploy_events(3))
    at_rollback = package(3, modified=ROLLED_BACK_AT)
    aws.describe_package(at_rollback, name=GROUP_V3)
    aws.reject(3, MARK)

    outcome = aws.handle(stack_status_event(client_token=token(3)))

    assert (outcome.action, outcome.model_package_arn) == ("marked_rolled_back", arn(3))


def test_a_package_reapproved_after_the_rollback_is_not_marked(aws: Aws) -> None:
    aws.stack_events(failed_deploy_events(3))
    later = ROLLED_BACK_AT + timedelta(minutes=5)
    aws.describe_package(package(3, description="fixed the alarm", modified=later), name=GROUP_V3)

    assert aws.handle(stack_status_event(client_token=token(3))).reason == (
        "ReapprovedAfterRollback"
    )


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (stack_status_event("UPDATE_ROLLBACK_FAILED", token(3)), "NotARollback"),
        (stack_status_event("UPDATE_COMPLETE", token(3)), "NotARollback"),
        (
            stack_status_event(
                stack_id=STACK_ID.replace("mlops-loop-dev-serving", "mlops-loop-prod-serving")
            ),
            "ForeignStack",
        ),
    ],
    ids=["rollback-failed", "update-complete", "other-stack"],
)
def test_other_stack_status_changes_make_no_call(aws: Aws, event: dict, reason: str) -> None:
    assert aws.handle(event).reason == reason


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"stack-id": "teststack"}, "detail.stack-id"),
        ({"status-details": "UPDATE_ROLLBACK_COMPLETE"}, "status-details"),
        ({"status-details": {"status": ""}}, "detail.status"),
    ],
)
def test_malformed_stack_status_event_is_ignored(aws: Aws, change: dict, needle: str) -> None:
    event = stack_status_event()
    event["detail"].update(change)

    outcome = aws.handle(event)

    assert (outcome.reason, needle in outcome.message) == ("MalformedEvent", True)


# --- a rolled-back package is never redeployed automatically ----------------------------------


def test_late_approval_of_a_marked_package_is_refused(aws: Aws) -> None:
    aws.describe_package(package(3, description=MARK))

    outcome = aws.handle(state_change(3))

    assert (outcome.action, outcome.reason) == ("ignored", "RolledBack")
    assert "re-approve it with a new reason" in outcome.message


def test_approval_arriving_before_the_rollback_event_is_refused_and_marks(aws: Aws) -> None:
    """Events are unordered: the stack already says UPDATE_ROLLBACK_COMPLETE for v3's deploy,
    the package is still Approved and unmarked. Refused, and marked on the spot."""
    aws.describe_package(package(3))
    aws.describe_stack(stack(current=arn(2), status="UPDATE_ROLLBACK_COMPLETE"))
    aws.stack_events(failed_deploy_events(3))
    aws.reject(3, MARK)

    outcome = aws.handle(state_change(3))

    assert outcome.reason == "RolledBack"


def test_reapproval_after_the_rollback_deploys_again(aws: Aws) -> None:
    later = ROLLED_BACK_AT + timedelta(hours=2)
    aws.describe_package(package(3, description="alarm threshold fixed", modified=later))
    aws.describe_stack(stack(current=arn(2), status="UPDATE_ROLLBACK_COMPLETE"))
    aws.stack_events(failed_deploy_events(3))
    aws.describe_package(package(2))
    aws.update_stack(update_request(arn(3)))

    assert aws.handle(state_change(3)).action == "deployment_started"


def test_another_packages_approval_is_not_blocked_by_a_rollback(aws: Aws) -> None:
    aws.describe_package(package(4))
    aws.describe_stack(stack(current=arn(2), status="UPDATE_ROLLBACK_COMPLETE"))
    aws.stack_events(failed_deploy_events(3))
    aws.describe_package(package(2))
    aws.update_stack(update_request(arn(4)))

    assert aws.handle(state_change(4)).action == "deployment_started"


# --- a redelivered event reusing its token -----------------------------------------------------


def test_token_already_used_is_already_requested_not_retried(aws: Aws) -> None:
    aws.describe_package(package(3))
    aws.describe_stack(stack(current=arn(2)))
    aws.describe_package(package(2))
    aws.artifact(3)
    aws.cfn.add_client_error(
        "update_stack",
        service_error_code="TokenAlreadyExistsException",
        service_message=f"Another Stack update with token {token(3)} already exists.",
        http_status_code=400,
        expected_params=update_request(arn(3)),
    )
    aws.describe_stack(stack(current=arn(2), status="UPDATE_ROLLBACK_COMPLETE"))

    outcome = aws.handle(state_change(3))

    assert (outcome.action, outcome.reason) == ("ignored", "AlreadyRequested")
    assert "UPDATE_ROLLBACK_COMPLETE" in outcome.message and token(3) in outcome.message
    # what the stack serves after the earlier request: v2 again, as its parameter says
    assert outcome.message.endswith(f"with ModelPackageArn {arn(2)}: not requested again")


def test_mark_leaves_lifecycle_and_metadata_alone() -> None:
    """What the deployer's IAM condition allows (Rejected only, no lifecycle, no metadata) is
    all the marking request carries."""
    from datetime import UTC, datetime

    rolled = deployer.rollbacks.RolledBack(3, token(3), datetime(2025, 1, 1, tzinfo=UTC), "x")
    sent: dict = {}

    class Recorder:
        def update_model_package(self, **request: object) -> None:
            sent.update(request)

    deployer.rollbacks.mark_rolled_back(Recorder(), arn(3), rolled)

    assert set(sent) == {"ModelPackageArn", "ModelApprovalStatus", "ApprovalDescription"}
    assert sent["ModelApprovalStatus"] == "Rejected"
    assert str(sent["ApprovalDescription"]).startswith(deployer.ROLLED_BACK_PREFIX)


def test_handler_counts_a_marked_package(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = handler_with(
        "deploy_model",
        monkeypatch,
        VALID_ENV,
        sagemaker=aws.sagemaker,
        cloudformation=aws.cloudformation,
        s3=aws.s3,
    )
    aws.stack_events(failed_deploy_events(3))
    aws.describe_package(package(3), name=GROUP_V3)
    aws.reject(3, MARK)

    result = handler.lambda_handler(
        stack_status_event(client_token=token(3)), lambda_context("d", REGION, ACCOUNT)
    )

    assert result["action"] == "marked_rolled_back"
    documents = emf_documents(capsys.readouterr().out)
    assert [
        doc["PackagesMarkedRolledBack"] for doc in documents if "PackagesMarkedRolledBack" in doc
    ] == [[1.0]]
