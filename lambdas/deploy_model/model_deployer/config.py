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


class ConfigError(ValueError):
    """An environment variable is missing or invalid; the message names it, its value, the rule."""


@dataclass(frozen=True)
class DeployerConfig:
    """What the deploy handler acts on, read from the Lambda environment.

    Attributes:
        stack_name: the Serving stack (env SERVING_STACK_NAME).
        model_package_group_name: this environment's group (env MODEL_PACKAGE_GROUP_NAME).
        deploy_on: "approval" (dev, staging) or "promotion" (prod) (env DEPLOY_ON).
        execution_role_arn: role CloudFormation assumes for the update (env
            CFN_EXECUTION_ROLE_ARN); default None = the role already associated with the stack.
    """

    stack_name: str
    model_package_group_name: str
    deploy_on: DeployOn
    execution_role_arn: str | None = None

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
        role_arn = env.get("CFN_EXECUTION_ROLE_ARN") or None
        if role_arn is not None and not ROLE_ARN.match(role_arn):
            raise ConfigError(
                f"CFN_EXECUTION_ROLE_ARN={role_arn!r} is not an IAM role ARN (leave it unset to "
                "use the role already associated with the stack)"
            )
        return cls(stack_name, group, deploy_on, role_arn)  # type: ignore[arg-type]

    @property
    def requires_promotion(self) -> bool:
        return self.deploy_on == "promotion"


def _required(env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = env.get(name, "")
    if not pattern.match(value):
        raise ConfigError(f"{name}={value!r} is not allowed: set it to {what}")
    return value
