"""tracking.mlflow: off builds nothing; managed builds a tracking server in the Data stack whose
properties CreateMlflowTrackingServer accepts (botocore's model), retained where the registry
is; managed and external build the run tracker, whose role can read the pipelines' outputs,
log to that one server and tag packages with their run, and nothing more: it can never
approve a package (evaluated as IAM would, tests/policy_evaluation.py).
"""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from aws_cdk.assertions import Template
from botocore.validate import ParamValidator

from stacks.data_stack import MLFLOW_SERVER_LOGICAL_ID
from tests.conftest import (
    MLFLOW_EXTERNAL,
    MLFLOW_MANAGED,
    MLFLOW_PROMOTE_TARGET,
    MLFLOW_SELF_HOSTED,
    synthesized,
)
from tests.policy_evaluation import Request, decision, resolve

pytestmark = pytest.mark.xdist_group("cdk")

EXTERNAL_ARN = json.loads(MLFLOW_EXTERNAL)["tracking"]["server_arn"]
ACCOUNT, REGION = "111111111111", "eu-west-1"
PACKAGE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/mlops-loop-dev-models/3"
TRACKER = "arn:aws:iam::111111111111:role/tracker"


def _of_type(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template.to_json()["Resources"].items() if r["Type"] == kind}


def _role_statements(template: Template, path_part: str) -> list[dict[str, Any]]:
    policies = _of_type(template, "AWS::IAM::Policy")
    statements = [
        statement
        for logical_id, policy in policies.items()
        if path_part in logical_id
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert statements, f"no policy of {path_part}"
    return list(resolve(statements))


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {
        a
        for s in statements
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }


def _write_resources(statements: list[dict[str, Any]]) -> list[str]:
    return [
        resource
        for s in statements
        if "s3:PutObject" in _actions([s])
        for resource in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]


@pytest.fixture(scope="module")
def managed() -> dict[str, Template]:
    return synthesized("dev", MLFLOW_MANAGED)


@pytest.fixture(scope="module")
def external() -> dict[str, Template]:
    return synthesized("dev", MLFLOW_EXTERNAL)


def test_off_builds_no_server_and_no_tracker(dev: dict[str, Template]) -> None:
    assert _of_type(dev["data"], "AWS::SageMaker::MlflowTrackingServer") == {}
    functions = _of_type(dev["training"], "AWS::Lambda::Function")
    assert not [k for k in functions if k.startswith("RunTracker")]


def test_the_managed_server_is_one_sagemaker_accepts(managed: dict[str, Template]) -> None:
    ((logical_id, server),) = _of_type(
        managed["data"], "AWS::SageMaker::MlflowTrackingServer"
    ).items()
    props = resolve(server["Properties"])
    assert props["TrackingServerName"] == "mlops-loop-dev-mlflow"
    assert props["TrackingServerSize"] == "Medium" and props["MlflowVersion"] == "3.0"
    assert props["ArtifactStoreUri"] == "s3://<ArtifactBucket>/mlflow/"
    # models reach the registry only through the pipeline's gate
    assert props["AutomaticModelRegistration"] is False
    request = {
        "TrackingServerName": props["TrackingServerName"],
        "ArtifactStoreUri": "s3://bucket/mlflow/",
        "TrackingServerSize": props["TrackingServerSize"],
        "MlflowVersion": props["MlflowVersion"],
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/mlflow",
        "AutomaticModelRegistration": props["AutomaticModelRegistration"],
        "Tags": [{"Key": t["Key"], "Value": t["Value"]} for t in props["Tags"]],
    }
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("CreateMlflowTrackingServer").input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    assert server["DeletionPolicy"] == "Delete"  # dev: destroyed with the stack
    # stateful: a refactor must never replace it (and lose its experiments)
    assert logical_id == MLFLOW_SERVER_LOGICAL_ID == "MlflowTrackingServer"


def test_the_managed_server_is_retained_where_the_registry_is() -> None:
    staging = synthesized("staging", MLFLOW_MANAGED)
    (server,) = _of_type(staging["data"], "AWS::SageMaker::MlflowTrackingServer").values()
    (group,) = _of_type(staging["data"], "AWS::SageMaker::ModelPackageGroup").values()
    assert server["DeletionPolicy"] == group["DeletionPolicy"] == "Retain"


def test_the_server_role_touches_only_the_mlflow_prefix(managed: dict[str, Template]) -> None:
    statements = _role_statements(managed["data"], "MlflowServerRole")
    for statement in statements:
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        for resource in resources:
            assert resource in ("<ArtifactBucket>/mlflow/*", "<ArtifactBucket>", "<ArtifactKey>")
    assert not [a for a in _actions(statements) if a.startswith(("sagemaker:", "iam:"))]
    assert not [a for a in _actions(statements) if "Delete" in a]


@pytest.mark.parametrize("variant", ["managed", "external"])
def test_the_tracker_can_never_approve_nor_register_a_package(
    variant: str, request: pytest.FixtureRequest
) -> None:
    templates: dict[str, Template] = request.getfixturevalue(variant)
    statements = _role_statements(templates["training"], "RunTrackerFunction")
    # what an approval takes, or a registration that could carry one
    # denied explicitly: a broader policy attached later cannot reopen it
    widened = [*statements, {"Effect": "Allow", "Action": "*", "Resource": "*"}]
    for action in (
        "sagemaker:UpdateModelPackage",
        "sagemaker:CreateModelPackage",
        "sagemaker:DeleteModelPackage",
        "sagemaker:PutModelPackageGroupPolicy",
    ):
        assert decision(widened, Request(action, PACKAGE, TRACKER)) == "explicit-deny", action
        group = PACKAGE.replace("model-package/", "model-package-group/").rsplit("/", 1)[0]
        assert decision(widened, Request(action, group, TRACKER)) == "explicit-deny", action
    assert not [a for s in statements if s["Effect"] == "Allow" for a in _actions([s]) if "*" in a]
    tag = Request("sagemaker:AddTags", PACKAGE, TRACKER, context={"aws:TagKeys": "mlflow-run-id"})
    assert decision(statements, tag) == "allow"
    other = Request("sagemaker:AddTags", PACKAGE, TRACKER, context={"aws:TagKeys": "approved"})
    assert decision(statements, other) == "implicit-deny"
    elsewhere = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/another-group/1"
    assert decision(statements, Request("sagemaker:AddTags", elsewhere, TRACKER)) == "implicit-deny"


def test_the_tracker_logs_to_its_one_server_and_writes_only_run_artifacts(
    managed: dict[str, Template], external: dict[str, Template]
) -> None:
    managed_statements = _role_statements(managed["training"], "RunTrackerFunction")
    external_statements = _role_statements(external["training"], "RunTrackerFunction")
    search = "sagemaker-mlflow:SearchRuns"
    assert decision(external_statements, Request(search, EXTERNAL_ARN, TRACKER)) == "allow"
    other_server = EXTERNAL_ARN.replace("team-mlflow", "someone-else")
    assert decision(external_statements, Request(search, other_server, TRACKER)) == "implicit-deny"
    for statements in (managed_statements, external_statements):
        assert not [a for a in _actions(statements) if a.startswith("s3:Delete")]
        # DeleteRun/DeleteExperiment scope only to a whole server: on a shared external
        # server they would reach every team's runs (a duplicate is retired, not deleted)
        for action in ("DeleteRun", "DeleteExperiment", "DeleteTag"):
            request = Request(f"sagemaker-mlflow:{action}", EXTERNAL_ARN, TRACKER)
            assert decision(external_statements, request) == "implicit-deny"
        mlflow_actions = [a for a in _actions(statements) if a.startswith("sagemaker-mlflow:")]
        assert mlflow_actions and not [a for a in mlflow_actions if "Delete" in a or "*" in a]
    managed_writes = _write_resources(managed_statements)
    assert managed_writes and all(r.endswith("/mlflow/*") for r in managed_writes)
    # an external server's artifact store is not the app's to grant
    assert _write_resources(external_statements) == []


def test_every_finished_execution_reaches_the_tracker_with_a_dlq_and_alarms(
    managed: dict[str, Template],
) -> None:
    training = managed["training"]
    rules = {k: r for k, r in _of_type(training, "AWS::Events::Rule").items() if "RunTracker" in k}
    ((_, rule),) = rules.items()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == ["SageMaker Model Building Pipeline Execution Status Change"]
    assert pattern["detail"]["currentPipelineExecutionStatus"] == [
        "Succeeded",
        "Failed",
        "Stopped",
    ]
    pipelines = [str(resolve(arn)) for arn in pattern["detail"]["pipelineArn"]]
    assert [p.rsplit("/", 1)[-1] for p in pipelines] == [
        "mlops-loop-dev-training",
        "mlops-loop-dev-evaluation",
    ]
    (target,) = rule["Properties"]["Targets"]
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 8
    alarms = _of_type(training, "AWS::CloudWatch::Alarm")
    failures = [a for k, a in alarms.items() if "TrackingFailures" in k]
    (alarm,) = failures
    assert alarm["Properties"]["MetricName"] == "TrackingFailures"
    assert alarm["Properties"]["Namespace"] == "mlops-loop-dev/RunTracker"
    assert alarm["Properties"]["AlarmActions"]
    (function,) = [
        f for k, f in _of_type(training, "AWS::Lambda::Function").items() if "RunTracker" in k
    ]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["PIPELINE_NAMES"] == "mlops-loop-dev-training,mlops-loop-dev-evaluation"
    (server,) = _of_type(managed["data"], "AWS::SageMaker::MlflowTrackingServer").values()
    name = server["Properties"]["TrackingServerName"]
    assert resolve(variables["TRACKING_SERVER"]).endswith(f":mlflow-tracking-server/{name}")
    assert variables["COPY_ARTIFACTS"] == "true"  # the managed server's store is our bucket


def test_the_training_stack_does_not_import_the_server_so_managed_can_be_switched_off(
    managed: dict[str, Template],
) -> None:
    # a cross-stack export cannot be deleted while imported: switching managed -> off or
    # external would fail the Data stack's update
    training = json.dumps(managed["training"].to_json())
    assert "Fn::ImportValue" in training  # (the check below would see an import of the server)
    assert "MlflowTrackingServer" not in training
    outputs = managed["data"].to_json().get("Outputs", {})
    assert not [k for k, v in outputs.items() if "MlflowTrackingServer" in json.dumps(v)]


def test_an_external_server_gets_no_artifact_copies(external: dict[str, Template]) -> None:
    (function,) = [
        f
        for k, f in _of_type(external["training"], "AWS::Lambda::Function").items()
        if "RunTracker" in k
    ]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["COPY_ARTIFACTS"] == "false"  # its store is not writable by the tracker


TUNED_EXTERNAL = json.dumps(
    {
        **json.loads(MLFLOW_EXTERNAL),
        "pipeline": {"tuning": {"ranges": {"eta": {"min": 0.01, "max": 0.3}}, "max_jobs": 40}},
    }
)
TUNING_JOB = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job/pipelines-0a1b2c3d"
OWN_TAG = {"aws:ResourceTag/pipeline": "mlops-loop-dev-training"}


def test_with_tuning_the_tracker_reads_only_its_pipelines_tuning_jobs(
    external: dict[str, Template],
) -> None:
    tuned = synthesized("dev", TUNED_EXTERNAL)["training"]
    statements = _role_statements(tuned, "RunTrackerFunction")
    for action in (
        "sagemaker:DescribeHyperParameterTuningJob",
        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
    ):
        assert decision(statements, Request(action, TUNING_JOB, TRACKER, context=OWN_TAG)) == (
            "allow"
        )
        # another pipeline's (or an untagged) tuning job, one not started by a pipeline, one of
        # another account or region: nothing
        others = [
            Request(action, TUNING_JOB, TRACKER, context={"aws:ResourceTag/pipeline": "other"}),
            Request(action, TUNING_JOB, TRACKER),
            Request(action, TUNING_JOB.replace("pipelines-", "adhoc-"), TRACKER, context=OWN_TAG),
            Request(action, TUNING_JOB.replace(ACCOUNT, "222222222222"), TRACKER, context=OWN_TAG),
            Request(action, TUNING_JOB.replace(REGION, "us-east-1"), TRACKER, context=OWN_TAG),
        ]
        for request in others:
            assert decision(statements, request) == "implicit-deny", request
        # without tuning the tracker reads no tuning job at all
        untuned = _role_statements(external["training"], "RunTrackerFunction")
        own = Request(action, TUNING_JOB, TRACKER, context=OWN_TAG)
        assert decision(untuned, own) == "implicit-deny"
    # reading is all: it can neither start, stop nor tag a tuning job
    for action in ("CreateHyperParameterTuningJob", "StopHyperParameterTuningJob", "AddTags"):
        request = Request(f"sagemaker:{action}", TUNING_JOB, TRACKER, context=OWN_TAG)
        assert decision(statements, request) == "implicit-deny", action
    # about a second per trial on top of the run's two minutes (40 trials here)
    (function,) = [
        f for k, f in _of_type(tuned, "AWS::Lambda::Function").items() if "RunTracker" in k
    ]
    assert function["Properties"]["Timeout"] == 120 + 40


def _runs_policy(template: Template) -> list[dict[str, Any]]:
    (policy,) = [
        r["Properties"]
        for r in _of_type(template, "AWS::IAM::ManagedPolicy").values()
        if "MLflow runs" in r["Properties"]["Description"]
    ]
    return list(resolve(policy["PolicyDocument"]["Statement"]))


OPERATOR = "arn:aws:iam::111111111111:role/operator"


def test_the_runs_policy_lets_operators_compare_and_backfill_on_the_one_server_only(
    dev: dict[str, Template], managed: dict[str, Template], external: dict[str, Template]
) -> None:
    # off: no policy at all
    assert not [
        r
        for r in _of_type(dev["serving"], "AWS::IAM::ManagedPolicy").values()
        if "MLflow runs" in r["Properties"]["Description"]
    ]
    managed_server = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:mlflow-tracking-server/" + (
        "mlops-loop-dev-mlflow"
    )
    execution = (
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/mlops-loop-dev-training/execution/x1"
    )
    for templates, server in ((managed, managed_server), (external, EXTERNAL_ARN)):
        statements = _runs_policy(templates["serving"])
        # compare reads, backfill writes: on this server, and on no other
        for action in ("SearchRuns", "GetExperimentByName", "CreateRun", "LogBatch", "UpdateRun"):
            request = Request(f"sagemaker-mlflow:{action}", server, OPERATOR)
            assert decision(statements, request) == "allow", action
            elsewhere = Request(f"sagemaker-mlflow:{action}", server + "-other", OPERATOR)
            assert decision(statements, elsewhere) == "implicit-deny", action
        for action in ("DeleteRun", "DeleteExperiment", "CreatePresignedMlflowTrackingServerUrl"):
            request = Request(f"sagemaker-mlflow:{action}", server, OPERATOR)
            assert decision(statements, request) == "implicit-deny", action
        # backfill reads the execution, and tags its package with the run, nothing more
        read = Request("sagemaker:DescribePipelineExecution", execution, OPERATOR)
        assert decision(statements, read) == "allow"
        other = execution.replace("mlops-loop-dev-training", "someone-else")
        assert decision(statements, Request(read.action, other, OPERATOR)) == "implicit-deny"
        tag = Request(
            "sagemaker:AddTags", PACKAGE, OPERATOR, context={"aws:TagKeys": "mlflow-run-id"}
        )
        assert decision(statements, tag) == "allow"
        approve = Request("sagemaker:AddTags", PACKAGE, OPERATOR, context={"aws:TagKeys": "x"})
        assert decision(statements, approve) == "implicit-deny"
        assert decision(statements, Request("sagemaker:UpdateModelPackage", PACKAGE, OPERATOR)) == (
            "implicit-deny"
        )
        # no tuning configured: no tuning job is read, not even this pipeline's
        for action in TUNING_ACTIONS:
            own = Request(action, TUNING_JOB, OPERATOR, context=OWN_TAG)
            assert decision(statements, own) == "implicit-deny", action
        assert not [a for a in _actions(statements) if "Delete" in a or a.endswith("*")]
    # artifacts are written only into the managed server's store (our bucket's mlflow/)
    (written,) = _write_resources(_runs_policy(managed["serving"]))
    assert "ArtifactBucket" in written and written.endswith(">/mlflow/*")
    assert _write_resources(_runs_policy(external["serving"])) == []


TUNING_ACTIONS = (
    "sagemaker:DescribeHyperParameterTuningJob",
    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
)


def test_with_tuning_the_runs_policy_reads_only_its_pipelines_tuning_jobs() -> None:
    statements = _runs_policy(synthesized("dev", TUNED_EXTERNAL)["serving"])
    for action in TUNING_ACTIONS:
        own = Request(action, TUNING_JOB, OPERATOR, context=OWN_TAG)
        assert decision(statements, own) == "allow", action
        others = [
            Request(action, TUNING_JOB, OPERATOR),  # untagged: not known to be this pipeline's
            Request(action, TUNING_JOB, OPERATOR, context={"aws:ResourceTag/pipeline": "other"}),
            Request(action, TUNING_JOB.replace("pipelines-", "adhoc-"), OPERATOR, context=OWN_TAG),
            Request(action, TUNING_JOB.replace(ACCOUNT, "222222222222"), OPERATOR, context=OWN_TAG),
        ]
        for request in others:
            assert decision(statements, request) == "implicit-deny", request
    for action in ("CreateHyperParameterTuningJob", "StopHyperParameterTuningJob"):
        request = Request(f"sagemaker:{action}", TUNING_JOB, OPERATOR, context=OWN_TAG)
        assert decision(statements, request) == "implicit-deny", action


# a promotion target trains nothing but runs its eval-only pipeline: only that one is tracked
TARGET_ACCOUNT = "222222222222"


def _target_arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{TARGET_ACCOUNT}:{kind}/{name}"


def test_a_promotion_target_tracks_its_eval_only_pipeline_alone() -> None:
    templates = synthesized("staging", MLFLOW_PROMOTE_TARGET)
    training = templates["training"]
    ((_, rule),) = [
        (k, r) for k, r in _of_type(training, "AWS::Events::Rule").items() if "RunTracker" in k
    ]
    pipelines = [
        str(resolve(a)) for a in rule["Properties"]["EventPattern"]["detail"]["pipelineArn"]
    ]
    assert pipelines == [_target_arn("pipeline", "mlops-loop-staging-evaluation")]
    (function,) = [
        f for k, f in _of_type(training, "AWS::Lambda::Function").items() if "RunTracker" in k
    ]
    assert function["Properties"]["Environment"]["Variables"]["PIPELINE_NAMES"] == (
        "mlops-loop-staging-evaluation"
    )
    evaluation = _target_arn("pipeline", "mlops-loop-staging-evaluation/execution/e1")
    trainings = _target_arn("pipeline", "mlops-loop-staging-training/execution/t1")
    package = _target_arn("model-package", "mlops-loop-staging-models/3")
    tag = {"aws:TagKeys": "mlflow-run-id"}
    for statements in (
        _role_statements(training, "RunTrackerFunction"),
        _runs_policy(templates["serving"]),
    ):
        read = "sagemaker:DescribePipelineExecution"
        assert decision(statements, Request(read, evaluation, TRACKER)) == "allow"
        assert decision(statements, Request(read, trainings, TRACKER)) == "implicit-deny"
    # the tracker has no package to tag there (eval-only executions register none)
    tracker = _role_statements(training, "RunTrackerFunction")
    add = Request("sagemaker:AddTags", package, TRACKER, context=tag)
    assert decision(tracker, add) == "implicit-deny"


SELF_HOSTED_URI = json.loads(MLFLOW_SELF_HOSTED)["tracking"]["server_uri"]
SECRET = json.loads(MLFLOW_SELF_HOSTED)["tracking"]["credentials_secret_arn"]


def test_a_self_hosted_server_gets_its_uri_its_one_secret_and_no_sagemaker_mlflow() -> None:
    templates = synthesized("dev", MLFLOW_SELF_HOSTED)
    training = templates["training"]
    statements = _role_statements(training, "RunTrackerFunction")
    # the one secret (GetSecretValue's resource: the secret's ARN, Service Authorization
    # Reference), no other secret, no other Secrets Manager call
    read = Request("secretsmanager:GetSecretValue", SECRET, TRACKER)
    assert decision(statements, read) == "allow"
    other = SECRET.replace("team/mlflow-a1B2c3", "team/other-x9Y8z7")
    assert decision(statements, Request(read.action, other, TRACKER)) == "implicit-deny"
    for action in ("secretsmanager:PutSecretValue", "secretsmanager:ListSecrets"):
        assert decision(statements, Request(action, SECRET, TRACKER)) == "implicit-deny"
    # no IAM reaches a self-hosted server: no sagemaker-mlflow at all
    assert not [a for a in _actions(statements) if a.startswith("sagemaker-mlflow:")]
    assert_no_key_use_beyond_the_apps_own(statements)
    assert _write_resources(statements) == []  # not the app's artifact store
    [function] = [
        f
        for k, f in _of_type(training, "AWS::Lambda::Function").items()
        if k.startswith("RunTracker")
    ]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["TRACKING_SERVER"] == SELF_HOSTED_URI
    assert variables["CREDENTIALS_SECRET"] == SECRET
    # the operators' runs policy grants nothing on a server IAM does not guard
    runs = _runs_policy(templates["serving"])
    assert not [a for a in _actions(runs) if a.startswith(("sagemaker-mlflow:", "secretsmanager:"))]
    # without a secret: no Secrets Manager at all, and no variable naming one
    bare = synthesized(
        "dev", json.dumps({"tracking": {"mlflow": "external", "server_uri": SELF_HOSTED_URI}})
    )
    bare_statements = _role_statements(bare["training"], "RunTrackerFunction")
    assert not [a for a in _actions(bare_statements) if a.startswith("secretsmanager:")]


def assert_no_key_use_beyond_the_apps_own(statements: list[dict[str, Any]]) -> None:
    """The tracker uses no KMS key for the secret (a customer managed key's own policy grants
    that, README) and no key but the app's own through S3 and SQS: IAM-evaluated for a key
    of the account, the app's keys through Secrets Manager and any KMS action on them, and
    every statement with a kms: action read (a grant on * or a new key fails one of them)."""
    via = {
        service: {"kms:ViaService": f"{service}.eu-west-1.amazonaws.com"}
        for service in ("secretsmanager", "s3", "sqs")
    }
    someone_elses = "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    own = {
        "<import:mlops-loop-dev-data:ExportsOutputFnGetAttArtifactKeyArn1F989541>": "s3",
        "<import:mlops-loop-dev-data:ExportsOutputFnGetAttOperationsKeyArn54A3D06D>": "sqs",
    }
    for action in ("kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:CreateGrant"):
        for context in (*via.values(), {}):
            request = Request(action, someone_elses, TRACKER, context=context)
            assert decision(statements, request) == "implicit-deny", (action, context)
        for key in own:
            request = Request(action, key, TRACKER, context=via["secretsmanager"])
            assert decision(statements, request) == "implicit-deny", (action, key)
    key_use = [s for s in statements if [a for a in _actions([s]) if a.startswith("kms:")]]
    assert key_use, "the tracker reads its queue and the artifact bucket through their keys"
    for statement in key_use:
        assert statement["Effect"] == "Allow" and statement["Resource"] in own, statement
        assert statement["Condition"] == {"StringEquals": via[own[statement["Resource"]]]}
