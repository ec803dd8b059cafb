"""Object access to one prefix of a bucket, with its key used only through S3.

Explicit statements instead of CDK's `bucket.grant_read`/`grant_read_write`: those grant
`s3:GetObject*`, `s3:List*`, `s3:DeleteObject*` and the bucket's key without `kms:ViaService`;
these grant what a reader or writer calls, listing only under its prefix.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from constructs.key_use import S3_READ_KEY_ACTIONS, S3_WRITE_KEY_ACTIONS, grant_key_use

READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
WRITE_ACTIONS = ("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")


def grant_object_read(
    bucket: s3.IBucket,
    grantee: iam.IGrantable,
    prefix: str = "",
    *,
    extra_actions: tuple[str, ...] = (),
    list_versions: bool = False,
    list_prefix_only: bool = True,
) -> None:
    """Read objects (any version) under `prefix` of `bucket` and list that prefix
    (`list_versions`: their versions too); decrypt with the bucket's key through S3.
    `extra_actions` are further object-level reads (e.g. `s3:GetObjectAttributes`).
    `list_prefix_only=False` lets the grantee list (names only) and locate the whole bucket:
    for SageMaker jobs, whose own listing of inputs and bucket checks AWS documents only at
    bucket level."""
    add = grantee.grant_principal.add_to_principal_policy
    add(
        iam.PolicyStatement(
            actions=[*READ_ACTIONS, *extra_actions],
            resources=[bucket.arn_for_objects(f"{prefix}*")],
        )
    )
    listing = ["s3:ListBucket", *(["s3:ListBucketVersions"] if list_versions else [])]
    scoped = prefix and list_prefix_only
    add(
        iam.PolicyStatement(
            actions=listing if scoped else [*listing, "s3:GetBucketLocation"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": f"{prefix}*"}} if scoped else None,
        )
    )
    grant_key_use(bucket.encryption_key, grantee, S3_READ_KEY_ACTIONS, via=["s3"])


def grant_object_write(bucket: s3.IBucket, grantee: iam.IGrantable, prefix: str = "") -> None:
    """Create objects under `prefix` of `bucket` (multipart uploads included, never delete);
    encrypt with the bucket's key through S3."""
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=list(WRITE_ACTIONS), resources=[bucket.arn_for_objects(f"{prefix}*")]
        )
    )
    grant_key_use(bucket.encryption_key, grantee, S3_WRITE_KEY_ACTIONS, via=["s3"])
