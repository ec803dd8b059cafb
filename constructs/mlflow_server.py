"""A SageMaker managed MLflow tracking server whose artifact store is one prefix of the app's
artifact bucket (tracking.mlflow = managed)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker

from constructs import Construct
from constructs.bucket_access import grant_object_read, grant_object_write
from constructs.nag import acknowledge

# Where the server keeps run artifacts in the artifact bucket (outside pipelines/, whose writers
# the bucket policy restricts to the job roles).
MLFLOW_ARTIFACTS_PREFIX = "mlflow/"


class ManagedMlflowServer(Construct):
    """`AWS::SageMaker::MlflowTrackingServer` named `server_name`, of `size` (Small, Medium or
    Large), MLflow `mlflow_version` (None: SageMaker's default), artifacts under `mlflow/` of
    `artifact_bucket` (encrypted by the bucket's KMS key, used through S3 only). Its role reads
    and writes that prefix and nothing else: no model registry (automatic registration off:
    models reach the registry only through the pipeline's gate). `retain` keeps the server,
    and the experiments in it, when the stack is deleted. Exposes `server`, `role`,
    `tracking_server_arn`, `artifact_prefix` and `outside_readers` (the role -> its prefix: in
    vpc mode the bucket admits it from outside the VPC endpoint there alone).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        server_name: str,
        size: str,
        mlflow_version: str | None,
        artifact_bucket: s3.IBucket,
        retain: bool,
        tags: dict[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.artifact_prefix = MLFLOW_ARTIFACTS_PREFIX
        self.role = iam.Role(
            self,
            "Role",
            description=f"SageMaker MLflow tracking server {server_name}: its artifact store",
            assumed_by=iam.ServicePrincipal(
                "sagemaker.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
        )
        grant_object_read(artifact_bucket, self.role, MLFLOW_ARTIFACTS_PREFIX)
        grant_object_write(artifact_bucket, self.role, MLFLOW_ARTIFACTS_PREFIX)
        # the bucket is in this stack under its pinned logical id (CDK's own id before the pin
        # is what rendered_arn would print)
        bucket_arn = stack.resolve(artifact_bucket.bucket_arn)["Fn::GetAtt"][0]
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::<{bucket_arn}.Arn>/{MLFLOW_ARTIFACTS_PREFIX}*]",
            reason="The tracking server names run artifacts by experiment and run id at run "
            "time; it reads and writes only under the artifact bucket's mlflow/ prefix.",
        )
        self.server = sagemaker.CfnMlflowTrackingServer(
            self,
            "Server",
            tracking_server_name=server_name,
            tracking_server_size=size,
            mlflow_version=mlflow_version,
            artifact_store_uri=artifact_bucket.s3_url_for_object(MLFLOW_ARTIFACTS_PREFIX),
            role_arn=self.role.role_arn,
            automatic_model_registration=False,
            tags=[{"key": k, "value": v} for k, v in sorted(tags.items())],
        )
        self.server.node.add_dependency(self.role)
        # the bucket's policy (in vpc mode: the exception admitting this role from outside the
        # endpoint, on mlflow/ alone) exists before the server starts using its store
        if artifact_bucket.policy is None:
            raise ValueError(f"{artifact_bucket.node.path}: no bucket policy to order the server")
        self.server.node.add_dependency(artifact_bucket.policy)
        self.server.apply_removal_policy(RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY)
        self.tracking_server_arn = self.server.attr_tracking_server_arn
        # vpc mode: the server reaches its store from SageMaker's network, not through the VPC
        self.outside_readers = {self.role.role_arn: MLFLOW_ARTIFACTS_PREFIX}
