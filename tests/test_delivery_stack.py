"""The delivery pipeline (`make synth ENV=delivery`, stacks/delivery_stack.py): what it runs,
in which order, into which accounts, with which permissions; and the `delivery` block's errors.

The synthesized pipeline is read as CodePipeline and CodeBuild see it (the template's Stages,
Actions and BuildSpec). The environments are deployed by the CDK CLI from the assembly `cdk
synth -c env=all` writes, the same app `make deploy` runs, so the stacks, their logical ids and
their current parameter values (the served model) are those of `make deploy`.
"""

from __future__ import annotations

import json
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from mlops_config import ConfigError, parse_delivery, read_cdk_json_context

pytestmark = pytest.mark.xdist_group("cdk")

ROOT = Path(__file__).resolve().parent.parent
CONNECTION = (
    "arn:aws:codeconnections:eu-west-1:444444444444:connection/0b2c3d4e-1111-2222-3333-444455556666"
)
DELIVERY_ASSEMBLY = ".build/test-cdk.out/delivery"
DELIVERY = {
    "account": "444444444444",
    "region": "eu-west-1",
    "repository": "example-org/mlops-loop",
    "branch": "release",
    "connection_arn": CONNECTION,
    "stages": ["dev", "prod"],
    "approval_before": ["prod"],
}


def context_with(delivery: Any) -> dict[str, Any]:
    context = read_cdk_json_context()
    context["delivery"] = delivery
    return context


@cache
def delivery_app() -> tuple[Any, dict[str, Any]]:
    """The delivery stack of DELIVERY, synthesized with the CI's checks; (stack, template)."""
    import aws_cdk as cdk

    from stacks.delivery_stack import DeliveryStack
    from stacks.policy_validation import add_policy_checks

    delivery, stages = parse_delivery(context_with(DELIVERY))
    # As the CDK CLI synthesizes it (construct paths in the metadata: cfn-lint's CDK mode).
    app = cdk.App(
        context={**read_cdk_json_context(), "aws:cdk:enable-path-metadata": True},
        outdir=DELIVERY_ASSEMBLY,
        builtin_cloud_formation_validation=False,
    )
    stack = DeliveryStack(
        app,
        "mlops-loop-delivery",
        delivery=delivery,
        environments=stages,
        env=cdk.Environment(account=delivery.account, region=delivery.region),
    )
    add_policy_checks(app, control_tower=True)  # any unacknowledged finding raises here
    assembly = app.synth()
    return stack, assembly.get_stack_by_name("mlops-loop-delivery").template


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def pipeline_stages(template: dict[str, Any]) -> list[dict[str, Any]]:
    [pipeline] = resources(template, "AWS::CodePipeline::Pipeline").values()
    return list(pipeline["Properties"]["Stages"])


def stage(template: dict[str, Any], name: str) -> list[dict[str, Any]]:
    [found] = [s["Actions"] for s in pipeline_stages(template) if s["Name"] == name]
    return list(found)


def build_spec(template: dict[str, Any], project_id_part: str) -> dict[str, Any]:
    [project] = [
        r for k, r in resources(template, "AWS::CodeBuild::Project").items() if project_id_part in k
    ]
    return dict(json.loads(project["Properties"]["Source"]["BuildSpec"]))


def test_source_is_the_configured_repository_and_branch_through_the_connection() -> None:
    _, template = delivery_app()
    [source] = stage(template, "Source")
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"] == {
        "ConnectionArn": CONNECTION,
        "FullRepositoryId": "example-org/mlops-loop",
        "BranchName": "release",
    }


def test_synth_runs_the_projects_own_tests_then_synth_with_the_required_runtimes() -> None:
    _, template = delivery_app()
    spec = build_spec(template, "Synth")
    assert spec["phases"]["build"]["commands"][:2] == ["make test", "make synth ENV=delivery"]
    assert spec["artifacts"]["base-directory"] == "cdk.out"
    runtimes = spec["phases"]["install"]["runtime-versions"]
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert re.fullmatch(r">=3\.11,<3\.12", required) and runtimes["python"] == "3.11"
    assert runtimes["nodejs"] == "20"


def commands(template: dict[str, Any], project_id_part: str) -> list[str]:
    return list(build_spec(template, project_id_part)["phases"]["build"]["commands"])


def test_synth_also_writes_every_environments_assembly_as_make_synth_does() -> None:
    _, template = delivery_app()
    assert commands(template, "Synth")[2] == (
        "node_modules/.bin/cdk synth --quiet -c env=all -o cdk.out/environments"
    )


@pytest.mark.parametrize(("env", "account"), [("dev", "111111111111"), ("prod", "333333333333")])
def test_each_environment_is_deployed_by_the_cli_keeping_its_parameters(
    env: str, account: str
) -> None:
    """No CloudFormation action (it would reset ModelPackageArn to its default, deleting the
    endpoint): the pinned CLI deploys the four stacks with their previous parameter values,
    through the environment's bootstrap roles only, with Docker for the drift image."""
    _, template = delivery_app()
    for stage_ in pipeline_stages(template):
        for action in stage_["Actions"]:
            assert action["ActionTypeId"]["Provider"] != "CloudFormation", action["Name"]
    npm, deploy = commands(template, f"{env}Deploy{env}")
    assert npm == "npm ci --ignore-scripts --no-audit --no-fund"
    stacks = " ".join(
        f"mlops-loop-{env}-{r}" for r in ("data", "training", "serving", "monitoring")
    )
    assert deploy == (
        "node_modules/.bin/cdk deploy --require-approval never --previous-parameters=true "
        f"--app synthesized/environments {stacks}"
    )
    [project] = [
        r
        for k, r in resources(template, "AWS::CodeBuild::Project").items()
        if f"{env}Deploy{env}" in k
    ]
    assert project["Properties"]["Environment"]["PrivilegedMode"] is True
    assumed = assumable(template, f"{env}Deploy{env}")
    assert sorted(re.sub(r".*role/cdk-hnb659fds-(.*)-role-.*", r"\1", a) for a in assumed) == [
        "deploy",
        "file-publishing",
        "image-publishing",
        "lookup",
    ]
    for arn in assumed:
        assert f"iam::{account}:role/cdk-hnb659fds-" in arn and f"-{account}-eu-west-1" in arn


def assumable(template: dict[str, Any], project_id_part: str) -> list[str]:
    """The roles the service role of that CodeBuild project may assume (their ARNs' text)."""
    [project] = [
        r for k, r in resources(template, "AWS::CodeBuild::Project").items() if project_id_part in k
    ]
    role = project["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
    return [
        json.dumps(resource)
        for r in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in r["Properties"]["Roles"]
        for statement in r["Properties"]["PolicyDocument"]["Statement"]
        if "sts:AssumeRole" in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    ]


def test_stages_run_in_the_configured_order() -> None:
    _, template = delivery_app()
    names = [s["Name"] for s in pipeline_stages(template)]
    assert names.index("Build") < names.index("UpdatePipeline") < names.index("dev")
    assert names.index("dev") < names.index("prod")


def test_prod_is_deployed_only_after_an_approval_that_comes_after_its_diff() -> None:
    _, template = delivery_app()
    actions = stage(template, "prod")
    order = {a["Name"]: a["RunOrder"] for a in actions}
    [approval] = [a for a in actions if a["ActionTypeId"]["Category"] == "Approval"]
    assert order["Diff-prod"] < order[approval["Name"]] < order["Deploy-prod"]
    assert [a["Name"] for a in stage(template, "dev")] == ["Deploy-dev"]
    npm, diff = commands(template, "Diffprod")
    assert diff.startswith("node_modules/.bin/cdk diff --method=template --app synthesized/")
    assert diff.endswith(" mlops-loop-prod-monitoring")


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s
        for r in resources(template, "AWS::IAM::Policy").values()
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_actions(template: dict[str, Any]) -> list[str]:
    return [
        action
        for s in _statements(template)
        if s["Effect"] == "Allow"
        for action in _as_list(s["Action"])
        if action == "*" or action.endswith(":*")
    ]


def foreign_roles(template: dict[str, Any], own_account: str) -> list[str]:
    """Roles in other accounts that any pipeline role may assume."""
    found = []
    for s in _statements(template):
        if "sts:AssumeRole" in _as_list(s["Action"]):
            for resource in _as_list(s["Resource"]):
                text = json.dumps(resource)
                if set(re.findall(r"\b\d{12}\b", text)) - {own_account}:
                    found.append(text)
    return found


def test_no_pipeline_role_has_a_wildcard_action_or_assumes_more_than_bootstrap_roles() -> None:
    _, template = delivery_app()
    assert wildcard_actions(template) == []
    roles = foreign_roles(template, "444444444444")
    assert roles
    for role in roles:
        found = re.search(
            r"iam::(\d{12}):role/cdk-hnb659fds-(deploy|file-publishing|image-publishing|lookup)"
            r"-role-(\d{12})-eu-west-1",
            role,
        )
        assert found and found[1] == found[3] in {"111111111111", "333333333333"}, role
    # the diff before the approval can only read prod
    assert assumable(template, "Diffprod") == [
        '"arn:aws:iam::333333333333:role/cdk-hnb659fds-lookup-role-333333333333-eu-west-1"'
    ]

    any_role, any_action = json.loads(json.dumps(template)), json.loads(json.dumps(template))
    for statement in _statements(any_role):
        if "sts:AssumeRole" in _as_list(statement["Action"]):
            statement["Resource"] = "arn:aws:iam::333333333333:role/*"
    for statement in _statements(any_action):
        if "sts:AssumeRole" in _as_list(statement["Action"]):
            statement["Action"] = "sts:*"
    assert any("role/*" in r for r in foreign_roles(any_role, "444444444444"))
    assert wildcard_actions(any_action)


def test_artifacts_and_build_logs_are_encrypted_with_the_pipelines_rotating_key() -> None:
    _, template = delivery_app()
    [(key_id, key)] = resources(template, "AWS::KMS::Key").items()
    assert key["Properties"]["EnableKeyRotation"] is True
    sids = {s.get("Sid") for s in key["Properties"]["KeyPolicy"]["Statement"]}
    assert "DenyGrantsExceptForAwsResources" in sids
    [pipeline] = resources(template, "AWS::CodePipeline::Pipeline").values()
    store = pipeline["Properties"]["ArtifactStore"]
    assert store["EncryptionKey"]["Id"] == {"Fn::GetAtt": [key_id, "Arn"]}
    bucket = template["Resources"][store["Location"]["Ref"]]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "LoggingConfiguration" in bucket
    [log_group] = resources(template, "AWS::Logs::LogGroup").values()
    assert log_group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    for project in resources(template, "AWS::CodeBuild::Project").values():
        logs = project["Properties"]["LogsConfig"]["CloudWatchLogs"]
        assert logs["Status"] == "ENABLED" and "GroupName" in logs


# --- the `delivery` block's errors ------------------------------------------------------------


def delivery_error(**changes: Any) -> str:
    block = {**DELIVERY, **changes}
    for key, value in changes.items():
        if value is None:
            del block[key]
    with pytest.raises(ConfigError) as error:
        parse_delivery(context_with(block))
    return str(error.value)


def test_a_missing_block_says_what_env_delivery_needs() -> None:
    context = read_cdk_json_context()
    context.pop("delivery", None)
    with pytest.raises(ConfigError, match=r"^delivery is missing: env=delivery builds"):
        parse_delivery(context)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"connection_arn": None},
            "delivery.connection_arn is missing: source github needs the ARN of a "
            "CodeConnections connection",
        ),
        (
            {"repository": "mlops-loop"},
            "delivery.repository = 'mlops-loop' is not allowed: owner/name (source github)",
        ),
        (
            {"source": "codecommit", "repository": "mlops-loop"},
            f"delivery.connection_arn = '{CONNECTION}' is not allowed with source codecommit",
        ),
        (
            {"stages": ["dev", "qa", "prod"]},
            "delivery.stages = ['dev', 'qa', 'prod'] is not allowed: 'qa' is not an environment of "
            "cdk.json (one of dev, prod, staging)",
        ),
        (
            {"stages": ["dev", "dev"]},
            "delivery.stages = ['dev', 'dev'] is not allowed: a stage twice",
        ),
        (
            {"approval_before": ["staging"]},
            "delivery.approval_before = ['staging'] is not allowed: 'staging' is not one of "
            "the stages",
        ),
        (
            {"account": 444444444444},
            "delivery.account = 444444444444 is not allowed: a 12-digit AWS account id (quoted)",
        ),
        (
            {"connection_arn": "arn:aws:iam::444444444444:role/x"},
            "delivery.connection_arn = 'arn:aws:iam::444444444444:role/x' is not allowed: a "
            "CodeConnections connection ARN, or null",
        ),
        ({"brnach": "main"}, "delivery.brnach is not a known key: did you mean branch?"),
    ],
)
def test_bad_delivery_settings_get_one_line_naming_the_key(
    changes: dict[str, Any], message: str
) -> None:
    assert delivery_error(**changes) == message


def test_codecommit_takes_a_repository_name_and_no_connection() -> None:
    delivery, stages = parse_delivery(
        context_with(
            {
                **{k: v for k, v in DELIVERY.items() if k != "connection_arn"},
                "source": "codecommit",
                "repository": "mlops-loop",
            }
        )
    )
    assert (delivery.source, delivery.repository) == ("codecommit", "mlops-loop")
    assert [s.name for s in stages] == ["dev", "prod"]


def test_cfn_lint_finds_nothing_and_every_acknowledgement_is_used() -> None:
    from cfnlint.api import ManualArgs, lint

    from tests.test_nag import unused_acknowledgements
    from tests.test_templates import IGNORED_CFN_LINT_RULES

    _, template = delivery_app()
    matches = lint(
        json.dumps(template),
        config=ManualArgs(regions=["eu-west-1"], ignore_checks=IGNORED_CFN_LINT_RULES),
    )
    assert [str(m) for m in matches] == []
    assert unused_acknowledgements(Path(DELIVERY_ASSEMBLY)) == []


def test_the_self_update_installs_the_cli_version_package_json_pins() -> None:
    _, template = delivery_app()
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    install = build_spec(template, "SelfMutation")["phases"]["install"]["commands"]
    assert install == [f"npm install -g aws-cdk@{pinned}"]
