"""The deploy handler's configuration, read and validated from the Lambda environment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from botocore.config import Config

from .registry import MODEL_PACKAGE_GROUP_NAME

# Throttling and transient 5xx are retried by botocore (5 attempts in all, jittered backoff).
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 5})

DeployOn = Literal["approval", "promotion"]
DEPLOY_ON_VALUES: tuple[str, ...] = ("approval", "promotion")

STACK_NAME = re.compile(r"^[a-zA-Z][-a-zA-Z0-9]{0,127}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
KEY_PREFIX = re.compile(r"^[^/\s][^\s]{0,500}/$")


class ConfigError(ValueError):
    """An environment variable is missing or invalid; the message names it, its value, the rule."""


@dataclass(frozen=True)
class DeployerConfig:
    """What the deploy handler acts on, read from the Lambda environment.

    Attributes:
        stack_name: the Serving stack (env SERVING_STACK_NAME).
        model_package_group_name: this environment's group (env MODEL_PACKAGE_GROUP_NAME).
        deploy_on: "approval" (dev, staging) or "promotion" (prod) (env DEPLOY_ON).
        service_role_arn: the Serving stack's deploy role, the only role CloudFormation may
            use for the deployer's updates (env CFN_SERVICE_ROLE_ARN).
        artifact_bucket: where model artifacts live (env ARTIFACT_BUCKET).
        model_artifact_prefix: their key prefix, ending in "/" (env MODEL_ARTIFACT_PREFIX).
    """

    stack_name: str
    model_package_group_name: str
    deploy_on: DeployOn
    service_role_arn: str
    artifact_bucket: str
    model_artifact_prefix: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DeployerConfig:
        """Parse and validate the environment; raises ConfigError naming the bad variable."""
        stack_name = _required(env, "SERVING_STACK_NAME", STACK_NAME, "a CloudFormation stack name")
        group = _required(
            env, "MODEL_PACKAGE_GROUP_NAME", MODEL_PACKAGE_GROUP_NAME, "a model package group name"
        )
        deploy_on = env.get("DEPLOY_ON", "")
        if deploy_on not in DEPLOY_ON_VALUES:
            raise ConfigError(
                f"DEPLOY_ON={deploy_on!r} is not allowed: use one of {DEPLOY_ON_VALUES}"
            )
        role_arn = _required(env, "CFN_SERVICE_ROLE_ARN", ROLE_ARN, "an IAM role ARN")
        bucket = _required(env, "ARTIFACT_BUCKET", BUCKET_NAME, "an S3 bucket name")
        prefix = _required(
            env, "MODEL_ARTIFACT_PREFIX", KEY_PREFIX, "an S3 key prefix ending in '/'"
        )
        return cls(stack_name, group, deploy_on, role_arn, bucket, prefix)  # type: ignore[arg-type]

    @property
    def requires_promotion(self) -> bool:
        return self.deploy_on == "promotion"


def _required(env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = env.get(name, "")
    if not pattern.match(value):
        raise ConfigError(f"{name}={value!r} is not allowed: set it to {what}")
    return value
