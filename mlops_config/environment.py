"""One environment: the settings block `cdk.json` holds for it (`defaults` merged with
`environments.<name>`), and the EnvironmentConfig the app, the local run and the CLI use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from mlops_config.monitoring import MonitoringConfig
from mlops_config.network import NetworkConfig
from mlops_config.pipeline import PipelineConfig
from mlops_config.promotion import Promotion
from mlops_config.rules import ACCOUNT, EMAIL, Allowed, Integer, OneOf, Region, Section, Text
from mlops_config.schema import Schema
from mlops_config.security import Principals, SecurityConfig
from mlops_config.serving import ServingConfig
from mlops_config.split import SplitConfig
from mlops_config.tracking import TrackingConfig
from mlops_config.trigger import TriggerConfig

Email = Annotated[str, Text(EMAIL, "an email address", verdict_text="is not an email address")]
Days = Annotated[int, Integer(1, 3650)]


class DataConfig(Section):
    noncurrent_version_expiration_days: Days = 30
    """Noncurrent object versions expire after this many days (all buckets)."""
    capture_expiration_days: Days = 90
    """Captured endpoint traffic under `capture/` expires after this many days."""
    producer_principals: Principals = ()
    """IAM roles or users that may write under `landing/` and `ground-truth/`. Empty: any
    principal of the account whose IAM policy allows it."""


class Settings(Section):
    """What `defaults` holds, and each environment overrides key by key."""

    region: Annotated[str, Region()] = "eu-west-1"
    """A region where SageMaker exists."""
    stateful_removal: Annotated[Literal["destroy", "retain"], OneOf()] = "destroy"
    """`retain` keeps stateful resources on delete and turns on termination protection."""
    notification_emails: Annotated[tuple[Email, ...], Allowed("a list of email addresses")] = ()
    """Email subscriptions of the notifications topic."""
    data: DataConfig = DataConfig()
    split: SplitConfig = SplitConfig()
    pipeline: PipelineConfig = PipelineConfig()
    trigger: TriggerConfig = TriggerConfig()
    serving: ServingConfig = ServingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    security: SecurityConfig = SecurityConfig()
    network: NetworkConfig = NetworkConfig()
    tracking: TrackingConfig = TrackingConfig()


class EnvironmentSettings(Settings):
    """One environment's block: its account, and any setting of `defaults` to override."""

    account: Annotated[str, Text(ACCOUNT, "a 12-digit AWS account id (quoted)")]
    """The environment's AWS account id, quoted."""


@dataclass(frozen=True)
class EnvironmentConfig:
    """Everything one environment is built from. `retain` drives removal policies and
    termination protection of the stateful stack."""

    project: str
    name: str
    account: str
    region: str
    retain: bool
    notification_emails: tuple[str, ...]
    schema: Schema
    data: DataConfig
    split: SplitConfig
    pipeline: PipelineConfig
    trigger: TriggerConfig
    serving: ServingConfig
    monitoring: MonitoringConfig
    security: SecurityConfig
    network: NetworkConfig = NetworkConfig()
    promotion: Promotion = Promotion()
    """This environment's place in the promotion chain (`promotion` block of cdk.json)."""
    tracking: TrackingConfig = TrackingConfig()

    @property
    def prefix(self) -> str:
        """`<project>-<env>`: the stem of every name that is part of the contract."""
        return f"{self.project}-{self.name}"

    @property
    def pipeline_name(self) -> str:
        return f"{self.prefix}-training"

    @property
    def serving_stack_name(self) -> str:
        """The Serving stack's name: the triggers read what it serves by name (it is deployed
        after the Training stack, so no reference can carry it)."""
        return f"{self.prefix}-serving"

    @property
    def evaluation_pipeline_name(self) -> str:
        return f"{self.prefix}-evaluation"

    @property
    def scoring_pipeline_name(self) -> str:
        """Batch serving's pipeline: scores each version landing under `score/`."""
        return f"{self.prefix}-scoring"

    @property
    def mlflow_server_name(self) -> str:
        """The managed MLflow tracking server's name (tracking.mlflow managed)."""
        return f"{self.prefix}-mlflow"

    @property
    def model_quality_namespace(self) -> str:
        return f"{self.prefix}/ModelQuality"

    @property
    def model_package_group_name(self) -> str:
        return f"{self.prefix}-models"

    @property
    def tags(self) -> dict[str, str]:
        return {"project": self.project, "environment": self.name}
