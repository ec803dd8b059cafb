"""What every step builder shares: the settings, code, session and parameters of one pipeline,
and the processors, S3 inputs and outputs built from them (placeholders for account values)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline_code import offline
from pipeline_code.definition.contract import EXECUTION_OUTPUTS, PIPELINE_OUTPUTS_ROOT
from pipeline_code.definition.settings import PipelineSettings, SettingsError
from pipeline_code.definition.step_code import CodeLocations

if TYPE_CHECKING:
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow.pipeline import Pipeline


def xgboost_image_uri(settings: PipelineSettings, scope: str) -> str:
    """SageMaker XGBoost framework image for ``settings.region`` (``scope``: training|inference)."""
    from sagemaker.core import image_uris

    try:
        return image_uris.retrieve(
            "xgboost",
            region=settings.region,
            version=settings.xgboost_framework_version,
            image_scope=scope,
        )
    except ValueError as error:
        raise SettingsError(f"settings.xgboost_framework_version / region: {error}") from error


@dataclass(frozen=True)
class Context:
    """One pipeline being built: its settings, code, session, parameters and name."""

    settings: PipelineSettings
    code: CodeLocations
    session: PipelineSession
    params: Any  # TrainingParameters or EvaluationParameters
    pipeline_name: str

    @property
    def bucket(self) -> str:
        return offline.placeholder(offline.ARTIFACT_BUCKET)

    @property
    def kms_key(self) -> str:
        return offline.placeholder(offline.KMS_KEY_ARN)

    @property
    def processing_role(self) -> str:
        """What processing and check jobs run as: reads artifacts, writes only its own outputs
        (never a model)."""
        return offline.placeholder(offline.PROCESSING_JOB_ROLE_ARN)

    @property
    def training_role(self) -> str:
        """What the (network-isolated) training job runs as: the one writer of models."""
        return offline.placeholder(offline.TRAINING_JOB_ROLE_ARN)

    @property
    def vpc_subnets(self) -> list[str] | None:
        """The jobs' subnets as ``${VpcSubnetN}`` placeholders (None: no VPC)."""
        subnets, _ = self.settings.vpc_placeholders
        return ["${" + name + "}" for name in subnets] or None

    @property
    def vpc_security_group_ids(self) -> list[str] | None:
        """The jobs' security groups as ``${VpcSecurityGroupN}`` placeholders (None: no VPC)."""
        _, groups = self.settings.vpc_placeholders
        return ["${" + name + "}" for name in groups] or None

    @property
    def job_tags(self) -> list[dict[str, str]]:
        """Cost-allocation tags of every job: project, environment, pipeline, extra tags.
        (SageMaker adds the pipeline execution ARN to the jobs a pipeline starts itself.)"""
        project, environment, *extra = self.settings.job_tags
        tags = [project, environment, ("pipeline", self.pipeline_name), *extra]
        return [{"Key": key, "Value": value} for key, value in tags]

    def pipeline(self, steps: list[Any]) -> Pipeline:
        """The pipeline of ``steps``, named and parameterized by this context."""
        from sagemaker.core.workflow.pipeline_definition_config import PipelineDefinitionConfig
        from sagemaker.mlops.workflow.pipeline import Pipeline

        return Pipeline(
            name=self.pipeline_name,
            parameters=self.params.all(),
            steps=steps,
            sagemaker_session=self.session,
            # Experiments/trials per execution are noise here and region-dependent in the SDK.
            pipeline_experiment_config=None,
            pipeline_definition_config=PipelineDefinitionConfig(use_custom_job_prefix=False),
        )

    def cache_config(self) -> Any:
        from sagemaker.mlops.workflow.steps import CacheConfig

        return CacheConfig(enable_caching=True, expire_after=self.settings.cache_expire_after)

    def execution_output(self, step: str, output: str, kind: str = EXECUTION_OUTPUTS) -> Any:
        """Per-execution output prefix (`kind`: the outputs' kind below the pipeline's prefix,
        default `executions`; the shard parts use their own, which the bucket expires).

        Outputs are not part of a step's cache key (the key is AppSpecification, Environment and
        ProcessingInputs for processing; AlgorithmSpecification, CheckpointConfig, Environment,
        HyperParameters and InputDataConfig for training:
        https://docs.aws.amazon.com/sagemaker/latest/dg/pipelines-default-keys.html), so the
        execution id costs no cache hits and keeps concurrent executions from overwriting each
        other's data. A cache hit passes the original execution's URIs downstream.
        """
        from sagemaker.core.workflow.execution_variables import ExecutionVariables
        from sagemaker.core.workflow.functions import Join

        return Join(
            on="/",
            values=[
                "s3:/",
                self.bucket,
                PIPELINE_OUTPUTS_ROOT,
                self.pipeline_name,
                kind,
                ExecutionVariables.PIPELINE_EXECUTION_ID,
                step,
                output,
            ],
        )

    def processor(
        self,
        *,
        network_isolation: bool,
        env: dict[str, str] | None = None,
        instance_count: Any = None,
        image_uri: str | None = None,
    ) -> Any:
        """A python3 processor in the XGBoost image (or ``image_uri``) that runs a script of a
        code directory (:class:`CodeLocations`); ``instance_count`` defaults to the
        ``ProcessingInstanceCount`` parameter."""
        from sagemaker.core.network import NetworkConfig
        from sagemaker.core.processing import ScriptProcessor

        class _CodeDirectoryProcessor(ScriptProcessor):
            def _convert_code_and_add_to_inputs(self, inputs: Any, s3_uri: str) -> Any:
                # The "code" input is the script's whole code directory (its modules and
                # `common`), mounted where the entry point runs the script from.
                directory = s3_uri.rsplit("/", 1)[0] + "/"
                return super()._convert_code_and_add_to_inputs(inputs, directory)

        return _CodeDirectoryProcessor(
            role=self.processing_role,
            image_uri=image_uri or xgboost_image_uri(self.settings, "training"),
            command=["python3"],
            instance_type=self.params.processing_instance_type,
            instance_count=(
                self.params.processing_instance_count if instance_count is None else instance_count
            ),
            volume_kms_key=self.kms_key,
            output_kms_key=self.kms_key,
            max_runtime_in_seconds=self.settings.max_runtime_seconds,
            env=env,
            tags=self.job_tags,
            network_config=NetworkConfig(
                enable_network_isolation=network_isolation,
                encrypt_inter_container_traffic=True,
                # vpc mode: the job's network interfaces are in the environment's subnets
                security_group_ids=self.vpc_security_group_ids,
                subnets=self.vpc_subnets,
            ),
            sagemaker_session=self.session,
        )


def s3_input(name: str, uri: Any, local_path: str, distribution: str = "FullyReplicated") -> Any:
    """Input ``name``: every object below ``uri`` on every instance, or with ``distribution``
    ``ShardedByS3Key`` about 1/N of the objects on each of N instances."""
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=uri,
            local_path=local_path,
            s3_data_type="S3Prefix",
            s3_input_mode="File",
            s3_data_distribution_type=distribution,
        ),
    )


def s3_output(ctx: Context, step: str, name: str, local_path: str, s3_uri: Any = None) -> Any:
    """Output ``name`` of ``step``; ``s3_uri`` defaults to the per-execution prefix."""
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(
            s3_uri=ctx.execution_output(step, name) if s3_uri is None else s3_uri,
            local_path=local_path,
            s3_upload_mode="EndOfJob",
        ),
    )
