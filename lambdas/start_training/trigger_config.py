"""The trigger's settings, read once from the Lambda environment and validated by name."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

COMPLETION_MODE_MARKER = "marker"
COMPLETION_MODE_QUIET = "quiet-period"
COMPLETION_MODES = (COMPLETION_MODE_MARKER, COMPLETION_MODE_QUIET)

MAX_SQS_DELAY_SECONDS = 900

# The pipeline derives its version manifest's URI with the same prefix (verify_inputs.py).
DEFAULT_MANIFEST_PREFIX = "dataset-manifests/"
SAFE_PREFIX = re.compile(r"^(?:[A-Za-z0-9_.\-]+/)+$")


class ConfigError(ValueError):
    """An environment variable is missing or invalid."""


def _env_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} is invalid: expected an integer in [{low}, {high}]")
    return value


def _env_required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is required (environment variable is missing or empty)")
    return value


def _env_prefix(env: Mapping[str, str], name: str, default: str) -> str:
    prefix = env.get(name, "").strip() or default
    if not SAFE_PREFIX.match(prefix):
        raise ConfigError(
            f"{name}={prefix!r} is invalid: expected folders of letters, digits, "
            f"'_', '.', '-' ending in '/', e.g. {default!r}"
        )
    return prefix


@dataclass(frozen=True)
class TriggerConfig:
    """Settings read once from the Lambda environment (see `from_env` for names/defaults)."""

    pipeline_name: str
    ledger_table: str
    data_bucket: str
    queue_url: str
    landing_prefix: str = "landing/"
    completion_mode: str = COMPLETION_MODE_MARKER
    quiet_period_seconds: int = 300
    max_concurrent_executions: int = 2
    allow_reupload: bool = False
    retrain_cooldown_seconds: int = 86_400
    defer_seconds: int = 300
    lease_seconds: int = 180
    model_package_parameter: str = ""
    model_role_parameter: str = ""
    champion_parameter: str = ""
    # The Serving stack, whose served package is each run's production model (production_model).
    serving_stack_name: str = ""
    # Where version manifests go (version_manifest); from_env requires the bucket, only code
    # that starts no run may leave it empty.
    manifest_bucket: str = ""
    manifest_prefix: str = DEFAULT_MANIFEST_PREFIX
    # Alarms may retrain only if their name starts with this (the environment's retrain
    # prefix; the EventBridge rule filters the same way, this check holds if a rule is widened).
    retrain_alarm_prefix: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TriggerConfig:
        """Parse and validate; raise ConfigError naming the variable, value and what's allowed.

        Required: PIPELINE_NAME, LEDGER_TABLE, DATA_BUCKET, QUEUE_URL. Optional (default):
        LANDING_PREFIX ("landing/"), COMPLETION_MODE ("marker" | "quiet-period"),
        QUIET_PERIOD_SECONDS (300, 1..86400), MAX_CONCURRENT_EXECUTIONS (2, 1..1000),
        ALLOW_REUPLOAD ("false" | "true"), RETRAIN_COOLDOWN_SECONDS (86400, 0..31536000),
        DEFER_SECONDS (300, 1..900: wait before re-trying a version held by the cap),
        LEASE_SECONDS (180, 30..3600: claim lease; Lambda timeout < lease < SQS visibility),
        MODEL_PACKAGE_PARAMETER ("": the pipeline parameter that takes the model to score: a
        retrain request's model_package_arn, else the served package; empty = such requests
        are rejected), MODEL_ROLE_PARAMETER ("": the parameter that says "production" or
        "candidate" for it), CHAMPION_PARAMETER ("": the pipeline parameter that takes the
        champion, the served package), SERVING_STACK_NAME (required with CHAMPION_PARAMETER or
        MODEL_PACKAGE_PARAMETER: the stack whose ModelPackageArn is what serves),
        MANIFEST_BUCKET (required: the artifact bucket, where each run's version manifest is
        written), MANIFEST_PREFIX ("dataset-manifests/"), RETRAIN_ALARM_PREFIX ("": alarms
        named otherwise are rejected when it is set).
        """
        prefix = _env_prefix(env, "LANDING_PREFIX", "landing/")
        mode = env.get("COMPLETION_MODE", "").strip() or COMPLETION_MODE_MARKER
        if mode not in COMPLETION_MODES:
            raise ConfigError(
                f"COMPLETION_MODE={mode!r} is invalid: expected one of "
                f"{', '.join(COMPLETION_MODES)}"
            )
        champion = env.get("CHAMPION_PARAMETER", "").strip()
        model_package = env.get("MODEL_PACKAGE_PARAMETER", "").strip()
        model_role = env.get("MODEL_ROLE_PARAMETER", "").strip()
        if model_role and not model_package:
            raise ConfigError("MODEL_ROLE_PARAMETER needs MODEL_PACKAGE_PARAMETER (the model)")
        reupload = env.get("ALLOW_REUPLOAD", "").strip().lower() or "false"
        if reupload not in ("true", "false"):
            raise ConfigError(f"ALLOW_REUPLOAD={reupload!r} is invalid: expected true or false")
        return cls(
            pipeline_name=_env_required(env, "PIPELINE_NAME"),
            ledger_table=_env_required(env, "LEDGER_TABLE"),
            data_bucket=_env_required(env, "DATA_BUCKET"),
            queue_url=_env_required(env, "QUEUE_URL"),
            landing_prefix=prefix,
            completion_mode=mode,
            quiet_period_seconds=_env_int(env, "QUIET_PERIOD_SECONDS", 300, 1, 86_400),
            max_concurrent_executions=_env_int(env, "MAX_CONCURRENT_EXECUTIONS", 2, 1, 1000),
            allow_reupload=reupload == "true",
            retrain_cooldown_seconds=_env_int(
                env, "RETRAIN_COOLDOWN_SECONDS", 86_400, 0, 31_536_000
            ),
            defer_seconds=_env_int(env, "DEFER_SECONDS", 300, 1, MAX_SQS_DELAY_SECONDS),
            lease_seconds=_env_int(env, "LEASE_SECONDS", 180, 30, 3600),
            model_package_parameter=model_package,
            model_role_parameter=model_role,
            champion_parameter=champion,
            serving_stack_name=(
                _env_required(env, "SERVING_STACK_NAME") if champion or model_package else ""
            ),
            manifest_bucket=_env_required(env, "MANIFEST_BUCKET"),
            manifest_prefix=_env_prefix(env, "MANIFEST_PREFIX", DEFAULT_MANIFEST_PREFIX),
            retrain_alarm_prefix=env.get("RETRAIN_ALARM_PREFIX", "").strip(),
        )
