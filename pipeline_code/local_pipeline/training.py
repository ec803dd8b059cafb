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
`.../output/model/` with CompressionType NONE), /opt/ml/output/data `output.tar.gz`, and
checkpoints go to CheckpointConfig.S3Uri; metrics are read from the log by the
MetricDefinitions' regexes. A failed job's reason is /opt/ml/output/failure.
"""

from __future__ import annotations

import json
import re
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline_code.local_pipeline import container
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
HOST = "algo-1"


def _check_supported(step: str, request: dict[str, Any]) -> None:
    algorithm = request["AlgorithmSpecification"]
    if "AlgorithmName" in algorithm or not algorithm.get("ContainerEntrypoint"):
        raise unsupported(
            step, "a training image's own entrypoint", "give ContainerEntrypoint (script mode)"
        )
    if request.get("ResourceConfig", {}).get("InstanceCount", 1) != 1:
        raise unsupported(step, "InstanceCount above 1", "it runs one instance")
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


def _write_config(sandbox: container.Sandbox, request: dict[str, Any]) -> None:
    config = sandbox.host_path("/opt/ml/input/config")
    config.mkdir(parents=True, exist_ok=True)
    resources = request.get("ResourceConfig", {})
    instance_type = resources.get("InstanceType", "ml.m5.xlarge")
    files = {
        "hyperparameters.json": request.get("HyperParameters", {}),
        "inputdataconfig.json": _channel_config(request),
        "resourceconfig.json": {
            "current_host": HOST,
            "current_instance_type": instance_type,
            "current_group_name": "homogeneousCluster",
            "hosts": [HOST],
            "instance_groups": [
                {
                    "instance_group_name": "homogeneousCluster",
                    "instance_type": instance_type,
                    "hosts": [HOST],
                }
            ],
            "network_interface_name": "eth0",
        },
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


def run_training(step: str, request: dict[str, Any], context: RunContext) -> StepOutcome:
    """Run the resolved CreateTrainingJob `request` of `step`; StepError on failure."""
    name = job_name(context.execution_id, step)
    request = {**request, "TrainingJobName": name}
    validate_request(step, OPERATION, request)
    _check_supported(step, request)
    sandbox = sandbox_for(context, step)
    arn = job_arn(context.world.region, "training-job", name)
    checkpoint = request.get("CheckpointConfig")
    try:
        for channel in request.get("InputDataConfig", []):
            target = sandbox.host_path(f"/opt/ml/input/data/{channel['ChannelName']}")
            download_input(
                context,
                step,
                f"channel {channel['ChannelName']}",
                channel["DataSource"]["S3DataSource"]["S3Uri"],
                target,
                "S3Prefix",
            )
            _rewrite_shell_scripts(sandbox, target)
        for folder in ("/opt/ml/model", "/opt/ml/output/data", CHECKPOINT_DIR):
            sandbox.host_path(folder).mkdir(parents=True, exist_ok=True)
        checkpoint_dir = sandbox.host_path(
            checkpoint.get("LocalPath", CHECKPOINT_DIR) if checkpoint else CHECKPOINT_DIR
        )
        if checkpoint and context.s3.objects(checkpoint["S3Uri"]):
            context.s3.download(checkpoint["S3Uri"], checkpoint_dir)
        _write_config(sandbox, request)
        algorithm = request["AlgorithmSpecification"]
        command = [*algorithm["ContainerEntrypoint"], *algorithm.get("ContainerArguments", [])]
        variables = {
            **request.get("Environment", {}),
            "TRAINING_JOB_NAME": name,
            "TRAINING_JOB_ARN": arn,
        }
        started = datetime.now(UTC)
        finished = container.run(
            command,
            sandbox,
            context.world,
            variables,
            bool(request.get("EnableNetworkIsolation", False)),
            request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds"),
            context.echo,
        )
    except container.ContainerError as error:
        raise StepError(step, str(error)) from error
    if finished.timed_out:
        raise StepError(
            step, "MaxRuntimeExceeded: the job ran longer than MaxRuntimeInSeconds", finished.log
        )
    if finished.exit_code != 0:
        failure = sandbox.host_path(FAILURE_FILE)
        reason = failure.read_text(errors="replace")[:1024].strip() if failure.exists() else ""
        reason = sandbox.container_view(reason)
        raise StepError(
            step,
            f"AlgorithmError: {reason or 'see the job log'}, exit code: {finished.exit_code}",
            finished.log,
        )
    notes = check_aws_calls(step, finished)
    output = join_uri(request["OutputDataConfig"]["S3OutputPath"], f"{name}/output")
    model_dir = sandbox.host_path("/opt/ml/model")
    if request["OutputDataConfig"].get("CompressionType", "GZIP") == "NONE":
        model_uri = join_uri(output, "model/")
        context.s3.upload_dir(model_dir, model_uri)
    else:
        model_uri = join_uri(output, "model.tar.gz")
        with tempfile.TemporaryDirectory() as scratch:
            _tar(model_dir, Path(scratch) / "model.tar.gz")
            context.s3.put_file(Path(scratch) / "model.tar.gz", model_uri)
    written = [model_uri]
    data_dir = sandbox.host_path("/opt/ml/output/data")
    if any(data_dir.iterdir()):
        with tempfile.TemporaryDirectory() as scratch:
            _tar(data_dir, Path(scratch) / "output.tar.gz")
            context.s3.put_file(Path(scratch) / "output.tar.gz", join_uri(output, "output.tar.gz"))
        written.append(join_uri(output, "output.tar.gz"))
    if checkpoint:
        context.s3.upload_dir(checkpoint_dir, checkpoint["S3Uri"])
    properties = {
        **request,
        "TrainingJobArn": arn,
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": model_uri},
        "FinalMetricDataList": _metrics(request, finished.log),
        "TrainingStartTime": started.isoformat(),
        "TrainingEndTime": datetime.now(UTC).isoformat(),
    }
    return StepOutcome(properties, written, notes)
