"""`mlops status` and `mlops start` (through the trigger Lambdas), `start --wait`."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.stub import ANY

from cli import runs
from tests.cli.conftest import (
    DEV,
    NOW,
    PIPELINE,
    REGION,
    TRAINING_STACK,
    Aws,
    execution_arn,
    package_arn,
    payload,
    register,
    stack,
)
from tests.lambda_loader import load_lambda_module

FUNCTION = "mlops-loop-dev-training-TriggerStartTrainingFunctio-AbC123"
BUCKET = "mlops-loop-dev-data-databucket-1x2y3z"
GATE_FAILURE = "Gate failed: auc of the challenger 0.71 (floor 0.8)"


def _step(name: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"StepName": name, "StepStatus": status, "StartTime": NOW, **extra}


def _steps(aws: Aws, arn: str, *items: dict[str, Any]) -> None:
    aws.stub("sagemaker").add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": list(items)},
        {"PipelineExecutionArn": arn, "SortOrder": "Ascending"},
    )


def _training_stack(aws: Aws, outputs: dict[str, str] | None = None) -> None:
    aws.stub("cloudformation").add_response(
        "describe_stacks",
        stack(
            TRAINING_STACK,
            outputs={"StartTrainingFunctionName": FUNCTION} if outputs is None else outputs,
        ),
        {"StackName": TRAINING_STACK},
    )


def _lambda_answers(aws: Aws, answer: dict[str, Any], expected: Any = ANY, **extra: Any) -> None:
    aws.stub("lambda").add_response(
        "invoke",
        {"StatusCode": 200, "Payload": payload(answer), **extra},
        {"FunctionName": FUNCTION, "InvocationType": "RequestResponse", "Payload": expected},
    )


def _captured_payloads(aws: Aws) -> list[dict[str, Any]]:
    """Record what the CLI sends to the Lambda (Stubber checks shape, this checks content)."""
    sent: list[dict[str, Any]] = []
    client = aws.stub("lambda") and aws.client("lambda")

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(json.loads(params["Payload"]))

    client.meta.events.register("before-parameter-build.lambda.Invoke", record)
    return sent


STARTED = {
    "outcome": "started",
    "reason": "manual",
    "message": "started manual retrain of fraud/2026-11-20",
    "dataset_version": "fraud/2026-11-20",
    "execution_arn": execution_arn("run9"),
    "trigger": "manual",
}


# ---- status ------------------------------------------------------------------------------


def test_status_lists_executions_with_step_states_and_failures(aws: Aws) -> None:
    first, second = execution_arn("aaa111"), execution_arn("bbb222")
    sagemaker = aws.stub("sagemaker")
    sagemaker.add_response(
        "list_pipeline_executions",
        {
            "PipelineExecutionSummaries": [
                {
                    "PipelineExecutionArn": first,
                    "PipelineExecutionStatus": "Executing",
                    "StartTime": NOW,
                    "PipelineExecutionDisplayName": "data-fraud-v2-g1",
                },
                {
                    "PipelineExecutionArn": second,
                    "PipelineExecutionStatus": "Failed",
                    "StartTime": NOW - timedelta(days=1),
                    "PipelineExecutionDisplayName": "data-fraud-v1-g1",
                    "PipelineExecutionFailureReason": "Step failure: One or multiple steps failed.",
                },
            ]
        },
        {
            "PipelineName": PIPELINE,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": 5,
        },
    )
    sagemaker.add_response(
        "list_pipeline_parameters_for_execution",
        {"PipelineParameters": [{"Name": "DatasetVersion", "Value": "fraud/v2"}]},
        {"PipelineExecutionArn": first},
    )
    _steps(
        aws,
        first,
        _step(
            "Prepare",
            "Succeeded",
            CacheHitResult={"SourcePipelineExecutionArn": second},
            Metadata={"ProcessingJob": {"Arn": "arn:aws:sagemaker:x:1:processing-job/p"}},
        ),
        _step("Train", "Executing"),
    )
    sagemaker.add_response(
        "list_pipeline_parameters_for_execution",
        {"PipelineParameters": [{"Name": "DatasetVersion", "Value": "fraud/v1"}]},
        {"PipelineExecutionArn": second},
    )
    _steps(
        aws,
        second,
        _step("Prepare", "Succeeded"),
        _step("Train", "Succeeded"),
        _step("Evaluate", "Succeeded"),
        _step("Gate", "Succeeded"),
        _step(
            "Fail", "Failed", FailureReason="Gate failed: auc of the challenger 0.71 (floor 0.8)"
        ),
    )
    result = aws.run("status")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"pipeline {PIPELINE} ({REGION}), newest first:",
        "2026-11-21 10:00  Executing  aaa111  fraud/v2  data-fraud-v2-g1",
        "    Prepare:Succeeded (cached)  Train:Executing",
        "2026-11-20 10:00  Failed     bbb222  fraud/v1  data-fraud-v1-g1",
        "    Prepare:Succeeded  Train:Succeeded  Evaluate:Succeeded  Gate:Succeeded  Fail:Failed",
        f"    Fail failed: {GATE_FAILURE}",
    ]
    aws.assert_done()


def test_status_without_executions(aws: Aws) -> None:
    aws.stub("sagemaker").add_response(
        "list_pipeline_executions", {"PipelineExecutionSummaries": []}, None
    )
    result = aws.run("status", "--limit", "3")
    assert result.exit_code == 0
    assert "has no executions yet" in result.stdout


def test_status_of_a_pipeline_that_is_not_deployed(aws: Aws) -> None:
    aws.stub("sagemaker").add_client_error(
        "list_pipeline_executions",
        service_error_code="ResourceNotFound",
        service_message=f"Pipeline {PIPELINE} does not exist",
        http_status_code=400,
    )
    result = aws.run("status")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: pipeline {PIPELINE} does not exist in {REGION}: deploy the training stack "
        "(`make deploy ENV=dev`)"
    )


# ---- start --latest ------------------------------------------------------------------------


def test_start_latest_invokes_the_lambda_with_a_retrain_request(aws: Aws) -> None:
    _training_stack(aws)
    sent = _captured_payloads(aws)
    _lambda_answers(aws, STARTED)
    result = aws.run("start", "--latest", "--dataset", "fraud", "--request-id", "ticket-42")
    assert result.exit_code == 0, result.output
    assert sent == [
        {
            "action": "retrain-latest",
            "reason": "manual",
            "request_id": "ticket-42",
            "dataset": "fraud",
        }
    ]
    assert result.stdout.splitlines() == [
        "started: started manual retrain of fraud/2026-11-20",
        f"execution: {execution_arn('run9')}",
    ]
    assert f"asking {FUNCTION} to retrain" in result.stderr
    aws.assert_done()


def test_start_latest_gets_a_fresh_request_id_each_time(aws: Aws) -> None:
    _training_stack(aws)
    _training_stack(aws)
    sent = _captured_payloads(aws)
    _lambda_answers(aws, STARTED)
    _lambda_answers(aws, STARTED)
    assert aws.run("start", "--latest").exit_code == 0
    assert aws.run("start", "--latest").exit_code == 0
    ids = [message["request_id"] for message in sent]
    assert len(set(ids)) == 2 and all(i.startswith("cli-") for i in ids)


def test_start_reports_a_duplicate_without_error(aws: Aws) -> None:
    _training_stack(aws)
    _lambda_answers(
        aws,
        {
            "outcome": "duplicate",
            "reason": "retrain-already-started",
            "message": "retrain request 'ticket-42' already started an execution",
            "execution_arn": execution_arn("run9"),
        },
    )
    result = aws.run("start", "--latest", "--request-id", "ticket-42")
    assert result.exit_code == 0
    assert result.stdout.startswith("already started, nothing new: retrain request 'ticket-42'")


def test_start_when_nothing_can_start_is_an_error(aws: Aws) -> None:
    _training_stack(aws)
    _lambda_answers(
        aws,
        {
            "outcome": "skipped",
            "reason": "no-complete-version",
            "message": "retrain requested but no dataset version has been started yet",
        },
    )
    result = aws.run("start", "--latest")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(
        "Error: nothing started (skipped: no-complete-version): retrain requested but no "
        "dataset version has been started yet"
    )


def test_start_reports_a_lambda_crash(aws: Aws) -> None:
    _training_stack(aws)
    _lambda_answers(
        aws,
        {"errorType": "ConfigError", "errorMessage": "PIPELINE_NAME is required"},
        FunctionError="Unhandled",
    )
    result = aws.run("start", "--latest")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(
        f"Error: the trigger Lambda {FUNCTION} failed: ConfigError: PIPELINE_NAME is required"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give either a dataset version (DATASET/VERSION) or --latest"),
        (["fraud/v1", "--latest"], "give either a dataset version (DATASET/VERSION) or --latest"),
        (["fraud/v1", "--dataset", "x"], "--dataset goes with --latest only"),
        (["fraud/v1", "--rerun", "--dataset", "x"], "--dataset goes with --latest only"),
        (["fraud/v1", "--request-id", "x"], "--request-id goes with --latest or --rerun"),
        (
            ["--latest", "--rerun"],
            "--rerun re-runs one dataset version: give DATASET/VERSION, not --latest",
        ),
        (
            ["fraud/v1", "--rerun", "--request-id", ""],
            "--request-id must be 1-256 characters, got 0",
        ),
        (
            ["fraud/v1", "--rerun", "--request-id", "r" * 257],
            "--request-id must be 1-256 characters, got 257",
        ),
        (["fraud", "--rerun"], "'fraud' is not a dataset version: use DATASET/VERSION"),
        (
            ["--latest", "--model-package", "3"],
            "--model-package goes with --pipeline evaluation (training scores none)",
        ),
        (
            ["fraud/v1", "--pipeline", "evaluation", "--model-package", "3"],
            "--model-package goes with --latest or --rerun: a version's marker scores the "
            "production model",
        ),
    ],
)
def test_start_needs_exactly_one_target(aws: Aws, args: list[str], message: str) -> None:
    result = aws.run("start", *args)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {message}"
    aws.assert_done()  # refused before any AWS call


# ---- the evaluation pipeline ------------------------------------------------------------------

EVALUATION_FUNCTION = "mlops-loop-dev-training-EvaluationTriggerStartTra-XyZ789"
EVALUATION_PIPELINE = DEV.evaluation_pipeline_name


def test_status_of_the_evaluation_pipeline(aws: Aws) -> None:
    arn = execution_arn("eval1", EVALUATION_PIPELINE)
    sagemaker = aws.stub("sagemaker")
    sagemaker.add_response(
        "list_pipeline_executions",
        {
            "PipelineExecutionSummaries": [
                {"PipelineExecutionArn": arn, "PipelineExecutionStatus": "Succeeded"}
            ]
        },
        {
            "PipelineName": EVALUATION_PIPELINE,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": 2,
        },
    )
    sagemaker.add_response(
        "list_pipeline_parameters_for_execution",
        {"PipelineParameters": [{"Name": "DatasetVersion", "Value": "fraud/labels-1"}]},
        {"PipelineExecutionArn": arn},
    )
    _steps(aws, arn, _step("Validate", "Succeeded"), _step("Evaluate", "Succeeded"))
    result = aws.run("status", "--pipeline", "evaluation", "--limit", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"pipeline {EVALUATION_PIPELINE} ({REGION}), newest first:"
    assert "Succeeded  eval1  fraud/labels-1" in lines[1]
    assert lines[2] == "    Validate:Succeeded  Evaluate:Succeeded"
    aws.assert_done()


def test_start_evaluation_of_a_named_package_on_the_newest_labels(aws: Aws) -> None:
    arn = register(aws)  # moto: version 1 of the environment's group
    aws.stub("cloudformation").add_response(
        "describe_stacks",
        stack(TRAINING_STACK, outputs={"EvaluationTriggerFunctionName": EVALUATION_FUNCTION}),
        {"StackName": TRAINING_STACK},
    )
    sent = _captured_payloads(aws)
    aws.stub("lambda").add_response(
        "invoke",
        {"StatusCode": 200, "Payload": payload({**STARTED, "execution_arn": execution_arn("e2")})},
        {"FunctionName": EVALUATION_FUNCTION, "InvocationType": "RequestResponse", "Payload": ANY},
    )
    result = aws.run(
        "start", "-p", "evaluation", "--latest", "--model-package", "1", "--request-id", "t-1"
    )
    assert result.exit_code == 0, result.output
    assert sent == [
        {
            "action": "retrain-latest",
            "reason": "manual",
            "request_id": "t-1",
            "model_package_arn": arn,
        }
    ]
    assert (
        f"asking {EVALUATION_FUNCTION} to evaluate on the newest labelled dataset version, "
        f"scoring {arn}" in result.stderr
    )
    aws.assert_done()


def test_start_evaluation_of_an_unknown_package_sends_nothing(aws: Aws) -> None:
    register(aws)
    result = aws.run("start", "-p", "evaluation", "fraud/v1", "--rerun", "--model-package", "9")
    assert result.exit_code == 1
    assert "Error: version 9 does not exist in" in result.stderr
    aws.assert_done()


def test_evaluation_requests_are_what_the_lambda_accepts() -> None:
    trigger = load_lambda_module("start_training", "dataset_trigger")
    arn = package_arn(4)
    config = trigger.TriggerConfig(
        pipeline_name=EVALUATION_PIPELINE,
        ledger_table="ledger",
        data_bucket=BUCKET,
        queue_url="q",
        model_package_parameter="ModelPackageArn",
    )
    lambda_side = trigger.DatasetTrigger(config, s3=None, sagemaker=None, sqs=None, table=None)
    for request in (
        runs.retrain_request(None, None, arn),
        runs.rerun_request("fraud/v1", None, arn),
    ):
        assert lambda_side._model_package(request) == {"model_package_arn": arn}
    assert runs.EVALUATION_FUNCTION_OUTPUT == "EvaluationTriggerFunctionName"


def test_start_needs_the_function_output_of_the_training_stack(aws: Aws) -> None:
    _training_stack(aws, outputs={"PipelineName": PIPELINE})
    result = aws.run("start", "--latest")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: stack {TRAINING_STACK} has no output 'StartTrainingFunctionName': it predates "
        "this CLI, deploy it again with `make deploy ENV=dev`"
    )


def test_start_without_the_training_stack(aws: Aws) -> None:
    aws.missing_stack(TRAINING_STACK)
    result = aws.run("start", "--latest")
    assert result.exit_code == 1
    assert f"stack {TRAINING_STACK} is not deployed" in result.stderr


# ---- start DATASET/VERSION -----------------------------------------------------------------


def _bucket(aws: Aws, *keys: str) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"" if key.endswith("_SUCCESS") else b"a,b\n")


def _function_config(aws: Aws, **variables: str) -> None:
    aws.stub("lambda").add_response(
        "get_function_configuration",
        {"Environment": {"Variables": {"DATA_BUCKET": BUCKET, **variables}}},
        {"FunctionName": FUNCTION},
    )


def test_start_version_replays_its_marker_as_the_lambda_expects(aws: Aws) -> None:
    version = "fraud/2026 11 21+00:00"  # EventBridge sends the key as it is: no encoding
    _bucket(aws, f"landing/{version}/part-0.csv", f"landing/{version}/_SUCCESS")
    _training_stack(aws)
    _function_config(aws, LANDING_PREFIX="landing/")
    sent = _captured_payloads(aws)
    _lambda_answers(aws, {**STARTED, "message": f"started pipeline execution for {version}"})
    result = aws.run("start", version)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"started: started pipeline execution for {version}")
    # The start-training Lambda's own parser accepts it as the marker of that version.
    trigger = load_lambda_module("start_training", "dataset_trigger")
    config = trigger.TriggerConfig(
        pipeline_name=PIPELINE, ledger_table="ledger", data_bucket=BUCKET, queue_url="q"
    )
    event = trigger.parse_object_event(sent[0], config)
    ref, relative = trigger.locate_version(event, config)
    assert (ref.dataset_version, relative) == (version, "_SUCCESS")
    head = aws.client("s3").head_object(Bucket=BUCKET, Key=f"landing/{version}/_SUCCESS")
    assert (event.version_id, event.size) == (head["VersionId"], 0)
    aws.assert_done()


def test_start_version_uses_the_manifest_marker_too(aws: Aws) -> None:
    _bucket(aws, "landing/fraud/v7/part-0.csv", "landing/fraud/v7/manifest.json")
    _training_stack(aws)
    _function_config(aws)
    sent = _captured_payloads(aws)
    _lambda_answers(aws, STARTED)
    assert aws.run("start", "fraud/v7").exit_code == 0
    assert sent[0]["detail"]["object"]["key"] == "landing/fraud/v7/manifest.json"


def test_start_version_that_already_ran_names_its_execution_and_suggests_rerun(
    aws: Aws,
) -> None:
    _bucket(aws, "landing/fraud/v1/part-0.csv", "landing/fraud/v1/_SUCCESS")
    _training_stack(aws)
    _function_config(aws)
    _lambda_answers(
        aws,
        {
            "outcome": "duplicate",
            "reason": "same-content",
            "message": "version already started with identical content; started nothing",
            "execution_arn": execution_arn("old1"),
        },
    )
    result = aws.run("start", "fraud/v1")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "fraud/v1 already ran as old1; use --rerun to run it again",
        f"execution: {execution_arn('old1')}",
    ]


def test_start_incomplete_version_sends_nothing(aws: Aws) -> None:
    _bucket(aws, "landing/fraud/v2/part-0.csv")
    _training_stack(aws)
    _function_config(aws)
    result = aws.run("start", "fraud/v2")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(
        f"Error: dataset version fraud/v2 is not complete: no _SUCCESS or manifest.json under "
        f"s3://{BUCKET}/landing/fraud/v2/ (upload the marker last; it starts the run)"
    )
    aws.assert_done()  # no Invoke was queued, none was sent


def test_start_unknown_version_is_a_clear_error(aws: Aws) -> None:
    _bucket(aws)
    _training_stack(aws)
    _function_config(aws)
    result = aws.run("start", "fraud/v404")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(
        f"Error: dataset version fraud/v404 has no objects under s3://{BUCKET}/landing/fraud/v404/"
    )


def test_start_version_in_quiet_period_mode_asks_for_a_quiet_check(aws: Aws) -> None:
    _bucket(aws, "landing/fraud/v3/part-0.csv")
    _training_stack(aws)
    _function_config(aws, COMPLETION_MODE="quiet-period")
    sent = _captured_payloads(aws)
    _lambda_answers(
        aws,
        {"outcome": "pending", "reason": "quiet-period-running", "message": "checking again"},
    )
    result = aws.run("start", "fraud/v3")
    assert result.exit_code == 0
    assert sent == [
        {"action": "quiet-check", "bucket": BUCKET, "dataset": "fraud", "version": "v3"}
    ]
    assert result.stdout.strip() == "pending: checking again"


@pytest.mark.parametrize("version", ["fraud", "fraud/v1/extra", "../v1", "/"])
def test_start_refuses_what_is_not_a_dataset_version(aws: Aws, version: str) -> None:
    aws.stub("cloudformation")  # any DescribeStacks would fail: nothing is queued
    result = aws.run("start", version)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: {version!r} is not a dataset version: use DATASET/VERSION"
    )


# ---- start DATASET/VERSION --rerun ---------------------------------------------------------

RERUN_STARTED = {
    "outcome": "started",
    "reason": "manual-version",
    "message": "started manual-version retrain of fraud/v1",
    "dataset_version": "fraud/v1",
    "execution_arn": execution_arn("run9"),
    "trigger": "manual-version",
    "request_id": "ticket-7",
    "rerun_of": execution_arn("old1"),
}


def test_start_rerun_sends_a_retrain_version_request_and_nothing_else(aws: Aws) -> None:
    _training_stack(aws)
    sent = _captured_payloads(aws)
    _lambda_answers(aws, RERUN_STARTED)
    result = aws.run("start", " fraud/v1/ ", "--rerun", "--request-id", "ticket-7")
    assert result.exit_code == 0, result.output
    assert sent == [
        {
            "action": "retrain-version",
            "dataset_version": "fraud/v1",
            "reason": "manual",
            "request_id": "ticket-7",
        }
    ]
    assert result.stdout.splitlines() == [
        "started: started manual-version retrain of fraud/v1",
        f"execution: {execution_arn('run9')}",
    ]
    assert "to re-run dataset version fraud/v1 (request id ticket-7;" in result.stderr
    assert f"re-run of {execution_arn('old1')}" in result.stderr
    aws.assert_done()  # no GetFunctionConfiguration, no S3: the ledger has the version


def test_start_rerun_gets_a_fresh_request_id_each_time_and_shows_it(aws: Aws) -> None:
    _training_stack(aws)
    _training_stack(aws)
    sent = _captured_payloads(aws)
    _lambda_answers(aws, RERUN_STARTED)
    _lambda_answers(aws, RERUN_STARTED)
    results = [aws.run("start", "fraud/v1", "--rerun") for _ in range(2)]
    ids = [message["request_id"] for message in sent]
    assert len(set(ids)) == 2 and all(i.startswith("cli-") for i in ids)
    for result, request_id in zip(results, ids, strict=True):
        assert result.exit_code == 0
        assert f"(request id {request_id};" in result.stderr


def test_start_rerun_repeated_with_the_same_request_id_reports_the_first_run(aws: Aws) -> None:
    _training_stack(aws)
    _lambda_answers(
        aws,
        {
            "outcome": "duplicate",
            "reason": "retrain-already-started",
            "message": "retrain request 'ticket-7' already started an execution",
            "dataset_version": "fraud/v1",
            "execution_arn": execution_arn("run9"),
            "trigger": "manual-version",
        },
    )
    result = aws.run("start", "fraud/v1", "--rerun", "--request-id", "ticket-7")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "already started, nothing new: retrain request 'ticket-7' already started an execution",
        f"execution: {execution_arn('run9')}",
    ]


def test_start_rerun_of_a_version_that_never_ran_is_an_error(aws: Aws) -> None:
    _training_stack(aws)
    _lambda_answers(
        aws,
        {
            "outcome": "rejected",
            "reason": "version-never-ran",
            "message": "dataset version fraud/v9 has never run; land it with a marker first",
        },
    )
    result = aws.run("start", "fraud/v9", "--rerun")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(
        "Error: nothing started (rejected: version-never-ran): dataset version fraud/v9 has "
        "never run; land it with a marker first"
    )


def test_start_rerun_at_the_cap_is_queued(aws: Aws) -> None:
    _training_stack(aws)
    _lambda_answers(
        aws,
        {
            "outcome": "deferred",
            "reason": "concurrency-cap",
            "message": "2 pipeline executions running; MAX_CONCURRENT_EXECUTIONS=2; re-queued "
            "to retry in 300 s",
            "deferrals": 1,
        },
    )
    result = aws.run("start", "fraud/v1", "--rerun", "--wait")
    assert result.exit_code == 0
    assert result.stdout.strip() == (
        "queued: 2 pipeline executions running; MAX_CONCURRENT_EXECUTIONS=2; re-queued to retry "
        "in 300 s"
    )
    assert "nothing to wait for yet" in result.stderr


def test_start_rerun_wait_follows_the_new_run(aws: Aws) -> None:
    _training_stack(aws)
    _lambda_answers(aws, RERUN_STARTED)
    _poll(aws, "Succeeded", _step("Prepare", "Succeeded"))
    result = aws.run("start", "fraud/v1", "--rerun", "--wait", "--poll-seconds", "0")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "execution Succeeded"
    aws.assert_done()


def test_rerun_request_is_what_the_lambda_accepts() -> None:
    trigger = load_lambda_module("start_training", "dataset_trigger")
    payload = runs.rerun_request("fraud/v1", "ticket-7")
    assert trigger._retrain_request_key(payload, payload["action"], "schedule") == (
        "manual",
        "ticket-7",
    )
    config = trigger.TriggerConfig(
        pipeline_name=PIPELINE, ledger_table="ledger", data_bucket=BUCKET, queue_url="q"
    )
    lambda_side = trigger.DatasetTrigger(config, s3=None, sagemaker=None, sqs=None, table=None)
    ref = lambda_side._version_ref(payload["dataset_version"])
    assert ref.pk == "VERSION#fraud/v1"


def test_cli_speaks_the_lambdas_contract() -> None:
    trigger = load_lambda_module("start_training", "dataset_trigger")
    assert runs.ACTION_RETRAIN == trigger.ACTION_RETRAIN
    assert runs.ACTION_RETRAIN_VERSION == trigger.ACTION_RETRAIN_VERSION
    assert runs.ACTION_QUIET_CHECK == trigger.ACTION_QUIET_CHECK
    assert runs.S3_SOURCE == trigger.S3_SOURCE
    assert runs.OBJECT_CREATED == trigger.OBJECT_CREATED
    assert runs.COMPLETION_MODE_QUIET == trigger.COMPLETION_MODE_QUIET
    assert trigger._REQUEST_REASON.match(runs.MANUAL_REASON)
    assert {k.value for k in trigger.Kind} >= {
        runs.STARTED,
        runs.DUPLICATE,
        runs.DEFERRED,
        runs.PENDING,
    }


# ---- start --wait --------------------------------------------------------------------------


def _poll(aws: Aws, status: str, *steps: dict[str, Any], failure: str | None = None) -> None:
    arn = execution_arn("run9")
    described: dict[str, Any] = {"PipelineExecutionArn": arn, "PipelineExecutionStatus": status}
    if failure:
        described["FailureReason"] = failure
    aws.stub("sagemaker").add_response(
        "describe_pipeline_execution", described, {"PipelineExecutionArn": arn}
    )
    _steps(aws, arn, *steps)


def test_start_wait_reports_each_change_and_fails_with_the_run(aws: Aws) -> None:
    _training_stack(aws)
    _lambda_answers(aws, STARTED)
    _poll(aws, "Executing", _step("Prepare", "Executing"))
    _poll(aws, "Executing", _step("Prepare", "Executing"))
    _poll(aws, "Executing", _step("Prepare", "Succeeded"), _step("Train", "Executing"))
    _poll(
        aws,
        "Failed",
        _step("Prepare", "Succeeded"),
        _step("Train", "Failed", FailureReason="AlgorithmError: out of memory"),
        failure="Step failure: One or multiple steps failed.",
    )
    result = aws.run("start", "--latest", "--wait", "--poll-seconds", "0")
    assert result.exit_code == 1
    progress = [line.split("]  ", 1)[1] for line in result.stderr.splitlines() if "]  " in line]
    assert progress == [
        "Prepare Executing",
        "execution Executing",
        "Prepare Succeeded",
        "Train Executing",
        "Train Failed: AlgorithmError: out of memory",
        "execution Failed",
    ]
    assert "failure reason: Step failure: One or multiple steps failed." in result.stderr
    assert result.stdout.splitlines()[-1] == "execution Failed"
    aws.assert_done()


def test_start_wait_succeeds_with_the_run(aws: Aws) -> None:
    _training_stack(aws)
    _lambda_answers(aws, STARTED)
    _poll(aws, "Succeeded", _step("Prepare", "Succeeded"))
    result = aws.run("start", "--latest", "--wait", "--poll-seconds", "0")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "execution Succeeded"


def test_start_wait_gives_up_after_the_timeout(aws: Aws) -> None:
    ops_clock = iter([0.0, 0.0, 0.0, 61.0, 61.0, 61.0])
    reported: list[str] = []
    _poll(aws, "Executing", _step("Prepare", "Executing"))
    from cli.main import build_ops

    ops = build_ops("dev", aws.clients)
    with pytest.raises(runs.CliError) as raised:
        runs.wait(
            ops,
            execution_arn("run9"),
            report=reported.append,
            poll_seconds=0,
            timeout_seconds=60,
            sleep=lambda _: None,
            clock=lambda: next(ops_clock),
        )
    assert "gave up waiting after [  1m00s]" in raised.value.message
    assert "is still Executing" in raised.value.message


def test_a_promotion_target_refuses_to_train_and_names_where_to(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """promote mode: staging receives dev's models; `start` of the training pipeline there
    says so before any AWS call (the stubs hold no response: any call would fail)."""
    import copy

    import cli.main
    from mlops_config import parse_environment, read_cdk_json_context

    context = copy.deepcopy(read_cdk_json_context())
    context["promotion"] = {"mode": "promote"}
    context["environments"]["staging"]["trigger"] = {"retrain_schedule": None}
    staging = parse_environment(context, "staging")
    monkeypatch.setattr(cli.main, "load_config", lambda env: staging)
    result = aws.run("start", "--latest", env="staging")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: staging trains nothing (promotion.mode promote): its models are copies of those "
        "dev approves; train in dev (`mlops --env dev start ...`) or evaluate here with "
        "--pipeline evaluation"
    )


# ---- the scoring pipeline (batch serving) -------------------------------------------------------


def test_the_scoring_pipeline_is_the_batch_environments_own() -> None:
    from cli.aws import CliError, Ops
    from tests.conftest import BATCH, variant_config

    batch = Ops(config=variant_config("dev", BATCH), clients=lambda service: None)
    assert runs.Pipeline.SCORING.name_in(batch) == "mlops-loop-dev-scoring"
    assert runs.Pipeline.SCORING.function_output == "ScoringTriggerFunctionName"
    realtime = Ops(config=DEV, clients=lambda service: None)
    with pytest.raises(CliError, match="only serving.mode = batch has a scoring pipeline"):
        runs.Pipeline.SCORING.name_in(realtime)
    # an execution id is looked up in the environment's own pipelines only
    assert runs.Pipeline.of(realtime) == [runs.Pipeline.TRAINING, runs.Pipeline.EVALUATION]
    assert runs.Pipeline.SCORING in runs.Pipeline.of(batch)


def test_status_of_a_scoring_pipeline_in_a_realtime_environment_says_why_not(aws: Aws) -> None:
    result = aws.run("status", "--pipeline", "scoring")
    assert result.exit_code != 0
    assert "environment dev serves in realtime mode" in result.output


def test_start_latest_scoring_asks_the_scoring_trigger_to_score(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch serving: `start --pipeline scoring --latest` goes to the scoring trigger and says
    it scores (it said "evaluate" before)."""
    import cli.main
    from tests.conftest import BATCH, variant_config

    monkeypatch.setattr(cli.main, "load_config", lambda env: variant_config("dev", BATCH))
    scoring = "mlops-loop-dev-ScoringTrigger"
    _training_stack(aws, {"ScoringTriggerFunctionName": scoring})
    sent = _captured_payloads(aws)
    aws.stub("lambda").add_response(
        "invoke",
        {"StatusCode": 200, "Payload": payload(STARTED)},
        {"FunctionName": scoring, "InvocationType": "RequestResponse", "Payload": ANY},
    )
    result = aws.run("start", "-p", "scoring", "--latest", "--request-id", "s-1")
    assert result.exit_code == 0, result.output
    assert sent == [{"action": "retrain-latest", "reason": "manual", "request_id": "s-1"}]
    assert f"asking {scoring} to score the newest scoring dataset version" in result.stderr
    aws.assert_done()
