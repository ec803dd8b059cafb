"""vpc mode (issue #18), synthesized as CI does (cdk-nag and the Control Tower rules clean) in its
two forms: a created VPC (evidently drift engine) and an imported one (model-monitor engine).

Targeted assertions: every job of every definition, the model, the Model Monitor job and the
drift job carry the VpcConfig, and the requests are accepted by botocore's SageMaker model;
every function is in the subnets; every endpoint the loop needs exists; the roles cannot start
a job outside the subnets; the buckets refuse requests that do not come through the VPC's S3
endpoint, with the documented exceptions.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from mlops_config import REQUIRED_ENDPOINTS, parse_environment, read_cdk_json_context
from pipeline_code.offline import vpc_placeholders
from stacks.pipeline_definitions import generate_pipelines
from tests.conftest import synthesized
from tests.pipeline.generated import DEPLOY_VALUES, resolved, validate_request
from tests.policy_evaluation import Request, denied, resolve

pytestmark = pytest.mark.xdist_group("cdk")

SUBNETS = ["subnet-0a1b2c3d", "subnet-0e1f2a3b"]
S3_ENDPOINT = "vpce-0a1b2c3d4e5f60718"
IMPORTED_NETWORK = {
    "mode": "vpc",
    "vpc_id": "vpc-0123456789abcdef0",
    "subnet_ids": SUBNETS,
    "s3_endpoint_ids": [S3_ENDPOINT],
    "endpoints": list(REQUIRED_ENDPOINTS),
}
CREATED = json.dumps({"network": {"mode": "vpc", "create_vpc": True}})
IMPORTED = json.dumps({"network": IMPORTED_NETWORK, "monitoring": {"engine": "model-monitor"}})
# tracking.mlflow in a VPC: a created VPC gets the MLflow endpoint; an imported one lists it
MLFLOW_SERVICE = "aws.sagemaker.eu-west-1.experiments"  # describe-vpc-endpoint-services' name
CREATED_MLFLOW = json.dumps(
    {"network": {"mode": "vpc", "create_vpc": True}, "tracking": {"mlflow": "managed"}}
)
IMPORTED_MLFLOW = json.dumps(
    {
        "network": {
            **IMPORTED_NETWORK,
            "endpoints": [*REQUIRED_ENDPOINTS, "sagemaker.experiments"],
        },
        "tracking": {
            "mlflow": "external",
            "server_arn": "arn:aws:sagemaker:eu-west-1:111111111111:mlflow-tracking-server/team",
        },
    }
)
# CDK's deploy-time handlers in the Data stack (CloudFormation runs them; they hold no data):
# the only functions outside the subnets.
DATA_STACK_HANDLERS = (
    "CustomS3AutoDeleteObjectsCustomResourceProviderHandler",
    "BucketNotificationsHandler",
    "CustomVpcRestrictDefaultSGCustomResourceProviderHandler",
)
JOB_STEP_TYPES = {"Processing": "CreateProcessingJob", "Training": "CreateTrainingJob"}
Templates = dict[str, Any]


def _templates(overrides: str) -> Templates:
    return {role: t.to_json() for role, t in synthesized("dev", overrides).items()}


@pytest.fixture(scope="module")
def created() -> Templates:
    return _templates(CREATED)


@pytest.fixture(scope="module")
def imported() -> Templates:
    return _templates(IMPORTED)


@pytest.fixture(scope="module")
def created_mlflow() -> Templates:
    return _templates(CREATED_MLFLOW)


@pytest.fixture(scope="module")
def imported_mlflow() -> Templates:
    return _templates(IMPORTED_MLFLOW)


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def workload_group(templates: Templates) -> Any:
    """How the other stacks name the workload security group the Data stack creates."""
    [group] = of_type(templates["data"], "AWS::EC2::SecurityGroup").keys() - {
        k for k in of_type(templates["data"], "AWS::EC2::SecurityGroup") if "Endpoint" in k
    }
    return group


def config_of(overrides: str) -> Any:
    context = read_cdk_json_context()
    block = context["environments"]["dev"]
    for section, values in json.loads(overrides).items():
        block[section] = {**block.get(section, {}), **values}
    return parse_environment(context, "dev")


# ---------------------------------------------------------------- functions in the subnets


@pytest.mark.parametrize("variant", ["created", "imported"])
def test_every_function_runs_in_the_subnets(variant: str, request: pytest.FixtureRequest) -> None:
    templates: Templates = request.getfixturevalue(variant)
    placed = []
    for role, template in templates.items():
        for logical_id, function in of_type(template, "AWS::Lambda::Function").items():
            vpc = function["Properties"].get("VpcConfig")
            if role == "data":
                assert vpc is None and logical_id.startswith(DATA_STACK_HANDLERS), logical_id
                continue
            assert vpc is not None, f"{role}/{logical_id} is not in the subnets"
            resolved_vpc = resolve(vpc)
            assert (
                len(resolved_vpc["SubnetIds"]) == 2 and len(resolved_vpc["SecurityGroupIds"]) == 1
            )
            if variant == "imported":
                assert resolved_vpc["SubnetIds"] == SUBNETS
            # checkov's "not in a VPC" skip no longer applies, so it is gone
            skips = function.get("Metadata", {}).get("checkov", {}).get("skip", [])
            assert "CKV_AWS_117" not in {skip["id"] for skip in skips}, logical_id
            placed.append(logical_id)
    # the handlers of both pipelines, both triggers, the job tagger, the deployer, CDK's
    # Provider framework and BucketDeployment
    assert len(placed) >= 9


def test_function_roles_may_attach_network_interfaces(created: Templates) -> None:
    for role in ("training", "serving", "monitoring"):
        policies = json.dumps(of_type(created[role], "AWS::IAM::Policy"))
        assert '"AttachToPrivateSubnets"' in policies and "ec2:CreateNetworkInterface" in policies


# ---------------------------------------------------------------- the network itself


def test_a_created_vpc_has_every_endpoint_and_no_internet_path(created: Templates) -> None:
    data = created["data"]
    for kind in (
        "AWS::EC2::InternetGateway",
        "AWS::EC2::NatGateway",
        "AWS::EC2::EgressOnlyInternetGateway",
    ):
        assert of_type(data, kind) == {}, kind
    for subnet in of_type(data, "AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
    for route in of_type(data, "AWS::EC2::Route").values():
        raise AssertionError(f"an isolated subnet has a route: {route}")
    services = {}
    for endpoint in of_type(data, "AWS::EC2::VPCEndpoint").values():
        props = endpoint["Properties"]
        name = re.sub(r"^com\.amazonaws\.[^.]+\.", "", resolve(props["ServiceName"]))
        services[name] = props
    assert set(services) == set(REQUIRED_ENDPOINTS)
    for name, props in services.items():
        if name in ("s3", "dynamodb"):
            assert props["VpcEndpointType"] == "Gateway"
        else:
            assert props["VpcEndpointType"] == "Interface" and props["PrivateDnsEnabled"] is True
    assert of_type(data, "AWS::EC2::FlowLog")


def test_security_groups_allow_https_and_traffic_among_members_only(created: Templates) -> None:
    groups = of_type(created["data"], "AWS::EC2::SecurityGroup")
    workload = workload_group(created)
    [egress] = groups[workload]["Properties"]["SecurityGroupEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 443, 443)
    assert "SecurityGroupIngress" not in groups[workload]["Properties"]
    # Distributed training and inter-container traffic encryption need all traffic among the
    # group's members: exactly one self-referencing rule each way, for every protocol.
    member = {"Fn::GetAtt": [workload, "GroupId"]}
    [ingress_rule] = of_type(created["data"], "AWS::EC2::SecurityGroupIngress").values()
    [egress_rule] = of_type(created["data"], "AWS::EC2::SecurityGroupEgress").values()
    for props, peer_key in (
        (ingress_rule["Properties"], "SourceSecurityGroupId"),
        (egress_rule["Properties"], "DestinationSecurityGroupId"),
    ):
        assert props["GroupId"] == member, props
        assert props[peer_key] == member, props  # members only
        assert props["IpProtocol"] == "-1", props
    [endpoint_group] = [k for k in groups if k != workload]
    [ingress] = groups[endpoint_group]["Properties"]["SecurityGroupIngress"]
    assert ingress["FromPort"] == ingress["ToPort"] == 443
    assert ingress["SourceSecurityGroupId"] == {"Fn::GetAtt": [workload, "GroupId"]}


def _tracker(templates: Templates) -> dict[str, Any]:
    [tracker] = [
        f
        for k, f in of_type(templates["training"], "AWS::Lambda::Function").items()
        if k.startswith("RunTracker")
    ]
    return tracker


def test_a_created_vpc_with_tracking_has_the_mlflow_endpoint_admitting_the_workload_only(
    created: Templates, created_mlflow: Templates
) -> None:
    def mlflow_endpoints(templates: Templates) -> list[dict[str, Any]]:
        return [
            e["Properties"]
            for e in of_type(templates["data"], "AWS::EC2::VPCEndpoint").values()
            if "experiments" in json.dumps(e["Properties"]["ServiceName"])
        ]

    assert mlflow_endpoints(created) == []  # without tracking, no endpoint to pay for
    [props] = mlflow_endpoints(created_mlflow)
    assert resolve(props["ServiceName"]) == MLFLOW_SERVICE
    assert props["VpcEndpointType"] == "Interface" and props["PrivateDnsEnabled"] is True
    assert len(props["SubnetIds"]) == 2
    # its security group: HTTPS in from the workload group alone, nothing else in
    [group_ref] = props["SecurityGroupIds"]
    group = created_mlflow["data"]["Resources"][group_ref["Fn::GetAtt"][0]]["Properties"]
    [ingress] = group["SecurityGroupIngress"]
    assert (ingress["IpProtocol"], ingress["FromPort"], ingress["ToPort"]) == ("tcp", 443, 443)
    workload = workload_group(created_mlflow)
    assert ingress["SourceSecurityGroupId"] == {"Fn::GetAtt": [workload, "GroupId"]}
    assert "CidrIp" not in ingress
    # and the workload group (the tracker's) sends HTTPS only, as before
    [egress] = created_mlflow["data"]["Resources"][workload]["Properties"]["SecurityGroupEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 443, 443)


@pytest.mark.parametrize("variant", ["created_mlflow", "imported_mlflow"])
def test_the_run_tracker_runs_in_the_subnets(variant: str, request: pytest.FixtureRequest) -> None:
    templates: Templates = request.getfixturevalue(variant)
    vpc = resolve(_tracker(templates)["Properties"]["VpcConfig"])
    assert len(vpc["SubnetIds"]) == 2 and len(vpc["SecurityGroupIds"]) == 1
    if variant == "imported_mlflow":
        assert vpc["SubnetIds"] == SUBNETS
        # the team's VPC has the endpoint: the app creates none
        assert of_type(templates["data"], "AWS::EC2::VPCEndpoint") == {}


def test_an_imported_vpc_is_not_created_or_looked_up(imported: Templates) -> None:
    data = imported["data"]
    for kind in ("AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::VPCEndpoint"):
        assert of_type(data, kind) == {}, kind
    [group] = of_type(data, "AWS::EC2::SecurityGroup").values()
    assert group["Properties"]["VpcId"] == IMPORTED_NETWORK["vpc_id"]


# ---------------------------------------------------------------- jobs and the model


def _job_steps(definition: dict[str, Any]) -> list[dict[str, Any]]:
    steps, found = list(definition["Steps"]), []
    while steps:
        step = steps.pop()
        arguments = step.get("Arguments", {})
        steps += arguments.get("IfSteps", []) + arguments.get("ElseSteps", [])
        if step["Type"] in (*JOB_STEP_TYPES, "QualityCheck"):
            found.append(step)
    return found


@pytest.mark.parametrize("overrides", [CREATED, IMPORTED], ids=["created", "imported"])
def test_every_job_of_both_definitions_is_in_the_subnets(overrides: str) -> None:
    config = config_of(overrides)
    pipelines = generate_pipelines(config)
    subnets, groups = vpc_placeholders(config.network.subnet_count, 1)
    expected = {
        "Subnets": ["${" + s + "}" for s in subnets],
        "SecurityGroupIds": ["${" + g + "}" for g in groups],
    }
    names = []
    for key in ("training", "evaluation"):
        definition = json.loads(pipelines.definition_file(key).read_text())
        for step in _job_steps(definition):
            arguments = step["Arguments"]
            network = arguments.get("NetworkConfig", arguments)  # training: top level
            vpc = network.get("VpcConfig") or arguments.get("VpcConfig")
            assert vpc == expected, step["Name"]
            encrypted = network.get("EnableInterContainerTrafficEncryption")
            assert encrypted is True, step["Name"]
            names.append(f"{key}/{step['Name']}")
    assert set(pipelines.placeholders) >= {*subnets, *groups}
    baseline = ["training/Baseline"] if config.monitoring.engine == "model-monitor" else []
    assert sorted(names) == sorted(
        [
            "training/Prepare",
            "training/Train",
            "training/Evaluate",
            *baseline,
            "evaluation/Validate",
            "evaluation/Evaluate",
        ]
    )


def test_isolated_steps_stay_isolated_in_the_vpc() -> None:
    pipelines = generate_pipelines(config_of(IMPORTED))
    definition = json.loads(pipelines.definition_file("training").read_text())
    for step in _job_steps(definition):
        arguments = step["Arguments"]
        isolated = arguments.get("NetworkConfig", arguments).get("EnableNetworkIsolation")
        assert isolated is (step["Name"] != "Evaluate"), step["Name"]


def test_job_requests_with_the_vpc_config_are_valid_for_botocore() -> None:
    config = config_of(IMPORTED)
    pipelines = generate_pipelines(config)
    values = {**DEPLOY_VALUES, "VpcSubnet1": SUBNETS[0], "VpcSubnet2": SUBNETS[1]}
    values["VpcSecurityGroup1"] = "sg-0a1b2c3d4e5f60718"
    checked = []
    for key in ("training", "evaluation"):
        text = pipelines.definition_file(key).read_text()
        for name, value in values.items():
            text = text.replace("${" + name + "}", value)
        definition = json.loads(text)
        parameters = {p["Name"]: p.get("DefaultValue", "none") for p in definition["Parameters"]}
        for step in _job_steps(definition):
            if step["Type"] not in JOB_STEP_TYPES:
                continue
            operation = JOB_STEP_TYPES[step["Type"]]
            request = resolved(step["Arguments"], parameters)
            request[operation.removeprefix("Create") + "Name"] = f"pipelines-abc-{step['Name']}"
            validate_request(operation, request)
            assert "${" not in json.dumps(request)
            checked.append(step["Name"])
    assert len(checked) == 5


def test_the_model_runs_in_the_subnets_and_is_a_valid_create_model_request(
    imported: Templates,
) -> None:
    [model] = of_type(imported["serving"], "AWS::SageMaker::Model").values()
    vpc = resolve(model["Properties"]["VpcConfig"])
    assert vpc["Subnets"] == SUBNETS and len(vpc["SecurityGroupIds"]) == 1
    validate_request(
        "CreateModel",
        {
            "ModelName": "mlops-loop-dev-model",
            "ExecutionRoleArn": "arn:aws:iam::111111111111:role/endpoint",
            "PrimaryContainer": {
                "ModelPackageName": "arn:aws:sagemaker:eu-west-1:111111111111:model-package/g/1"
            },
            "EnableNetworkIsolation": model["Properties"]["EnableNetworkIsolation"],
            "VpcConfig": {"Subnets": vpc["Subnets"], "SecurityGroupIds": ["sg-0a1b2c3d"]},
        },
    )


def test_the_model_monitor_job_runs_in_the_subnets(imported: Templates) -> None:
    [job] = of_type(imported["serving"], "AWS::SageMaker::DataQualityJobDefinition").values()
    network = resolve(job["Properties"]["NetworkConfig"])
    assert network["EnableInterContainerTrafficEncryption"] is True
    assert network["VpcConfig"]["Subnets"] == SUBNETS


def test_the_drift_starter_starts_its_job_in_the_subnets(created: Templates) -> None:
    [starter] = [
        f
        for k, f in of_type(created["monitoring"], "AWS::Lambda::Function").items()
        if k.startswith("DriftStarter")
    ]
    variables = starter["Properties"]["Environment"]["Variables"]
    assert {"VPC_SUBNETS", "VPC_SECURITY_GROUP_IDS"} <= set(variables)


# ---------------------------------------------------------------- IAM and bucket policies


def _denies(template: dict[str, Any], sid_prefix: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in of_type(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny" and statement.get("Sid", "").startswith(sid_prefix)
    ]


@pytest.mark.parametrize(
    ("role", "actions"),
    [
        ("training", {"sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob"}),
        ("monitoring", {"sagemaker:CreateProcessingJob"}),
        ("serving", {"sagemaker:CreateModel"}),  # the deployer's CloudFormation service role
    ],
)
def test_no_job_or_model_can_be_created_outside_the_subnets(
    created: Templates, role: str, actions: set[str]
) -> None:
    for key, sid in (
        ("sagemaker:VpcSubnets", "OnlyInTheEnvironmentsSubnets"),
        ("sagemaker:VpcSecurityGroupIds", "OnlyWithTheEnvironmentsGroups"),
    ):
        statements = _denies(created[role], sid)
        conditions = {json.dumps(s["Condition"], sort_keys=True) for s in statements}
        assert {
            a
            for s in statements
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        } == actions
        assert any('"Null": {"' + key + '": "true"}' in c for c in conditions), key
        assert any("ForAnyValue:StringNotEquals" in c and key in c for c in conditions), key


def _bucket_policy(templates: Templates, bucket: str) -> dict[str, Any]:
    [policy] = [
        p["Properties"]["PolicyDocument"]
        for p in of_type(templates["data"], "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    return policy


OUTSIDE = {"aws:ViaAWSService": "false", "aws:PrincipalIsAWSService": "false"}
THROUGH = {**OUTSIDE, "aws:SourceVpce": S3_ENDPOINT}
SOMEONE = "arn:aws:iam::111111111111:role/someone"
DEPLOYER = "arn:aws:iam::111111111111:role/cdk-hnb659fds-cfn-exec-role-111111111111-eu-west-1"
PIPELINES = {"mlops-loop-pipelines-reader": "true"}
JOBS = {"mlops-loop-artifact-writer": "pipeline-outputs"}
ENDPOINT_STATEMENTS = ("DenyOutsideTheVpcEndpoint", "PipelinesReadOnlyOutsideTheVpcEndpoint")


@pytest.mark.parametrize("bucket", ["DataBucket", "ArtifactBucket"])
@pytest.mark.parametrize(
    ("action", "principal", "tags", "context", "refused"),
    [
        ("s3:GetObject", SOMEONE, {}, OUTSIDE, True),
        ("s3:PutObject", SOMEONE, {}, OUTSIDE, True),
        (
            "s3:GetObject",
            SOMEONE,
            {},
            {**OUTSIDE, "aws:SourceVpce": "vpce-0ffffffffffffffff"},
            True,
        ),
        ("s3:GetObject", SOMEONE, {}, THROUGH, False),
        ("s3:PutObject", SOMEONE, {}, THROUGH, False),
        ("s3:GetObject", DEPLOYER, {}, OUTSIDE, False),
        ("s3:GetObject", SOMEONE, {"mlops-loop-operator": "true"}, OUTSIDE, False),
        ("s3:GetObject", SOMEONE, {"mlops-loop-operator": "false"}, OUTSIDE, True),
        ("s3:GetObject", SOMEONE, {}, {**OUTSIDE, "aws:ViaAWSService": "true"}, False),
        # the pipelines' role: property files read by the Pipelines service; nothing else
        ("s3:GetObject", SOMEONE, PIPELINES, OUTSIDE, False),
        ("s3:PutObject", SOMEONE, PIPELINES, OUTSIDE, True),
        ("s3:PutObject", SOMEONE, PIPELINES, THROUGH, False),
        # the job roles (their code) go through the endpoint, reads included
        ("s3:GetObject", SOMEONE, JOBS, OUTSIDE, True),
        ("s3:PutObject", SOMEONE, JOBS, OUTSIDE, True),
        ("s3:GetObject", SOMEONE, JOBS, THROUGH, False),
    ],
)
def test_buckets_refuse_requests_not_through_the_vpc_endpoint(
    imported: Templates,
    bucket: str,
    action: str,
    principal: str,
    tags: dict[str, str],
    context: dict[str, str],
    refused: bool,
) -> None:
    # the VPC endpoint's statements alone: others (write-once prefixes, ...) have their tests
    policy = _bucket_policy(imported, bucket)
    assert {s.get("Sid") for s in policy["Statement"]} >= set(ENDPOINT_STATEMENTS)
    policy = {"Statement": [s for s in policy["Statement"] if s.get("Sid") in ENDPOINT_STATEMENTS]}
    key = "pipelines/x/model.tar.gz" if bucket == "ArtifactBucket" else "capture/x.jsonl"
    request = Request(action, f"<{bucket}>/{key}", principal, tags, context)
    assert denied(policy, request) is refused


def test_a_created_vpc_admits_its_own_s3_endpoint(created: Templates) -> None:
    policy = json.dumps(_bucket_policy(created, "DataBucket"))
    [endpoint] = [
        k
        for k, r in of_type(created["data"], "AWS::EC2::VPCEndpoint").items()
        if r["Properties"]["VpcEndpointType"] == "Gateway" and "S3" in k
    ]
    assert '"aws:SourceVpce": [{"Ref": "' + endpoint + '"}]' in policy


# the artifact bucket's S3 vocabulary (Service Authorization Reference): a listing carries
# s3:prefix, an object request names the object
LIST_MLFLOW = {"s3:prefix": "mlflow/1/run/artifacts/"}


@pytest.mark.parametrize(
    ("action", "key", "as_server", "context", "refused"),
    [
        # the managed server's role, from SageMaker's network: its artifact store alone
        ("s3:GetObject", "mlflow/1/run/artifacts/evaluation.json", True, OUTSIDE, False),
        ("s3:PutObject", "mlflow/1/run/artifacts/model.txt", True, OUTSIDE, False),
        ("s3:ListBucket", "", True, {**OUTSIDE, **LIST_MLFLOW}, False),
        # nothing else newly: other objects, other listings, the bucket's own settings
        ("s3:GetObject", "pipelines/x/model.tar.gz", True, OUTSIDE, True),
        ("s3:GetObject", "mlflowish/x", True, OUTSIDE, True),
        ("s3:PutObject", "code/x.py", True, OUTSIDE, True),
        ("s3:ListBucket", "", True, {**OUTSIDE, "s3:prefix": "pipelines/"}, True),
        # the prefix's boundary: a look-alike prefix or the name without its slash is no listing
        # of mlflow/ (a condition widened to mlflow* would admit both)
        ("s3:ListBucket", "", True, {**OUTSIDE, "s3:prefix": "mlflowish/"}, True),
        ("s3:ListBucket", "", True, {**OUTSIDE, "s3:prefix": "mlflow"}, True),
        ("s3:ListBucket", "", True, OUTSIDE, True),
        ("s3:GetBucketPolicy", "", True, OUTSIDE, True),
        ("s3:PutBucketPolicy", "", True, OUTSIDE, True),
        # anyone else outside the endpoint: still refused under mlflow/ too
        ("s3:GetObject", "mlflow/1/run/artifacts/evaluation.json", False, OUTSIDE, True),
        ("s3:ListBucket", "", False, {**OUTSIDE, **LIST_MLFLOW}, True),
        # through the endpoint, as before
        ("s3:GetObject", "pipelines/x/model.tar.gz", True, THROUGH, False),
        ("s3:GetObject", "mlflow/1/run/artifacts/evaluation.json", False, THROUGH, False),
    ],
)
def test_the_managed_tracking_server_reads_its_store_from_outside_and_nothing_else(
    created_mlflow: Templates,
    created: Templates,
    action: str,
    key: str,
    as_server: bool,
    context: dict[str, str],
    refused: bool,
) -> None:
    data = created_mlflow["data"]
    [server] = of_type(data, "AWS::SageMaker::MlflowTrackingServer").values()
    role = resolve(server["Properties"]["RoleArn"])  # the role SageMaker assumes: <Logical id>
    policy = _bucket_policy(created_mlflow, "ArtifactBucket")
    resource = f"<ArtifactBucket>/{key}" if key else "<ArtifactBucket>"
    through = context is THROUGH
    if through:  # the created VPC's own S3 endpoint
        [endpoint] = [
            k
            for k, r in of_type(data, "AWS::EC2::VPCEndpoint").items()
            if r["Properties"]["VpcEndpointType"] == "Gateway" and "S3" in k
        ]
        context = {**OUTSIDE, "aws:SourceVpce": f"<{endpoint}>"}
    request = Request(action, resource, role if as_server else SOMEONE, {}, context)
    assert denied(policy, request) is refused
    # without managed tracking there is no such exception: the role's ARN is nobody's
    if as_server and not through:
        assert denied(_bucket_policy(created, "ArtifactBucket"), request)


# ---------------------------------------------------------------- checks CI runs


@pytest.mark.parametrize(
    "overrides",
    [CREATED, IMPORTED, CREATED_MLFLOW, IMPORTED_MLFLOW],
    ids=["created", "imported", "created-mlflow", "imported-mlflow"],
)
def test_cfn_lint_finds_nothing_and_acknowledgements_are_used_and_true(overrides: str) -> None:
    from pathlib import Path

    from cfnlint.api import ManualArgs, lint

    from tests.conftest import assembly_dir
    from tests.test_nag import unused_acknowledgements
    from tests.test_templates import IGNORED_CFN_LINT_RULES

    for role, template in synthesized("dev", overrides).items():
        matches = lint(
            json.dumps(template.to_json()),
            config=ManualArgs(regions=["eu-west-1"], ignore_checks=IGNORED_CFN_LINT_RULES),
        )
        assert [str(m) for m in matches] == [], role
    assembly = Path(assembly_dir("dev", overrides))
    for metadata in assembly.glob("*.metadata.json"):
        assert "By design no function runs in a VPC" not in metadata.read_text(), metadata.name
    unused = unused_acknowledgements(assembly)
    # CDK acknowledges its own CloudFormation-Validate rules on a flow log; ours are all used
    assert [u for u in unused if "CloudFormation-Validate::" not in u] == []


def test_the_local_run_reads_a_vpc_definition() -> None:
    # subnets and security groups are not modelled locally: their placeholders get stand-ins
    from pipeline_code.local_pipeline.runner import load
    from pipeline_code.local_pipeline.sources import DefinitionSource, local_names

    config = config_of(CREATED)
    pipelines = generate_pipelines(config)
    names = local_names(config.prefix, config.region, config.model_package_group_name)
    for key, name in (
        ("training", config.pipeline_name),
        ("evaluation", config.evaluation_pipeline_name),
    ):
        source = DefinitionSource(pipelines.definition_file(key), pipelines.code_dir, name)
        assert load(source, names).name == name


def test_the_managed_server_starts_after_the_bucket_policy_that_admits_it(
    created_mlflow: Templates,
) -> None:
    """CloudFormation creates the server only once the artifact bucket's policy (with the
    exception for the server's role on mlflow/) exists: otherwise the server's first writes to
    its store from SageMaker's network could meet the deny for everyone outside the endpoint."""
    data = created_mlflow["data"]
    [server] = of_type(data, "AWS::SageMaker::MlflowTrackingServer").values()
    [policy_id] = [
        k
        for k, p in of_type(data, "AWS::S3::BucketPolicy").items()
        if p["Properties"]["Bucket"] == {"Ref": "ArtifactBucket"}
    ]
    assert "OnlyItsPrefixOutsideTheVpcEndpoint0" in json.dumps(data["Resources"][policy_id])
    assert policy_id in server["DependsOn"]
