"""How the app itself is delivered: the optional `delivery` block of cdk.json.

With it, `make synth ENV=delivery` builds a CDK Pipelines stack in a tooling account that takes
the repository's main branch, runs the project's own `make test` and synthesizes every stage,
then deploys the stages in order into their accounts, with a manual approval (after a visible
`cdk diff`) before the stages that ask for one. Without it nothing changes: stacks are deployed
with `make deploy` as before.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import model_validator

from mlops_config.rules import (
    ACCOUNT,
    Allowed,
    OneOf,
    Region,
    Section,
    Text,
    field_error,
    rule_error,
)

CONNECTION_ARN = (
    r"^arn:aws(-[a-z]+)*:(codestar-connections|codeconnections):[a-z0-9-]+:\d{12}:"
    r"connection/[0-9a-f-]{36}$"
)
GITHUB_REPOSITORY = r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$"
CODECOMMIT_REPOSITORY = r"^[A-Za-z0-9._-]{1,100}$"
ENVIRONMENT_NAME = r"^[a-z][a-z0-9-]{0,19}$"

EnvironmentName = Annotated[str, Text(ENVIRONMENT_NAME, "an environment name of cdk.json")]
EnvironmentNames = Annotated[
    tuple[EnvironmentName, ...], Allowed("a list of environment names of cdk.json")
]


class DeliveryConfig(Section):
    """The delivery pipeline (`aws_cdk.pipelines`): where it lives, what it watches, where it
    deploys."""

    account: Annotated[str, Text(ACCOUNT, "a 12-digit AWS account id (quoted)")]
    """The tooling account the pipeline lives in (bootstrapped with `cdk bootstrap`; every
    stage's account is bootstrapped with `--trust` this account)."""
    region: Annotated[str, Region()] = "eu-west-1"
    """The pipeline's region."""
    source: Annotated[Literal["github", "codecommit"], OneOf()] = "github"
    """`github`: a GitHub repository through a CodeConnections (CodeStar) connection;
    `codecommit`: a CodeCommit repository of the tooling account."""
    repository: Annotated[str, Text(r"^\S{1,140}$", "a repository name")]
    """`owner/name` on GitHub, or the CodeCommit repository's name."""
    branch: Annotated[str, Text(r"^[A-Za-z0-9._/-]{1,255}$", "a git branch name")] = "main"
    """The branch whose pushes run the pipeline."""
    connection_arn: Annotated[
        str | None, Text(CONNECTION_ARN, "a CodeConnections connection ARN", nullable=True)
    ] = None
    """`source: github`: the ARN of an AVAILABLE connection in the tooling account (created
    once in the console, which asks GitHub for the app's access)."""
    stages: EnvironmentNames = ("dev", "staging", "prod")
    """The environments the pipeline deploys, in this order."""
    approval_before: EnvironmentNames = ("prod",)
    """Stages that wait for a manual approval (after their `cdk diff` has run)."""

    @model_validator(mode="after")
    def _consistent(self) -> DeliveryConfig:
        github = self.source == "github"
        if not re.fullmatch(
            GITHUB_REPOSITORY if github else CODECOMMIT_REPOSITORY, self.repository
        ):
            shape = "owner/name" if github else "a CodeCommit repository name"
            raise field_error(
                "repository", self.repository, f"is not allowed: {shape} (source {self.source})"
            )
        if github and not self.connection_arn:
            raise rule_error(
                "is missing: source github needs the ARN of a CodeConnections connection",
                field="connection_arn",
            )
        if not github and self.connection_arn:
            raise field_error(
                "connection_arn", self.connection_arn, "is not allowed with source codecommit"
            )
        if not self.stages:
            raise field_error("stages", [], "is not allowed: at least one environment")
        if len(set(self.stages)) != len(self.stages):
            raise field_error("stages", list(self.stages), "is not allowed: a stage twice")
        for name in self.approval_before:
            if name not in self.stages:
                raise field_error(
                    "approval_before",
                    list(self.approval_before),
                    f"is not allowed: {name!r} is not one of the stages",
                )
        return self
