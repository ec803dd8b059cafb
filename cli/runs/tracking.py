"""Runs side by side, and logging a past execution to MLflow: the operator's end of
`tracking.mlflow`, sharing the run tracker Lambda's code (lambdas/track_runs).

A run is named by its execution ARN, its execution id (of the training pipeline or, failing
that, of the eval-only one: DescribePipelineExecution tells), or by a package version of the
environment's model package group (the package's `MetadataProperties.GeneratedBy` is the
execution that registered it). `compare` reads each run from the tracking server when tracking
is on (the run tagged with the execution's ARN), else straight from what the execution wrote
(the same reader the Lambda uses), so it works with tracking off too; either way the rows are
the run's parameters, metrics and tags as the logger names them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from cli.aws import CliError, Ops, lambda_module
from mlops_config.tracking import tracked_pipelines

# MLflow's client environment variables MLFLOW_TRACKING_USERNAME, _PASSWORD and _TOKEN
CREDENTIAL_KEYS = ("username", "password", "token")
SHOWN_TAGS = (
    "mlops.status",
    "mlops.gate_decision",
    "mlops.dataset_version",
    "mlops.data_digest",
    "mlops.code_commit",
    "mlops.model_package_arn",
)


@dataclass(frozen=True)
class RunView:
    """One run as compare prints it."""

    execution_arn: str
    source: str  # "mlflow <run id>" or "execution artifacts"
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


def partition(ops: Ops) -> str:
    """The environment region's partition (aws, aws-cn, aws-us-gov, ...), from botocore's
    endpoint data: never a hard-coded `aws`."""
    import boto3

    session = ops.clients.session or boto3.session.Session()
    return str(session.get_partition_for_region(ops.config.region))


def tracking_uri(ops: Ops, override: str | None) -> str:
    """The tracking server the environment logs to (or `override`, e.g. a local server)."""
    if override:
        return override
    tracking = ops.config.tracking
    if tracking.mlflow == "external" and (tracking.server_arn or tracking.server_uri):
        return str(tracking.server_arn or tracking.server_uri)
    if tracking.mlflow == "managed":
        config = ops.config
        return (
            f"arn:{partition(ops)}:sagemaker:{config.region}:{config.account}:"
            "mlflow-tracking-server/"
            f"{config.mlflow_server_name}"
        )
    raise CliError(
        f"tracking.mlflow is off in {ops.config.name}: nothing to log to (set it to managed or "
        "external in cdk.json, or give --tracking-uri)"
    )


def mlflow_client(ops: Ops, uri: str) -> Any:
    rest = lambda_module("track_runs", "mlflow_rest")
    server = rest.Server.from_uri(uri)
    signer = None
    if server.region:
        import boto3

        signer = rest.sigv4_signer(boto3.Session(region_name=server.region), server.region)
    # a self-hosted server: the operator's own credentials, as MLflow's client takes them
    env = {k: os.environ.get(f"MLFLOW_TRACKING_{k.upper()}", "") for k in CREDENTIAL_KEYS}
    own = server.arn is None and server.url.startswith("https://")
    credentials = rest.Credentials(**env) if own and any(env.values()) else None
    return rest.MlflowClient(server, signer=signer, s3=ops.client("s3"), credentials=credentials)


def resolve_execution(ops: Ops, name: str) -> str:
    """An execution ARN from an ARN, an execution id of a tracked pipeline (the training one
    first, then the eval-only one: the first that has it), or a package version (digits)."""
    if name.startswith("arn:"):
        return name
    if name.isdigit():
        config = ops.config
        package = (
            f"arn:{partition(ops)}:sagemaker:{config.region}:{config.account}:model-package/"
            f"{config.model_package_group_name}/{name}"
        )
        described = ops.client("sagemaker").describe_model_package(ModelPackageName=package)
        generated = (described.get("MetadataProperties") or {}).get("GeneratedBy", "")
        if ":pipeline/" not in generated:
            raise CliError(f"package version {name} names no pipeline execution (GeneratedBy)")
        return str(generated)
    config = ops.config
    arns = [
        f"arn:{partition(ops)}:sagemaker:{config.region}:{config.account}:pipeline/"
        f"{pipeline}/execution/{name}"
        for pipeline in tracked_pipelines(config)
    ]
    if len(arns) == 1:
        return arns[0]
    sagemaker = ops.client("sagemaker")
    for arn in arns:
        try:
            sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
        except ClientError as error:
            if not _not_found(error):
                raise
            continue
        return arn
    raise CliError(
        f"execution {name} is not an execution of {' or '.join(tracked_pipelines(config))} "
        "(give its ARN, or a package version)"
    )


def _not_found(error: ClientError) -> bool:
    """Whether `error` says the execution does not exist: `ResourceNotFound` (botocore's
    model), or the `ValidationException` SageMaker answers some Describe calls with for a
    missing resource (aws/aws-sdk#165)."""
    found = error.response.get("Error", {})
    if found.get("Code") == "ResourceNotFound":
        return True
    message = str(found.get("Message", "")).lower()
    return found.get("Code") == "ValidationException" and (
        "not found" in message or "does not exist" in message
    )


def _from_mlflow(client: Any, execution_arn: str) -> RunView | None:
    logger = lambda_module("track_runs", "run_logger")
    reader = lambda_module("track_runs", "execution_reader")
    pipeline = reader.pipeline_of(execution_arn)
    experiment = client.find_experiment(pipeline)  # a lookup only: compare creates nothing
    if experiment is None:
        return None
    runs = logger.live_runs(client.search_runs(experiment, logger.execution_filter(execution_arn)))
    if not runs:
        return None
    data = runs[0].get("data", {})
    return RunView(
        execution_arn=execution_arn,
        source=f"mlflow {runs[0]['info']['run_id']}",
        params={p["key"]: p.get("value", "") for p in data.get("params", [])},
        metrics={m["key"]: float(m["value"]) for m in data.get("metrics", [])},
        tags={t["key"]: t.get("value", "") for t in data.get("tags", [])},
    )


def _from_artifacts(ops: Ops, execution_arn: str) -> RunView:
    reader = lambda_module("track_runs", "execution_reader")
    logger = lambda_module("track_runs", "run_logger")
    execution = reader.read_execution(ops.client("sagemaker"), ops.client("s3"), execution_arn)
    content = logger.execution_content(execution)
    return RunView(
        execution_arn=execution_arn,
        source="execution artifacts",
        params=content.params,
        metrics={m["key"]: float(m["value"]) for m in content.metrics},
        tags=content.tags,
    )


def run_view(ops: Ops, name: str, client: Any | None) -> RunView:
    """The run of `name`: from MLflow if `client` (falling back to the artifacts when the run
    was never logged), else from the execution's artifacts."""
    arn = resolve_execution(ops, name)
    if client is not None:
        found = _from_mlflow(client, arn)
        if found is not None:
            return found
    return _from_artifacts(ops, arn)


# Metrics that count something (split.rows, gate.test_rows, gate.test_positives,
# tuning.trials, ...): shown as whole numbers, not 30000.0000.
COUNT_SUFFIXES = ("rows", "positives", "trials")


def _is_count(key: str) -> bool:
    return key.rsplit(".", 1)[-1].endswith(COUNT_SUFFIXES)


def _shown(value: Any, count: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if count and value.is_integer() else f"{value:.4f}"
    return str(value)


def side_by_side(left: RunView, right: RunView) -> list[str]:
    """Rows `key  A  B  (B - A)`: tags first, then parameters that differ or matter, then every
    metric; a metric on one side only shows `-` on the other."""
    rows: list[tuple[str, str, str, str]] = [
        (
            "execution",
            left.execution_arn.rsplit("/", 1)[-1],
            right.execution_arn.rsplit("/", 1)[-1],
            "",
        ),
        ("from", left.source, right.source, ""),
    ]
    for tag in SHOWN_TAGS:
        if tag in left.tags or tag in right.tags:
            rows.append(
                (tag.removeprefix("mlops."), left.tags.get(tag, "-"), right.tags.get(tag, "-"), "")
            )
    for key in sorted(set(left.params) | set(right.params)):
        a, b = left.params.get(key, "-"), right.params.get(key, "-")
        rows.append((key, a, b, "" if a == b else "differs"))
    for key in sorted(set(left.metrics) | set(right.metrics)):
        a_value, b_value = left.metrics.get(key), right.metrics.get(key)
        count = _is_count(key)
        delta = ""
        if a_value is not None and b_value is not None:
            difference = b_value - a_value
            whole = count and difference.is_integer()
            delta = f"{difference:+.0f}" if whole else f"{difference:+.4f}"
        rows.append((key, _shown(a_value, count), _shown(b_value, count), delta))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    header = ("", "A", "B", "B - A")
    return [
        f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip()
        for r in [header, *rows]
    ]
