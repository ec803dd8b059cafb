"""Who may administer the environment's keys and undo its history: principals named by ARN."""

from __future__ import annotations

from typing import Annotated

from mlops_config.rules import Allowed, Boolean, Section, Text

# An IAM role or user (paths allowed), or an account's root user.
PRINCIPAL_ARN = r"^arn:aws(-[a-z]+)*:iam::\d{12}:(root|(role|user)/[A-Za-z0-9+=,.@_/-]{1,512})$"
PRINCIPAL_ALLOWED = "an IAM role or user ARN, e.g. arn:aws:iam::111111111111:role/name"

PrincipalArn = Annotated[str, Text(PRINCIPAL_ARN, PRINCIPAL_ALLOWED)]
Principals = Annotated[tuple[PrincipalArn, ...], Allowed("a list of IAM role or user ARNs")]


class SecurityConfig(Section):
    key_administrators: Principals = ()
    """IAM roles or users that administer the environment's three KMS keys (the CDK bootstrap's
    CloudFormation execution role is added, so deploys can still update them). Empty: any
    principal of the account whose IAM policy allows it (the account root), CDK's default."""
    break_glass_principals: Principals = ()
    """IAM roles or users that may delete object versions, served models, step code and
    dataset manifests. Empty: only the account's root user."""
    own_job_log_groups: Annotated[bool, Boolean()] = False
    """The Training stack creates SageMaker's account-wide job log groups
    (/aws/sagemaker/ProcessingJobs, /aws/sagemaker/TrainingJobs) with a one-year retention and
    the operations key. Only for an account that runs no other SageMaker jobs and where they do
    not exist yet (SageMaker creates them on the first job): CloudFormation cannot create a
    log group that exists."""
