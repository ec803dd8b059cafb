"""The role batch serving's models run as: what each scoring transform job reads and writes.

The scoring pipeline's Model step creates a network-isolated model of the served package with
this role, and the transform job that scores a version runs as it (SageMaker uses the model's
role to read the input, the model artifact and the image, and to write the output). Its worst:
read this environment's trained models and the scoring pipeline's checked rows, and put objects
under `predictions/` of the data bucket (never delete them). S3 cannot tell a new object from an
overwrite, so that grant alone would let it replace any object there, other runs' predictions
included; what it can never write is a `_SUCCESS` marker (explicit deny on
`predictions/*/_SUCCESS`): only the predictions marker vouches that a run is complete. No
SageMaker API, no role to pass, no landing data, no artifact write.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct
from constructs.bucket_access import grant_object_read, grant_object_write
from constructs.nag import acknowledge, object_wildcard
from constructs.pipeline_job_roles import _grant_job_basics
from constructs.private_network import VpcPlacement

PREDICTIONS_PREFIX = "predictions/"
MARKER = "_SUCCESS"


class ScoringModelRole(Construct):
    """Trusted by SageMaker. Reads `read_prefixes` of `artifact_bucket` (the models'
    prefix and the scoring pipeline's execution outputs), puts objects only under
    `predictions/` of `data_bucket` and never a `_SUCCESS` there (explicit deny), logs to
    /aws/sagemaker/TransformJobs, publishes metrics to SageMaker's namespaces, pulls
    `image_uris`, encrypts volumes with `encryption_key`, and in `vpc` (default None) places
    its network interfaces; each bucket's key through S3 only.
    Exposes `role`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        artifact_bucket: s3.IBucket,
        read_prefixes: Sequence[str],
        data_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        image_uris: Sequence[str],
        vpc: VpcPlacement | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if not read_prefixes:
            raise ValueError("name the artifact prefixes the scoring models read: none given")
        stack = Stack.of(self)
        self.role = role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Batch scoring models and transform jobs of {stack.stack_name}",
        )
        for prefix in read_prefixes:
            grant_object_read(artifact_bucket, role, prefix, list_prefix_only=False)
        grant_object_write(data_bucket, role, PREDICTIONS_PREFIX)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="NeverWritesCompletionMarkers",
                effect=iam.Effect.DENY,
                actions=["s3:PutObject"],
                resources=[data_bucket.arn_for_objects(f"{PREDICTIONS_PREFIX}*/{MARKER}")],
            )
        )
        _grant_job_basics(
            role,
            log_group="/aws/sagemaker/TransformJobs",
            metric_namespaces=(),
            image_uris=image_uris,
            volume_key=encryption_key,
            vpc=vpc,
        )
        acknowledge(
            role,
            *[object_wildcard(role, artifact_bucket, p) for p in read_prefixes],
            object_wildcard(role, data_bucket, PREDICTIONS_PREFIX),
            reason="Reads this environment's trained models and the scoring pipeline's checked "
            "rows, and writes (never deletes, never a _SUCCESS) the predictions SageMaker names "
            "per input file under predictions/; keys are used through S3 only.",
        )
