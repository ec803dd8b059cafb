"""Job tagger, batch serving: a scoring run's transform job gets the run's execution id and
dataset version like the training and processing jobs (tests/lambdas/test_tag_jobs.py).

The event is EventBridge's envelope around DescribeTransformJob's answer, validated against
botocore's service model (the helpers of test_mark_predictions); SageMaker calls go through
botocore's Stubber.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.lambdas import test_mark_predictions as transform_events
from tests.lambdas.test_tag_jobs import (
    STATIC_TAGS,
    expect_add_tags,
    expect_parameters,
    expect_tags,
    sagemaker,
    tagger,
)

pytestmark = pytest.mark.usefixtures("aws_credentials")
__all__ = ["sagemaker"]  # the Stubber fixture, shared

SCORING = "mlops-dev-scoring"
CONFIG = tagger.TaggerConfig.from_env({"PIPELINE_NAMES": f"mlops-dev-training, {SCORING}"})
EXECUTION_ARN = (
    f"arn:aws:sagemaker:{transform_events.REGION}:{transform_events.ACCOUNT}:pipeline/"
    f"{SCORING}/execution/{transform_events.RUN}"
)
VERSION = "transactions/2026-12-07 08:00+v%1"


def _tags() -> list[dict[str, str]]:
    return [*STATIC_TAGS, {"Key": "sagemaker:pipeline-execution-arn", "Value": EXECUTION_ARN}]


@pytest.mark.parametrize("status", ["InProgress", "Completed", "Failed"])
def test_a_scoring_transform_job_is_tagged_with_its_run(sagemaker: Any, status: str) -> None:
    detail = transform_events.transform_detail(status=status)
    if status == "Failed":
        detail["FailureReason"] = "ClientError: see the logs"
    event = transform_events.event(detail)
    expect_tags(sagemaker, transform_events.JOB_ARN, _tags())
    expect_parameters(sagemaker, {"DatasetVersion": VERSION}, execution_arn=EXECUTION_ARN)
    # "%" is not a tag character: the tagger's sanitised form
    wanted = {"execution-id": transform_events.RUN, "dataset-version": VERSION.replace("%", "_")}
    expect_add_tags(sagemaker, transform_events.JOB_ARN, wanted)

    outcome = tagger.tag_job(sagemaker, CONFIG, tagger.parse_event(event))

    assert (outcome.status, outcome.job_arn, outcome.tags_added) == (
        "tagged",
        transform_events.JOB_ARN,
        wanted,
    )
    assert outcome.message.startswith("tagged transform job")


def test_the_arn_is_built_from_the_name_when_missing() -> None:
    event = transform_events.event(transform_events.transform_detail())
    del event["detail"]["TransformJobArn"]

    job = tagger.parse_event(event)

    assert job.kind == "transform"
    assert job.arn == (
        f"arn:aws:sagemaker:{transform_events.REGION}:{transform_events.ACCOUNT}:transform-job/"
        f"{transform_events.JOB.lower()}"
    )


def test_a_transform_job_of_another_pipeline_is_left_alone(sagemaker: Any) -> None:
    other = EXECUTION_ARN.replace(SCORING, "someone-elses")
    expect_tags(
        sagemaker,
        transform_events.JOB_ARN,
        [*STATIC_TAGS, {"Key": "sagemaker:pipeline-execution-arn", "Value": other}],
    )
    event = transform_events.event(transform_events.transform_detail())

    outcome = tagger.tag_job(sagemaker, CONFIG, tagger.parse_event(event))

    assert (outcome.status, outcome.reason) == ("skipped", "other-pipeline")
