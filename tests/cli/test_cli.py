"""The operator CLI: environments and errors, and the registry commands (models, approve,
reject, promote, rollback, diff-models)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from cli.aws import Clients
from tests.cli.conftest import (
    ACCOUNT,
    GROUP,
    NOW,
    PROD,
    REGION,
    SERVING_STACK,
    Aws,
    package_arn,
    register,
    run,
    stack,
)


def _approval(aws: Aws, arn: str) -> tuple[str, str | None]:
    described = aws.client("sagemaker").describe_model_package(ModelPackageName=arn)
    return described["ModelApprovalStatus"], described.get("ApprovalDescription")


# ---- environments, credentials, stacks ---------------------------------------------------


def test_unknown_environment_is_one_line_error(aws: Aws) -> None:
    result = run("models", env="qa")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: --env 'qa' is not an environment of cdk.json: one of dev, prod, staging"
    )
    assert "Traceback" not in result.output


def test_env_all_is_refused_by_the_cli(aws: Aws) -> None:
    result = run("status", env="all")
    assert result.exit_code == 1
    assert "--env all is for `cdk synth`" in result.stderr


def test_environment_comes_from_mlops_env(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("MLOPS_ENV", "prod")
    result = CliRunner().invoke(app, ["models"], obj=aws.clients)
    assert result.exit_code == 1  # the credentials are dev's
    assert f"but env 'prod' is account {PROD.account} (cdk.json): use --env dev" in result.stderr


def test_missing_credentials_are_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "MLOPS_ENV",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # an earlier test's boto3 default session would still hold its (fake) credentials
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    result = run("models")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no AWS credentials found: set AWS_PROFILE")
    assert "Traceback" not in result.output


def test_missing_region_is_a_clear_error(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    result = run("models", clients=Clients(None))
    assert result.exit_code == 1
    assert "Error: no AWS region" in result.stderr


def test_credentials_of_another_environment_name_the_right_env(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTO_ACCOUNT_ID", PROD.account)
    register(aws)
    result = aws.run("approve", "1", "--reason", "looks good")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: the AWS credentials are for account {PROD.account}, but env 'dev' is account "
        f"{ACCOUNT} (cdk.json): use --env prod"
    )


def test_credentials_of_an_unknown_account_say_switch(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "999999999999")
    result = aws.run("models")
    assert result.exit_code == 1
    assert "switch to credentials of that account" in result.stderr


def test_expired_credentials_are_a_clear_error(aws: Aws) -> None:
    aws.stub("sts").add_client_error(
        "get_caller_identity",
        service_error_code="ExpiredToken",
        service_message="The security token included in the request is expired",
        http_status_code=403,
    )
    result = aws.run("models")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: the AWS credentials have expired (ExpiredToken): refresh them and retry"
    )


def test_access_denied_names_the_operation(aws: Aws) -> None:
    aws.stub("sagemaker").add_client_error(
        "list_model_packages",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform sagemaker:ListModelPackages",
        http_status_code=400,
    )
    result = aws.run("models")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: access denied: ListModelPackages: not authorized to perform "
        "sagemaker:ListModelPackages"
    )


def test_stack_not_deployed_is_a_clear_error(aws: Aws) -> None:
    aws.missing_stack(SERVING_STACK)
    result = aws.run("rollback", "--reason", "bad model")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: stack {SERVING_STACK} is not deployed in {REGION} (account {ACCOUNT}): "
        "deploy it with `make deploy ENV=dev`"
    )


def test_failed_stack_is_not_used(aws: Aws) -> None:
    from tests.cli.conftest import stack

    aws.stub("cloudformation").add_response(
        "describe_stacks",
        stack(SERVING_STACK, status="ROLLBACK_COMPLETE"),
        {"StackName": SERVING_STACK},
    )
    result = aws.run("rollback", "--reason", "bad model")
    assert result.exit_code == 1
    assert f"stack {SERVING_STACK} is ROLLBACK_COMPLETE" in result.stderr


def test_python_m_cli_help_lists_every_command() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    for command in (
        "status",
        "start",
        "models",
        "approve",
        "reject",
        "promote",
        "rollback",
        "lineage",
        "cost",
        "diff-models",
    ):
        assert f"  {command} " in done.stdout


# ---- models --------------------------------------------------------------------------------


def test_models_lists_versions_newest_first_and_marks_the_serving_one(aws: Aws) -> None:
    register(aws, approval="Approved", auc=0.9012, dataset="fraud/v1")
    v2 = register(aws, approval="Approved", auc=0.91321, dataset="fraud/v2")
    register(aws, auc=0.87, dataset="fraud/v3")
    aws.serving(v2)
    result = aws.run("models")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{GROUP} ({REGION}), newest first; * = serving:"
    assert lines[1].split() == [
        "VERSION",
        "APPROVAL",
        "STAGE",
        "METRIC",
        "DATASET",
        "CREATED",
        "NOTE",
    ]
    rows = [line.split()[:6] for line in lines[2:]]
    assert rows[0][:5] == ["3", "PendingManualApproval", "-", "auc=0.8700", "fraud/v3"]
    assert rows[1][:6] == ["*", "2", "Approved", "-", "auc=0.9132", "fraud/v2"]
    assert rows[2][:5] == ["1", "Approved", "-", "auc=0.9012", "fraud/v1"]
    aws.assert_done()


def test_models_filters_by_status(aws: Aws) -> None:
    register(aws, approval="Approved")
    register(aws, approval="Rejected")
    aws.serving("")
    result = aws.run("models", "--status", "Rejected")
    assert result.exit_code == 0, result.output
    assert [line.split()[1] for line in result.stdout.splitlines()[2:]] == ["Rejected"]


def test_models_without_packages_says_so(aws: Aws) -> None:
    result = aws.run("models")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"no model packages in {GROUP}"


def test_models_work_before_the_serving_stack_exists(aws: Aws) -> None:
    register(aws)
    aws.missing_stack(SERVING_STACK)
    result = aws.run("models")
    assert result.exit_code == 0, result.output
    assert "*" not in result.stdout.splitlines()[2]


# ---- approve / reject ----------------------------------------------------------------------


def test_approve_by_version_sets_status_and_reason(aws: Aws) -> None:
    register(aws)
    arn = register(aws)
    result = aws.run("approve", "2", "--reason", "beats v1 on AUC, checked the plots")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "version 2: PendingManualApproval -> Approved"
    assert "the deploy handler now updates mlops-loop-dev-serving to version 2" in result.stderr
    assert _approval(aws, arn) == ("Approved", "beats v1 on AUC, checked the plots")
    assert _approval(aws, package_arn(1)) == ("PendingManualApproval", None)


def test_approve_by_arn(aws: Aws) -> None:
    arn = register(aws)
    result = aws.run("approve", arn, "--reason", "ok")
    assert result.exit_code == 0, result.output
    assert _approval(aws, arn) == ("Approved", "ok")


def test_approve_in_production_points_to_promote(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTO_ACCOUNT_ID", PROD.account)
    arn = register(aws, group=PROD.model_package_group_name)
    result = aws.run("approve", "1", "--reason", "ok", env="prod")
    assert result.exit_code == 0, result.output
    assert "env prod deploys on promotion: `mlops --env prod promote 1`" in result.stderr
    assert _approval(aws, arn)[0] == "Approved"


def test_approve_unknown_version_changes_nothing(aws: Aws) -> None:
    arn = register(aws)
    result = aws.run("approve", "9", "--reason", "ok")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: version 9 does not exist in {GROUP} (see `mlops --env dev models`)"
    )
    assert _approval(aws, arn)[0] == "PendingManualApproval"


def test_approve_unknown_arn_is_a_clear_error(aws: Aws) -> None:
    register(aws)
    result = aws.run("approve", package_arn(7), "--reason", "ok")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: model package {package_arn(7)} does not exist in {REGION}"
    )


def test_approve_refuses_a_package_of_another_environment(aws: Aws) -> None:
    other = register(aws, group=PROD.model_package_group_name)
    result = aws.run("approve", other, "--reason", "ok")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: model package {other} belongs to group 'mlops-loop-prod-models', not "
        f"'{GROUP}' of env 'dev': wrong --env?"
    )
    assert _approval(aws, other)[0] == "PendingManualApproval"


@pytest.mark.parametrize("ref", ["latest", "v2", "1.5", "arn:aws:s3:::bucket"])
def test_approve_refuses_what_is_neither_arn_nor_version(aws: Aws, ref: str) -> None:
    result = aws.run("approve", ref, "--reason", "ok")
    assert result.exit_code == 1
    assert "is neither a model package ARN nor a version number" in result.stderr


def test_approve_needs_a_reason(aws: Aws) -> None:
    arn = register(aws)
    blank = aws.run("approve", "1", "--reason", "   ")
    assert blank.exit_code == 1
    assert blank.stderr.strip() == "Error: --reason must say why (it is stored with the package)"
    missing = aws.run("approve", "1")
    assert missing.exit_code == 2
    assert "--reason" in missing.stderr
    too_long = aws.run("approve", "1", "--reason", "x" * 1025)
    assert too_long.exit_code == 1
    assert "at most 1024" in too_long.stderr
    assert _approval(aws, arn)[0] == "PendingManualApproval"


def test_approve_twice_changes_nothing_the_second_time(aws: Aws) -> None:
    arn = register(aws, approval="Approved")
    result = aws.run("approve", "1", "--reason", "again")
    assert result.exit_code == 0
    assert result.stdout.strip() == "version 1 is already Approved (nothing changed)"
    assert _approval(aws, arn) == ("Approved", None)


def test_reject_sets_status_and_reason(aws: Aws) -> None:
    arn = register(aws)
    aws.serving("")
    result = aws.run("reject", "1", "--reason", "leaks the label")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "version 1: PendingManualApproval -> Rejected"
    assert _approval(aws, arn) == ("Rejected", "leaks the label")
    assert result.stderr == ""


def test_rejecting_the_serving_version_warns_it_still_serves(aws: Aws) -> None:
    arn = register(aws, approval="Approved")
    aws.serving(arn)
    result = aws.run("reject", "1", "--reason", "bias found")
    assert result.exit_code == 0
    assert "warning: version 1 is still serving on mlops-loop-dev-endpoint" in result.stderr
    assert "rollback --reason" in result.stderr


# ---- promote (moto does not keep ModelLifeCycle: Stubber) ---------------------------------


def _described(version: int, approval: str, life_cycle: dict[str, str] | None = None) -> dict:
    group = PROD.model_package_group_name
    described = {
        "ModelPackageArn": package_arn(version, group, PROD.account),
        "ModelPackageGroupName": group,
        "ModelPackageVersion": version,
        "ModelApprovalStatus": approval,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "CreationTime": NOW,
        "ModelPackageName": group,
    }
    if life_cycle:
        described["ModelLifeCycle"] = life_cycle
    return described


def _prod(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Stubber:
    monkeypatch.setenv("MOTO_ACCOUNT_ID", PROD.account)
    return aws.stub("sagemaker")


def test_promote_sets_production_life_cycle(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    sagemaker = _prod(aws, monkeypatch)
    arn = package_arn(4, PROD.model_package_group_name, PROD.account)
    sagemaker.add_response(
        "describe_model_package", _described(4, "Approved"), {"ModelPackageName": arn}
    )
    sagemaker.add_response(
        "update_model_package",
        {"ModelPackageArn": arn},
        {
            "ModelPackageArn": arn,
            "ModelLifeCycle": {
                "Stage": "Production",
                "StageStatus": "Approved",
                "StageDescription": "canary in staging was clean",
            },
        },
    )
    result = aws.run("promote", arn, "--reason", "canary in staging was clean", env="prod")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "version 4: lifecycle none -> Production/Approved"
    assert "the deploy handler now updates mlops-loop-prod-serving to version 4" in result.stderr
    aws.assert_done()


def test_promote_refuses_a_version_that_is_not_approved(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    sagemaker = _prod(aws, monkeypatch)
    arn = package_arn(5, PROD.model_package_group_name, PROD.account)
    sagemaker.add_response(
        "describe_model_package",
        _described(5, "PendingManualApproval"),
        {"ModelPackageName": arn},
    )
    result = aws.run("promote", arn, env="prod")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: version 5 is PendingManualApproval: approve it first "
        "(`mlops --env prod approve 5 --reason ...`)"
    )
    aws.assert_done()  # no UpdateModelPackage queued, none sent


def test_promote_twice_changes_nothing(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    sagemaker = _prod(aws, monkeypatch)
    arn = package_arn(4, PROD.model_package_group_name, PROD.account)
    sagemaker.add_response(
        "describe_model_package",
        _described(4, "Approved", {"Stage": "Production", "StageStatus": "Approved"}),
        {"ModelPackageName": arn},
    )
    result = aws.run("promote", arn, env="prod")
    assert result.exit_code == 0
    assert result.stdout.strip() == "version 4 is already promoted (Production/Approved)"
    aws.assert_done()


def test_promote_where_approval_deploys_warns_it_deploys_nothing(aws: Aws) -> None:
    register(aws, approval="Approved")
    result = aws.run("promote", "1")  # moto accepts ModelLifeCycle without keeping it
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "version 1: lifecycle none -> Production/Approved"
    assert result.stderr.strip() == (
        "warning: env dev deploys on approval, not promotion: this only records the lifecycle "
        "stage and deploys nothing"
    )


# ---- rollback ------------------------------------------------------------------------------


def test_rollback_requests_the_previous_approved_version(aws: Aws) -> None:
    register(aws, approval="Approved")
    v2 = register(aws, approval="Approved")
    register(aws, approval="Rejected")
    v4 = register(aws, approval="Approved")
    aws.serving(v4)
    aws.stub("events").add_response(
        "put_events",
        {"FailedEntryCount": 0, "Entries": [{"EventId": "evt-1"}]},
        {
            "Entries": [
                {
                    "Source": "mlops.serving",
                    "DetailType": "Rollback Requested",
                    "EventBusName": "mlops-loop-dev-operator-requests",
                    "Resources": [v2],
                    "Detail": json.dumps(
                        {
                            "reason": "p99 latency doubled",
                            "model_package_group_name": GROUP,
                            "model_package_arn": v2,
                        }
                    ),
                }
            ]
        },
    )
    result = aws.run("rollback", "--reason", "p99 latency doubled")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "rollback requested (event evt-1): version 4 -> 2"
    aws.assert_done()


def test_rollback_to_a_given_version_puts_the_event(aws: Aws) -> None:
    register(aws, approval="Approved")
    v2 = register(aws, approval="Approved")
    aws.serving(v2)
    aws.client("events").create_event_bus(Name="mlops-loop-dev-operator-requests")
    result = aws.run("rollback", "--to", "1", "--reason", "drift")  # moto's PutEvents
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("rollback requested (event ")
    assert result.stdout.strip().endswith("version 2 -> 1")


def test_rollback_refuses_an_unapproved_target(aws: Aws) -> None:
    register(aws, approval="Rejected")
    v2 = register(aws, approval="Approved")
    aws.serving(v2)
    aws.stub("events")  # any PutEvents would fail the test: none queued
    result = aws.run("rollback", "--to", "1", "--reason", "drift")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: version 1 is Rejected (-); the deploy handler only rolls back to Approved "
        "versions that never rolled back"
    )
    aws.assert_done()


def test_rollback_in_production_needs_a_promoted_target(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTO_ACCOUNT_ID", PROD.account)
    group = PROD.model_package_group_name
    register(aws, approval="Approved", group=group)
    v2 = register(aws, approval="Approved", group=group)
    aws.serving(v2, env=PROD)
    result = aws.run("rollback", "--to", "1", "--reason", "drift", env="prod")
    assert result.exit_code == 1
    assert "only rolls back to Approved and promoted versions" in result.stderr


def test_rollback_with_nothing_deployed(aws: Aws) -> None:
    aws.serving("")
    result = aws.run("rollback", "--reason", "drift")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: nothing is deployed on mlops-loop-dev-endpoint: nothing to roll back"
    )


def test_rollback_without_an_older_approved_version(aws: Aws) -> None:
    register(aws, approval="Rejected")
    v2 = register(aws, approval="Approved")
    aws.serving(v2)
    result = aws.run("rollback", "--reason", "drift")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: no approved version older than the serving version 2 that never rolled back: "
        "nothing to roll back to"
    )


def test_rollback_to_the_serving_version_is_refused(aws: Aws) -> None:
    v1 = register(aws, approval="Approved")
    aws.serving(v1)
    result = aws.run("rollback", "--to", "1", "--reason", "drift")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: version 1 is already serving"


def test_rollback_reports_a_rejected_event(aws: Aws) -> None:
    register(aws, approval="Approved")
    v2 = register(aws, approval="Approved")
    aws.serving(v2)
    aws.stub("events").add_response(
        "put_events",
        {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}],
        },
    )
    result = aws.run("rollback", "--reason", "drift")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: PutEvents rejected the rollback request: InternalFailure: try again"
    )


MARK = "rolled back at 2026-11-21T09:40:00+00:00: Endpoint8024A810: 5xx alarm fired"


def test_models_show_a_rolled_back_version_with_when_and_why(aws: Aws) -> None:
    v1 = register(aws, approval="Approved")
    v2 = register(aws, approval="Approved")
    aws.client("sagemaker").update_model_package(
        ModelPackageArn=v2, ModelApprovalStatus="Rejected", ApprovalDescription=MARK
    )
    aws.serving(v1)
    result = aws.run("models")
    assert result.exit_code == 0, result.output
    rows = result.stdout.splitlines()[2:]
    assert rows[0].split()[:2] == ["2", "Rejected"] and rows[0].endswith(MARK)
    assert rows[1].split()[:2] == ["*", "1"] and "rolled back" not in rows[1]


def test_models_while_the_serving_stack_changes_say_so(aws: Aws) -> None:
    v1 = register(aws, approval="Approved")
    aws.stub("cloudformation").add_response(
        "describe_stacks",
        stack(SERVING_STACK, parameters={"ModelPackageArn": v1}, status="UPDATE_IN_PROGRESS"),
        {"StackName": SERVING_STACK},
    )
    result = aws.run("models")
    assert result.exit_code == 0, result.output
    assert "*" not in result.stdout.splitlines()[2]  # not known until the stack settles
    assert f"stack {SERVING_STACK} is UPDATE_IN_PROGRESS" in result.stderr


def test_rollback_while_the_serving_stack_changes_is_refused(aws: Aws) -> None:
    v1 = register(aws, approval="Approved")
    aws.stub("cloudformation").add_response(
        "describe_stacks",
        stack(SERVING_STACK, parameters={"ModelPackageArn": v1}, status="UPDATE_IN_PROGRESS"),
        {"StackName": SERVING_STACK},
    )
    aws.stub("events")
    result = aws.run("rollback", "--reason", "drift")
    assert result.exit_code == 1
    assert "is UPDATE_IN_PROGRESS: the serving model is changing" in result.stderr


def test_rollback_passes_over_a_rolled_back_version(aws: Aws) -> None:
    register(aws, approval="Approved")
    v2 = register(aws, approval="Approved")
    v3 = register(aws, approval="Approved")
    # v2 rolled back, then someone re-approved it without a new reason: still marked
    aws.client("sagemaker").update_model_package(
        ModelPackageArn=v2, ModelApprovalStatus="Approved", ApprovalDescription=MARK
    )
    aws.serving(v3)
    aws.client("events").create_event_bus(Name="mlops-loop-dev-operator-requests")
    result = aws.run("rollback", "--reason", "drift")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("version 3 -> 1")
    aws.serving(v3)  # each run describes the stack again
    refused = aws.run("rollback", "--to", "2", "--reason", "drift")
    assert refused.exit_code == 1
    assert "(-, rolled back); the deploy handler only rolls back" in refused.stderr


def test_rollback_in_production_skips_an_approved_but_unpromoted_version(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #20: in prod an approved-but-unpromoted older version is never a target."""
    sagemaker = _prod(aws, monkeypatch)
    group = PROD.model_package_group_name
    promoted = {"Stage": "Production", "StageStatus": "Approved"}
    v3 = package_arn(3, group, PROD.account)
    aws.serving(v3, env=PROD)
    summaries = [
        {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": version,
            "ModelPackageArn": package_arn(version, group, PROD.account),
            "CreationTime": NOW,
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": "Approved",
            **({"ModelLifeCycle": promoted} if version != 2 else {}),
        }
        for version in (3, 2, 1)
    ]
    for version, life_cycle in ((3, promoted), (3, promoted)):
        sagemaker.add_response(
            "describe_model_package",
            _described(version, "Approved", life_cycle),
            {"ModelPackageName": package_arn(version, group, PROD.account)},
        )
    sagemaker.add_response(
        "list_model_packages",
        {"ModelPackageSummaryList": summaries},
        {
            "ModelPackageGroupName": group,
            "ModelApprovalStatus": "Approved",
            "ModelPackageType": "VERSIONED",
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
        },
    )
    for _ in range(2):  # the rule's check of the candidate, then the CLI's description
        sagemaker.add_response(
            "describe_model_package",
            _described(1, "Approved", promoted),
            {"ModelPackageName": package_arn(1, group, PROD.account)},
        )
    aws.stub("events").add_response(
        "put_events",
        {"FailedEntryCount": 0, "Entries": [{"EventId": "evt-9"}]},
        {
            "Entries": [
                {
                    "Source": "mlops.serving",
                    "DetailType": "Rollback Requested",
                    "EventBusName": "mlops-loop-prod-operator-requests",
                    "Resources": [package_arn(1, group, PROD.account)],
                    "Detail": json.dumps(
                        {
                            "reason": "latency",
                            "model_package_group_name": group,
                            "model_package_arn": package_arn(1, group, PROD.account),
                        }
                    ),
                }
            ]
        },
    )
    result = aws.run("rollback", "--reason", "latency", env="prod")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "rollback requested (event evt-9): version 3 -> 1"
    aws.assert_done()


# ---- diff-models ---------------------------------------------------------------------------


def _report(auc: float, f1: float, rows: int) -> bytes:
    return json.dumps(
        {
            "binary_classification_metrics": {
                "auc": {"value": auc, "standard_deviation": 0.01},
                "f1": {"value": f1, "standard_deviation": 0.02},
                "confusion_matrix": {"0": {"0": 1}},
            },
            "gate": {"metric": "auc", "challenger": auc, "test_rows": rows},
        }
    ).encode()


def test_diff_models_shows_metrics_side_by_side(aws: Aws) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="artifacts", Key="e1/evaluation.json", Body=_report(0.90, 0.70, 2000))
    s3.put_object(Bucket="artifacts", Key="e2/evaluation.json", Body=_report(0.92, 0.65, 2100))
    register(aws, approval="Approved", evaluation_uri="s3://artifacts/e1/evaluation.json")
    register(aws, dataset="fraud/v2", evaluation_uri="s3://artifacts/e2/evaluation.json")
    result = aws.run("diff-models", "1", "2")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:]}
    assert rows["auc"] == ["0.9000", "0.9200", "+0.0200"]
    assert rows["f1"] == ["0.7000", "0.6500", "-0.0500"]
    assert "confusion_matrix" not in rows
    assert rows["dataset"] == ["fraud/v1", "fraud/v2", "differs"]
    assert rows["code"] == ["commit", "abc1234", "abc1234", "same"]
    assert rows["test"] == ["rows", "2000", "2100", "-"]
    assert result.stderr == ""


def _typed_report(problem: str, section: str, values: dict[str, float]) -> bytes:
    """A multi-class or regression evaluation.json (SageMaker's model-quality layouts)."""
    return json.dumps(
        {
            "problem_type": problem,
            section: {name: {"value": value, "standard_deviation": 0.01}
                      for name, value in values.items()},
            f"champion_{section}": None,
            "gate": {"metric": next(iter(values)), "test_rows": 500},
        }
    ).encode()  # fmt: skip


@pytest.mark.parametrize(
    ("problem", "section", "first", "second"),
    [("multiclass", "multiclass_classification_metrics", {"macro_f1": 0.8, "accuracy": 0.9},
      {"macro_f1": 0.85, "accuracy": 0.92}),
     ("regression", "regression_metrics", {"rmse": 310.0, "r2": 0.8}, {"rmse": 300.0, "r2": 0.82})],
)  # fmt: skip
def test_diff_models_shows_a_typed_reports_metrics(
    aws: Aws, problem: str, section: str, first: dict[str, float], second: dict[str, float]
) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(
        Bucket="artifacts", Key="e1/evaluation.json", Body=_typed_report(problem, section, first)
    )
    s3.put_object(
        Bucket="artifacts", Key="e2/evaluation.json", Body=_typed_report(problem, section, second)
    )
    register(aws, approval="Approved", evaluation_uri="s3://artifacts/e1/evaluation.json")
    register(aws, dataset="fraud/v2", evaluation_uri="s3://artifacts/e2/evaluation.json")
    result = aws.run("diff-models", "1", "2")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:]}
    for name in first:
        assert rows[name][:2] == [f"{first[name]:.4f}", f"{second[name]:.4f}"]
    assert rows["test"] == ["rows", "500", "500", "-"]
    assert "warning" not in result.stderr


def test_diff_models_falls_back_to_the_gate_metric(aws: Aws) -> None:
    register(aws, auc=0.9)
    register(aws, auc=0.95, evaluation_uri="s3://no-such-bucket/evaluation.json")
    result = aws.run("diff-models", "1", "2")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:]}
    assert rows["auc"] == ["0.9000", "0.9500", "+0.0500"]
    assert rows["test"] == ["rows", "-", "-", "-"]
    assert "warning: version 1: evaluation report not read (the package has no ModelQuality" in (
        result.stderr
    )
    assert "warning: version 2: evaluation report not read (GetObject failed: NoSuchBucket" in (
        result.stderr
    )


def test_diff_models_unknown_version(aws: Aws) -> None:
    register(aws)
    result = aws.run("diff-models", "1", "3")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: version 3 does not exist in {GROUP} (see `mlops --env dev models`)"
    )


# ---- one source of truth -------------------------------------------------------------------


def test_metadata_keys_are_those_the_register_step_writes() -> None:
    import ast

    from cli.registry import METADATA_KEYS

    source = Path(__file__).resolve().parents[2] / "pipeline_code/definition/registration.py"
    written: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.keyword) and node.arg == "customer_metadata_properties":
            assert isinstance(node.value, ast.Dict)
            written |= {
                k.value
                for k in node.value.keys
                if isinstance(k, ast.Constant) and isinstance(k.value, str)
            }
    assert set(METADATA_KEYS) <= written
