"""AWS access for the CLI: clients in the environment's region, the account guard, stack
look-ups, the Lambda modules the CLI reuses, and one-line messages for every AWS failure.

Every command works on one environment of cdk.json (`--env`). The first AWS call of a command
checks that the credentials belong to that environment's account, so an operator holding
production credentials cannot approve a model "in dev" by mistake.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from mlops_config import ConfigError, EnvironmentConfig

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"

# Throttling and transient 5xx are retried by botocore (standard mode, jittered backoff).
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 5})

_NOT_FOUND_CODES = frozenset(
    {"ValidationError", "ValidationException", "ResourceNotFound", "ResourceNotFoundException"}
)
_EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
_BAD_CREDENTIALS_CODES = frozenset(
    {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}
)
# A stack in these states has no usable outputs or parameters.
_UNUSABLE_STACK_STATES = frozenset(
    {
        "CREATE_IN_PROGRESS",
        "CREATE_FAILED",
        "ROLLBACK_IN_PROGRESS",
        "ROLLBACK_FAILED",
        "ROLLBACK_COMPLETE",
        "DELETE_IN_PROGRESS",
        "DELETE_FAILED",
        "DELETE_COMPLETE",
        "REVIEW_IN_PROGRESS",
    }
)


class CliError(Exception):
    """A failure the operator can act on: printed as one line (`Error: ...`), exit code 1."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_not_found(error: ClientError) -> bool:
    """SageMaker answers "does not exist" with ValidationException or ResourceNotFound."""
    return error_code(error) in _NOT_FOUND_CODES


def describe_aws_error(error: Exception) -> str:
    """One line saying what went wrong and what to do about it."""
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials found: set AWS_PROFILE (or run `aws sso login`), or export "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(error, NoRegionError):
        return "no AWS region: set `region` for this environment in cdk.json"
    if isinstance(error, EndpointConnectionError):
        return f"cannot reach AWS: {error}"
    if isinstance(error, ClientError):
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message", "")
        if code in _EXPIRED_CODES:
            return f"the AWS credentials have expired ({code}): refresh them and retry"
        if code in _BAD_CREDENTIALS_CODES:
            return f"AWS rejected the credentials ({code}): check AWS_PROFILE or the access keys"
        if code.startswith("AccessDenied") or code == "UnauthorizedOperation":
            return f"access denied: {error.operation_name}: {message}"
        return f"{error.operation_name} failed: {code}: {message}"
    return f"AWS call failed: {error}"


class Clients:
    """boto3 clients of one region, created on first use and reused.

    Args:
        region: AWS region of the environment; None = boto3's default lookup.
        preset: ready-made clients by service name (tests pass Stubber-wrapped ones here).
        session: boto3 session to create clients from; default None = boto3's default session.
    """

    def __init__(
        self,
        region: str | None,
        *,
        preset: Mapping[str, Any] | None = None,
        session: boto3.session.Session | None = None,
    ) -> None:
        self.region = region
        self.session = session
        self._clients: dict[str, Any] = dict(preset or {})

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            factory = self.session.client if self.session else boto3.client
            self._clients[service] = factory(service, region_name=self.region, config=CLIENT_CONFIG)
        return self._clients[service]

    def preset(self, service: str, client: Any) -> None:
        """Use `client` for `service` from now on."""
        self._clients[service] = client


@dataclass
class Ops:
    """One command's view of an environment: its config and its account's AWS clients.

    Attributes:
        config: the environment from cdk.json.
        clients: client factory for the environment's region.
        accounts: account id -> environment name for every environment of cdk.json (used to
            suggest the right `--env` when the credentials belong to another environment).
    """

    config: EnvironmentConfig
    clients: Clients
    accounts: Mapping[str, str] = field(default_factory=dict)
    _account_checked: bool = field(default=False, init=False)
    _stacks: dict[str, Mapping[str, Any]] = field(default_factory=dict, init=False)

    def client(self, service: str) -> Any:
        """A client for `service`, after checking (once) that the credentials fit the env."""
        if not self._account_checked:
            self._check_account()
        return self.clients(service)

    def _check_account(self) -> None:
        account = self.clients("sts").get_caller_identity()["Account"]
        self._account_checked = True
        if account != self.config.account:
            hint = self.accounts.get(account)
            suggestion = (
                f"use --env {hint}"
                if hint
                else "switch to credentials of that account (AWS_PROFILE)"
            )
            raise CliError(
                f"the AWS credentials are for account {account}, but env {self.config.name!r} is "
                f"account {self.config.account} (cdk.json): {suggestion}"
            )

    def stack_name(self, role: str) -> str:
        """`<prefix>-<role>`, as stacks/app_builder.py names them (role: data|training|...)."""
        return f"{self.config.prefix}-{role}"

    def stack(self, role: str) -> Mapping[str, Any]:
        """DescribeStacks of one of this environment's stacks; a clear error if not deployed."""
        name = self.stack_name(role)
        if name in self._stacks:
            return self._stacks[name]
        try:
            stacks = self.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
        except ClientError as error:
            if error_code(error) == "ValidationError" and "does not exist" in str(error):
                raise self._not_deployed(name) from error
            raise
        if not stacks or stacks[0].get("StackStatus") == "DELETE_COMPLETE":
            raise self._not_deployed(name)
        stack = stacks[0]
        if stack["StackStatus"] in _UNUSABLE_STACK_STATES:
            raise CliError(
                f"stack {name} is {stack['StackStatus']}: deploy it again with "
                f"`make deploy ENV={self.config.name}`"
            )
        self._stacks[name] = stack
        return stack

    def _not_deployed(self, name: str) -> CliError:
        return CliError(
            f"stack {name} is not deployed in {self.config.region} (account "
            f"{self.config.account}): deploy it with `make deploy ENV={self.config.name}`"
        )

    def stack_output(self, role: str, key: str) -> str:
        """The value of output `key` of one of this environment's stacks."""
        stack = self.stack(role)
        for output in stack.get("Outputs", []):
            if output.get("OutputKey") == key:
                return str(output.get("OutputValue", ""))
        raise CliError(
            f"stack {stack['StackName']} has no output {key!r}: it predates this CLI, deploy it "
            f"again with `make deploy ENV={self.config.name}`"
        )

    def served_package(self) -> Any:
        """What the Serving stack serves (model_deployer.served_package, THE rule); a stack
        that is not deployed serves nothing. Raises CliError for a stack that is not the
        Serving stack."""
        deployer = model_deployer()
        try:
            stack = self.stack("serving")
        except CliError:
            return deployer.served_package(None)
        try:
            return deployer.served_package(stack)
        except deployer.NotAServingStackError as error:
            raise CliError(str(error)) from error

    def serving_package_arn(self, *, required: bool = True) -> str | None:
        """The package the Serving stack serves (`served_package`), or None when nothing is
        deployed.

        Args:
            required: raise when the Serving stack is not deployed or is changing (the
                served package is not known until it settles); default True. With False,
                a missing stack counts as "nothing deployed" and a changing one as unknown
                (None).
        """
        if required:
            self.stack("serving")  # a clear error when it is not deployed
        served = self.served_package()
        if not served.settled and required:
            raise CliError(
                f"stack {self.stack_name('serving')} is {served.stack_status}: the serving "
                "model is changing or waits for an operator; retry once the stack settles"
            )
        return served.model_package_arn  # type: ignore[no-any-return]


def listed(
    ops: Ops, operation: str, items: str, missing: str, **request: Any
) -> Iterator[Mapping[str, Any]]:
    """The `items` of every page of SageMaker's paginated `operation`; `missing` is the
    one-line error when what it lists does not exist."""
    try:
        for page in ops.client("sagemaker").get_paginator(operation).paginate(**request):
            yield from page.get(items, [])
    except ClientError as error:
        if is_not_found(error):
            raise CliError(missing) from error
        raise


def command_ops(ctx: Any) -> Ops:
    """The Ops of the running command (the root callback puts them in its context)."""
    ops = ctx.obj
    assert isinstance(ops, Ops), "the root callback builds the Ops"
    return ops


def lambda_module(function: str, module: str) -> ModuleType:
    """Import `lambdas/<function>/<module>.py` the way the Lambda runtime does (folder and
    lambdas/shared/ on sys.path, bare module name), so the CLI and the Lambda share one
    implementation."""
    for folder in (str(LAMBDAS_DIR / "shared"), str(LAMBDAS_DIR / function)):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    return importlib.import_module(module)


def model_deployer() -> ModuleType:
    """lambdas/deploy_model/model_deployer.py (promotion, rollback, serving-stack rules)."""
    return lambda_module("deploy_model", "model_deployer")


def dataset_completion() -> ModuleType:
    """lambdas/start_training/dataset_completion.py (completion marker names)."""
    return lambda_module("start_training", "dataset_completion")


def translate_errors(call: Callable[[], Any]) -> Any:
    """Run `call`, turning AWS and configuration failures into one-line CliErrors."""
    try:
        return call()
    except (NoCredentialsError, PartialCredentialsError, NoRegionError) as error:
        raise CliError(describe_aws_error(error)) from error
    except (ClientError, BotoCoreError) as error:
        raise CliError(describe_aws_error(error)) from error
    except ConfigError as error:
        raise CliError(f"cdk.json: {error}") from error
