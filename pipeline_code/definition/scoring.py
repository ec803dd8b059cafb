"""Batch serving's scoring pipeline: Check (score.py: the version's files against the schema,
written header-less, id first) -> Model (CreateModel of ModelPackageArn, network isolated) ->
Score (a transform job: KMS-encrypted volume and output, the input joined to each prediction,
written to `predictions/<dataset>/<version>/<model version>/<execution id>/`: a prefix of its own
per run, so a `_SUCCESS` only ever vouches for its own run's outputs). It never registers
anything.

Why a pipeline, not a CreateTransformJob from the trigger: the trigger's exactly-once machinery
(ledger, concurrency cap, served package, deferral while the Serving stack changes, version
manifests) starts pipelines, so scoring reuses all of it unchanged; a transform job cannot skip a
CSV header or pick columns by name, so a step must check and reshape the data first, which is
also where bad data fails with a clear reason before any model runs; and every execution ends in
the same status notifications, `mlops status` and cost attribution as the other pipelines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline_code import offline
from pipeline_code.definition.context import Context, s3_input, s3_output
from pipeline_code.definition.contract import PARAM_MODEL_PACKAGE_ARN, PROCESSING_DIR
from pipeline_code.definition.parameters import scoring_parameters
from pipeline_code.definition.scoring_settings import ScoringSettings
from pipeline_code.definition.setting_rules import SettingsError
from pipeline_code.definition.step_code import read_string_constants
from pipeline_code.steps import STEPS_DIR

if TYPE_CHECKING:
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow.pipeline import Pipeline

    from pipeline_code.definition.settings import PipelineSettings
    from pipeline_code.definition.step_code import CodeLocations

STEP_CHECK = "Check"
STEP_MODEL = "Model"
STEP_SCORE = "Score"
SCORING_REPORT = "ScoringReport"
# score.py's outputs and report file, read from it (never imported: it needs pyarrow).
_SCORE_CONSTANTS = read_string_constants(STEPS_DIR / "score" / "score.py")
ROWS_OUTPUT = _SCORE_CONSTANTS["ROWS_OUTPUT"]
REPORT_OUTPUT = _SCORE_CONSTANTS["REPORT_OUTPUT"]
SCORING_FILE = _SCORE_CONSTANTS["SCORING_FILE"]
# The model the transform job runs as (reads the served package's artifact and the checked
# rows, writes predictions/), and the data bucket's key.
SCORING_MODEL_ROLE_ARN = offline.SCORING_MODEL_ROLE_ARN
DATA_KMS_KEY_ARN = offline.DATA_KMS_KEY_ARN
SCORING_PLACEHOLDERS = offline.SCORING_PLACEHOLDERS


def _check_step(ctx: Context, scoring: ScoringSettings) -> tuple[Any, Any]:
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.steps import ProcessingStep

    params = ctx.params
    processor = ctx.processor(network_isolation=True, instance_count=1)
    report = PropertyFile(name=SCORING_REPORT, output_name=REPORT_OUTPUT, path=SCORING_FILE)
    step_args = processor.run(
        code=ctx.code.score_script,
        inputs=[
            s3_input("data", params.input_data_uri, f"{PROCESSING_DIR}/input/data"),
            s3_input("schema", ctx.code.schema_file, f"{PROCESSING_DIR}/input/schema"),
        ],
        outputs=[
            s3_output(ctx, STEP_CHECK, name, f"{PROCESSING_DIR}/output/{name}")
            for name in (ROWS_OUTPUT, REPORT_OUTPUT)
        ],
        arguments=[
            "--input-dir",
            f"{PROCESSING_DIR}/input/data",
            "--output-dir",
            f"{PROCESSING_DIR}/output",
            "--id-column",
            scoring.id_column,
            "--input-data-uri",
            params.input_data_uri,
            "--model-package-arn",
            params.model_package_arn,
            "--run-id",
            ExecutionVariables.PIPELINE_EXECUTION_ID,
        ],
    )
    step = ProcessingStep(
        name=STEP_CHECK,
        step_args=step_args,
        description="Check the scoring version against the schema; write it id first, "
        "features in schema order, without a header.",
        property_files=[report],
        # Not cached: the same data scored by a newly served package must run again, and the
        # output prefix names the package's version and this execution.
    )
    return step, report


def _model_step(ctx: Context, check: Any) -> Any:
    """A CreateModel step from a model package: the SDK's ModelStep takes only what its
    ModelBuilder builds (an image and a model artifact), not a registry package."""
    from sagemaker.core.workflow.properties import Properties
    from sagemaker.mlops.workflow.steps import ConfigurableRetryStep, StepTypeEnum

    request: dict[str, Any] = {
        "ExecutionRoleArn": offline.placeholder(SCORING_MODEL_ROLE_ARN),
        "PrimaryContainer": {"ModelPackageName": ctx.params.model_package_arn},
        "EnableNetworkIsolation": True,
        "Tags": ctx.job_tags,
    }
    if ctx.vpc_subnets:  # vpc mode: the transform job's containers in the environment's subnets
        request["VpcConfig"] = {
            "SecurityGroupIds": ctx.vpc_security_group_ids,
            "Subnets": ctx.vpc_subnets,
        }

    class _PackageModelStep(ConfigurableRetryStep):
        def __init__(self) -> None:
            super().__init__(
                STEP_MODEL,
                StepTypeEnum.CREATE_MODEL,
                description="A network-isolated model of ModelPackageArn, the package batch "
                "mode serves.",
                depends_on=[check],
            )
            self._properties = Properties(
                step_name=STEP_MODEL, step=self, shape_name="DescribeModelOutput"
            )

        @property
        def arguments(self) -> dict[str, Any]:
            return request

        @property
        def properties(self) -> Any:
            return self._properties

    return _PackageModelStep()


def _score_step(ctx: Context, scoring: ScoringSettings, check: Any, report: Any, model: Any) -> Any:
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.functions import JsonGet
    from sagemaker.mlops.workflow.steps import TransformStep

    transformer = Transformer(
        model_name=model.properties.ModelName,
        instance_count=scoring.instance_count,
        instance_type=scoring.instance_type,
        strategy="MultiRecord",
        assemble_with="Line",
        output_path=JsonGet(step_name=check.name, property_file=report, json_path="output_uri"),
        output_kms_key=offline.placeholder(DATA_KMS_KEY_ARN),
        volume_kms_key=ctx.kms_key,
        accept="text/csv",
        max_concurrent_transforms=scoring.max_concurrent_transforms,
        max_payload=scoring.max_payload_mb,
        tags=ctx.job_tags,
        sagemaker_session=ctx.session,
    )
    rows = check.properties.ProcessingOutputConfig.Outputs[ROWS_OUTPUT].S3Output.S3Uri
    step_args = transformer.transform(
        data=rows,
        content_type="text/csv",
        split_type="Line",
        # the id is column 0: the model gets the features, the output keeps the whole input row
        input_filter="$[1:]",
        join_source="Input",
        output_filter="$",
    )
    return TransformStep(
        name=STEP_SCORE,
        step_args=step_args,
        description="Score every row with the served package; each prediction follows its "
        "row id and features.",
    )


def build_scoring_pipeline(
    settings: PipelineSettings, code: CodeLocations, session: PipelineSession
) -> Pipeline:
    """Check -> Model -> Score (see the module docstring); ``settings.scoring`` must be set."""
    scoring = settings.scoring
    if scoring is None:
        raise SettingsError("settings.scoring is required for the scoring pipeline (batch mode)")
    ctx = Context(
        settings=settings,
        code=code,
        session=session,
        params=scoring_parameters(settings),
        pipeline_name=scoring.pipeline_name,
    )
    check, report = _check_step(ctx, scoring)
    model = _model_step(ctx, check)
    return ctx.pipeline([check, model, _score_step(ctx, scoring, check, report, model)])


__all__ = ["PARAM_MODEL_PACKAGE_ARN", "ScoringSettings", "build_scoring_pipeline"]
