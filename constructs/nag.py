"""cdk-nag 3 acknowledgements: one finding at a time, each with a reason.

cdk-nag 3 runs as a policy-validation plugin; a finding is acknowledged on the construct
(and everything below it) with `Validations.of(scope).acknowledge(...)`. `finding` is the
rule id (`AwsSolutions-IAM5`) optionally followed by the finding's detail
(`AwsSolutions-IAM5[Action::s3:GetObject*]`), which keeps wildcard acknowledgements narrow.
"""

from __future__ import annotations

import aws_cdk as cdk

from constructs import IConstruct


def acknowledge(scope: IConstruct, *findings: str, reason: str) -> None:
    """Acknowledge each of `findings` under `scope` with the same `reason` (required)."""
    if len(reason) < 20:
        raise ValueError(f"give a real reason for acknowledging {findings}, got {reason!r}")
    for finding in findings:
        cdk.Validations.of(scope).acknowledge(
            cdk.Acknowledgment(id=f"AwsSolutions::{finding}", reason=reason)
        )
