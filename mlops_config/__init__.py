"""The configuration model: `cdk.json` context parsed into frozen, validated settings.

No CDK import: the CDK app (`stacks/`), the local run (`pipeline_code/`) and the operator CLI
(`cli/`) all read configuration through this package, and only `stacks/` turns it into
constructs. Modules by seam: `rules` (how a value is checked), `errors` (the one-line
messages), `schema`, `split`, `pipeline`, `trigger`, `serving`, `monitoring`, `security`,
`network`, `tracking` (one block each), `delivery` (the optional delivery pipeline),
`promotion` (which environment trains and the chain its models are promoted along),
`environment` (one environment's settings), `loading` (cdk.json, defaults and overrides)
and `json_schema` (cdk.schema.json, for editors).
"""

from mlops_config.environment import DataConfig, EnvironmentConfig, EnvironmentSettings, Settings
from mlops_config.errors import ConfigError
from mlops_config.loading import (
    ALL_ENVIRONMENTS,
    CDK_JSON,
    DEFAULT_ENVIRONMENT,
    DELIVERY,
    PROMOTION,
    account_owners,
    environment_names,
    load_config,
    parse_delivery,
    parse_environment,
    read_cdk_json_context,
    select_environments,
)
from mlops_config.monitoring import (
    MODEL_MONITOR_MAX_FEATURES,
    MONITORING_ENGINES,
    MonitoringConfig,
    model_monitor_interval_hours,
    model_monitor_schedule,
)
from mlops_config.network import REQUIRED_ENDPOINTS, NetworkConfig
from mlops_config.pipeline import METRICS, Hyperparameters, PipelineConfig
from mlops_config.promotion import PROMOTE, Promotion, PromotionConfig, PromotionPeer
from mlops_config.schema import FEATURE_TYPES, Feature, FeatureType, Schema
from mlops_config.security import SecurityConfig
from mlops_config.serving import ServingConfig
from mlops_config.split import SplitConfig
from mlops_config.tracking import MLFLOW_MODES, TrackingConfig
from mlops_config.trigger import TriggerConfig

__all__ = [
    "ALL_ENVIRONMENTS",
    "CDK_JSON",
    "DEFAULT_ENVIRONMENT",
    "DELIVERY",
    "FEATURE_TYPES",
    "METRICS",
    "MLFLOW_MODES",
    "MODEL_MONITOR_MAX_FEATURES",
    "MONITORING_ENGINES",
    "PROMOTE",
    "PROMOTION",
    "REQUIRED_ENDPOINTS",
    "ConfigError",
    "DataConfig",
    "EnvironmentConfig",
    "EnvironmentSettings",
    "Feature",
    "FeatureType",
    "Hyperparameters",
    "MonitoringConfig",
    "NetworkConfig",
    "PipelineConfig",
    "Promotion",
    "PromotionConfig",
    "PromotionPeer",
    "Schema",
    "SecurityConfig",
    "ServingConfig",
    "Settings",
    "TrackingConfig",
    "SplitConfig",
    "TriggerConfig",
    "account_owners",
    "environment_names",
    "load_config",
    "model_monitor_interval_hours",
    "model_monitor_schedule",
    "parse_delivery",
    "parse_environment",
    "read_cdk_json_context",
    "select_environments",
]
