"""An S3 bucket with this project's security defaults, in one statement."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CustomResourceProviderBase, Duration, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct
from constructs.bucket_policies import protect_versions, require_bucket_key
from constructs.nag import acknowledge_guard
from constructs.policy_checks import skip_checkov
from pipeline_code.definition.contract import (
    SHARD_PARTS,
    pipeline_output_prefix,
    shard_parts_expiration_days,
)

# The singleton CDK adds for `auto_delete_objects` (dev's clean destroy).
AUTO_DELETE_PROVIDER = "Custom::S3AutoDeleteObjectsCustomResourceProvider"


def history_keepers(bucket: s3.IBucket, break_glass: Sequence[str]) -> list[str]:
    """Who may delete history in `bucket`: `break_glass`, and the handler that empties the
    bucket when a destroyable stack is deleted (dev), if there is one."""
    provider = Stack.of(bucket).node.try_find_child(AUTO_DELETE_PROVIDER)
    emptier = [provider.role_arn] if isinstance(provider, CustomResourceProviderBase) else []
    return [*break_glass, *emptier]


class SecureBucket(Construct):
    """KMS-encrypted (bucket key on), versioned, TLS-only, public access blocked, server access
    logs to `access_logs`, noncurrent versions expire after `noncurrent_version_expiration`.

    Its policy refuses uploads encrypted otherwise than with `encryption_key`, and lets only
    `break_glass` (IAM ARNs) delete object versions (and, in dev, the handler that empties the
    bucket on stack deletion). `retain=True` (staging/prod) keeps the bucket and its objects
    when the stack is deleted; `retain=False` (dev) deletes it cleanly, objects included.
    `event_bridge` turns on S3 -> EventBridge notifications (default: off).
    Exposes `bucket` and `history_keepers` (who may delete history).
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
        break_glass: Sequence[str],
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
        self.history_keepers = history_keepers(self.bucket, break_glass)
        require_bucket_key(self.bucket, encryption_key)
        protect_versions(self.bucket, allowed=self.history_keepers)


def access_log_bucket(
    scope: Construct,
    construct_id: str,
    *,
    retain: bool,
    noncurrent_version_expiration: Duration,
    break_glass: Sequence[str],
) -> s3.Bucket:
    """The destination of SecureBuckets' server access logs. S3 delivers them only to an
    SSE-S3 bucket, which must not log itself; logs expire after a year."""
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=True,
        lifecycle_rules=[
            s3.LifecycleRule(
                id="expire-access-logs",
                expiration=Duration.days(365),
                noncurrent_version_expiration=noncurrent_version_expiration,
            )
        ],
        removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        auto_delete_objects=not retain,
    )
    protect_versions(bucket, allowed=history_keepers(bucket, break_glass))
    skip_checkov(
        bucket,
        "CKV_AWS_18",
        "This is the server-access-log destination; logging it into itself would loop.",
    )
    acknowledge_guard(
        bucket,
        "s3_bucket_logging_enabled_check",
        "s3_bucket_default_encryption_kms_check",
        reason="S3 delivers server access logs only to an SSE-S3 bucket that does not log itself.",
    )
    return bucket


def shard_parts_expiry(pipeline_name: str, cache_expire_after: str) -> list[s3.LifecycleRule]:
    """Expire the training pipeline's shard parts (`contract.SHARD_PARTS`: the sharded
    Prepare's extra copy of the version, needed only until Prepare merged it) a day after the
    step cache (`pipeline.cache_expire_after`) would stop reusing them. The bucket is
    versioned: the expired copies (noncurrent versions) go a day later, not after the
    bucket's `noncurrent_version_expiration`, and the delete markers left once they are gone
    are removed by a second rule (S3 refuses `ExpiredObjectDeleteMarker` beside days)."""
    prefix = pipeline_output_prefix(pipeline_name, SHARD_PARTS)
    return [
        s3.LifecycleRule(
            id="expire-shard-parts",
            prefix=prefix,
            expiration=Duration.days(shard_parts_expiration_days(cache_expire_after)),
            noncurrent_version_expiration=Duration.days(1),
        ),
        s3.LifecycleRule(
            id="remove-shard-parts-delete-markers",
            prefix=prefix,
            expired_object_delete_marker=True,
        ),
    ]
