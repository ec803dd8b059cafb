"""What the processing and training runners share: the run's context, the job's name and ARN,
the request checked against botocore's model, inputs copied from the local bucket, and the
verdict on the step's AWS calls."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_code.local_pipeline.bucket import LocalS3, S3UriError
from pipeline_code.local_pipeline.container import Finished, Sandbox, World
from pipeline_code.local_pipeline.errors import StepError
from pipeline_code.local_pipeline.properties import operation_model


@dataclass(frozen=True)
class RunContext:
    """One execution's surroundings.

    Attributes:
        s3: The local buckets.
        world: What the steps' AWS calls see.
        run_dir: This execution's folder (one sandbox per step inside).
        execution_id: The execution's id (also in job names).
        progress: Where progress lines go.
        echo: Where each line a step prints goes (None: only to the step's log file).
    """

    s3: LocalS3
    world: World
    run_dir: Path
    execution_id: str
    progress: Callable[[str], None] = print
    echo: Callable[[str], None] | None = None


@dataclass
class StepOutcome:
    """What a step left behind: its properties, the S3 URIs it wrote, notes for the report."""

    properties: dict[str, Any]
    outputs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def job_name(execution_id: str, step: str) -> str:
    """`pipelines-<execution id>-<step>-<10 characters>`, at most 63, as Pipelines names jobs."""
    suffix = hashlib.sha256(f"{execution_id}/{step}".encode()).hexdigest()[:10]
    stem = f"pipelines-{execution_id}-{step}"[:52].rstrip("-")
    return f"{stem}-{suffix}"


def job_arn(region: str, kind: str, name: str) -> str:
    from pipeline_code.local_pipeline.aws_stand_in import ACCOUNT

    return f"arn:aws:sagemaker:{region}:{ACCOUNT}:{kind}/{name.lower()}"


def validate_request(step: str, operation: str, request: dict[str, Any]) -> None:
    """StepError unless `request` fits botocore's model of `operation` (as the real API call
    would be validated before it is sent)."""
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(request, operation_model(operation).input_shape)
    if report.has_errors():
        raise StepError(
            step, f"the {operation} request does not fit the API: {report.generate_report()}"
        )


def sandbox_for(context: RunContext, step: str) -> Sandbox:
    folder = context.run_dir / "steps" / step
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "container").mkdir(parents=True)
    return Sandbox(folder / "container")


def download_input(
    context: RunContext, step: str, what: str, uri: Any, destination: Path, data_type: str
) -> None:
    """Copy an input from the local bucket; StepError naming the input and the URI if nothing
    is there (SageMaker fails the job the same way)."""
    try:
        context.s3.download(uri, destination, data_type)
    except S3UriError as error:
        raise StepError(step, f"{what}: {error}") from error
    except FileNotFoundError as error:
        raise StepError(
            step,
            f"{what}: ClientError: no S3 objects found under {uri} (local: "
            f"{context.s3.path(uri)}); no step wrote it and the run did not put it there",
        ) from error


def check_aws_calls(step: str, finished: Finished) -> list[str]:
    """Notes on the step's AWS calls; StepError if it made one the run had to refuse (even if
    the step went on: a swallowed error is not a pass)."""
    refused = sorted({c["call"] for c in finished.aws_calls if c["outcome"] == "refused"})
    if refused:
        raise StepError(
            step,
            f"called {', '.join(refused)}, which the local run does not emulate (it answers "
            "S3 objects, the model registry and CloudWatch PutMetricData locally)",
        )
    answered = sorted({c["call"] for c in finished.aws_calls if c["outcome"] != "refused"})
    return [f"AWS calls answered locally: {', '.join(answered)}"] if answered else []


def unsupported(step: str, construct: str, reason: str) -> StepError:
    return StepError(step, f"{construct} is not supported by the local run: {reason}")
