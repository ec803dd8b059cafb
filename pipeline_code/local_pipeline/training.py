"""Run a Training step as SageMaker runs its job.

The container gets what SageMaker gives a training container: each channel under
/opt/ml/input/data/<channel>, /opt/ml/input/config/{hyperparameters,inputdataconfig,
resourceconfig}.json (hyperparameters as strings), TRAINING_JOB_NAME and TRAINING_JOB_ARN, the
step's Environment, then its entrypoint. The SDK v3 ModelTrainer's definition sets that
entrypoint to the `sm_drivers` channel's `sm_train.sh`, whose drivers derive the SM_* variables
(SM_CHANNEL_<NAME>, SM_HPS, SM_HP_<NAME>, SM_MODEL_DIR, SM_NUM_CPUS, ...) from those files and
run the entry script with the hyperparameters as `--name value`: the drivers themselves run
here, so the local contract is theirs. Shell scripts delivered in channels get their /opt/ml
paths rewritten in the sandbox copy (a shell cannot be redirected the way Python is).

On success /opt/ml/model becomes `<S3OutputPath>/<job>/output/model.tar.gz` (a folder
`.../output/model/` with CompressionType NONE; with several hosts their model folders merged,
and a file two hosts wrote fails the job), /opt/ml/output/data `output.tar.gz`, and
checkpoints go to CheckpointConfig.S3Uri; metrics are read from the log by the
MetricDefinitions' regexes. A failed job's reason is /opt/ml/output/failure.
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline_code.local_pipeline import container, training_hosts
from pipeline_code.local_pipeline.bucket import join_uri
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

OPERATION = "CreateTrainingJob"
FAILURE_FILE = "/opt/ml/output/failure"
CHECKPOINT_DIR = "/opt/ml/checkpoints"


def _check_supported(step: str, request: dict[str, Any]) -> None:
    algorithm = request["AlgorithmSpecification"]
    if "AlgorithmName" in algorithm or not algorithm.get("ContainerEntrypoint"):
        raise unsupported(
            step, "a training image's own entrypoint", "give ContainerEntrypoint (script mode)"
        )
    default_mode = algorithm.get("TrainingInputMode", "File")
    for channel in request.get("InputDataConfig", []):
        name = channel["ChannelName"]
        source = channel["DataSource"].get("S3DataSource")
        if source is None:
            raise unsupported(step, f"channel {name} (not S3)", "S3 channels only")
        if source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise unsupported(step, f"channel {name}: {source['S3DataType']}", "S3Prefix only")
        if channel.get("InputMode", default_mode) == "Pipe":
            raise unsupported(step, f"channel {name}: Pipe mode", "File or FastFile only")
        if channel.get("CompressionType", "None") != "None":
            raise unsupported(step, f"channel {name}: Gzip compression", "uncompressed only")


def _channel_config(request: dict[str, Any]) -> dict[str, Any]:
    default_mode = request["AlgorithmSpecification"].get("TrainingInputMode", "File")
    config = {}
    for channel in request.get("InputDataConfig", []):
        entry = {
            "TrainingInputMode": channel.get("InputMode", default_mode),
            "S3DistributionType": channel["DataSource"]["S3DataSource"].get(
                "S3DataDistributionType", "FullyReplicated"
            ),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
        }
        if "ContentType" in channel:
            entry["ContentType"] = channel["ContentType"]
        config[channel["ChannelName"]] = entry
    return config


def _write_config(
    sandbox: container.Sandbox, request: dict[str, Any], host: str, hosts: list[str]
) -> None:
    config = sandbox.host_path("/opt/ml/input/config")
    config.mkdir(parents=True, exist_ok=True)
    instance_type = request.get("ResourceConfig", {}).get("InstanceType", "ml.m5.xlarge")
    files = {
        "hyperparameters.json": request.get("HyperParameters", {}),
        "inputdataconfig.json": _channel_config(request),
        "resourceconfig.json": training_hosts.resource_config(host, hosts, instance_type),
    }
    for name, content in files.items():
        (config / name).write_text(json.dumps(content), encoding="utf-8")


def _rewrite_shell_scripts(sandbox: container.Sandbox, folder: Path) -> None:
    for script in folder.rglob("*.sh"):
        script.write_text(sandbox.rewrite(script.read_text(encoding="utf-8")), encoding="utf-8")


def _tar(folder: Path, archive: Path) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        for item in sorted(folder.iterdir()):
            tar.add(item, arcname=item.name)


def _metrics(request: dict[str, Any], log: Path) -> list[dict[str, Any]]:
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    found = []
    for definition in request["AlgorithmSpecification"].get("MetricDefinitions", []):
        values = re.findall(definition["Regex"], text)
        if values:
            last = values[-1] if isinstance(values[-1], str) else values[-1][0]
            try:
                found.append({"MetricName": definition["Name"], "Value": float(last)})
            except ValueError:
                continue
    return found


def _download_channels(
    step: str, request: dict[str, Any], context: RunContext, sandbox: container.Sandbox, rank: int
) -> None:
    """Every channel into the host's /opt/ml/input/data/<channel>, distributed as SageMaker
    distributes it over InstanceCount hosts (see `training_hosts`)."""
    count = request.get("ResourceConfig", {}).get("InstanceCount", 1)
    for channel in request.get("InputDataConfig", []):
        name = channel["ChannelName"]
        source = channel["DataSource"]["S3DataSource"]
        target = sandbox.host_path(f"/opt/ml/input/data/{name}")
        distribution = source.get("S3DataDistributionType", "FullyReplicated")
        if count == 1 or distribution == "FullyReplicated":
            download_input(context, step, f"channel {name}", source["S3Uri"], target, "S3Prefix")
        else:
            found = context.s3.objects(source["S3Uri"])
            if not found:
                # Same failure as a replicated channel with nothing under its prefix.
                download_input(
                    context, step, f"channel {name}", source["S3Uri"], target, "S3Prefix"
                )
            target.mkdir(parents=True, exist_ok=True)
            for relative, file in training_hosts.objects_for_host(found, distribution, rank, count):
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, destination)
        _rewrite_shell_scripts(sandbox, target)


def _start_host(
    step: str, request: dict[str, Any], context: RunContext, hosts: list[str], rank: int
) -> container.Sandbox:
    """A host's sandbox with its channels, folders, checkpoints and configuration."""
    host = hosts[rank]
    sandbox = sandbox_for(context, step if len(hosts) == 1 else f"{step}/{host}")
    _download_channels(step, request, context, sandbox, rank)
    for folder in ("/opt/ml/model", "/opt/ml/output/data", CHECKPOINT_DIR):
        sandbox.host_path(folder).mkdir(parents=True, exist_ok=True)
    checkpoint = request.get("CheckpointConfig")
    if checkpoint and context.s3.objects(checkpoint["S3Uri"]):
        # SageMaker copies the checkpoint prefix to every instance of the job.
        context.s3.download(checkpoint["S3Uri"], _checkpoint_dir(sandbox, checkpoint))
    _write_config(sandbox, request, host, hosts)
    return sandbox


def _merged_model(
    step: str, hosts: list[str], sandboxes: list[container.Sandbox], target: Path
) -> Path:
    """Every host's /opt/ml/model in one folder, as SageMaker merges them into the job's one
    model artifact; a file that two hosts wrote fails the job."""
    target.mkdir(parents=True)
    written_by: dict[Path, str] = {}
    for host, sandbox in zip(hosts, sandboxes, strict=True):
        folder = sandbox.host_path("/opt/ml/model")
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            relative = file.relative_to(folder)
            if relative in written_by:
                raise StepError(
                    step,
                    f"ClientError: hosts {written_by[relative]} and {host} both wrote "
                    f"/opt/ml/model/{relative.as_posix()}: the hosts' model folders are merged "
                    "into one model artifact",
                )
            written_by[relative] = host
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target / relative)
    return target


def _checkpoint_dir(sandbox: container.Sandbox, checkpoint: dict[str, Any] | None) -> Path:
    return sandbox.host_path(
        checkpoint.get("LocalPath", CHECKPOINT_DIR) if checkpoint else CHECKPOINT_DIR
    )


def _run_hosts(
    step: str, request: dict[str, Any], context: RunContext, sandboxes: list[container.Sandbox]
) -> list[container.Finished]:
    """Run the job's command on every host at once; how each ended, in host order."""
    hosts = training_hosts.host_names(len(sandboxes))
    algorithm = request["AlgorithmSpecification"]
    command = [*algorithm["ContainerEntrypoint"], *algorithm.get("ContainerArguments", [])]
    variables = {
        **request.get("Environment", {}),
        "TRAINING_JOB_NAME": request["TrainingJobName"],
        "TRAINING_JOB_ARN": job_arn(
            context.world.region, "training-job", request["TrainingJobName"]
        ),
    }
    names = None
    if len(hosts) > 1:
        variables[training_hosts.TRACKER_PORT_ENV] = str(training_hosts.free_port())
        names = {host: training_hosts.LOOPBACK for host in hosts}

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
            variables,
            bool(request.get("EnableNetworkIsolation", False)),
            request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds"),
            echo,
            names,
        )

    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        return list(pool.map(run_host, range(len(hosts))))


def run_training(step: str, request: dict[str, Any], context: RunContext) -> StepOutcome:
    """Run the resolved CreateTrainingJob `request` of `step` on its InstanceCount hosts;
    StepError on failure."""
    name = job_name(context.execution_id, step)
    request = {**request, "TrainingJobName": name}
    validate_request(step, OPERATION, request)
    _check_supported(step, request)
    arn = job_arn(context.world.region, "training-job", name)
    checkpoint = request.get("CheckpointConfig")
    hosts = training_hosts.host_names(request.get("ResourceConfig", {}).get("InstanceCount", 1))
    try:
        sandboxes = [_start_host(step, request, context, hosts, rank) for rank in range(len(hosts))]
        started = datetime.now(UTC)
        ended = _run_hosts(step, request, context, sandboxes)
    except container.ContainerError as error:
        raise StepError(step, str(error)) from error
    for host, sandbox, finished in zip(hosts, sandboxes, ended, strict=True):
        where = f" (host {host})" if len(hosts) > 1 else ""
        if finished.timed_out:
            raise StepError(
                step,
                f"MaxRuntimeExceeded: the job ran longer than MaxRuntimeInSeconds{where}",
                finished.log,
            )
        if finished.exit_code != 0:
            failure = sandbox.host_path(FAILURE_FILE)
            reason = failure.read_text(errors="replace")[:1024].strip() if failure.exists() else ""
            reason = sandbox.container_view(reason)
            raise StepError(
                step,
                f"AlgorithmError{where}: {reason or 'see the job log'}, exit code: "
                f"{finished.exit_code}",
                finished.log,
            )
    notes = [note for finished in ended for note in check_aws_calls(step, finished)]
    output = join_uri(request["OutputDataConfig"]["S3OutputPath"], f"{name}/output")
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = _merged_model(step, hosts, sandboxes, Path(scratch) / "model")
        if request["OutputDataConfig"].get("CompressionType", "GZIP") == "NONE":
            model_uri = join_uri(output, "model/")
            context.s3.upload_dir(model_dir, model_uri)
        else:
            model_uri = join_uri(output, "model.tar.gz")
            _tar(model_dir, Path(scratch) / "model.tar.gz")
            context.s3.put_file(Path(scratch) / "model.tar.gz", model_uri)
    # The output data is the first host's (the master's, as train.py has it).
    master = sandboxes[0]
    written = [model_uri]
    data_dir = master.host_path("/opt/ml/output/data")
    if any(data_dir.iterdir()):
        with tempfile.TemporaryDirectory() as scratch:
            _tar(data_dir, Path(scratch) / "output.tar.gz")
            context.s3.put_file(Path(scratch) / "output.tar.gz", join_uri(output, "output.tar.gz"))
        written.append(join_uri(output, "output.tar.gz"))
    if checkpoint:
        # Every instance's checkpoint folder is synced to the one S3 prefix.
        for sandbox in sandboxes:
            context.s3.upload_dir(_checkpoint_dir(sandbox, checkpoint), checkpoint["S3Uri"])
    properties = {
        **request,
        "TrainingJobArn": arn,
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": model_uri},
        "FinalMetricDataList": _metrics(request, ended[0].log),
        "TrainingStartTime": started.isoformat(),
        "TrainingEndTime": datetime.now(UTC).isoformat(),
    }
    return StepOutcome(properties, written, notes)
