"""Job tagger: SageMaker job state-change event -> ListTags -> pipeline parameters -> AddTags.

Every SageMaker call goes through botocore's Stubber, which validates requests and responses
against the real service model and checks each call's parameters; an activated Stubber with
nothing queued fails on any further call, which is how "nothing else was called" is proven.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from tests.lambda_loader import emf_documents, handler_with, lambda_context, load_lambda_module

pytestmark = pytest.mark.usefixtures("aws_credentials")

tagger = load_lambda_module("tag_jobs", "job_tagger")

REGION = "eu-west-1"
ACCOUNT = "123456789012"
TRAINING_NAME = "pipelines-a1b2c3d4e5f6-Train-xYz123AbC"
PROCESSING_NAME = "pipelines-a1b2c3d4e5f6-Prepare-AbC987xYz"
TRAINING_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{TRAINING_NAME.lower()}"
PROCESSING_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{PROCESSING_NAME.lower()}"
EXECUTION_ID = "a1b2c3d4e5f6"
PIPELINE = "mlops-dev-training"
EXECUTION_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}/execution/{EXECUTION_ID}"
DATASET_VERSION = "2025-11-20T09-30-00Z"

VALID_ENV = {"PIPELINE_NAMES": "mlops-dev-training, mlops-dev-evaluation"}
CONFIG = tagger.TaggerConfig.from_env(VALID_ENV)
STATIC_TAGS = [
    {"Key": "project", "Value": "mlops-loop"},
    {"Key": "environment", "Value": "dev"},
    {"Key": "pipeline", "Value": PIPELINE},
    {"Key": "sagemaker:pipeline-step-name", "Value": "Train"},
]


@pytest.fixture()
def sagemaker() -> Iterator[Any]:
    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client) as stubber:
        client.stubber = stubber  # type: ignore[attr-defined]
        yield client
        stubber.assert_no_pending_responses()


def training_event(**detail: Any) -> dict[str, Any]:
    """Shaped like the example in the SageMaker developer guide (most detail fields left out)."""
    return {
        "version": "0",
        "id": "844e2571-85d4-695f-b930-0153b71dcb42",
        "detail-type": "SageMaker Training Job State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2025-11-20T09:31:13Z",
        "region": REGION,
        "resources": [TRAINING_ARN],
        "detail": {
            "TrainingJobName": TRAINING_NAME,
            "TrainingJobArn": TRAINING_ARN,
            "TrainingJobStatus": "InProgress",
            "SecondaryStatus": "Starting",
            **detail,
        },
    }


def processing_event(**detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "0a15f67d-aa23-0123-0123-01a23e89f01a",
        "detail-type": "SageMaker Processing Job State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2025-11-20T09:30:54Z",
        "region": REGION,
        "resources": [PROCESSING_ARN],
        "detail": {
            "ProcessingJobName": PROCESSING_NAME,
            "ProcessingJobArn": PROCESSING_ARN,
            "ProcessingJobStatus": "Completed",
            **detail,
        },
    }


def tags(
    *extra: tuple[str, str], execution_arn: str | None = EXECUTION_ARN
) -> list[dict[str, str]]:
    result = list(STATIC_TAGS)
    if execution_arn is not None:
        result.append({"Key": "sagemaker:pipeline-execution-arn", "Value": execution_arn})
    return result + [{"Key": key, "Value": value} for key, value in extra]


def expect_tags(client: Any, arn: str, tag_list: list[dict[str, str]]) -> None:
    client.stubber.add_response("list_tags", {"Tags": tag_list}, {"ResourceArn": arn})


def expect_parameters(
    client: Any, parameters: dict[str, str] | None = None, execution_arn: str = EXECUTION_ARN
) -> None:
    if parameters is None:
        parameters = {"DatasetVersion": DATASET_VERSION, "InstanceType": "ml.m5.large"}
    client.stubber.add_response(
        "list_pipeline_parameters_for_execution",
        {"PipelineParameters": [{"Name": k, "Value": v} for k, v in parameters.items()]},
        {"PipelineExecutionArn": execution_arn},
    )


def expect_add_tags(client: Any, arn: str, added: dict[str, str]) -> None:
    tag_list = [{"Key": key, "Value": value} for key, value in added.items()]
    client.stubber.add_response(
        "add_tags", {"Tags": tag_list}, {"ResourceArn": arn, "Tags": tag_list}
    )


def run(client: Any, event: Any, config: Any = CONFIG) -> Any:
    return tagger.tag_job(client, config, tagger.parse_event(event))


# --- tagging -----------------------------------------------------------------------------------


def test_training_job_gets_execution_id_and_dataset_version(sagemaker: Any) -> None:
    expect_tags(sagemaker, TRAINING_ARN, tags())
    expect_parameters(sagemaker)
    wanted = {"execution-id": EXECUTION_ID, "dataset-version": DATASET_VERSION}
    expect_add_tags(sagemaker, TRAINING_ARN, wanted)

    outcome = run(sagemaker, training_event())

    assert outcome.as_dict() == {
        "status": "tagged",
        "reason": None,
        "message": (
            f"tagged training job {TRAINING_ARN} with execution-id={EXECUTION_ID}, "
            f"dataset-version={DATASET_VERSION}"
        ),
        "job_arn": TRAINING_ARN,
        "tags_added": wanted,
    }
    assert outcome.metric == "TagsAdded"


def test_processing_job_is_tagged_too(sagemaker: Any) -> None:
    expect_tags(sagemaker, PROCESSING_ARN, tags())
    expect_parameters(sagemaker)
    wanted = {"execution-id": EXECUTION_ID, "dataset-version": DATASET_VERSION}
    expect_add_tags(sagemaker, PROCESSING_ARN, wanted)

    outcome = run(sagemaker, processing_event())

    assert (outcome.status, outcome.job_arn, outcome.tags_added) == (
        "tagged",
        PROCESSING_ARN,
        wanted,
    )
    assert outcome.message.startswith("tagged processing job")


def test_custom_tag_keys_are_used(sagemaker: Any) -> None:
    config = tagger.TaggerConfig.from_env(
        {**VALID_ENV, "DATASET_VERSION_TAG": "cost:dataset", "EXECUTION_ID_TAG": "cost:run"}
    )
    expect_tags(sagemaker, TRAINING_ARN, tags())
    expect_parameters(sagemaker)
    expect_add_tags(
        sagemaker, TRAINING_ARN, {"cost:run": EXECUTION_ID, "cost:dataset": DATASET_VERSION}
    )

    assert run(sagemaker, training_event(), config).status == "tagged"


def test_already_tagged_job_is_left_alone(sagemaker: Any) -> None:
    expect_tags(
        sagemaker,
        TRAINING_ARN,
        tags(("dataset-version", DATASET_VERSION), ("execution-id", EXECUTION_ID)),
    )
    expect_parameters(sagemaker)
    # No add_tags queued: the Stubber fails if it is called.

    outcome = run(sagemaker, training_event(TrainingJobStatus="Completed"))

    assert (outcome.status, outcome.reason, outcome.tags_added) == (
        "skipped",
        "already-tagged",
        {},
    )
    assert outcome.metric == "AlreadyTagged"


def test_partially_tagged_job_gets_only_the_missing_tag(sagemaker: Any) -> None:
    expect_tags(sagemaker, TRAINING_ARN, tags(("execution-id", EXECUTION_ID)))
    expect_parameters(sagemaker)
    expect_add_tags(sagemaker, TRAINING_ARN, {"dataset-version": DATASET_VERSION})

    outcome = run(sagemaker, training_event())

    assert outcome.tags_added == {"dataset-version": DATASET_VERSION}


def test_a_tag_with_a_different_value_is_overwritten(sagemaker: Any) -> None:
    expect_tags(
        sagemaker,
        TRAINING_ARN,
        tags(("execution-id", EXECUTION_ID), ("dataset-version", "manual-guess")),
    )
    expect_parameters(sagemaker)
    expect_add_tags(sagemaker, TRAINING_ARN, {"dataset-version": DATASET_VERSION})

    assert run(sagemaker, training_event()).status == "tagged"


@pytest.mark.parametrize(
    "parameters",
    [{"InstanceType": "ml.m5.large"}, {"DatasetVersion": ""}, {"DatasetVersion": "   "}, {}],
    ids=["missing", "empty", "blank", "no-parameters"],
)
def test_without_dataset_version_only_the_execution_id_is_tagged(
    sagemaker: Any, parameters: dict[str, str]
) -> None:
    expect_tags(sagemaker, TRAINING_ARN, tags())
    expect_parameters(sagemaker, parameters)
    expect_add_tags(sagemaker, TRAINING_ARN, {"execution-id": EXECUTION_ID})

    outcome = run(sagemaker, training_event())

    assert outcome.tags_added == {"execution-id": EXECUTION_ID}
    assert "has no DatasetVersion value" in outcome.message


def test_without_dataset_version_a_tagged_execution_id_is_enough(sagemaker: Any) -> None:
    expect_tags(sagemaker, TRAINING_ARN, tags(("execution-id", EXECUTION_ID)))
    expect_parameters(sagemaker, {})

    assert run(sagemaker, training_event()).reason == "already-tagged"


@pytest.mark.parametrize(
    ("version", "tagged"),
    [
        ("v1.2#rc1", "v1.2_rc1"),
        ("s3://bucket/data?version=3&x=1", "s3://bucket/data_version=3_x=1"),
        ("données 2025/11 – ü", "données 2025/11 _ ü"),
        ("x" * 300, "x" * 256),
        ("#" * 300, "_" * 256),
    ],
    ids=["hash", "query-string", "unicode", "too-long", "all-bad-too-long"],
)
def test_dataset_version_is_sanitised(sagemaker: Any, version: str, tagged: str) -> None:
    expect_tags(sagemaker, TRAINING_ARN, tags())
    expect_parameters(sagemaker, {"DatasetVersion": version})
    expect_add_tags(
        sagemaker, TRAINING_ARN, {"execution-id": EXECUTION_ID, "dataset-version": tagged}
    )

    outcome = run(sagemaker, training_event())

    assert outcome.tags_added["dataset-version"] == tagged


def test_a_sanitised_value_already_on_the_job_counts_as_tagged(sagemaker: Any) -> None:
    expect_tags(
        sagemaker,
        TRAINING_ARN,
        tags(("execution-id", EXECUTION_ID), ("dataset-version", "v1.2_rc1")),
    )
    expect_parameters(sagemaker, {"DatasetVersion": "v1.2#rc1"})

    assert run(sagemaker, training_event()).reason == "already-tagged"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ""),
        ("plain-Value_1.0:a/b=c+d@e", "plain-Value_1.0:a/b=c+d@e"),
        ("tab\there\nnewline", "tab_here_newline"),
        ("emoji 🚀 and ½ Ⅻ", "emoji _ and ½ Ⅻ"),
        ("a" * 255 + "\U0001d400", "a" * 255),  # an astral letter is two UTF-16 units
        ("\U0001d400" * 200, "\U0001d400" * 128),
    ],
)
def test_sanitize_tag_value(value: str, expected: str) -> None:
    assert tagger.sanitize_tag_value(value) == expected


# --- skips -------------------------------------------------------------------------------------


def test_job_without_pipeline_execution_tag_is_skipped(sagemaker: Any) -> None:
    expect_tags(sagemaker, TRAINING_ARN, tags(execution_arn=None))

    outcome = run(sagemaker, training_event())

    assert (outcome.status, outcome.reason, outcome.metric) == (
        "skipped",
        "not-a-pipeline-job",
        "Skipped",
    )


TUNING_JOB = "pipelines-x1y2z3w4v5u6"
TUNING_JOB_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job/{TUNING_JOB}"
TRIAL_NAME = f"{TUNING_JOB}-001-3b2f1a9c"
TRIAL_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{TRIAL_NAME}"
FOLLOWING = tagger.TaggerConfig.from_env({**VALID_ENV, "FOLLOW_TUNING_JOBS": "true"})


def expect_described(client: Any, name: str, tuning_job_arn: str | None) -> None:
    """DescribeTrainingJob's response with its required members (botocore's model)."""
    response: dict[str, Any] = {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}",
        "ModelArtifacts": {"S3ModelArtifacts": ""},
        "TrainingJobStatus": "InProgress",
        "SecondaryStatus": "Starting",
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": "2025-11-20T09:31:00Z",
    }
    if tuning_job_arn is not None:
        response["TuningJobArn"] = tuning_job_arn
    client.stubber.add_response("describe_training_job", response, {"TrainingJobName": name})


def trial_event() -> dict[str, Any]:
    event = training_event(TrainingJobName=TRIAL_NAME, TrainingJobArn=TRIAL_ARN)
    event["resources"] = [TRIAL_ARN]
    return event


def test_a_tuning_trial_takes_its_tuning_jobs_execution(sagemaker: Any) -> None:
    expect_tags(sagemaker, TRIAL_ARN, tags(execution_arn=None))
    expect_described(sagemaker, TRIAL_NAME, TUNING_JOB_ARN)
    expect_tags(sagemaker, TUNING_JOB_ARN, tags())
    expect_parameters(sagemaker)
    wanted = {"execution-id": EXECUTION_ID, "dataset-version": DATASET_VERSION}
    expect_add_tags(sagemaker, TRIAL_ARN, wanted)

    outcome = run(sagemaker, trial_event(), FOLLOWING)

    assert (outcome.status, outcome.job_arn, outcome.tags_added) == ("tagged", TRIAL_ARN, wanted)


def test_a_training_job_of_no_tuning_job_is_still_skipped(sagemaker: Any) -> None:
    expect_tags(sagemaker, TRAINING_ARN, tags(execution_arn=None))
    expect_described(sagemaker, TRAINING_NAME.lower(), None)

    outcome = run(sagemaker, training_event(), FOLLOWING)

    assert (outcome.status, outcome.reason) == ("skipped", "not-a-pipeline-job")


def test_a_tuning_job_no_pipeline_named_is_not_read(sagemaker: Any) -> None:
    # least privilege: the tagger may read pipelines-* tuning jobs only; nothing else is called
    expect_tags(sagemaker, TRIAL_ARN, tags(execution_arn=None))
    expect_described(sagemaker, TRIAL_NAME, TUNING_JOB_ARN.replace("pipelines-", "by-hand-"))

    outcome = run(sagemaker, trial_event(), FOLLOWING)

    assert (outcome.status, outcome.reason) == ("skipped", "not-a-pipeline-job")


def test_a_trial_whose_tuning_job_is_gone_is_skipped(sagemaker: Any) -> None:
    expect_tags(sagemaker, TRIAL_ARN, tags(execution_arn=None))
    expect_described(sagemaker, TRIAL_NAME, TUNING_JOB_ARN)
    sagemaker.stubber.add_client_error(
        "list_tags",
        service_error_code="ValidationException",
        service_message="Could not find hyper-parameter-tuning-job",
        expected_params={"ResourceArn": TUNING_JOB_ARN},
    )

    outcome = run(sagemaker, trial_event(), FOLLOWING)

    assert (outcome.status, outcome.reason) == ("skipped", "not-a-pipeline-job")


def test_throttled_describe_propagates_for_the_rule_to_retry(sagemaker: Any) -> None:
    expect_tags(sagemaker, TRIAL_ARN, tags(execution_arn=None))
    sagemaker.stubber.add_client_error(
        "describe_training_job",
        service_error_code="ThrottlingException",
        expected_params={"TrainingJobName": TRIAL_NAME},
    )

    with pytest.raises(ClientError):
        run(sagemaker, trial_event(), FOLLOWING)


def test_tuning_jobs_are_followed_only_when_configured() -> None:
    assert CONFIG.follow_tuning_jobs is False
    assert FOLLOWING.follow_tuning_jobs is True


def test_job_with_an_unreadable_execution_tag_is_skipped(sagemaker: Any) -> None:
    expect_tags(sagemaker, TRAINING_ARN, tags(execution_arn="not-an-arn"))

    outcome = run(sagemaker, training_event())

    assert (outcome.status, outcome.reason) == ("skipped", "not-a-pipeline-job")
    assert "not a pipeline execution ARN" in outcome.message


def test_job_of_another_pipeline_is_skipped(sagemaker: Any) -> None:
    other = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/mlops-prod-training/execution/x1"
    expect_tags(sagemaker, TRAINING_ARN, tags(execution_arn=other))

    outcome = run(sagemaker, training_event())

    assert (outcome.status, outcome.reason) == ("skipped", "other-pipeline")
    assert "mlops-prod-training" in outcome.message


def test_pipeline_names_compare_case_insensitively(sagemaker: Any) -> None:
    config = tagger.TaggerConfig.from_env({"PIPELINE_NAMES": "MLOps-Dev-Training"})
    execution = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/mlops-dev-training/execution/e9"
    expect_tags(sagemaker, TRAINING_ARN, tags(execution_arn=execution))
    expect_parameters(sagemaker, execution_arn=execution)
    expect_add_tags(
        sagemaker, TRAINING_ARN, {"execution-id": "e9", "dataset-version": DATASET_VERSION}
    )

    assert run(sagemaker, training_event(), config).status == "tagged"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ValidationException", f"Could not find training job {TRAINING_ARN}"),
        ("ResourceNotFound", "Resource not found"),
    ],
)
def test_job_that_no_longer_exists_is_skipped(sagemaker: Any, code: str, message: str) -> None:
    sagemaker.stubber.add_client_error(
        "list_tags",
        service_error_code=code,
        service_message=message,
        http_status_code=400,
        expected_params={"ResourceArn": TRAINING_ARN},
    )

    outcome = run(sagemaker, training_event(TrainingJobStatus="Stopped"))

    assert (outcome.status, outcome.reason, outcome.metric) == ("skipped", "job-gone", "Skipped")
    assert message in outcome.message


# --- pagination --------------------------------------------------------------------------------


def test_tags_and_parameters_are_read_from_every_page(sagemaker: Any) -> None:
    stub = sagemaker.stubber
    stub.add_response(
        "list_tags", {"Tags": STATIC_TAGS, "NextToken": "t2"}, {"ResourceArn": TRAINING_ARN}
    )
    stub.add_response(
        "list_tags",
        {
            "Tags": [
                {"Key": "sagemaker:pipeline-execution-arn", "Value": EXECUTION_ARN},
                {"Key": "execution-id", "Value": EXECUTION_ID},
            ]
        },
        {"ResourceArn": TRAINING_ARN, "NextToken": "t2"},
    )
    stub.add_response(
        "list_pipeline_parameters_for_execution",
        {"PipelineParameters": [{"Name": "InstanceType", "Value": "x"}], "NextToken": "p2"},
        {"PipelineExecutionArn": EXECUTION_ARN},
    )
    stub.add_response(
        "list_pipeline_parameters_for_execution",
        {"PipelineParameters": [{"Name": "DatasetVersion", "Value": DATASET_VERSION}]},
        {"PipelineExecutionArn": EXECUTION_ARN, "NextToken": "p2"},
    )
    expect_add_tags(sagemaker, TRAINING_ARN, {"dataset-version": DATASET_VERSION})

    outcome = run(sagemaker, training_event())

    # The execution tag was on page 2 and execution-id was already there: only one tag added.
    assert outcome.tags_added == {"dataset-version": DATASET_VERSION}


def test_a_repeated_page_token_ends_the_listing(sagemaker: Any) -> None:
    stub = sagemaker.stubber
    stub.add_response(
        "list_tags", {"Tags": tags(), "NextToken": "same"}, {"ResourceArn": TRAINING_ARN}
    )
    stub.add_response(
        "list_tags",
        {"Tags": [], "NextToken": "same"},
        {"ResourceArn": TRAINING_ARN, "NextToken": "same"},
    )

    assert tagger.current_tags(sagemaker, TRAINING_ARN)["pipeline"] == PIPELINE


# --- AWS failures ------------------------------------------------------------------------------


def test_throttling_propagates_for_the_rule_to_retry(sagemaker: Any) -> None:
    sagemaker.stubber.add_client_error(
        "list_tags",
        service_error_code="ThrottlingException",
        service_message="Rate exceeded",
        http_status_code=400,
        expected_params={"ResourceArn": TRAINING_ARN},
    )

    with pytest.raises(ClientError, match="ThrottlingException"):
        run(sagemaker, training_event())


def test_add_tags_failure_propagates(sagemaker: Any) -> None:
    expect_tags(sagemaker, TRAINING_ARN, tags())
    expect_parameters(sagemaker)
    sagemaker.stubber.add_client_error(
        "add_tags",
        service_error_code="ThrottlingException",
        service_message="Rate exceeded",
        http_status_code=400,
    )

    with pytest.raises(ClientError, match="ThrottlingException"):
        run(sagemaker, training_event())


def test_missing_execution_propagates(sagemaker: Any) -> None:
    expect_tags(sagemaker, TRAINING_ARN, tags())
    sagemaker.stubber.add_client_error(
        "list_pipeline_parameters_for_execution",
        service_error_code="ResourceNotFound",
        service_message="Pipeline execution not found",
        http_status_code=400,
        expected_params={"PipelineExecutionArn": EXECUTION_ARN},
    )

    with pytest.raises(ClientError, match="ResourceNotFound"):
        run(sagemaker, training_event())


# --- events ------------------------------------------------------------------------------------


def test_arn_is_built_from_the_name_when_missing() -> None:
    event = training_event()
    del event["detail"]["TrainingJobArn"]
    event["resources"] = []

    job = tagger.parse_event(event)

    assert job == tagger.JobRef(arn=TRAINING_ARN, kind="training")


def test_built_arn_takes_the_partition_of_the_event_resources() -> None:
    event = processing_event()
    del event["detail"]["ProcessingJobArn"]
    event.update(
        region="cn-north-1",
        resources=[f"arn:aws-cn:sagemaker:cn-north-1:{ACCOUNT}:processing-job/x"],
    )

    job = tagger.parse_event(event)

    lower = PROCESSING_NAME.lower()
    assert job.arn == f"arn:aws-cn:sagemaker:cn-north-1:{ACCOUNT}:processing-job/{lower}"
    assert job.kind == "processing"


def _without(event: dict[str, Any], *fields: str) -> dict[str, Any]:
    for name in fields:
        del event["detail"][name]
    return event


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        (None, "expected an EventBridge event (a JSON object), got NoneType"),
        ("SageMaker Training Job State Change", "got str"),
        ([training_event()], "got list"),
        ({**training_event(), "source": "aws.s3"}, "source='aws.s3' is not 'aws.sagemaker'"),
        (
            {**training_event(), "detail-type": "SageMaker Endpoint State Change"},
            "detail-type='SageMaker Endpoint State Change' is not one of",
        ),
        ({**training_event(), "detail": "oops"}, "has no detail object"),
        (
            _without(training_event(), "TrainingJobArn", "TrainingJobName"),
            "has neither detail.TrainingJobArn nor detail.TrainingJobName",
        ),
        (
            _without(processing_event(), "ProcessingJobArn", "ProcessingJobName"),
            "has neither detail.ProcessingJobArn nor detail.ProcessingJobName",
        ),
        (
            training_event(TrainingJobArn=PROCESSING_ARN),
            "is not a SageMaker training-job ARN",
        ),
        (training_event(TrainingJobArn=42), "is not a SageMaker training-job ARN"),
        (
            {**_without(training_event(), "TrainingJobArn"), "region": None},
            "region=None is not an AWS region",
        ),
        (
            {**_without(training_event(), "TrainingJobArn"), "account": "me"},
            "account='me' is not an AWS account id",
        ),
        (
            _without(training_event(TrainingJobName="bad_name!"), "TrainingJobArn"),
            "detail.TrainingJobName='bad_name!' is not a SageMaker job name",
        ),
    ],
    ids=[
        "none",
        "string",
        "list",
        "other-source",
        "other-detail-type",
        "detail-not-object",
        "training-no-arn-no-name",
        "processing-no-arn-no-name",
        "arn-of-other-kind",
        "arn-not-string",
        "no-region",
        "bad-account",
        "bad-name",
    ],
)
def test_malformed_events_are_rejected(event: Any, needle: str) -> None:
    with pytest.raises(tagger.InvalidEventError) as raised:
        tagger.parse_event(event)

    assert needle in str(raised.value)
    outcome = tagger.Outcome.rejected(str(raised.value))
    assert (outcome.status, outcome.metric) == ("rejected", "InvalidEvents")


# --- configuration -----------------------------------------------------------------------------


def test_configuration_defaults() -> None:
    assert CONFIG.pipeline_names == frozenset({"mlops-dev-training", "mlops-dev-evaluation"})
    assert (CONFIG.dataset_version_tag, CONFIG.execution_id_tag) == (
        "dataset-version",
        "execution-id",
    )


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "PIPELINE_NAMES='' is not allowed"),
        ({"PIPELINE_NAMES": " , ,"}, "PIPELINE_NAMES=' , ,' is not allowed"),
        ({"PIPELINE_NAMES": "good,bad_name"}, "invalid pipeline names ['bad_name']"),
        (
            {**VALID_ENV, "DATASET_VERSION_TAG": "aws:dataset"},
            "DATASET_VERSION_TAG='aws:dataset' is not allowed",
        ),
        (
            {**VALID_ENV, "EXECUTION_ID_TAG": "sagemaker:execution"},
            "EXECUTION_ID_TAG='sagemaker:execution' is not allowed",
        ),
        ({**VALID_ENV, "EXECUTION_ID_TAG": "run#id"}, "EXECUTION_ID_TAG='run#id' is not allowed"),
        ({**VALID_ENV, "EXECUTION_ID_TAG": "k" * 129}, "is not allowed: set it to a tag key"),
        (
            {**VALID_ENV, "EXECUTION_ID_TAG": "same", "DATASET_VERSION_TAG": "same"},
            "both 'same'",
        ),
    ],
    ids=[
        "missing",
        "only-commas",
        "bad-name",
        "aws-prefix",
        "sagemaker-prefix",
        "bad-char",
        "too-long",
        "same-keys",
    ],
)
def test_bad_configuration_names_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ValueError) as raised:
        tagger.TaggerConfig.from_env(env)

    assert isinstance(raised.value, tagger.ConfigError)
    assert needle in str(raised.value)


# --- handler -----------------------------------------------------------------------------------


CONTEXT = lambda_context("tag-jobs", REGION, ACCOUNT)


@pytest.fixture()
def handler(sagemaker: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    return handler_with("tag_jobs", monkeypatch, VALID_ENV, sagemaker=sagemaker)


def test_handler_tags_the_job(
    handler: Any, sagemaker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    expect_tags(sagemaker, TRAINING_ARN, tags())
    expect_parameters(sagemaker)
    wanted = {"execution-id": EXECUTION_ID, "dataset-version": DATASET_VERSION}
    expect_add_tags(sagemaker, TRAINING_ARN, wanted)

    result = handler.lambda_handler(training_event(), CONTEXT)

    assert result["status"] == "tagged"
    assert result["job_arn"] == TRAINING_ARN
    assert result["tags_added"] == wanted
    documents = emf_documents(capsys.readouterr().out)
    assert [doc.get("TagsAdded") for doc in documents] == [[1.0]]
    assert documents[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MLOps/JobTags"


def test_handler_counts_an_already_tagged_job(
    handler: Any, sagemaker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    expect_tags(
        sagemaker,
        PROCESSING_ARN,
        tags(("execution-id", EXECUTION_ID), ("dataset-version", DATASET_VERSION)),
    )
    expect_parameters(sagemaker)

    result = handler.lambda_handler(processing_event(), CONTEXT)

    assert (result["status"], result["reason"]) == ("skipped", "already-tagged")
    assert [doc.get("AlreadyTagged") for doc in emf_documents(capsys.readouterr().out)] == [[1.0]]


def test_handler_counts_a_skip(
    handler: Any, sagemaker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    expect_tags(sagemaker, TRAINING_ARN, tags(execution_arn=None))

    result = handler.lambda_handler(training_event(), CONTEXT)

    assert (result["status"], result["reason"]) == ("skipped", "not-a-pipeline-job")
    assert [doc.get("Skipped") for doc in emf_documents(capsys.readouterr().out)] == [[1.0]]


def test_handler_rejects_a_malformed_event_without_calling_aws(
    handler: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    result = handler.lambda_handler({"source": "aws.sagemaker", "detail-type": "x"}, CONTEXT)

    assert result["status"] == "rejected"
    assert result["message"].startswith("detail-type='x' is not one of")
    assert [doc.get("InvalidEvents") for doc in emf_documents(capsys.readouterr().out)] == [[1.0]]


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_handler_propagates_aws_failures(handler: Any, sagemaker: Any) -> None:
    sagemaker.stubber.add_client_error(
        "list_tags", service_error_code="ThrottlingException", http_status_code=400
    )

    with pytest.raises(ClientError):
        handler.lambda_handler(training_event(), CONTEXT)


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_handler_fails_loudly_without_configuration(
    handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIPELINE_NAMES")

    with pytest.raises(ValueError, match="PIPELINE_NAMES"):
        handler.lambda_handler(training_event(), CONTEXT)
