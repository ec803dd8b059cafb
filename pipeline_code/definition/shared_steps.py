"""Step builders both pipelines use: prepare.py as a processing step (Prepare in training,
Validate in evaluation) with the run's version manifest, its outputs, and values read from the
Evaluate step's report; and, across processing instances, PrepareShards before Prepare and
EvaluateShards (the test split's predictions) before Evaluate."""

from __future__ import annotations

from typing import Any

from pipeline_code import offline
from pipeline_code.definition.context import Context, s3_input, s3_output
from pipeline_code.definition.contract import (
    PREPARE_OUTPUTS,
    PROCESSING_DIR,
    SCHEMA_CONTAINER_PATH,
    SHARD_PARTS,
    SHARD_PREDICTIONS,
    STEP_EVALUATE_SHARDS,
    STEP_PREPARE,
    STEP_PREPARE_SHARDS,
    TEST_FILES_PREFIX,
    VERSION_MANIFEST_PREFIX,
)
from pipeline_code.definition.step_code import shard_parts_dir
from pipeline_code.definition.trainers import evaluate_image_uri, evaluate_trainer_arguments

MANIFEST_DIR = f"{PROCESSING_DIR}/input/manifest"
PARTS_DIR = f"{PROCESSING_DIR}/input/parts"
MODEL_DIR = f"{PROCESSING_DIR}/model"
TEST_DIR = f"{PROCESSING_DIR}/test"
PREDICTIONS_DIR = f"{PROCESSING_DIR}/predictions"


def version_manifest_uri(ctx: Context) -> Any:
    """``s3://${ArtifactBucket}/dataset-manifests/<DataDigest>.json``: the exact object versions
    the trigger recorded for this run (content-addressed, so always a short, safe string)."""
    from sagemaker.core.workflow.functions import Join

    return Join(
        on="",
        values=[f"s3://{ctx.bucket}/{VERSION_MANIFEST_PREFIX}", ctx.params.data_digest, ".json"],
    )


def prepare_processing_step(
    ctx: Context,
    *,
    step: str,
    outputs: tuple[str, ...],
    mode_arguments: list[str],
    description: str,
    instance_count: Any = None,
    shards: Any = None,
) -> Any:
    """prepare.py on the dataset version at InputDataUri, network-isolated and cached.

    The schema travels as a file (a ContainerArgument is limited to 256 characters); the data
    digest is an argument so it is in the cache key: new data under an old prefix (a
    re-upload) is never a cache hit. The run's version manifest is an input: prepare.py checks
    the downloaded prefix against it before it reads any data, so the run trains on exactly
    the object versions its DataDigest names, or fails saying what differs.

    ``shards``: the PrepareShards step (:func:`prepare_shards_step`) whose parts this step
    merges instead of reading the version (default None: it reads the version)."""
    from sagemaker.mlops.workflow.steps import ProcessingStep

    processor = ctx.processor(network_isolation=True, instance_count=instance_count)
    if shards is None:
        data = s3_input("data", ctx.params.input_data_uri, f"{PROCESSING_DIR}/input/data")
        source = ["--input-dir", f"{PROCESSING_DIR}/input/data"]
    else:
        data = s3_input("parts", prepare_output(shards, shard_parts_dir()), PARTS_DIR)
        source = ["--parts-dir", PARTS_DIR]
    step_args = processor.run(
        code=ctx.code.prepare_script,
        inputs=[
            data,
            s3_input("schema", ctx.code.schema_file, f"{PROCESSING_DIR}/input/schema"),
            s3_input("manifest", version_manifest_uri(ctx), MANIFEST_DIR),
        ],
        outputs=[s3_output(ctx, step, name, f"{PROCESSING_DIR}/output/{name}") for name in outputs],
        arguments=[
            *source,
            "--output-dir",
            f"{PROCESSING_DIR}/output",
            "--schema",
            SCHEMA_CONTAINER_PATH,
            *mode_arguments,
            "--data-digest",
            ctx.params.data_digest,
            "--manifest-dir",
            MANIFEST_DIR,
        ],
    )
    return ProcessingStep(
        name=step,
        step_args=step_args,
        description=description,
        cache_config=ctx.cache_config(),
    )


def prepare_shards_step(ctx: Context, *, mode_arguments: list[str]) -> Any:
    """prepare.py --shard on every processing instance (ProcessingInstanceCount, default
    pipeline.processing_instance_count): the version's objects dealt out ShardedByS3Key, each
    instance's parts uploaded to one prefix under instance-unique names, below the pipeline's
    `shard-parts/` (the artifact bucket expires it); Prepare merges them.
    Cached like Prepare: its arguments hold the data digest."""
    from sagemaker.mlops.workflow.steps import ProcessingStep

    processor = ctx.processor(network_isolation=True)
    step_args = processor.run(
        code=ctx.code.prepare_script,
        inputs=[
            s3_input(
                "data",
                ctx.params.input_data_uri,
                f"{PROCESSING_DIR}/input/data",
                distribution="ShardedByS3Key",
            ),
            s3_input("schema", ctx.code.schema_file, f"{PROCESSING_DIR}/input/schema"),
            s3_input("manifest", version_manifest_uri(ctx), MANIFEST_DIR),
        ],
        outputs=[
            s3_output(
                ctx,
                STEP_PREPARE_SHARDS,
                shard_parts_dir(),
                f"{PROCESSING_DIR}/output/{shard_parts_dir()}",
                ctx.execution_output(STEP_PREPARE_SHARDS, shard_parts_dir(), SHARD_PARTS),
            )
        ],
        arguments=[
            "--input-dir",
            f"{PROCESSING_DIR}/input/data",
            "--output-dir",
            f"{PROCESSING_DIR}/output",
            "--schema",
            SCHEMA_CONTAINER_PATH,
            *mode_arguments,
            "--shard",
            "--data-digest",
            ctx.params.data_digest,
            "--manifest-dir",
            MANIFEST_DIR,
        ],
    )
    return ProcessingStep(
        name=STEP_PREPARE_SHARDS,
        step_args=step_args,
        description="Read, check and split this instance's share of the dataset version's "
        "files (ShardedByS3Key); Prepare merges the parts.",
        cache_config=ctx.cache_config(),
    )


def prepare_steps(ctx: Context, split_arguments: list[str]) -> tuple[Any, Any]:
    """The training pipeline's Prepare, and before it PrepareShards when
    pipeline.processing_instance_count is above 1 (else None): then Prepare merges the parts
    on one instance."""
    if ctx.settings.processing_instance_count == 1:
        return None, prepare_processing_step(
            ctx,
            step=STEP_PREPARE,
            outputs=PREPARE_OUTPUTS,
            mode_arguments=split_arguments,
            description="Validate the dataset version, split it, compute the drift baseline.",
        )
    shards = prepare_shards_step(ctx, mode_arguments=split_arguments)
    return shards, prepare_processing_step(
        ctx,
        step=STEP_PREPARE,
        outputs=PREPARE_OUTPUTS,
        mode_arguments=split_arguments,
        description="Merge PrepareShards' parts: validate the version, split it, compute the "
        "drift baseline.",
        instance_count=1,
        shards=shards,
    )


def evaluate_shards_step(ctx: Context, prepare: Any, model_artifacts: Any) -> Any:
    """With pipeline.processing_instance_count above 1 (else None): evaluate.py
    --predictions-output on every processing instance (ProcessingInstanceCount), the test split's
    files (one per instance, as the merge writes them; :func:`test_files_uri`, so not its
    labels.json, which EvaluateShards does not read) dealt out ShardedByS3Key, the challenger
    and the champion predicted on them; the predictions go below the pipeline's `shard-parts/`
    (the artifact bucket expires it), and Evaluate reads them (:func:`predictions_input`).

    Cached: its inputs (the model's and the test split's URIs) and the champion argument are in
    the key, so a new model, new data or another champion is a new key. Not network-isolated:
    the champion package is described in the registry and read from S3, as in Evaluate."""
    from sagemaker.mlops.workflow.steps import ProcessingStep

    settings = ctx.settings
    if settings.processing_instance_count == 1:
        return None
    processor = ctx.processor(
        network_isolation=False,
        env={"AWS_DEFAULT_REGION": settings.region},
        image_uri=evaluate_image_uri(settings),
    )
    step_args = processor.run(
        code=ctx.code.evaluate_script,
        inputs=[
            s3_input("model", model_artifacts, MODEL_DIR),
            s3_input("test", test_files_uri(prepare), TEST_DIR, distribution="ShardedByS3Key"),
        ],
        outputs=[
            s3_output(
                ctx,
                STEP_EVALUATE_SHARDS,
                SHARD_PREDICTIONS,
                f"{PROCESSING_DIR}/{SHARD_PREDICTIONS}",
                ctx.execution_output(STEP_EVALUATE_SHARDS, SHARD_PREDICTIONS, SHARD_PARTS),
            )
        ],
        arguments=[
            "--model-dir",
            MODEL_DIR,
            "--test-dir",
            TEST_DIR,
            "--predictions-output",
            f"{PROCESSING_DIR}/{SHARD_PREDICTIONS}",
            "--target",
            settings.schema["target"],
            *evaluate_trainer_arguments(settings),
            "--champion-model-package-arn",
            ctx.params.champion_model_package_arn,
            "--model-package-group",
            offline.placeholder(offline.MODEL_PACKAGE_GROUP_NAME),
        ],
    )
    return ProcessingStep(
        name=STEP_EVALUATE_SHARDS,
        step_args=step_args,
        description="Predict this instance's test files (ShardedByS3Key) with the challenger "
        "and the champion; Evaluate reads the predictions.",
        cache_config=ctx.cache_config(),
    )


def test_files_uri(prepare: Any) -> Any:
    """``<Prepare's test output>/test``: the key prefix of the test split's files only
    (contract.TEST_FILES_PREFIX); each keeps its own name in the container."""
    from sagemaker.core.workflow.functions import Join

    return Join(on="/", values=[prepare_output(prepare, "test"), TEST_FILES_PREFIX])


def predictions_input(shards: Any) -> list[Any]:
    """Evaluate's input of EvaluateShards' predictions (none without the step)."""
    if shards is None:
        return []
    uri = prepare_output(shards, SHARD_PREDICTIONS)
    return [s3_input(SHARD_PREDICTIONS, uri, PREDICTIONS_DIR)]


def predictions_arguments(shards: Any) -> list[str]:
    """Evaluate's arguments to read EvaluateShards' predictions instead of predicting."""
    return [] if shards is None else ["--predictions-dir", PREDICTIONS_DIR]


def prepare_output(prepare: Any, name: str) -> Any:
    return prepare.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri


def gate_value(ctx: Context, evaluate: Any, report: Any, key: str) -> Any:
    from sagemaker.core.workflow.functions import JsonGet

    keys = ctx.code.evaluation_keys
    return JsonGet(
        step_name=evaluate.name, property_file=report, json_path=f"{keys['gate']}.{keys[key]}"
    )


def registry_value(ctx: Context, evaluate: Any, report: Any, key: str) -> Any:
    """A registry metadata value Evaluate prepared (evaluation.json's registry section)."""
    from sagemaker.core.workflow.functions import JsonGet

    keys = ctx.code.evaluation_keys
    return JsonGet(
        step_name=evaluate.name, property_file=report, json_path=f"{keys['registry']}.{keys[key]}"
    )
