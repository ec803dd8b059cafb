"""THE rule "which package does the Serving stack serve now", over DescribeStacks answers
shaped by botocore's CloudFormation model (every StackStatus value it knows is covered)."""

from __future__ import annotations

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber

from tests.lambdas.deploy_world import REGION, STACK_NAME, arn, deployer, stack

pytestmark = pytest.mark.usefixtures("aws_credentials")

STATUSES = (
    botocore.session.get_session().get_service_model("cloudformation").shape_for("StackStatus").enum
)
SERVING = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
}
NOTHING = {"ROLLBACK_COMPLETE", "DELETE_COMPLETE"}


def _stack(current: str, status: str) -> dict:
    return stack(current, status)["Stacks"][0]


@pytest.mark.parametrize("status", sorted(STATUSES))
def test_every_stack_status_has_one_answer(status: str) -> None:
    served = deployer.served_package(_stack(arn(3), status))

    if status in SERVING:
        assert (served.state, served.model_package_arn) == ("serving", arn(3))
    elif status in NOTHING:
        assert (served.state, served.model_package_arn) == ("none", None)
    else:  # *_IN_PROGRESS, *_FAILED, REVIEW_IN_PROGRESS: wait, never guess
        assert (served.state, served.model_package_arn) == ("unsettled", None)
        assert served.parameter == arn(3) and not served.settled
    assert served.stack_status == status


def test_after_a_rollback_the_reverted_parameter_is_what_serves() -> None:
    served = deployer.served_package(_stack(arn(2), "UPDATE_ROLLBACK_COMPLETE"))
    assert served.model_package_arn == arn(2)


def test_no_endpoint_and_no_stack_serve_nothing() -> None:
    assert deployer.served_package(_stack("", "UPDATE_COMPLETE")).state == "none"
    assert deployer.served_package(None) == deployer.ServedPackage(deployer.ServingState.NONE)


def test_a_stack_without_the_parameter_is_not_the_serving_stack() -> None:
    other = _stack(arn(3), "UPDATE_COMPLETE")
    other["Parameters"] = other["Parameters"][:1]
    with pytest.raises(deployer.NotAServingStackError, match="ModelPackageArn"):
        deployer.served_package(other)


@pytest.fixture()
def cloudformation() -> tuple:
    client = boto3.client("cloudformation", region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_read_served_package_asks_describe_stacks(cloudformation: tuple) -> None:
    client, stubber = cloudformation
    stubber.add_response("describe_stacks", stack(arn(4)), {"StackName": STACK_NAME})

    assert deployer.read_served_package(client, STACK_NAME).model_package_arn == arn(4)


def test_a_stack_that_does_not_exist_serves_nothing(cloudformation: tuple) -> None:
    client, stubber = cloudformation
    stubber.add_client_error(
        "describe_stacks",
        service_error_code="ValidationError",
        service_message=f"Stack with id {STACK_NAME} does not exist",
        http_status_code=400,
    )

    assert deployer.read_served_package(client, STACK_NAME).state == "none"


def test_other_errors_are_not_taken_for_no_stack(cloudformation: tuple) -> None:
    client, stubber = cloudformation
    stubber.add_client_error("describe_stacks", service_error_code="AccessDenied")

    with pytest.raises(Exception, match="AccessDenied"):
        deployer.read_served_package(client, STACK_NAME)
