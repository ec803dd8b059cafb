"""Run a Processing step as SageMaker runs its job: each ProcessingInput copied to its
LocalPath, /opt/ml/config/processingjobconfig.json and resourceconfig.json written, the
container's entrypoint run with its arguments, and each output's LocalPath uploaded to its
S3Uri when the job succeeds. A failed job's reason is its ExitMessage (/opt/ml/output/message).

With InstanceCount N > 1 the job runs on N hosts at once (`algo-1` ... `algo-N`, each its own
sandbox and resourceconfig.json): a FullyReplicated input reaches every host, a
ShardedByS3Key input is dealt out by key as `training_hosts` describes (a host may get no
object), and every host's outputs are uploaded to the same S3Uri, as SageMaker does.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from pipeline_code.local_pipeline import container, training_hosts
from pipeline_code.local_pipeline.container import Sandbox
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
MAX_HOSTS = 10


def _check_supported(step: str, request: dict[str, Any]) -> None:
    cluster = request.get("ProcessingResources", {}).get("ClusterConfig", {})
    if not 1 <= cluster.get("InstanceCount", 1) <= MAX_HOSTS:
        raise unsupported(
            step, f"InstanceCount {cluster['InstanceCount']}", f"1 to {MAX_HOSTS} instances"
        )
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


def _start_host(
    step: str, request: dict[str, Any], context: RunContext, hosts: list[str], rank: int
) -> Sandbox:
    """Host `rank`'s sandbox: its share of the inputs, the output folders, the job's config."""
    sandbox = sandbox_for(context, step if len(hosts) == 1 else f"{step}/{hosts[rank]}")
    for item in request.get("ProcessingInputs", []):
        s3 = item["S3Input"]
        target = sandbox.host_path(s3["LocalPath"])
        distribution = s3.get("S3DataDistributionType", "FullyReplicated")
        found = context.s3.objects(s3["S3Uri"]) if distribution == "ShardedByS3Key" else []
        if len(hosts) == 1 or distribution != "ShardedByS3Key" or not found:
            # Nothing under a sharded prefix fails the job as a replicated one does.
            download_input(
                context,
                step,
                f"input {item['InputName']}",
                s3["S3Uri"],
                target,
                s3.get("S3DataType", "S3Prefix"),
            )
            continue
        target.mkdir(parents=True, exist_ok=True)
        for relative, file in training_hosts.objects_for_host(
            found, distribution, rank, len(hosts)
        ):
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, destination)
    for output in request.get("ProcessingOutputConfig", {}).get("Outputs", []):
        sandbox.host_path(output["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
    config = sandbox.host_path("/opt/ml/config")
    config.mkdir(parents=True, exist_ok=True)
    job_config = {**request, "ProcessingJobArn": job_arn(
        context.world.region, "processing-job", request["ProcessingJobName"]
    )}  # fmt: skip
    (config / "processingjobconfig.json").write_text(json.dumps(job_config, indent=2))
    resource = {"current_host": hosts[rank], "hosts": hosts}
    (config / "resourceconfig.json").write_text(json.dumps(resource))
    return sandbox


def _run_hosts(
    request: dict[str, Any], context: RunContext, sandboxes: list[Sandbox], network_isolation: bool
) -> list[container.Finished]:
    """The job's command on every host at once; how each ended, in host order."""
    hosts = training_hosts.host_names(len(sandboxes))
    app = request["AppSpecification"]
    command = [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]

    def run_host(rank: int) -> container.Finished:
        echo, outer = context.echo, context.echo
        if outer is not None and len(hosts) > 1:
            prefix = f"[{hosts[rank]}] "

            def echo(line: str) -> None:
                outer(prefix + line)

        return container.run(
            command,
            sandboxes[rank],
            context.world,
            request.get("Environment", {}),
            network_isolation,
            request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds"),
            echo,
        )

    if len(hosts) == 1:
        return [run_host(0)]
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        return list(pool.map(run_host, range(len(hosts))))


def _exit_message(sandbox: Sandbox) -> str:
    message_file = sandbox.host_path(MESSAGE_FILE)
    message = message_file.read_text(errors="replace")[:1024] if message_file.exists() else ""
    return sandbox.container_view(message)


def run_processing(
    step: str, request: dict[str, Any], network_isolation: bool, context: RunContext
) -> StepOutcome:
    """Run the resolved CreateProcessingJob `request` of `step` on its InstanceCount hosts;
    StepError on failure."""
    name = job_name(context.execution_id, step)
    request = {**request, "ProcessingJobName": name}
    validate_request(step, OPERATION, request)
    _check_supported(step, request)
    count = request.get("ProcessingResources", {}).get("ClusterConfig", {}).get("InstanceCount", 1)
    hosts = training_hosts.host_names(count)
    arn = job_arn(context.world.region, "processing-job", name)
    try:
        sandboxes = [_start_host(step, request, context, hosts, rank) for rank in range(count)]
        started = datetime.now(UTC)
        ended = _run_hosts(request, context, sandboxes, network_isolation)
    except container.ContainerError as error:
        raise StepError(step, str(error)) from error
    messages = [_exit_message(sandbox) for sandbox in sandboxes]
    for host, finished, message in zip(hosts, ended, messages, strict=True):
        where = f" (host {host})" if count > 1 else ""
        if finished.timed_out:
            raise StepError(
                step,
                f"MaxRuntimeExceeded: the job ran longer than MaxRuntimeInSeconds{where}",
                finished.log,
            )
        if finished.exit_code != 0:
            detail = f"; ExitMessage: {message.strip()}" if message.strip() else ""
            raise StepError(
                step,
                f"AlgorithmError{where}: See job logs for more information (exit code "
                f"{finished.exit_code}{detail})",
                finished.log,
            )
    notes = [note for finished in ended for note in check_aws_calls(step, finished)]
    outputs = request.get("ProcessingOutputConfig", {}).get("Outputs", [])
    written = []
    for output in outputs:
        s3 = output["S3Output"]
        uploaded = [
            context.s3.upload_dir(sandbox.host_path(s3["LocalPath"]), s3["S3Uri"])
            for sandbox in sandboxes
        ]
        if any(uploaded):
            written.append(s3["S3Uri"])
    properties = {
        **request,
        "ProcessingJobArn": arn,
        "ProcessingJobStatus": "Completed",
        "ProcessingStartTime": started.isoformat(),
        "ProcessingEndTime": datetime.now(UTC).isoformat(),
    }
    message = next((m for m in messages if m), "")
    if message:
        properties["ExitMessage"] = message
    return StepOutcome(properties, written, notes)
