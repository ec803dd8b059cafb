"""An S3 bucket with this project's security defaults, in one statement."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct


class SecureBucket(Construct):
    """KMS-encrypted (bucket key on), versioned, TLS-only, public access blocked, server access
    logs to `access_logs`, noncurrent versions expire after `noncurrent_version_expiration`.

    `retain=True` (staging/prod) keeps the bucket and its objects when the stack is deleted;
    `retain=False` (dev) deletes it cleanly, objects included.
    `event_bridge` turns on S3 -> EventBridge notifications (default: off).
    The bucket is exposed as `self.bucket`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        encryption_key: kms.IKey,
        access_logs: s3.IBucket,
        access_logs_prefix: str,
        retain: bool,
        noncurrent_version_expiration: Duration,
        event_bridge: bool = False,
        lifecycle_rules: list[s3.LifecycleRule] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=encryption_key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=access_logs_prefix,
            event_bridge_enabled=event_bridge,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=noncurrent_version_expiration,
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
                *(lifecycle_rules or []),
            ],
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            auto_delete_objects=not retain,
        )
