"""What the buckets' policies forbid beyond plain HTTP: other keys, deleting history, writers
other than the ones named (the training job role alone under the models' prefix), and changing
what is written once.

Every rule is a Deny for every principal with named exceptions (`aws:PrincipalArn`, or a
principal tag the app sets on its one writer), so no IAM policy in the account can grant
around it. S3 cannot deny "PutObject on a key that exists" for a writer that does not send
`If-None-Match` (SageMaker's job outputs, the AWS CLI inside CDK's BucketDeployment): there the
policy names the one principal that may write the prefix at all, and the model's SHA-256
(recorded at registration, checked before every deploy) catches a replaced model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

# The principal tag that names the writers of a write-once prefix (value: the writer kind
# below). Only IAM administrators can tag roles: an SCP should keep it that way.
WRITER_TAG = "artifact-writer"
# The processing job role: its jobs' outputs under pipelines/ (never a model).
PIPELINE_OUTPUTS_WRITER = "pipeline-outputs"
# The training job role: the models (and checkpoints) under pipelines/, alone.
MODEL_WRITER = "models"
STEP_CODE_WRITER = "step-code"
# vpc mode: the principal tag of the role SageMaker Pipelines runs as (value "true"), which
# reads property files from outside the VPC (deny_outside_endpoints).
PIPELINES_READER_TAG = "pipelines-reader"


def writer_tag_key(project: str) -> str:
    """The principal tag key that admits a role to a write-once prefix of the artifact bucket."""
    return f"{project}-{WRITER_TAG}"


def pipelines_reader_tag_key(project: str) -> str:
    """The principal tag key of the pipelines' role (vpc mode: it reads from outside)."""
    return f"{project}-{PIPELINES_READER_TAG}"


def root_user(scope: Stack) -> str:
    """The account's root user as `aws:PrincipalArn` names it."""
    return f"arn:{scope.partition}:iam::{scope.account}:root"


def _unless(principals: Sequence[str]) -> dict[str, dict[str, object]]:
    return {"ArnNotEquals": {"aws:PrincipalArn": list(principals)}}


def _deny(
    bucket: s3.IBucket,
    sid: str,
    actions: list[str],
    resources: list[str],
    conditions: Mapping[str, Mapping[str, object]],
    *,
    all_but: bool = False,
) -> None:
    """A Deny for every principal on `bucket` (`all_but`: every action but `actions`)."""
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=None if all_but else actions,
            not_actions=actions if all_but else None,
            resources=resources,
            conditions=dict(conditions),
        )
    )


def require_bucket_key(bucket: s3.IBucket, key: kms.IKey) -> None:
    """Uploads use `key` (the default encryption) or name it by ARN: no other KMS key, no
    SSE-S3, no customer-provided key. (A header the upload does not send must not match: so
    `Null: false` and a negated operator, never `...IfExists`, which holds for a missing key.)"""
    objects = bucket.arn_for_objects("*")
    key_id = "s3:x-amz-server-side-encryption-aws-kms-key-id"
    algorithm = "s3:x-amz-server-side-encryption"
    for sid, condition in (
        (
            "DenyOtherKmsKeys",
            {"Null": {key_id: "false"}, "StringNotEquals": {key_id: key.key_arn}},
        ),
        (
            "DenyOtherEncryption",
            {"Null": {algorithm: "false"}, "StringNotEquals": {algorithm: "aws:kms"}},
        ),
        (
            "DenyCustomerProvidedKeys",
            {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}},
        ),
    ):
        _deny(bucket, sid, ["s3:PutObject"], [objects], condition)


def protect_versions(bucket: s3.IBucket, *, allowed: Sequence[str]) -> None:
    """Only `allowed` principals may delete an object version (lifecycle expiry still does)."""
    _deny(
        bucket,
        "DenyDeletingVersions",
        ["s3:DeleteObjectVersion"],
        [bucket.arn_for_objects("*")],
        _unless(allowed),
    )


def restrict_writers(
    bucket: s3.IBucket, prefixes: Sequence[str], *, writers: Sequence[str], sid: str
) -> None:
    """Only `writers` may create or delete objects under `prefixes`."""
    _deny(
        bucket,
        sid,
        ["s3:PutObject", "s3:DeleteObject"],
        [bucket.arn_for_objects(f"{p}*") for p in prefixes],
        _unless(writers),
    )


def only_writers(
    bucket: s3.IBucket,
    *,
    sid: str,
    prefix: str,
    writer: tuple[str, Sequence[str]],
    allowed: Sequence[str],
) -> None:
    """Only principals tagged `writer` = (tag key, admitted values), or `allowed`, create
    objects under `prefix` (a Deny for everyone else: no IAM grant can undo it)."""
    tag, values = writer
    _deny(
        bucket,
        sid,
        ["s3:PutObject"],
        [bucket.arn_for_objects(f"{prefix}*")],
        {
            **_unless(allowed),
            "StringNotEquals": {
                f"aws:PrincipalTag/{tag}": values[0] if len(values) == 1 else list(values)
            },
        },
    )


def write_once(
    bucket: s3.IBucket,
    *,
    sid: str,
    protected: Sequence[str],
    written_under: str,
    writer: tuple[str, Sequence[str]] | None,
    allowed: Sequence[str],
    conditional_writes: bool = False,
) -> None:
    """Objects under the `protected` patterns are never deleted (no version either) but by
    `allowed`; under `written_under`, only principals tagged `writer` = (tag key, admitted
    values), or `allowed`, create objects; `conditional_writes`: every create must be
    conditional (`If-None-Match: *`), so an existing object is never replaced."""
    _deny(
        bucket,
        f"{sid}NeverDeleted",
        ["s3:DeleteObject", "s3:DeleteObjectVersion"],
        [bucket.arn_for_objects(p) for p in protected],
        _unless(allowed),
    )
    if writer is not None:
        only_writers(
            bucket, sid=f"{sid}OneWriter", prefix=written_under, writer=writer, allowed=allowed
        )
    if conditional_writes:
        _deny(
            bucket,
            f"{sid}NeverReplaced",
            ["s3:PutObject"],
            [bucket.arn_for_objects(f"{written_under}*")],
            {**_unless(allowed), "Null": {"s3:if-none-match": "true"}},
        )


def deny_outside_endpoints(
    bucket: s3.IBucket,
    *,
    endpoint_ids: Sequence[str],
    allowed: Sequence[str],
    allowed_tags: dict[str, str],
    reader_tag: tuple[str, str],
    prefix_readers: Mapping[str, str] | None = None,
) -> None:
    """vpc mode: requests that do not come through `endpoint_ids` (`aws:SourceVpce`, the VPC's
    S3 endpoints) are refused, except from `allowed` (IAM ARNs: the deploying principal,
    producers, break-glass) and principals carrying one of `allowed_tags` (key -> value: the
    operators), from AWS service principals (log delivery) and for requests a service makes
    with the caller's credentials (`aws:ViaAWSService`, e.g. KMS through S3).

    The principals tagged `reader_tag` (the pipelines' role, not the job roles) may only read
    from outside: the SageMaker Pipelines service reads a step's property file (JsonGet) from its
    own network with that role, so the read cannot carry the endpoint.

    `prefix_readers` (role ARN -> prefix: a managed MLflow tracking server's role, which
    SageMaker assumes to read and write its artifact store from the service's own network, never
    through the VPC) reach from outside only the objects under their prefix and list only it;
    what they may do there is what their IAM policy grants."""
    prefix_readers = dict(prefix_readers or {})
    not_through_endpoint = {"aws:SourceVpce": list(endpoint_ids)}
    not_a_service = {"aws:ViaAWSService": "false", "aws:PrincipalIsAWSService": "false"}
    resources = [bucket.bucket_arn, bucket.arn_for_objects("*")]
    tag_key, tag_value = reader_tag
    untagged = {f"aws:PrincipalTag/{key}": value for key, value in allowed_tags.items()}
    _deny(
        bucket,
        "DenyOutsideTheVpcEndpoint",
        ["s3:*"],
        resources,
        {
            "StringNotEquals": {
                **not_through_endpoint,
                **untagged,
                f"aws:PrincipalTag/{tag_key}": tag_value,
            },
            "Bool": not_a_service,
            **_unless([*allowed, *prefix_readers]),
        },
    )
    for index, (principal, prefix) in enumerate(sorted(prefix_readers.items())):
        # everything but the prefix's objects (NotResource), and of the bucket itself only a
        # listing of the prefix (a request without s3:prefix matches StringNotLike)
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"OnlyItsPrefixOutsideTheVpcEndpoint{index}",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:*"],
                not_resources=[bucket.arn_for_objects(f"{prefix}*")],
                conditions={
                    "StringNotEquals": not_through_endpoint,
                    "StringNotLike": {"s3:prefix": f"{prefix}*"},
                    "Bool": not_a_service,
                    "ArnEquals": {"aws:PrincipalArn": principal},
                },
            )
        )
    _deny(
        bucket,
        "PipelinesReadOnlyOutsideTheVpcEndpoint",
        ["s3:GetObject"],
        resources,
        {
            "StringNotEquals": not_through_endpoint,
            "StringEquals": {f"aws:PrincipalTag/{tag_key}": tag_value},
            "Bool": {"aws:ViaAWSService": "false"},
        },
        all_but=True,
    )
