"""The training pipeline: Prepare -> Train -> Evaluate -> Gate -> Register | Fail.

With ``monitoring_engine="model-monitor"`` a Baseline step (QualityCheck: the Model Monitor
analyzer on Prepare's header-less ``baseline/features.csv``) runs after Prepare, parallel to
Train, and Register records its statistics.json/constraints.json as the package's data-quality
baselines. The SDK is imported only inside the builders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline_code import offline
from pipeline_code.definition.context import Context, s3_input, s3_output
from pipeline_code.definition.contract import (
    BASELINE_RESULTS_OUTPUT,
    CHECKPOINTS,
    EVALUATION_OUTPUT,
    MODEL_MONITOR_BASELINE_FILE,
    MONITORING_ENGINE_MODEL_MONITOR,
    PIPELINE_OUTPUTS_ROOT,
    PROCESSING_DIR,
    PROPERTY_FILE_EVALUATION,
    SEED,
    STEP_BASELINE,
    STEP_EVALUATE,
    STEP_FAIL,
    STEP_GATE,
    STEP_TRAIN,
    TRAINING_OUTPUTS,
    pipeline_output_prefix,
)
from pipeline_code.definition.parameters import training_parameters
from pipeline_code.definition.registration import register_step
from pipeline_code.definition.settings import PipelineSettings
from pipeline_code.definition.shared_steps import (
    evaluate_shards_step,
    gate_value,
    predictions_arguments,
    predictions_input,
    prepare_output,
    prepare_steps,
)
from pipeline_code.definition.step_code import CodeLocations
from pipeline_code.definition.trained_model import TrainedModel
from pipeline_code.definition.trainers import (
    evaluate_image_uri,
    evaluate_trainer_arguments,
    train_description,
    train_hyperparameters,
    train_source,
    trainer_image_uri,
)
from pipeline_code.definition.training_channels import train_shard_arguments, training_channels
from pipeline_code.definition.tuning import tuning_step

if TYPE_CHECKING:
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow.pipeline import Pipeline


def _baseline_step(ctx: Context, prepare: Any) -> Any:
    """Model Monitor data-quality baseline (statistics.json with KLL sketches, constraints.json)
    of Prepare's header-less ``features.csv``, computed by the analyzer image of
    ``settings.region``; registered with the model package, never checked against anything."""
    from sagemaker.core.model_monitor import DatasetFormat
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.check_job_config import CheckJobConfig
    from sagemaker.mlops.workflow.quality_check_step import (
        DataQualityCheckConfig,
        QualityCheckStep,
    )

    # DefaultModelMonitor takes the analyzer image's region from the session: the offline
    # session's boto session is in settings.region (never the environment's default region).
    if ctx.session.boto_session.region_name != ctx.settings.region:
        raise RuntimeError(
            f"session region {ctx.session.boto_session.region_name!r} is not the settings' "
            f"region {ctx.settings.region!r}: the Model Monitor image would be another region's"
        )
    check_job = CheckJobConfig(
        role=ctx.processing_role,
        instance_count=1,
        instance_type=ctx.params.processing_instance_type,
        volume_kms_key=ctx.kms_key,
        output_kms_key=ctx.kms_key,
        max_runtime_in_seconds=ctx.settings.max_runtime_seconds,
        tags=ctx.job_tags,
        sagemaker_session=ctx.session,
        # The analyzer reads its input and writes its output through SageMaker's channels and
        # publishes no metrics here: no network. A request-shaped dict, because the check-step
        # request builder copies this value into CreateProcessingJob as it is.
        network_config={
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": True,
            **(
                {
                    "VpcConfig": {
                        "SecurityGroupIds": ctx.vpc_security_group_ids,
                        "Subnets": ctx.vpc_subnets,
                    }
                }
                if ctx.vpc_subnets
                else {}
            ),
        },
    )
    quality_check = DataQualityCheckConfig(
        baseline_dataset=Join(
            on="/", values=[prepare_output(prepare, "baseline"), MODEL_MONITOR_BASELINE_FILE]
        ),
        dataset_format=DatasetFormat.csv(header=False),
        output_s3_uri=ctx.execution_output(STEP_BASELINE, BASELINE_RESULTS_OUTPUT),
    )
    return QualityCheckStep(
        name=STEP_BASELINE,
        description="Model Monitor data-quality baseline (statistics, constraints) of the "
        "test split's features.",
        quality_check_config=quality_check,
        check_job_config=check_job,
        # Nothing to check against: the step only computes the baseline the package carries.
        skip_check=True,
        register_new_baseline=True,
        cache_config=ctx.cache_config(),
    )


def _train_step(ctx: Context, prepare: Any) -> Any:
    from sagemaker.core.training.configs import (
        CheckpointConfig,
        Compute,
        Networking,
        OutputDataConfig,
        SourceCode,
        StoppingCondition,
        Tag,
    )
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.steps import TrainingStep
    from sagemaker.train.model_trainer import ModelTrainer

    class _OfflineModelTrainer(ModelTrainer):
        def _resolve_staging_bucket(self) -> tuple[str, None]:
            # Upstream asks IAM (SimulatePrincipalPolicy) whether the role may write to the
            # default bucket; offline the staging bucket is the artifact bucket, always.
            return self.sagemaker_session.default_bucket(), None

    settings, params = ctx.settings, ctx.params
    source_dir, entry_script = train_source(ctx)
    hp = {
        "num_round": params.num_round,
        "max_depth": params.max_depth,
        "eta": params.eta,
        "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree,
        "min_child_weight": params.min_child_weight,
        "early_stopping_rounds": params.early_stopping_rounds,
    }
    checkpoint = None
    if settings.use_spot:
        # CheckpointConfig is part of the training cache key, so the prefix is derived from
        # what determines the model (data, code, hyperparameters), never the execution id.
        code_digest = ctx.code.train_source_dir.rstrip("/").rsplit("/", 1)[-1]
        checkpoint = CheckpointConfig(
            s3_uri=Join(
                on="/",
                values=[
                    "s3:/",
                    ctx.bucket,
                    PIPELINE_OUTPUTS_ROOT,
                    settings.pipeline_name,
                    CHECKPOINTS,
                    params.data_digest,
                    code_digest[:16],
                    Join(on="-", values=list(hp.values())),
                    # Resume only from checkpoints made by as many hosts (one host: the
                    # prefix it always had).
                    *(
                        [f"instances-{settings.training_instance_count}"]
                        if settings.training_instance_count > 1
                        else []
                    ),
                ],
            ),
            local_path="/opt/ml/checkpoints",
        )
    trainer = _OfflineModelTrainer(
        # The SDK accepts only ARN-shaped roles without an IAM call; replaced right below.
        role=offline.arn_shaped_role(),
        sagemaker_session=ctx.session,
        training_image=trainer_image_uri(settings, "training"),
        source_code=SourceCode(source_dir=source_dir, entry_script=entry_script),
        compute=Compute(
            instance_type=params.training_instance_type,
            instance_count=settings.training_instance_count,
            volume_size_in_gb=30,
            volume_kms_key_id=ctx.kms_key,
            enable_managed_spot_training=True if settings.use_spot else None,
        ),
        networking=Networking(
            enable_network_isolation=True,
            enable_inter_container_traffic_encryption=True,
            security_group_ids=ctx.vpc_security_group_ids,
            subnets=ctx.vpc_subnets,
        ),
        stopping_condition=StoppingCondition(
            max_runtime_in_seconds=settings.max_runtime_seconds,
            max_wait_time_in_seconds=settings.max_wait_seconds if settings.use_spot else None,
        ),
        output_data_config=OutputDataConfig(
            s3_output_path=f"s3://{ctx.bucket}/"
            + pipeline_output_prefix(settings.pipeline_name, TRAINING_OUTPUTS).rstrip("/"),
            kms_key_id=ctx.kms_key,
            compression_type="GZIP",
        ),
        checkpoint_config=checkpoint,
        # HyperParameters is a string map: numeric parameters are converted at run time (a
        # hyperparameter fixed by pipeline.tuning is its configured value).
        hyperparameters=train_hyperparameters(ctx, hp),
        tags=[Tag(key=tag["Key"], value=tag["Value"]) for tag in ctx.job_tags],
        base_job_name=f"{settings.pipeline_name}-train",
    )
    # The training job role, not the processing one: the only writer of models.
    trainer.role = ctx.training_role
    step_args = trainer.train(
        input_data_config=training_channels(
            prepare_output(prepare, "train"),
            prepare_output(prepare, "validation"),
            settings.training_instance_count,
        ),
    )
    return TrainingStep(
        name=STEP_TRAIN,
        step_args=step_args,
        description=train_description(settings),
        cache_config=ctx.cache_config(),
    )


def _evaluate_step(ctx: Context, prepare: Any, model: TrainedModel, shards: Any) -> tuple[Any, Any]:
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.steps import ProcessingStep

    report = PropertyFile(
        name=PROPERTY_FILE_EVALUATION,
        output_name=EVALUATION_OUTPUT,
        path=ctx.code.evaluation_keys["file"],
    )
    # No network isolation: the champion package is described in the registry, read from S3.
    # Across processing instances Evaluate runs on one: it reads EvaluateShards' predictions.
    processor = ctx.processor(
        network_isolation=False,
        env={"AWS_DEFAULT_REGION": ctx.settings.region},
        instance_count=1 if ctx.settings.processing_instance_count > 1 else None,
        image_uri=evaluate_image_uri(ctx.settings),
    )
    step_args = processor.run(
        code=ctx.code.evaluate_script,
        inputs=[
            s3_input("model", model.artifacts, f"{PROCESSING_DIR}/model"),
            s3_input("test", prepare_output(prepare, "test"), f"{PROCESSING_DIR}/test"),
            *predictions_input(shards),
        ],
        outputs=[
            s3_output(ctx, STEP_EVALUATE, EVALUATION_OUTPUT, f"{PROCESSING_DIR}/evaluation"),
        ],
        arguments=[
            "--model-dir",
            f"{PROCESSING_DIR}/model",
            "--test-dir",
            f"{PROCESSING_DIR}/test",
            "--output-dir",
            f"{PROCESSING_DIR}/evaluation",
            "--target",
            ctx.settings.schema["target"],
            "--metric",
            ctx.settings.metric,
            *evaluate_trainer_arguments(ctx.settings),
            "--bootstrap-samples",
            str(ctx.settings.bootstrap_samples),
            "--seed",
            str(SEED),
            # The gate's thresholds are the deployed configuration's: a new deploy changes
            # them, a run cannot.
            "--floor",
            repr(float(ctx.settings.metric_floor)),
            "--tolerance",
            repr(float(ctx.settings.champion_tolerance)),
            "--min-positives",
            str(ctx.settings.min_positives),
            "--gate-method",
            ctx.settings.gate_method,
            "--champion-model-package-arn",
            ctx.params.champion_model_package_arn,
            "--model-package-group",
            offline.placeholder(offline.MODEL_PACKAGE_GROUP_NAME),
            *predictions_arguments(shards),
        ],
    )
    step = ProcessingStep(
        name=STEP_EVALUATE,
        step_args=step_args,
        description="Score challenger and champion on the test rows neither trained on; decide "
        "the gate.",
        property_files=[report],
        # Cached: the champion is a parameter (fixed when the run starts), so it is part of the
        # cache key; a new champion is a new key.
        cache_config=ctx.cache_config(),
    )
    return step, report


def _gate_step(ctx: Context, evaluate: Any, report: Any, register: Any) -> Any:
    """Register iff Evaluate decided so; otherwise fail with Evaluate's reason, which states the
    numbers (counts, delta, standard error, bounds, floor and tolerance)."""
    from sagemaker.core.workflow.conditions import ConditionEquals
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep

    fail = FailStep(
        name=STEP_FAIL,
        error_message=Join(
            on="",
            values=["Gate failed: ", gate_value(ctx, evaluate, report, "reason")],
        ),
    )
    return ConditionStep(
        name=STEP_GATE,
        description="Register iff Evaluate's gate decision is to register (floor, enough data, "
        "not shown worse than the champion).",
        conditions=[
            ConditionEquals(
                left=gate_value(ctx, evaluate, report, "decision"),
                right=ctx.code.evaluation_keys["register"],
            )
        ],
        if_steps=[register],
        else_steps=[fail],
    )


def _split_arguments(settings: PipelineSettings) -> list[str]:
    """prepare.py's split: seed, fractions, the id or time column if configured, and the train
    shards for several training instances."""
    split = settings.split
    arguments = [
        "--seed",
        str(SEED),
        "--validation-fraction",
        repr(float(split["validation_fraction"])),
        "--test-fraction",
        repr(float(split["test_fraction"])),
    ]
    if split.get("id_column"):
        arguments += ["--id-column", split["id_column"]]
    if split.get("time_column"):
        arguments += ["--time-column", split["time_column"]]
    return arguments + train_shard_arguments(settings.training_instance_count)


def build_training_pipeline(
    settings: PipelineSettings, code: CodeLocations, session: PipelineSession
) -> Pipeline:
    """Build the training pipeline (nothing is uploaded or called until it is rendered).

    Args:
        settings: Validated settings.
        code: Step code locations from :func:`publish_step_code`.
        session: An offline session from :func:`pipeline_code.offline.offline_session`; the SDK
            runs step code lazily while rendering, so render inside the same context.
    """
    ctx = Context(
        settings=settings,
        code=code,
        session=session,
        params=training_parameters(settings),
        pipeline_name=settings.pipeline_name,
    )
    shards, prepare = prepare_steps(ctx, _split_arguments(settings))
    baseline = None
    if settings.monitoring_engine == MONITORING_ENGINE_MODEL_MONITOR:
        baseline = _baseline_step(ctx, prepare)
    if settings.tuning is None:
        model = TrainedModel.of_training_step(_train_step(ctx, prepare))
    else:
        # The same training job, run as the trials of a tuning job (definition/tuning.py).
        model = tuning_step(ctx, _train_step(ctx, prepare), _train_step(ctx, prepare))
    train = model.step
    predictions = evaluate_shards_step(ctx, prepare, model.artifacts)  # None on one instance
    evaluate, report = _evaluate_step(ctx, prepare, model, predictions)
    register = register_step(ctx, prepare, model, evaluate, report, baseline)
    gate = _gate_step(ctx, evaluate, report, register)
    optional = [step for step in (shards, prepare, baseline) if step is not None]
    scored = [predictions] if predictions is not None else []
    return ctx.pipeline([*optional, train, *scored, evaluate, gate])
