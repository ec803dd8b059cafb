"""Where a model came from: endpoint -> model package -> pipeline execution -> steps -> data.

The chain is read from what the loop records, not inferred:

* endpoint -> package: the Serving stack's `ModelPackageArn` parameter (what CloudFormation
  deployed), plus the endpoint's status (DescribeEndpoint);
* package -> execution: `MetadataProperties.GeneratedBy` (the execution ARN the Register step
  writes), else the `pipeline_execution_id` customer metadata;
* execution -> steps: ListPipelineExecutionSteps (jobs, cache hits, failure reasons);
* execution -> data: the execution's `InputDataUri`, `DatasetVersion` and `DataDigest`
  parameters (the start-training Lambda's ledger values), cross-checked against the package's
  customer metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from cli.aws import CliError, Ops, describe_aws_error, is_not_found
from cli.registry import (
    META_CODE_COMMIT,
    META_DATA_DIGEST,
    META_DATASET_VERSION,
    META_EXECUTION_ID,
    META_INPUT_DATA_URI,
    META_PROMOTED_FROM,
    META_TRAINING_JOB_NAME,
    META_TUNING_JOB_NAME,
    Package,
    describe,
)
from cli.runs import Step, execution_arn_pipeline, parameters, steps
from pipeline_code.definition import (
    PARAM_CODE_COMMIT,
    PARAM_DATA_DIGEST,
    PARAM_DATASET_VERSION,
    PARAM_INPUT_DATA_URI,
)

# Package metadata key -> the pipeline parameter that must hold the same value.
_CROSS_CHECKS = (
    (META_INPUT_DATA_URI, PARAM_INPUT_DATA_URI),
    (META_DATASET_VERSION, PARAM_DATASET_VERSION),
    (META_DATA_DIGEST, PARAM_DATA_DIGEST),
    (META_CODE_COMMIT, PARAM_CODE_COMMIT),
)


@dataclass(frozen=True)
class EndpointLink:
    name: str
    status: str
    stack: str


@dataclass(frozen=True)
class ExecutionLink:
    arn: str
    status: str
    display_name: str
    started: datetime | None
    failure: str | None


@dataclass(frozen=True)
class DataLink:
    input_uri: str | None
    dataset_version: str | None
    data_digest: str | None


@dataclass
class Lineage:
    package: Package
    endpoint: EndpointLink | None = None
    execution: ExecutionLink | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    data: DataLink | None = None
    warnings: list[str] = field(default_factory=list)
    # pipeline.tuning: the trial of the Train step's tuning job whose model was registered
    best_training_job: str | None = None

    def as_dict(self) -> dict[str, Any]:
        p = self.package
        return {
            "endpoint": None if self.endpoint is None else vars(self.endpoint),
            "package": {
                "arn": p.arn,
                "version": p.version,
                "approval": p.approval,
                "stage": p.stage,
                "model_data_url": p.model_data_url,
                "image": p.image,
                "metadata_properties": dict(p.metadata_properties),
                "customer_metadata": dict(p.metadata),
            },
            "execution": None
            if self.execution is None
            else {**vars(self.execution), "started": _iso(self.execution.started)},
            "parameters": self.parameters,
            "steps": [
                {
                    "name": s.name,
                    "status": s.status,
                    "kind": s.job_kind,
                    "job_arn": s.job_arn,
                    "cache_source": s.cache_source,
                    "failure": s.failure,
                }
                for s in self.steps
            ],
            "data": None if self.data is None else vars(self.data),
            "best_training_job": self.best_training_job,
            "warnings": self.warnings,
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def endpoint_link(ops: Ops) -> tuple[EndpointLink, str]:
    """The endpoint and the package the Serving stack deploys on it."""
    stack = ops.stack("serving")
    arn = ops.serving_package_arn()
    name = f"{ops.config.prefix}-endpoint"
    for output in stack.get("Outputs", []):
        if output.get("OutputKey") == "EndpointName":
            name = output.get("OutputValue", name)
    if not arn:
        raise CliError(
            f"nothing is deployed: stack {stack['StackName']} has an empty ModelPackageArn "
            f"(approve a package of {ops.config.model_package_group_name} to deploy one)"
        )
    try:
        status = ops.client("sagemaker").describe_endpoint(EndpointName=name)["EndpointStatus"]
    except ClientError as error:
        if not is_not_found(error):
            raise
        status = "not found"
    return EndpointLink(name, status, stack["StackName"]), arn


def execution_arn_of(ops: Ops, package: Package) -> str | None:
    """The execution that registered `package` (None when the package does not say)."""
    generated_by = package.metadata_properties.get("GeneratedBy", "")
    if execution_arn_pipeline(generated_by):
        return generated_by
    execution_id = package.metadata.get(META_EXECUTION_ID)
    if not execution_id:
        return None
    _, partition, _, region, account = package.arn.split(":", 5)[:5]
    pipeline = ops.config.pipeline_name.lower()
    return (
        f"arn:{partition}:sagemaker:{region}:{account}:pipeline/{pipeline}/execution/{execution_id}"
    )


def read_execution(ops: Ops, arn: str) -> tuple[ExecutionLink, dict[str, str], list[Step]]:
    """Pipeline execution `arn`: its link, its parameters and its steps (AWS errors raise)."""
    described = ops.client("sagemaker").describe_pipeline_execution(PipelineExecutionArn=arn)
    link = ExecutionLink(
        arn=arn,
        status=described.get("PipelineExecutionStatus", "?"),
        display_name=described.get("PipelineExecutionDisplayName", ""),
        started=described.get("CreationTime"),
        failure=described.get("FailureReason"),
    )
    return link, parameters(ops, arn), steps(ops, arn)


def trace(ops: Ops, package: Package | str, endpoint: EndpointLink | None = None) -> Lineage:
    """Follow a package (described, or its ARN) back to its execution, steps and data."""
    if isinstance(package, str):
        package = describe(ops, package)
    lineage = Lineage(package=package, endpoint=endpoint)
    if endpoint is not None and endpoint.status != "InService":
        lineage.warnings.append(f"endpoint {endpoint.name} is {endpoint.status}")
    arn = execution_arn_of(ops, package)
    if arn is None:
        lineage.warnings.append(
            "the package records no pipeline execution (registered outside the pipeline?)"
        )
    elif arn.split(":")[4] != ops.config.account:
        # promote mode: a copy names the execution of the account that trained it
        lineage.warnings.append(
            f"execution {arn} ran in account {arn.split(':')[4]}, which trained this package "
            f"(promoted from {package.metadata.get(META_PROMOTED_FROM, 'another account')}): "
            "its steps are read with that environment's `mlops lineage`"
        )
    else:
        try:
            lineage.execution, lineage.parameters, lineage.steps = read_execution(ops, arn)
        except (ClientError, CliError) as error:
            message = error.message if isinstance(error, CliError) else describe_aws_error(error)
            lineage.warnings.append(f"execution {arn} is not readable: {message}")
    lineage.data = _data(package, lineage)
    lineage.best_training_job = best_trial(package, lineage.steps)
    return lineage


def best_trial(package: Package, steps: list[Step]) -> str | None:
    """With a tuning step, the training job (trial) whose model the package holds, as the
    Register step recorded it (`training_job_name`); None without tuning."""
    if not any(step.job_kind == "tuning" for step in steps) and not package.metadata.get(
        META_TUNING_JOB_NAME
    ):
        return None
    return package.metadata.get(META_TRAINING_JOB_NAME)


def _data(package: Package, lineage: Lineage) -> DataLink:
    params, meta = lineage.parameters, package.metadata
    for meta_key, param in _CROSS_CHECKS:
        if meta_key in meta and param in params and meta[meta_key] != params[param]:
            lineage.warnings.append(
                f"package metadata {meta_key}={meta[meta_key]!r} differs from the execution's "
                f"{param}={params[param]!r}"
            )
    return DataLink(
        input_uri=params.get(PARAM_INPUT_DATA_URI) or meta.get(META_INPUT_DATA_URI),
        dataset_version=params.get(PARAM_DATASET_VERSION) or meta.get(META_DATASET_VERSION),
        data_digest=params.get(PARAM_DATA_DIGEST) or meta.get(META_DATA_DIGEST),
    )
