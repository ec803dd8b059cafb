"""Where a prediction set came from (batch serving): prediction set -> scoring run -> model
version -> training run -> data version.

A prediction set is one scoring run's prefix,
`predictions/<dataset>/<version>/<model version>/<execution id>/` of the data bucket (the layout
the scoring pipeline's Check step names). The chain is read from what the loop records:

* prediction set -> complete or not: its `_SUCCESS` marker (the transform job, its model and
  times; written only for a Completed transform job);
* prediction set -> scoring run: the execution id is the scoring pipeline's execution
  (DescribePipelineExecution, its parameters, its steps with the Check job and the transform
  job);
* scoring run -> model version: the run's `ModelPackageArn` parameter, cross-checked against the
  model version of the prefix; the scored data is the run's `InputDataUri`;
* model version -> training run -> data version: `cli.lineage.trace`, as for an endpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from cli.aws import CliError, Ops, describe_aws_error, is_not_found
from cli.lineage import ExecutionLink, Lineage, read_execution, trace
from cli.registry import describe
from cli.runs import Step
from pipeline_code.definition import PARAM_INPUT_DATA_URI, PARAM_MODEL_PACKAGE_ARN

PREDICTIONS_PREFIX = "predictions/"
MARKER = "_SUCCESS"
DATA_BUCKET_OUTPUT = "DataBucketName"
_PARTS = ("dataset", "version", "model version", "execution id")


@dataclass(frozen=True)
class PredictionSetRef:
    """A run prefix: `predictions/<dataset>/<version>/<model version>/<execution id>/`."""

    bucket: str | None
    dataset_version: str
    model_version: str
    execution_id: str

    @property
    def prefix(self) -> str:
        return (
            f"{PREDICTIONS_PREFIX}{self.dataset_version}/{self.model_version}/{self.execution_id}/"
        )


@dataclass
class PredictionSet:
    ref: PredictionSetRef
    uri: str
    marker: dict[str, Any] | None = None
    scoring: ExecutionLink | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    model: Lineage | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "predictions": {
                "uri": self.uri,
                "dataset_version": self.ref.dataset_version,
                "model_version": self.ref.model_version,
                "execution_id": self.ref.execution_id,
                "complete": self.marker is not None,
                "marker": self.marker,
            },
            "scoring_run": None
            if self.scoring is None
            else {
                **vars(self.scoring),
                "started": None
                if self.scoring.started is None
                else self.scoring.started.isoformat(),
                "parameters": self.parameters,
                "steps": [
                    {"name": s.name, "status": s.status, "kind": s.job_kind, "job_arn": s.job_arn}
                    for s in self.steps
                ],
            },
            "model": None if self.model is None else self.model.as_dict(),
            "warnings": self.warnings,
        }


def parse_ref(ref: str) -> PredictionSetRef:
    """`s3://<bucket>/predictions/<d>/<v>/<m>/<run>/`, `predictions/<d>/<v>/<m>/<run>` or
    `<d>/<v>/<m>/<run>`; CliError naming what is wrong."""
    bucket = None
    key = ref.strip()
    if key.startswith("s3://"):
        bucket, _, key = key.removeprefix("s3://").partition("/")
        if not key.startswith(PREDICTIONS_PREFIX):
            raise CliError(f"{ref!r} is not under s3://<bucket>/{PREDICTIONS_PREFIX}")
    parts = key.removeprefix(PREDICTIONS_PREFIX).strip("/").split("/")
    if len(parts) != len(_PARTS) or not all(parts) or not parts[2].isdigit():
        raise CliError(
            f"{ref!r} is not a prediction set: give predictions/<dataset>/<version>/"
            "<model version>/<execution id>/ (the prefix that holds _SUCCESS)"
        )
    return PredictionSetRef(bucket, f"{parts[0]}/{parts[1]}", parts[2], parts[3])


def trace_predictions(ops: Ops, ref: str) -> PredictionSet:
    """Follow a prediction set to its scoring run, model version, training run and data."""
    if not ops.config.serving.is_batch:
        raise CliError(
            f"--predictions: environment {ops.config.name} serves in {ops.config.serving.mode} "
            "mode; only serving.mode = batch writes prediction sets"
        )
    parsed = parse_ref(ref)
    bucket = parsed.bucket or ops.stack_output("data", DATA_BUCKET_OUTPUT)
    found = PredictionSet(parsed, f"s3://{bucket}/{parsed.prefix}")
    found.marker = _marker(ops, bucket, parsed, found.warnings)
    package_arn = _scoring_run(ops, found)
    if package_arn is None:
        package_arn = _package_arn(ops, parsed.model_version)
    found.model = trace(ops, describe(ops, package_arn))
    return found


def _marker(
    ops: Ops, bucket: str, ref: PredictionSetRef, warnings: list[str]
) -> dict[str, Any] | None:
    try:
        body = ops.client("s3").get_object(Bucket=bucket, Key=ref.prefix + MARKER)["Body"].read()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        where = f"s3://{bucket}/{ref.prefix}"
        if code in ("NoSuchKey", "404"):
            warnings.append(
                f"no {MARKER} under {where}: the run is in progress or failed; "
                "never read these predictions"
            )
        elif code in ("AccessDenied", "403"):
            # S3 also answers 403 for a missing key to a caller without s3:ListBucket
            warnings.append(
                f"cannot read {MARKER} under {where} ({code}): treat it as missing, the run may "
                "be in progress or failed; never read these predictions"
            )
        else:
            raise
        return None
    try:
        marker = json.loads(body)
    except ValueError:
        marker = None
    return marker if isinstance(marker, dict) else {"raw": body.decode("utf-8", "replace")}


def _scoring_run(ops: Ops, found: PredictionSet) -> str | None:
    """Describe the scoring execution; returns the package it scored with (None if unknown)."""
    pipeline = ops.config.scoring_pipeline_name.lower()
    arn = _arn(ops, f"pipeline/{pipeline}/execution/{found.ref.execution_id}")
    try:
        found.scoring, found.parameters, found.steps = read_execution(ops, arn)
    except (ClientError, CliError) as error:
        if isinstance(error, ClientError) and not is_not_found(error):
            raise
        message = error.message if isinstance(error, CliError) else describe_aws_error(error)
        found.warnings.append(f"scoring run {arn} is not readable: {message}")
        return None
    package_arn = found.parameters.get(PARAM_MODEL_PACKAGE_ARN) or None
    if package_arn and package_arn.rsplit("/", 1)[-1] != found.ref.model_version:
        found.warnings.append(
            f"the scoring run's {PARAM_MODEL_PACKAGE_ARN} {package_arn} is not model version "
            f"{found.ref.model_version} of the prefix"
        )
    scored = found.parameters.get(PARAM_INPUT_DATA_URI, "")
    if scored and not scored.rstrip("/").endswith(found.ref.dataset_version):
        found.warnings.append(
            f"the scoring run's {PARAM_INPUT_DATA_URI} {scored} is not version "
            f"{found.ref.dataset_version} of the prefix"
        )
    return package_arn


def _package_arn(ops: Ops, version: str) -> str:
    return _arn(ops, f"model-package/{ops.config.model_package_group_name}/{version}")


def _arn(ops: Ops, resource: str) -> str:
    """A SageMaker ARN in the environment's partition (the one botocore resolves for its
    region: aws, aws-cn, aws-us-gov...), not always `aws`."""
    partition = ops.client("sagemaker").meta.partition
    return f"arn:{partition}:sagemaker:{ops.config.region}:{ops.config.account}:{resource}"
