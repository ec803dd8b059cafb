"""Run a Processing step as SageMaker runs its job: each ProcessingInput copied to its
LocalPath, /opt/ml/config/processingjobconfig.json and resourceconfig.json written, the
container's entrypoint run with its arguments, and each output's LocalPath uploaded to its
S3Uri when the job succeeds. A failed job's reason is its ExitMessage (/opt/ml/output/message).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pipeline_code.local_pipeline import container
from pipeline_code.local_pipeline.errors import StepError
from pipeline_code.local_pipeline.jobs import (
    RunContext,
    StepOutcome,
    check_aws_calls,
    download_input,
    job_arn,
    job_name,
    sandbox_for,
    unsupported,
    validate_request,
)

OPERATION = "CreateProcessingJob"
MESSAGE_FILE = "/opt/ml/output/message"
RESOURCE_CONFIG = {"current_host": "algo-1", "hosts": ["algo-1"]}


def _check_supported(step: str, request: dict[str, Any]) -> None:
    cluster = request.get("ProcessingResources", {}).get("ClusterConfig", {})
    if cluster.get("InstanceCount", 1) != 1:
        raise unsupported(step, f"InstanceCount {cluster['InstanceCount']}", "it runs one instance")
    for item in request.get("ProcessingInputs", []):
        name = item.get("InputName")
        if "S3Input" not in item:
            raise unsupported(step, f"input {name} (DatasetDefinition)", "only S3 inputs")
        s3 = item["S3Input"]
        if s3.get("S3InputMode", "File") != "File":
            raise unsupported(step, f"input {name}: S3InputMode {s3['S3InputMode']}", "File only")
        if s3.get("S3DataType", "S3Prefix") not in ("S3Prefix", "S3Object"):
            raise unsupported(step, f"input {name}: S3DataType {s3['S3DataType']}", "no manifests")
        if s3.get("S3CompressionType", "None") != "None":
            raise unsupported(step, f"input {name}: Gzip compression", "uncompressed inputs only")
    for output in request.get("ProcessingOutputConfig", {}).get("Outputs", []):
        if "S3Output" not in output:
            raise unsupported(step, f"output {output.get('OutputName')}", "only S3 outputs")


def run_processing(
    step: str, request: dict[str, Any], network_isolation: bool, context: RunContext
) -> StepOutcome:
    """Run the resolved CreateProcessingJob `request` of `step`; StepError on failure."""
    name = job_name(context.execution_id, step)
    request = {**request, "ProcessingJobName": name}
    validate_request(step, OPERATION, request)
    _check_supported(step, request)
    sandbox = sandbox_for(context, step)
    arn = job_arn(context.world.region, "processing-job", name)
    try:
        for item in request.get("ProcessingInputs", []):
            s3 = item["S3Input"]
            download_input(
                context,
                step,
                f"input {item['InputName']}",
                s3["S3Uri"],
                sandbox.host_path(s3["LocalPath"]),
                s3.get("S3DataType", "S3Prefix"),
            )
        outputs = request.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for output in outputs:
            sandbox.host_path(output["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        config = sandbox.host_path("/opt/ml/config")
        config.mkdir(parents=True, exist_ok=True)
        job_config = {**request, "ProcessingJobArn": arn}
        (config / "processingjobconfig.json").write_text(json.dumps(job_config, indent=2))
        (config / "resourceconfig.json").write_text(json.dumps(RESOURCE_CONFIG))
        app = request["AppSpecification"]
        command = [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]
        started = datetime.now(UTC)
        finished = container.run(
            command,
            sandbox,
            context.world,
            request.get("Environment", {}),
            network_isolation,
            request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds"),
            context.echo,
        )
    except container.ContainerError as error:
        raise StepError(step, str(error)) from error
    message_file = sandbox.host_path(MESSAGE_FILE)
    message = message_file.read_text(errors="replace")[:1024] if message_file.exists() else ""
    message = sandbox.container_view(message)
    if finished.timed_out:
        raise StepError(
            step, "MaxRuntimeExceeded: the job ran longer than MaxRuntimeInSeconds", finished.log
        )
    if finished.exit_code != 0:
        detail = f"; ExitMessage: {message.strip()}" if message.strip() else ""
        raise StepError(
            step,
            f"AlgorithmError: See job logs for more information (exit code "
            f"{finished.exit_code}{detail})",
            finished.log,
        )
    notes = check_aws_calls(step, finished)
    written = []
    for output in outputs:
        s3 = output["S3Output"]
        if context.s3.upload_dir(sandbox.host_path(s3["LocalPath"]), s3["S3Uri"]):
            written.append(s3["S3Uri"])
    properties = {
        **request,
        "ProcessingJobArn": arn,
        "ProcessingJobStatus": "Completed",
        "ProcessingStartTime": started.isoformat(),
        "ProcessingEndTime": datetime.now(UTC).isoformat(),
    }
    if message:
        properties["ExitMessage"] = message
    return StepOutcome(properties, written, notes)
