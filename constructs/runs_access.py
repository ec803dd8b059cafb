"""The runs policy: what `mlops runs compare` and `mlops runs backfill` call on this environment
when `tracking.mlflow` is managed or external, as one managed policy to attach to operators.

    compare     sagemaker-mlflow:GetExperimentByName, SearchRuns on the one tracking server;
                a run never logged is read from the execution (below), a package version
                through sagemaker:DescribeModelPackage (the operator policy's)
    backfill    the run tracker's own calls (constructs/mlflow_run_tracker.py): the execution,
                its pipelines-* jobs and, only when pipeline.tuning is set, its tuning job (by the
                pipeline tag);
                its outputs in the artifact bucket (read, the key through S3 only); the run on
                the server (CreateExperiment, CreateRun, LogBatch, UpdateRun: never a delete);
                artifacts under mlflow/ when the server's store is ours (managed); and only
                the `mlflow-run-id` tag on this group's packages (no UpdateModelPackage: it can
                approve nothing)

Nothing else: no other server, pipeline, bucket prefix or tag. Not attached to any role of the
loop: assign it to the people (or roles) who compare and backfill runs.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from constructs import Construct
from constructs.bucket_access import grant_object_read, grant_object_write
from constructs.mlflow_run_tracker import (
    PACKAGE_RUN_TAG,
    PIPELINE_JOB_PREFIX,
    PIPELINE_TAG,
    TUNING_READS,
    tracking_server_arn,
)
from constructs.mlflow_server import MLFLOW_ARTIFACTS_PREFIX
from constructs.nag import acknowledge, object_wildcard, rendered_token_arn
from constructs.sagemaker_pipeline import pipeline_executions_arn
from mlops_config import EnvironmentConfig
from mlops_config.tracking import tracked_pipelines
from pipeline_code.definition.contract import EXECUTION_OUTPUTS, pipeline_output_prefix

COMPARE_ACTIONS = ("sagemaker-mlflow:GetExperimentByName", "sagemaker-mlflow:SearchRuns")
BACKFILL_ACTIONS = (
    "sagemaker-mlflow:CreateExperiment",
    "sagemaker-mlflow:CreateRun",
    "sagemaker-mlflow:LogBatch",
    "sagemaker-mlflow:UpdateRun",
)


class _PolicyGrantee:
    """The bucket grants' grantee: their statements go into `policy`."""

    def __init__(self, policy: iam.ManagedPolicy) -> None:
        self.grant_principal = self
        self._policy = policy

    def add_to_principal_policy(self, statement: iam.PolicyStatement) -> Any:
        self._policy.add_statements(statement)
        return iam.AddToPrincipalPolicyResult(statement_added=True)


class RunsAccess(Construct):
    """The runs policy of one environment with tracking on (module doc). Exposes `policy`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        artifact_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        server = tracking_server_arn(stack, config)
        pipelines = tracked_pipelines(config)  # a promotion target: eval-only
        executions = [pipeline_executions_arn(stack, name) for name in pipelines]
        # a tuning step's trials only when the pipeline tunes (as the run tracker's role)
        tuned = config.pipeline.tuning is not None
        kinds = [
            "processing-job",
            "training-job",
            *(["hyper-parameter-tuning-job"] if tuned else []),
        ]
        jobs = [
            stack.format_arn(
                service="sagemaker", resource=kind, resource_name=f"{PIPELINE_JOB_PREFIX}*"
            )
            for kind in kinds
        ]
        packages = stack.format_arn(
            service="sagemaker",
            resource="model-package",
            resource_name=f"{config.model_package_group_name.lower()}/*",
        )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=f"Operators of {config.prefix}'s MLflow runs: mlops runs compare and "
            "backfill",
            statements=[
                # a self-hosted server (server_uri) is not IAM's: operators bring its credentials
                *(
                    [
                        iam.PolicyStatement(
                            sid="CompareRuns", actions=list(COMPARE_ACTIONS), resources=[server]
                        ),
                        iam.PolicyStatement(
                            sid="BackfillRuns", actions=list(BACKFILL_ACTIONS), resources=[server]
                        ),
                    ]
                    if server is not None
                    else []
                ),
                iam.PolicyStatement(
                    sid="ReadExecutions",
                    actions=[
                        "sagemaker:DescribePipelineExecution",
                        "sagemaker:ListPipelineExecutionSteps",
                        "sagemaker:ListPipelineParametersForExecution",
                    ],
                    resources=executions,
                ),
                iam.PolicyStatement(
                    sid="ReadExecutionJobs",
                    actions=["sagemaker:DescribeProcessingJob", "sagemaker:DescribeTrainingJob"],
                    resources=jobs[:2],
                ),
                *(
                    [
                        iam.PolicyStatement(
                            sid="ReadThisPipelinesTuningTrials",
                            actions=list(TUNING_READS),
                            resources=jobs[2:],
                            conditions={
                                "StringEquals": {
                                    f"aws:ResourceTag/{PIPELINE_TAG}": config.pipeline_name
                                }
                            },
                        )
                    ]
                    if tuned
                    else []
                ),
                iam.PolicyStatement(
                    sid="TagPackagesWithTheirRun",
                    actions=["sagemaker:AddTags"],
                    resources=[packages],
                    conditions={"ForAllValues:StringEquals": {"aws:TagKeys": [PACKAGE_RUN_TAG]}},
                ),
            ],
        )
        grantee: Any = _PolicyGrantee(self.policy)
        outputs = [pipeline_output_prefix(name, EXECUTION_OUTPUTS) for name in pipelines]
        for prefix in outputs:
            grant_object_read(artifact_bucket, grantee, prefix)
        managed = config.tracking.mlflow == "managed"
        if managed:
            grant_object_write(artifact_bucket, grantee, MLFLOW_ARTIFACTS_PREFIX)
        acknowledge(
            self.policy,
            *(
                f"AwsSolutions-IAM5[Resource::{rendered_token_arn(stack, arn)}]"
                for arn in [*executions, *jobs, packages]
            ),
            *(object_wildcard(self, artifact_bucket, prefix) for prefix in outputs),
            *([object_wildcard(self, artifact_bucket, MLFLOW_ARTIFACTS_PREFIX)] if managed else []),
            reason="Execution ids, job names, package versions and run artifact keys are created "
            "at run time: it reads only this environment's pipelines' executions, their jobs "
            "(pipelines-*, tuning jobs by the pipeline tag) and outputs, adds only the "
            "mlflow-run-id tag to this group's packages and writes run artifacts only under "
            "mlflow/.",
        )
