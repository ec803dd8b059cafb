"""Job tagger: SageMaker job state-change event -> run-time cost-allocation tags on the job.

SageMaker Pipelines give every training, processing and transform job the pipeline definition's
static tags (project, environment, pipeline) plus tags SageMaker adds itself, among them
`sagemaker:pipeline-execution-arn`. Cost allocation also needs the run's dataset version and
execution id, which only exist at run time, so an EventBridge rule sends this Lambda the
"SageMaker Training Job State Change" / "SageMaker Processing Job State Change" / "SageMaker
Transform Job State Change" events (source "aws.sagemaker"; the job is
`detail.<Training|Processing|Transform>JobArn`, or, when the ARN is missing,
`detail.<...>JobName` with the event's region and account) and, per event:

    ListTags(job)                      no `sagemaker:pipeline-execution-arn` -> skipped
                                       (not-a-pipeline-job); job gone -> skipped (job-gone);
                                       a tuning trial (FOLLOW_TUNING_JOBS) takes the tag of
                                       its pipelines-* tuning job (tuning_trials.py)
    execution ARN -> pipeline name     not in PIPELINE_NAMES (case-insensitive) -> skipped
                                       (other-pipeline)
    ListPipelineParametersForExecution value of "DatasetVersion" (missing/empty -> only the
                                       execution id is tagged)
    AddTags(job, missing tags only)    all wanted tags already there -> skipped
                                       (already-tagged), else tagged

A job emits several state changes and EventBridge may deliver an event twice: the comparison
with the tags the job already has makes every repeat a no-op. Tag values are made to fit
SageMaker's rules (letters, separators, numbers and `_.:/=+-@`, at most 256 characters): any
other character becomes "_" and the value is cut. A malformed event is "rejected" (a retry
would not fix it); AWS failures other than a missing job raise, so the rule's retry policy
and dead-letter queue apply.

Functions take a boto3 SageMaker client as an argument; `handler.py` builds it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.config import Config
from botocore.exceptions import ClientError
from sagemaker_reads import current_tags, pipeline_parameter
from tuning_trials import tuning_job_tags

# Throttling and transient 5xx are retried by botocore (5 attempts in all, jittered backoff).
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 5})

Kind = Literal["training", "processing", "transform"]
Status = Literal["tagged", "skipped", "rejected"]

EVENT_SOURCE = "aws.sagemaker"
# detail-type -> (job kind, ARN field, name field, resource type in the job ARN)
DETAIL_TYPES: dict[str, tuple[Kind, str, str, str]] = {
    "SageMaker Training Job State Change": (
        "training",
        "TrainingJobArn",
        "TrainingJobName",
        "training-job",
    ),
    "SageMaker Processing Job State Change": (
        "processing",
        "ProcessingJobArn",
        "ProcessingJobName",
        "processing-job",
    ),
    # batch serving's scoring runs
    "SageMaker Transform Job State Change": (
        "transform",
        "TransformJobArn",
        "TransformJobName",
        "transform-job",
    ),
}
EXECUTION_ARN_TAG = "sagemaker:pipeline-execution-arn"
DATASET_VERSION_PARAMETER = "DatasetVersion"
DEFAULT_DATASET_VERSION_TAG = "dataset-version"
DEFAULT_EXECUTION_ID_TAG = "execution-id"

TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
# Besides letters (\p{L}), separators (\p{Z}) and numbers (\p{N}), SageMaker allows these.
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_RESERVED_KEY_PREFIXES = ("aws:", "sagemaker:")

REASON_NOT_A_PIPELINE_JOB = "not-a-pipeline-job"
REASON_OTHER_PIPELINE = "other-pipeline"
REASON_ALREADY_TAGGED = "already-tagged"
REASON_JOB_GONE = "job-gone"

METRIC_TAGGED = "TagsAdded"
METRIC_ALREADY_TAGGED = "AlreadyTagged"
METRIC_SKIPPED = "Skipped"
METRIC_INVALID_EVENT = "InvalidEvents"

_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_PIPELINE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_REGION = re.compile(r"^[a-z]{2,}(-[a-z]+)+-\d{1,2}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_PARTITION = re.compile(r"^aws[a-z-]*$")
_JOB_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sagemaker:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(?P<type>training-job|processing-job|transform-job)/(?P<name>[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})$"
)
_EXECUTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:"
    r"pipeline/(?P<pipeline>[^/]+)/execution/(?P<execution>[^/]+)$"
)
# What ListTags answers for a job that does not exist (any more).
_MISSING_CODES = frozenset({"ValidationException", "ResourceNotFound"})


class ConfigError(ValueError):
    """An environment variable is missing or invalid; the message names it and the rule."""


class InvalidEventError(ValueError):
    """The event is not a SageMaker training/processing/transform job state change this Lambda
    reads."""


@dataclass(frozen=True)
class TaggerConfig:
    """The Lambda's environment.

    Attributes:
        pipeline_names: pipelines this environment owns, lower-cased (PIPELINE_NAMES,
            comma-separated, required); jobs of other pipelines are left alone.
        dataset_version_tag: tag key for the run's DatasetVersion parameter
            (DATASET_VERSION_TAG, default "dataset-version").
        execution_id_tag: tag key for the pipeline execution id (EXECUTION_ID_TAG, default
            "execution-id").
        follow_tuning_jobs: a training job without the execution tag takes its tuning job's
            (FOLLOW_TUNING_JOBS "true"; set with pipeline.tuning).
    """

    pipeline_names: frozenset[str]
    dataset_version_tag: str = DEFAULT_DATASET_VERSION_TAG
    execution_id_tag: str = DEFAULT_EXECUTION_ID_TAG
    follow_tuning_jobs: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TaggerConfig:
        """Parse and validate the environment; raises ConfigError naming the bad variable."""
        dataset_tag = _tag_key(env, "DATASET_VERSION_TAG", DEFAULT_DATASET_VERSION_TAG)
        execution_tag = _tag_key(env, "EXECUTION_ID_TAG", DEFAULT_EXECUTION_ID_TAG)
        if dataset_tag == execution_tag:
            raise ConfigError(
                f"DATASET_VERSION_TAG and EXECUTION_ID_TAG are both {dataset_tag!r}: "
                "set them to two different tag keys"
            )
        return cls(
            pipeline_names=_pipeline_names(env.get("PIPELINE_NAMES", "")),
            dataset_version_tag=dataset_tag,
            execution_id_tag=execution_tag,
            follow_tuning_jobs=env.get("FOLLOW_TUNING_JOBS", "").strip().lower() == "true",
        )

    def owns(self, pipeline_name: str) -> bool:
        return pipeline_name.lower() in self.pipeline_names


def _pipeline_names(raw: str) -> frozenset[str]:
    names = [part.strip() for part in raw.split(",") if part.strip()]
    if not names:
        raise ConfigError(
            f"PIPELINE_NAMES={raw!r} is not allowed: set it to the comma-separated names of "
            "the pipelines this environment owns"
        )
    bad = [name for name in names if not _PIPELINE_NAME.match(name)]
    if bad:
        raise ConfigError(
            f"PIPELINE_NAMES has invalid pipeline names {bad}: a name is 1-256 letters, "
            "digits and single hyphens, starting and ending with a letter or digit"
        )
    return frozenset(name.lower() for name in names)


def _tag_key(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name) or default
    if (
        len(value) > TAG_KEY_MAX
        or not all(_allowed_in_tag(char) for char in value)
        or value.lower().startswith(_RESERVED_KEY_PREFIXES)
    ):
        raise ConfigError(
            f"{name}={value!r} is not allowed: set it to a tag key of 1-{TAG_KEY_MAX} letters, "
            "digits, spaces and _.:/=+-@ that does not start with 'aws:' or 'sagemaker:'"
        )
    return value


@dataclass(frozen=True)
class JobRef:
    """The job an event is about."""

    arn: str
    kind: Kind


@dataclass(frozen=True)
class Outcome:
    """What one event led to; `metric` is the count to record."""

    status: Status
    message: str
    reason: str | None = None
    job_arn: str | None = None
    tags_added: dict[str, str] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        if self.status == "tagged":
            return METRIC_TAGGED
        if self.status == "rejected":
            return METRIC_INVALID_EVENT
        if self.reason == REASON_ALREADY_TAGGED:
            return METRIC_ALREADY_TAGGED
        return METRIC_SKIPPED

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "job_arn": self.job_arn,
            "tags_added": dict(self.tags_added),
        }

    @classmethod
    def rejected(cls, message: str) -> Outcome:
        return cls("rejected", message)


def parse_event(event: Any) -> JobRef:
    """The job of a SageMaker training/processing job state-change event.

    Uses `detail.<Kind>JobArn`; without it, builds the ARN from `detail.<Kind>JobName`, the
    event's region and account, and the partition of the event's first resource ARN ("aws"
    when there is none). Raises InvalidEventError.
    """
    if not isinstance(event, dict):
        raise InvalidEventError(
            f"expected an EventBridge event (a JSON object), got {type(event).__name__}"
        )
    source = event.get("source")
    if source != EVENT_SOURCE:
        raise InvalidEventError(f"source={source!r:.80} is not {EVENT_SOURCE!r}")
    detail_type = event.get("detail-type")
    if not isinstance(detail_type, str) or detail_type not in DETAIL_TYPES:
        raise InvalidEventError(
            f"detail-type={detail_type!r:.80} is not one of {sorted(DETAIL_TYPES)}"
        )
    kind, arn_field, name_field, resource_type = DETAIL_TYPES[detail_type]
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise InvalidEventError(f"{detail_type} event has no detail object")

    arn = detail.get(arn_field)
    if arn is not None:
        match = _JOB_ARN.match(arn) if isinstance(arn, str) else None
        if not match or match["type"] != resource_type:
            raise InvalidEventError(
                f"detail.{arn_field}={arn!r:.120} is not a SageMaker {resource_type} ARN"
            )
        return JobRef(arn=arn, kind=kind)

    name = detail.get(name_field)
    if name is None:
        raise InvalidEventError(
            f"{detail_type} event has neither detail.{arn_field} nor detail.{name_field}"
        )
    if not isinstance(name, str) or not _JOB_NAME.match(name):
        raise InvalidEventError(f"detail.{name_field}={name!r:.80} is not a SageMaker job name")
    region, account = event.get("region"), event.get("account")
    if not isinstance(region, str) or not _REGION.match(region):
        raise InvalidEventError(
            f"no detail.{arn_field} and region={region!r:.40} is not an AWS region"
        )
    if not isinstance(account, str) or not _ACCOUNT.match(account):
        raise InvalidEventError(
            f"no detail.{arn_field} and account={account!r:.40} is not an AWS account id"
        )
    partition = _partition(event.get("resources"))
    # SageMaker job ARNs carry the name in lower case.
    arn = f"arn:{partition}:sagemaker:{region}:{account}:{resource_type}/{name.lower()}"
    return JobRef(arn=arn, kind=kind)


def _partition(resources: Any) -> str:
    if isinstance(resources, list):
        for resource in resources:
            if isinstance(resource, str) and resource.startswith("arn:"):
                partition = resource.split(":", 2)[1]
                if _PARTITION.match(partition):
                    return partition
    return "aws"


def sanitize_tag_value(value: str) -> str:
    """`value` as SageMaker accepts it: characters outside `[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]`
    become "_", and it is cut to 256 characters (counted in UTF-16 units, as the API does)."""
    cleaned = "".join(char if _allowed_in_tag(char) else "_" for char in value)
    units = 0
    for index, char in enumerate(cleaned):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > TAG_VALUE_MAX:
            return cleaned[:index]
    return cleaned


def _allowed_in_tag(char: str) -> bool:
    return char in _TAG_PUNCTUATION or unicodedata.category(char)[0] in "LZN"


def tag_job(sagemaker: Any, config: TaggerConfig, job: JobRef) -> Outcome:
    """Add the execution-id and dataset-version tags the job is missing (see module doc).

    Raises ClientError/BotoCoreError for AWS failures other than a job that no longer exists.
    """
    try:
        existing = current_tags(sagemaker, job.arn)
    except ClientError as error:
        details = error.response.get("Error", {})
        if details.get("Code") not in _MISSING_CODES:
            raise
        message = f"{job.kind} job {job.arn} no longer exists"
        if details.get("Message"):
            message += f" ({details['Message']})"
        return Outcome("skipped", message, REASON_JOB_GONE, job.arn)

    execution_arn = existing.get(EXECUTION_ARN_TAG)
    if not execution_arn and job.kind == "training" and config.follow_tuning_jobs:
        _, parent = tuning_job_tags(sagemaker, job.arn, current_tags)
        execution_arn = parent.get(EXECUTION_ARN_TAG)
    if not execution_arn:
        message = f"{job.kind} job {job.arn} has no {EXECUTION_ARN_TAG} tag: not run by a pipeline"
        return Outcome("skipped", message, REASON_NOT_A_PIPELINE_JOB, job.arn)
    match = _EXECUTION_ARN.match(execution_arn)
    if not match:
        message = (
            f"{job.kind} job {job.arn} has {EXECUTION_ARN_TAG}={execution_arn!r:.200}, which is "
            "not a pipeline execution ARN"
        )
        return Outcome("skipped", message, REASON_NOT_A_PIPELINE_JOB, job.arn)
    pipeline, execution_id = match["pipeline"], match["execution"]
    if not config.owns(pipeline):
        message = (
            f"{job.kind} job {job.arn} belongs to pipeline {pipeline}, not to one of "
            f"{sorted(config.pipeline_names)}"
        )
        return Outcome("skipped", message, REASON_OTHER_PIPELINE, job.arn)

    wanted = {config.execution_id_tag: sanitize_tag_value(execution_id)}
    dataset_version = pipeline_parameter(sagemaker, execution_arn, DATASET_VERSION_PARAMETER)
    if dataset_version:
        wanted[config.dataset_version_tag] = sanitize_tag_value(dataset_version)
    missing = {key: value for key, value in wanted.items() if existing.get(key) != value}
    if not missing:
        message = f"{job.kind} job {job.arn} already has {_describe(wanted)}"
        return Outcome("skipped", message, REASON_ALREADY_TAGGED, job.arn)

    sagemaker.add_tags(
        ResourceArn=job.arn, Tags=[{"Key": key, "Value": value} for key, value in missing.items()]
    )
    message = f"tagged {job.kind} job {job.arn} with {_describe(missing)}"
    if not dataset_version:
        message += f" (execution {execution_id} has no {DATASET_VERSION_PARAMETER} value)"
    return Outcome("tagged", message, None, job.arn, missing)


def _describe(tags: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in tags.items())
