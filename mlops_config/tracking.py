"""Experiment tracking: whether every training-pipeline execution is logged as an MLflow run,
and to which tracking server (none, one the Data stack creates, or an existing one)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, get_args

from pydantic import model_validator

from mlops_config.network import TRACKING_ENDPOINT, NetworkConfig
from mlops_config.rules import OneOf, Section, Text, field_error, rule_error

if TYPE_CHECKING:
    from mlops_config.environment import EnvironmentConfig

MlflowMode = Literal["off", "managed", "external"]
MLFLOW_MODES: tuple[str, ...] = get_args(MlflowMode)
ServerSize = Literal["Small", "Medium", "Large"]
# A SageMaker managed MLflow tracking server (CreateMlflowTrackingServer's TrackingServerArn).
TRACKING_SERVER_ARN = (
    r"^arn:aws(-[a-z]+)*:sagemaker:[a-z0-9-]+:\d{12}:mlflow-tracking-server/"
    r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$"
)
# CloudFormation's pattern for AWS::SageMaker::MlflowTrackingServer MlflowVersion.
MLFLOW_VERSION = r"^\d+(\.\d+)+$"
# A self-hosted MLflow server: https only (credentials travel in a header), no user info in the
# URL (they belong in the secret), no query or fragment.
SERVER_URI = r"^https://[A-Za-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9._~/-]*)?$"
# A Secrets Manager secret's full ARN (with the 6-character suffix Secrets Manager appends: IAM
# matches the full ARN, so a partial one could not be granted exactly).
SECRET_ARN = (
    r"^arn:aws(-[a-z]+)*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+"
    r"-[A-Za-z0-9]{6}$"
)


class TrackingConfig(Section):
    mlflow: Annotated[MlflowMode, OneOf()] = "off"
    """`off`: no tracking. `managed`: the Data stack creates a SageMaker managed MLflow
    tracking server (billed per hour while it exists: README, Experiment tracking) whose
    artifacts go to the artifact bucket under `mlflow/`. `external`: log to the existing
    tracking server `server_arn` or `server_uri`. Either way a Lambda logs each finished
    training execution as one run; training itself stays network-isolated."""
    server_size: Annotated[ServerSize, OneOf()] = "Small"
    """managed: the tracking server's size (Small suits up to about 25 users)."""
    mlflow_version: Annotated[
        str | None, Text(MLFLOW_VERSION, "an MLflow version such as 3.0", nullable=True)
    ] = None
    """managed: the server's MLflow version. Default: SageMaker's default version."""
    server_arn: Annotated[
        str | None,
        Text(
            TRACKING_SERVER_ARN,
            "a SageMaker MLflow tracking server ARN, e.g. "
            "arn:aws:sagemaker:eu-west-1:111111111111:mlflow-tracking-server/name",
            nullable=True,
        ),
    ] = None
    """external: a SageMaker MLflow tracking server's ARN (in this environment's account and
    region). Exactly one of server_arn and server_uri."""
    server_uri: Annotated[
        str | None,
        Text(
            SERVER_URI,
            "an https URL of an MLflow server, e.g. https://mlflow.example.com",
            nullable=True,
        ),
    ] = None
    """external: a self-hosted open-source MLflow server's https URL (not in vpc mode). Exactly
    one of server_arn and server_uri."""
    credentials_secret_arn: Annotated[
        str | None,
        Text(
            SECRET_ARN,
            "a Secrets Manager secret's full ARN, e.g. "
            "arn:aws:secretsmanager:eu-west-1:111111111111:secret:mlflow-AbCdEf",
            nullable=True,
        ),
    ] = None
    """server_uri: the secret holding the server's credentials, JSON `{"username", "password"}`
    (basic auth) or `{"token"}` (bearer), as MLflow's MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN.
    The full ARN with its 6-character suffix: a partial ARN passes this check but the grant
    will not match it (AccessDenied at run time). Default: none, the server takes
    unauthenticated requests."""

    @property
    def enabled(self) -> bool:
        return self.mlflow != "off"

    @model_validator(mode="after")
    def _consistent(self) -> TrackingConfig:
        servers = [k for k in ("server_arn", "server_uri") if getattr(self, k) is not None]
        if self.mlflow == "external" and not servers:
            raise rule_error(
                "is missing: mlflow external needs it (or server_uri)", field="server_arn"
            )
        if self.mlflow == "external" and len(servers) == 2:
            raise field_error(
                "server_uri", self.server_uri, "is not allowed with server_arn: give one of them"
            )
        if self.mlflow != "external" and servers:
            key = servers[0]
            raise field_error(key, getattr(self, key), f"is not allowed: mlflow is {self.mlflow}")
        if self.credentials_secret_arn is not None and self.server_uri is None:
            raise field_error(
                "credentials_secret_arn",
                self.credentials_secret_arn,
                "is not allowed without server_uri (a SageMaker server is reached with IAM)",
            )
        if self.mlflow != "managed":
            for key in ("mlflow_version",):
                if getattr(self, key) is not None:
                    raise field_error(
                        key, getattr(self, key), f"is not allowed: mlflow is {self.mlflow}"
                    )
        return self


def network_refusal(tracking: TrackingConfig, network: NetworkConfig) -> str | None:
    """In an imported VPC the run tracker (in the private subnets) reaches the tracking server
    only through the VPC's SageMaker MLflow endpoint: it must be listed or acknowledged (a
    created VPC gets one: constructs/private_network.py). The error after the environment's
    path, or None."""
    if network.in_vpc and tracking.server_uri is not None:
        return (
            f"tracking.server_uri = {tracking.server_uri!r} is not allowed with network.mode = "
            "'vpc': the private subnets have no internet path to a self-hosted server (use a "
            "SageMaker tracking server, managed or server_arn, reached through its endpoint)"
        )
    if not tracking.enabled or not network.in_vpc or network.create_vpc:
        return None
    if TRACKING_ENDPOINT in (*network.endpoints, *network.acknowledge_missing_endpoints):
        return None
    return (
        f"network.endpoints = {list(network.endpoints)!r} is missing {TRACKING_ENDPOINT}: "
        f"tracking.mlflow = "
        f"{tracking.mlflow!r} logs runs from the private subnets through the SageMaker MLflow "
        f"endpoint (service aws.sagemaker.<region>.experiments); add it to the VPC and list it "
        "here, or name it in network.acknowledge_missing_endpoints"
    )


def tracked_pipelines(config: EnvironmentConfig) -> list[str]:
    """The pipelines whose executions become runs: the training and eval-only pipelines, or in a
    promotion target (it trains nothing: its training pipeline never runs) the eval-only one."""
    if not config.promotion.trains:
        return [config.evaluation_pipeline_name]
    return [config.pipeline_name, config.evaluation_pipeline_name]
